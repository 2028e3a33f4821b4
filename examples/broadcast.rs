//! Market data fan-out: one publisher process sends quotes, three subscriber
//! processes each receive all of them. Halfway through, one subscriber is
//! SIGKILLed; the publisher detaches it by itself and the other two carry on.
//!
//! `cargo run --release --example broadcast`
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use ringshm::broadcast;

/// One quote: 32 bytes of plain data.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Quote {
    seq: u64,
    symbol: [u8; 8],
    bid: f64,
    ask: f64,
}

const QUOTES: u64 = 2_000_000;
const SYMBOLS: [&[u8; 8]; 4] = [b"EURUSD\0\0", b"GBPUSD\0\0", b"USDJPY\0\0", b"AUDUSD\0\0"];

fn quote(seq: u64) -> Quote {
    let bid = 1.0 + (seq % 1000) as f64 * 1e-4;
    Quote { seq, symbol: *SYMBOLS[(seq % 4) as usize], bid, ask: bid + 2e-4 }
}

fn subscriber(name: &str, who: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = broadcast::Ring::<Quote>::open(name)?.subscribe()?;
    let (mut n, start) = (0u64, Instant::now());
    let mut buf = [Quote::zeroed(); 256];
    loop {
        let k = rx.recv_slice(&mut buf);
        if k == 0 {
            // Nothing ready: block for the next one (Err once the publisher
            // is gone and everything is read).
            match rx.recv() {
                Ok(q) => buf[0] = q,
                Err(_) => break,
            }
            check(&buf[0], &mut n);
            continue;
        }
        for q in &buf[..k] {
            check(q, &mut n);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("  subscriber {who}: received all {n} quotes in order ({:.1} M/s)", n as f64 / secs / 1e6);
    assert_eq!(n, QUOTES);
    Ok(())
}

fn check(q: &Quote, n: &mut u64) {
    assert_eq!(q.seq, *n, "quotes arrive in order, none missing");
    assert_eq!(q.symbol, quote(q.seq).symbol);
    *n += 1;
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("subscriber") {
        return subscriber(&args[2], &args[3]);
    }
    let name = format!("quotes-{}", std::process::id());
    let topic = broadcast::Ring::<Quote>::create(&name, 4096)?; // lossless (the default)
    let exe = std::env::current_exe()?;
    let spawn = |who: &str| Command::new(&exe).args(["subscriber", &name, who]).spawn();
    let mut subs: Vec<(String, Child)> =
        ["a", "b", "doomed"].iter().map(|w| Ok((w.to_string(), spawn(w)?))).collect::<std::io::Result<_>>()?;
    while topic.subscribers() < 3 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut tx = topic.publisher()?;
    println!("publisher: {} subscribers, sending {QUOTES} quotes", tx.subscribers());
    let start = Instant::now();
    for seq in 0..QUOTES {
        if seq == QUOTES / 2 {
            let (who, mut doomed) = subs.pop().expect("three subscribers");
            doomed.kill()?; // SIGKILL, mid-stream
            doomed.wait()?;
            println!("publisher: SIGKILLed subscriber {who} at quote {seq}; carrying on");
        }
        tx.send(quote(seq))?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "publisher: sent {QUOTES} quotes in {secs:.2} s ({:.1} M/s); {} subscribers left",
        QUOTES as f64 / secs / 1e6,
        tx.subscribers()
    );
    drop(tx); // the subscribers drain, then see the end
    for (who, mut c) in subs {
        assert!(c.wait()?.success(), "subscriber {who} failed");
    }
    Ok(())
}
