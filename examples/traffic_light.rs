//! The traffic light: a light process turns an `Event` green and red; car
//! processes wait at red and pass only while it is green.
//!
//! `cargo run --release --example traffic_light`
use std::process::Command;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(role) = std::env::var("TRAFFIC_ROLE") {
        let tag = std::env::var("TRAFFIC_TAG")?;
        let green = ringshm::Event::open(&tag)?;
        let passed = ringshm::Value::<u32>::open(&format!("{tag}-passed"))?;
        if role == "light" {
            for _ in 0..3 {
                println!("\x1b[31mred\x1b[0m");
                std::thread::sleep(Duration::from_millis(200));
                println!("\x1b[32mgreen\x1b[0m");
                green.set();
                std::thread::sleep(Duration::from_millis(100));
                green.clear();
            }
            println!("\x1b[32mgreen (for good)\x1b[0m");
            green.set();
        } else {
            if !green.is_set() {
                println!("car {role} waits at the red light");
            }
            // Returns once the light turns green (even if it turned red
            // again before this car was scheduled: it was released on green).
            green.wait();
            passed.fetch_add(1);
            println!("car {role} passes");
        }
        return Ok(());
    }
    let tag = format!("example-traffic-{}", std::process::id());
    let _green = ringshm::Event::create(&tag)?;
    let passed = ringshm::Value::<u32>::create(&format!("{tag}-passed"), 0)?;
    let exe = std::env::current_exe()?;
    let mut kids = vec![Command::new(&exe).env("TRAFFIC_ROLE", "light").env("TRAFFIC_TAG", &tag).spawn()?];
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(60));
        kids.push(Command::new(&exe).env("TRAFFIC_ROLE", i.to_string()).env("TRAFFIC_TAG", &tag).spawn()?);
    }
    for mut k in kids {
        assert!(k.wait()?.success());
    }
    println!("{} of 10 cars passed, each on green", passed.load());
    assert_eq!(passed.load(), 10);
    Ok(())
}
