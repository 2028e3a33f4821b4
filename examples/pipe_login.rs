//! The app1/app2 login of the seed tutorial over a named duplex `Pipe`:
//! app1 asks app2 for its account, app2 answers with a name and a password.
//!
//! `cargo run --release --example pipe_login`
use std::process::Command;

use ringshm::Pipe;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("app2") {
        // End B, in another process, found by name.
        let fd2 = Pipe::open(&args[2])?;
        let request = fd2.recv_bytes()?; // waits for app1
        println!("[app2] {}", String::from_utf8_lossy(&request));
        fd2.send_bytes(b"Joy:123")?;
        return Ok(());
    }
    let name = format!("pipe-login-{}", std::process::id());
    let fd1 = Pipe::create(&name, 1024)?; // end A (duplex)
    let mut app2 = Command::new(std::env::current_exe()?).args(["app2", &name]).spawn()?;
    println!("[app1] starting app1, please log in");
    println!("[app1] asking app2 for authorisation");
    fd1.send_bytes("can app1 log in with your account?".as_bytes())?;
    let data = fd1.recv_bytes()?;
    let (user, password) = std::str::from_utf8(&data)?.split_once(':').ok_or("bad answer")?;
    println!("[app1] logged in: ({user:?}, {password:?})");
    assert!(app2.wait()?.success());
    Ok(())
}
