//! The kitchen of the seed tutorial with a `JoinableQueue`: three cooks put
//! dishes on a counter that holds two and wait (`join`) until every dish is
//! eaten; two eaters take dishes and call `task_done`.
//!
//! `cargo run --release --example kitchen`
use std::process::Command;
use std::time::Duration;

use ringshm::{GetError, JoinableQueue};

type Dish = [u8; 32];

fn dish(s: &str) -> Dish {
    let mut a = [0u8; 32];
    a[..s.len()].copy_from_slice(s.as_bytes());
    a
}

fn text(a: &Dish) -> String {
    String::from_utf8_lossy(&a[..a.iter().position(|&b| b == 0).unwrap_or(32)]).into_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("cook") => {
            let counter = JoinableQueue::<Dish>::open(&args[2])?;
            for value in ["noodles", "dumplings", "rice"] {
                let d = format!("{}'s {value}", args[3]);
                counter.put(dish(&d))?;
                println!("{d} is on the counter");
            }
            counter.join(); // until every dish put so far is eaten
            println!("{}: everything I cooked was eaten", args[3]);
        }
        Some("eater") => {
            let counter = JoinableQueue::<Dish>::open(&args[2])?;
            loop {
                match counter.get() {
                    Ok(d) => {
                        std::thread::sleep(Duration::from_millis(10));
                        println!("  {} ate {}", args[3], text(&d));
                        counter.task_done()?;
                    }
                    Err(GetError::Disconnected) => break, // the kitchen closed
                    Err(e) => return Err(e.into()),
                }
            }
        }
        _ => {
            let name = format!("kitchen-{}", std::process::id());
            let counter = JoinableQueue::<Dish>::create(&name, 2)?;
            let exe = std::env::current_exe()?;
            let spawn = |role: &str, who: &str| Command::new(&exe).args([role, &name, who]).spawn();
            let eaters = [spawn("eater", "eater1")?, spawn("eater", "eater2")?];
            let cooks = [spawn("cook", "cook1")?, spawn("cook", "cook2")?, spawn("cook", "cook3")?];
            for mut c in cooks {
                assert!(c.wait()?.success());
            }
            println!("unfinished dishes: {}", counter.unfinished_tasks());
            counter.close();
            for mut e in eaters {
                assert!(e.wait()?.success());
            }
            println!("kitchen closed: 9 dishes cooked and eaten");
        }
    }
    Ok(())
}
