//! The same futures under smol: a child process produces numbers into an
//! SPSC ring with plain blocking `push`; the parent consumes them as a
//! `Stream` inside `smol::block_on`, and the stream ends when the child is
//! gone. No tokio anywhere: the library depends on no runtime.
//!
//! `cargo run --release --features async --example async_smol`
use std::process::Command;

use ringshm::spsc;
use smol::stream::StreamExt;

const N: u64 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("producer") {
        let mut tx = spsc::Ring::<u64>::open(&args[2])?.producer()?;
        for i in 0..N {
            tx.push(i)?;
        }
        return Ok(()); // dropping `tx` ends the consumer's stream
    }
    let name = format!("async-smol-{}", std::process::id());
    let ring = spsc::Ring::<u64>::create(&name, 1024)?;
    let mut rx = ring.consumer()?;
    let mut child = Command::new(std::env::current_exe()?).args(["producer", &name]).spawn()?;
    let (count, sum) = smol::block_on(async {
        let mut s = rx.stream();
        let (mut count, mut sum) = (0u64, 0u64);
        while let Some(v) = s.next().await {
            assert_eq!(v, count, "out of order");
            count += 1;
            sum += v;
        }
        (count, sum)
    });
    println!("received {count} numbers, sum {sum}");
    assert_eq!((count, sum), (N, N * (N - 1) / 2));
    assert!(child.wait()?.success());
    Ok(())
}
