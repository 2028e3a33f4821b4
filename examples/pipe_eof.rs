//! A one-way `Pipe` whose writer closes: the reader receives every message,
//! then end-of-file (`RecvError`, Python's `EOFError`).
//!
//! `cargo run --release --example pipe_eof`
use std::process::Command;

use ringshm::{Options, Pipe, RecvError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("writer") {
        let w = Pipe::open_end(&args[2], ringshm::End::A)?;
        for msg in ["msg 1", "msg 2", "msg 3"] {
            w.send_bytes(msg.as_bytes())?;
        }
        w.close(); // the reader drains, then sees EOF
        println!("[writer] sent 3 messages and closed");
        std::thread::sleep(std::time::Duration::from_millis(200)); // EOF comes from close, not exit
        return Ok(());
    }
    let name = format!("pipe-eof-{}", std::process::id());
    // One-way: end A only sends, end B only receives. The parent keeps end B
    // and lets the writer process take end A.
    let a = Pipe::create_with(&name, 256, &Options::new().duplex(false).persist(true))?;
    let r = Pipe::open(&name)?;
    drop(a);
    let mut writer = Command::new(std::env::current_exe()?).args(["writer", &name]).spawn()?;
    loop {
        match r.recv_bytes() {
            Ok(m) => println!("[reader] {}", String::from_utf8_lossy(&m)),
            Err(RecvError) => {
                println!("[reader] EOF: the writer closed its end");
                break;
            }
        }
    }
    assert!(writer.wait()?.success());
    ringshm::unlink(&name)?;
    Ok(())
}
