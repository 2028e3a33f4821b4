//! Arbitrary bytes as a segment file in /dev/shm: `open` must refuse them
//! with an error or open a ring that then never panics, hangs or faults —
//! even while the file is overwritten through another descriptor.
#![no_main]

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};

use libfuzzer_sys::fuzz_target;
use ringshm::spsc::Ring;
use ringshm_fuzz::Input;

fuzz_target!(|data: &[u8]| {
    static N: AtomicU32 = AtomicU32::new(0);
    let Some(input) = Input::parse(data) else { return };
    let name = format!("ringshm-fuzz-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let path = format!("/dev/shm/{name}");
    let bytes = input.segment_bytes(0);
    std::fs::write(&path, &bytes).expect("write segment file");
    if let Ok(ring) = Ring::<u64>::open(&name) {
        let file = std::fs::OpenOptions::new().write(true).open(&path).expect("reopen");
        let len = bytes.len().max(1);
        ringshm_fuzz::run_ops(&ring, &input.ops, |off, v| {
            // Writes past the mapped size would grow the file; keep inside.
            let off = off % len;
            let b = v.to_le_bytes();
            let _ = file.write_at(&b[..b.len().min(len - off)], off as u64);
        });
    }
    let _ = std::fs::remove_file(&path);
});
