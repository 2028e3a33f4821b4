//! The request/handle `x + y` queue of the seed tutorial: a queue of capacity
//! 5, one process putting ten (x, y) requests, another handling them.
//!
//! `cargo run --release --example queue_sum`
use std::process::Command;
use std::time::Duration;

use ringshm::{GetError, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("request") => {
            let q = Queue::<[u32; 2]>::open(&args[2])?;
            let mut seed = std::process::id();
            for _ in 0..10 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let (x, y) = (seed % 100 + 1, (seed >> 16) % 100 + 1);
                q.put([x, y])?; // waits while the queue is full
                println!("=============\nrequest ({x}, {y}); messages in the queue --> {}", q.len());
            }
            // The parent closes the queue once we are done.
        }
        Some("handle") => {
            let q = Queue::<[u32; 2]>::open(&args[2])?;
            let mut handled = 0;
            loop {
                match q.get() {
                    Ok([x, y]) => {
                        println!("x + y = {}", x + y);
                        handled += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(GetError::Disconnected) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            println!("handled {handled} requests");
            assert_eq!(handled, 10);
        }
        _ => {
            let name = format!("queue-sum-{}", std::process::id());
            // Capacities are powers of two: 5 becomes 8 (see Queue::capacity).
            let q = Queue::<[u32; 2]>::create(&name, 5)?;
            let exe = std::env::current_exe()?;
            let mut p2 = Command::new(&exe).args(["handle", &name]).spawn()?;
            let mut p1 = Command::new(&exe).args(["request", &name]).spawn()?;
            assert!(p1.wait()?.success());
            q.close(); // no more requests: the handler drains, then stops
            assert!(p2.wait()?.success());
            assert!(q.is_empty());
        }
    }
    Ok(())
}
