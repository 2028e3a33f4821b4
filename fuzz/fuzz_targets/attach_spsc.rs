//! Arbitrary bytes as a caller-provided region: `attach_in` must refuse them
//! with an error or attach to a ring that then never panics, hangs or touches
//! memory outside the region — even while its bytes are overwritten.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringshm::spsc::Ring;
use ringshm_fuzz::{AlignedBuf, Input};

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else { return };
    let min = Ring::<u64>::region_size(input.capacity).expect("capacity");
    let buf = AlignedBuf::from_bytes(&input.segment_bytes(min));
    {
        // SAFETY: the buffer is 128-aligned, at least `min` bytes, and
        // outlives the ring (dropped at the end of this block). The
        // interpreter's scribbles model another process writing to it.
        let Ok(ring) = (unsafe { Ring::<u64>::attach_in(buf.region()) }) else { return };
        ringshm_fuzz::run_ops(&ring, &input.ops, |off, v| buf.scribble(off, v));
    }
});
