//! Ticket booking: ten processes try to buy from a JSON file holding
//! `{"ticket": 2}`, each reading and rewriting the file under one `Lock`.
//! Exactly two succeed.
//!
//! `cargo run --release --example tickets`
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(i) = std::env::var("TICKETS_CHILD") {
        let lock = ringshm::Lock::open(&std::env::var("TICKETS_LOCK")?)?;
        let db = std::env::var("TICKETS_DB")?;
        let left = |db: &str| -> Result<i64, Box<dyn std::error::Error>> {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(db)?)?;
            Ok(v["ticket"].as_i64().unwrap_or(0))
        };
        println!("person{i} sees {} ticket(s) left", left(&db)?);
        // A holder that died would hand us the lock with OwnerDied: the file
        // is rewritten whole, so carry on either way.
        let _g = lock.lock().unwrap_or_else(|died| died.into_inner());
        let n = left(&db)?;
        if n > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20)); // network latency
            std::fs::write(&db, serde_json::json!({ "ticket": n - 1 }).to_string())?;
            println!("person{i} bought a ticket");
            std::process::exit(0);
        }
        println!("sold out: person{i} got nothing");
        std::process::exit(1);
    }
    let tag = format!("example-tickets-{}", std::process::id());
    let db = std::env::temp_dir().join(format!("{tag}.json"));
    std::fs::write(&db, r#"{"ticket": 2}"#)?;
    let _lock = ringshm::Lock::create(&tag)?;
    let exe = std::env::current_exe()?;
    let kids: Vec<_> = (0..10)
        .map(|i| {
            Command::new(&exe)
                .env("TICKETS_CHILD", i.to_string())
                .env("TICKETS_LOCK", &tag)
                .env("TICKETS_DB", &db)
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut bought = 0;
    for mut k in kids {
        bought += usize::from(k.wait()?.success());
    }
    let left = std::fs::read_to_string(&db)?;
    std::fs::remove_file(&db)?;
    println!("{bought} of 10 people bought a ticket; the file now says {left}");
    assert_eq!(bought, 2);
    Ok(())
}
