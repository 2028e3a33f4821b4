//! Two producers and two consumers with an end marker, as in the seed
//! tutorial: producers put "p1's A", "p1's B", ...; once both are done the
//! parent puts one end marker per consumer.
//!
//! `cargo run --release --example producers_consumers`
use std::process::Command;

use ringshm::Queue;

type Item = [u8; 32];
const END: Item = [0; 32];

fn item(s: &str) -> Item {
    let mut a = [0u8; 32];
    a[..s.len()].copy_from_slice(s.as_bytes());
    a
}

fn text(a: &Item) -> String {
    String::from_utf8_lossy(&a[..a.iter().position(|&b| b == 0).unwrap_or(32)]).into_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("producer") => {
            let q = Queue::<Item>::open(&args[2])?;
            for value in ["A", "B", "C"] {
                let product = format!("{}'s {value}", args[3]);
                q.put(item(&product))?;
                println!("{product} was put in the queue");
            }
        }
        Some("consumer") => {
            let q = Queue::<Item>::open(&args[2])?;
            let mut n = 0;
            loop {
                let product = q.get()?;
                if product == END {
                    break;
                }
                println!("  {} was taken by consumer {}", text(&product), args[3]);
                n += 1;
            }
            println!("  consumer {} got the end marker after {n} products", args[3]);
        }
        _ => {
            let name = format!("prodcons-{}", std::process::id());
            let q = Queue::<Item>::create(&name, 2)?;
            let exe = std::env::current_exe()?;
            let spawn = |role: &str, who: &str| Command::new(&exe).args([role, &name, who]).spawn();
            let consumers = [spawn("consumer", "c1")?, spawn("consumer", "c2")?];
            let producers = [spawn("producer", "p1")?, spawn("producer", "p2")?];
            for mut p in producers {
                assert!(p.wait()?.success());
            }
            for _ in 0..consumers.len() {
                q.put(END)?;
            }
            for mut c in consumers {
                assert!(c.wait()?.success());
            }
            println!("all 6 products consumed, queue empty: {}", q.is_empty());
        }
    }
    Ok(())
}
