//! The bank balance: one process deposits, another withdraws, 30 times each,
//! on one `Value` (Python: `money = Value('i', 5000)`, `man` and `girl`).
//! Every change is atomic, so the final balance is exactly 5000 plus the
//! deposits minus the withdrawals the two processes report.
//!
//! `cargo run --release --example bank`
use std::process::Command;
use std::time::Duration;

/// A small deterministic pseudo-random sequence per process.
fn rand(seed: &mut u64, lo: i64, hi: i64) -> i64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    lo + (*seed % (hi - lo + 1) as u64) as i64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(role) = std::env::var("BANK_ROLE") {
        let name = std::env::var("BANK_NAME")?;
        let money = ringshm::Value::<i64>::open(&name)?;
        let moved = ringshm::Value::<i64>::open(&format!("{name}-moved"))?;
        let mut seed = u64::from(std::process::id()) | 1;
        for _ in 0..30 {
            let (delta, pause) =
                if role == "man" { (rand(&mut seed, 1, 1000), 20) } else { (-rand(&mut seed, 100, 800), 15) };
            std::thread::sleep(Duration::from_millis(pause));
            let now = money.fetch_add(delta) + delta;
            moved.fetch_add(delta);
            println!("{role:>4}: {delta:+5}  balance {now}");
        }
        return Ok(());
    }
    let name = format!("example-bank-{}", std::process::id());
    let money = ringshm::Value::<i64>::create(&name, 5000)?;
    let moved = ringshm::Value::<i64>::create(&format!("{name}-moved"), 0)?;
    let exe = std::env::current_exe()?;
    let kids: Vec<_> = ["man", "girl"]
        .iter()
        .map(|r| Command::new(&exe).env("BANK_ROLE", r).env("BANK_NAME", &name).spawn())
        .collect::<Result<_, _>>()?;
    for mut k in kids {
        assert!(k.wait()?.success());
    }
    println!("balance after a month: {} (5000 {:+})", money.load(), moved.load());
    assert_eq!(money.load(), 5000 + moved.load());
    Ok(())
}
