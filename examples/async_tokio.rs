//! A tokio service answering another process: arithmetic jobs over a pair
//! of `Queue`s, text commands over a `Pipe`, both served by one
//! current-thread runtime without a thread per blocking call. The client is
//! a plain blocking program (this example started again as a child).
//!
//! `cargo run --release --features async --example async_tokio`
use std::process::Command;

use ringshm::{Pipe, Queue};

/// A job: add `a` and `b`; `id == STOP` ends the service's job loop.
type Job = [u64; 3];
const STOP: u64 = u64::MAX;
const JOBS: u64 = 1_000;

fn client(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let jobs = Queue::<Job>::open(&format!("{name}-jobs"))?;
    let answers = Queue::<[u64; 2]>::open(&format!("{name}-answers"))?;
    let ctl = Pipe::open(&format!("{name}-ctl"))?;
    ctl.send_bytes(b"ping")?;
    println!("client: ping -> {}", String::from_utf8_lossy(&ctl.recv_bytes()?));
    // Keep at most 32 jobs in flight: both queues hold 64, so neither side
    // can wait on a full queue while the other waits on it.
    let mut next = 0;
    for done in 0..JOBS {
        while next < JOBS && next < done + 32 {
            jobs.put([next, next, 2 * next])?;
            next += 1;
        }
        let [id, sum] = answers.get()?;
        assert_eq!((id, sum), (done, 3 * done), "wrong answer");
    }
    jobs.put([STOP, 0, 0])?;
    ctl.send_bytes(b"stats")?;
    println!("client: stats -> {}", String::from_utf8_lossy(&ctl.recv_bytes()?));
    println!("client: {JOBS} answers checked");
    Ok(()) // dropping `ctl` ends the service's command loop (end-of-file)
}

async fn serve_jobs(jobs: &Queue<Job>, answers: &Queue<[u64; 2]>) -> Result<u64, Box<dyn std::error::Error>> {
    let mut served = 0;
    loop {
        let [id, a, b] = jobs.get_async().await?;
        if id == STOP {
            return Ok(served);
        }
        answers.put_async([id, a + b]).await?;
        served += 1;
    }
}

async fn serve_commands(ctl: &Pipe, jobs: &Queue<Job>) -> Result<(), Box<dyn std::error::Error>> {
    // `recv_bytes_async` ends with end-of-file once the client is gone.
    while let Ok(cmd) = ctl.recv_bytes_async().await {
        let reply = match cmd.as_slice() {
            b"ping" => "pong".to_string(),
            b"stats" => format!("{} jobs queued", jobs.len()),
            other => format!("unknown command {:?}", String::from_utf8_lossy(other)),
        };
        ctl.send_bytes_async(reply.as_bytes()).await?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        return client(&args[2]);
    }
    let name = format!("async-tokio-{}", std::process::id());
    let jobs = Queue::<Job>::create(&format!("{name}-jobs"), 64)?;
    let answers = Queue::<[u64; 2]>::create(&format!("{name}-answers"), 64)?;
    let ctl = Pipe::create(&format!("{name}-ctl"), 4096)?;
    let mut child = Command::new(std::env::current_exe()?).args(["client", &name]).spawn()?;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (served, commands) = rt.block_on(async {
        // One thread serves both; a `Pipe`'s futures are not `Send`, so they
        // are joined here rather than spawned on a multi-thread runtime.
        tokio::join!(serve_jobs(&jobs, &answers), serve_commands(&ctl, &jobs))
    });
    commands?;
    println!("service: served {} jobs", served?);
    assert!(child.wait()?.success(), "the client failed");
    Ok(())
}
