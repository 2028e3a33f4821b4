//! Ten processes each add 1 to one shared `Value` (Python: `Value('i', 0)`,
//! ten `Process(target=func)`, `value.value += 1`). Prints 10.
//!
//! `cargo run --release --example value_counter`
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(name) = std::env::var("VALUE_COUNTER_CHILD") {
        let v = ringshm::Value::<i32>::open(&name)?;
        v.fetch_add(1);
        return Ok(());
    }
    let name = format!("example-value-{}", std::process::id());
    let value = ringshm::Value::<i32>::create(&name, 0)?;
    let exe = std::env::current_exe()?;
    let kids: Vec<_> =
        (0..10).map(|_| Command::new(&exe).env("VALUE_COUNTER_CHILD", &name).spawn()).collect::<Result<_, _>>()?;
    for mut k in kids {
        assert!(k.wait()?.success());
    }
    println!("{}", value.load());
    assert_eq!(value.load(), 10);
    Ok(())
}
