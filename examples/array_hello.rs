//! A child process reads `Array('c', b'hello')` and changes it to `Hello`.
//!
//! `cargo run --release --example array_hello`
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(name) = std::env::var("ARRAY_HELLO_CHILD") {
        let shm = ringshm::Array::<u8>::open(&name)?;
        for c in shm.to_vec() {
            println!("child sees {:?}", c as char);
        }
        shm.set(0, b'H');
        return Ok(());
    }
    let name = format!("example-array-{}", std::process::id());
    let shm = ringshm::Array::<u8>::create_from(&name, b"hello")?;
    let st = Command::new(std::env::current_exe()?).env("ARRAY_HELLO_CHILD", &name).status()?;
    assert!(st.success());
    let v = shm.to_vec();
    println!("{}", String::from_utf8_lossy(&v));
    assert_eq!(v, b"Hello");
    Ok(())
}
