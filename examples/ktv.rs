//! The KTV: four rooms, ten singers, one `Semaphore(4)`. Each singer is a
//! process; at most four sing at once (measured with a shared maximum).
//!
//! `cargo run --release --example ktv`
use std::process::Command;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(i) = std::env::var("KTV_SINGER") {
        let tag = std::env::var("KTV_TAG")?;
        let rooms = ringshm::Semaphore::open(&tag)?;
        let inside = ringshm::Value::<u32>::open(&format!("{tag}-inside"))?;
        let max = ringshm::Value::<u32>::open(&format!("{tag}-max"))?;
        rooms.acquire();
        let now = inside.fetch_add(1) + 1;
        max.update(|m| m.max(now));
        println!("person {i} comes in to sing ({now} room(s) busy)");
        std::thread::sleep(Duration::from_millis(50 + 37 * i.parse::<u64>()? % 150));
        println!("person {i} leaves the KTV");
        inside.fetch_sub(1);
        rooms.release();
        return Ok(());
    }
    let tag = format!("example-ktv-{}", std::process::id());
    let rooms = ringshm::Semaphore::create(&tag, 4)?;
    let _inside = ringshm::Value::<u32>::create(&format!("{tag}-inside"), 0)?;
    let max = ringshm::Value::<u32>::create(&format!("{tag}-max"), 0)?;
    let exe = std::env::current_exe()?;
    let kids: Vec<_> = (0..10)
        .map(|i| Command::new(&exe).env("KTV_SINGER", i.to_string()).env("KTV_TAG", &tag).spawn())
        .collect::<Result<_, _>>()?;
    for mut k in kids {
        assert!(k.wait()?.success());
    }
    println!("at most {} of 4 rooms were busy at once; {} free now", max.load(), rooms.value());
    assert!(max.load() <= 4);
    assert_eq!(rooms.value(), 4);
    Ok(())
}
