//! Writes the seed corpus: `cargo run --example make_seeds` from `fuzz/`.
//! Seeds are valid rings in both input modes plus a few operation lists.

use ringshm_fuzz::{template_mpmc_u64, template_pipe, template_queue, template_spsc_u64};

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
    newer_targets()
}

/// `n` pseudo-random operation bytes (the targets decode them with `arbitrary`).
fn op_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A seed: flags, segment length, segment bytes, operations.
fn seed(flags: u8, segment: &[u8], ops: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(&(segment.len() as u16).to_le_bytes());
    v.extend_from_slice(segment);
    v.extend_from_slice(ops);
    v
}

/// A few seeds each for `attach_mpmc`, `open_pipe_file`, `open_queue_file`,
/// `open_sync_file`:
/// template mode (no XOR bytes: the valid segment) for several flag
/// combinations, and raw mode with the valid segment bytes themselves.
fn newer_targets() -> std::io::Result<()> {
    let write = |target: &str, name: String, bytes: Vec<u8>| {
        std::fs::create_dir_all(format!("seeds/{target}"))?;
        std::fs::write(format!("seeds/{target}/{name}"), bytes)
    };
    // attach_mpmc: bits 1..=3 log2 capacity, bit 4 busy template.
    for (i, flags) in [1u8 | 1 << 1, 1 | 3 << 1, 1 | 2 << 1 | 0x10, 1 | 0x10].into_iter().enumerate() {
        write("attach_mpmc", format!("tmpl-{flags:02x}"), seed(flags, &[], &op_bytes(i as u64 + 1, 96)))?;
    }
    let raw = template_mpmc_u64(4, true);
    write("attach_mpmc", "raw-cap4-busy".into(), seed(2 << 1, &raw, &op_bytes(9, 64)))?;
    // open_pipe_file: bits 1..=2 template, bit 3 both ends, bit 4 end A.
    for (i, flags) in
        [1u8 | 8, 1 | 2 << 1 | 8, 1 | 3 << 1 | 8, 1 | 2 << 1, 1 | 1 << 1 | 0x10, 1 | 8 | 1 << 1].into_iter().enumerate()
    {
        write("open_pipe_file", format!("tmpl-{flags:02x}"), seed(flags, &[], &op_bytes(i as u64 + 11, 96)))?;
    }
    let raw = template_pipe(2);
    write("open_pipe_file", "raw-busy-both".into(), seed(8, &raw, &op_bytes(19, 64)))?;
    // open_queue_file: bits 1..=2 kind, bit 3 busy, bit 4 two handles.
    for (i, flags) in [1u8 | 8, 1 | 1 << 1 | 8 | 0x10, 1 | 2 << 1 | 8, 1 | 3 << 1 | 0x10, 1 | 1 << 1, 1 | 2 << 1 | 0x10]
        .into_iter()
        .enumerate()
    {
        write("open_queue_file", format!("tmpl-{flags:02x}"), seed(flags, &[], &op_bytes(i as u64 + 21, 96)))?;
    }
    let raw = template_queue(0, true);
    write("open_queue_file", "raw-bytes-busy".into(), seed(0, &raw, &op_bytes(29, 64)))?;
    // open_sync_file: bits 1..=4 kind (9 kinds), bit 5 busy, bit 6 two handles.
    for kind in 0u8..9 {
        for extra in [0u8, 0x20 | 0x40] {
            let flags = 1 | kind << 1 | extra;
            let ops = op_bytes(u64::from(flags) + 31, 96);
            write("open_sync_file", format!("tmpl-{flags:02x}"), seed(flags, &[], &ops))?;
        }
    }
    Ok(())
}
