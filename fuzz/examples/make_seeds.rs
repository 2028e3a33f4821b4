//! Writes the seed corpus: `cargo run --example make_seeds` from `fuzz/`.
//! Seeds are valid rings in both input modes plus a few operation lists.

use ringshm_fuzz::template_spsc_u64;

fn main() -> std::io::Result<()> {
    let ops: [&[u8]; 3] = [
        &[],
        // A mix of pushes, pops, chunks and length queries.
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 2, 9, 4, 10, 11, 5, 8, 6, 3, 7, 2, 8, 1, 8, 2],
        &[4, 16, 6, 3, 5, 9, 7, 4, 2, 8, 10, 12, 9, 13, 4, 3, 8, 13, 0, 255, 255, 255, 255],
    ];
    for target in ["attach_spsc", "open_segment_file"] {
        let dir = format!("seeds/{target}");
        std::fs::create_dir_all(&dir)?;
        for cap_log2 in [0u8, 3, 6] {
            let seg = template_spsc_u64(1 << cap_log2);
            for (i, o) in ops.iter().enumerate() {
                // Raw mode: the valid segment bytes themselves.
                let mut raw = vec![cap_log2 << 1];
                raw.extend_from_slice(&(seg.len() as u16).to_le_bytes());
                raw.extend_from_slice(&seg);
                raw.extend_from_slice(o);
                std::fs::write(format!("{dir}/raw-cap{cap_log2}-ops{i}"), raw)?;
                // Template mode: no XOR bytes at all, i.e. the valid ring.
                let mut t = vec![1 | (cap_log2 << 1), 0, 0];
                t.extend_from_slice(o);
                std::fs::write(format!("{dir}/tmpl-cap{cap_log2}-ops{i}"), t)?;
            }
        }
    }
    Ok(())
}
