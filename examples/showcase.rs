//! ringshm in one run: processes that meet by name, a crash that wedges
//! nobody, and how fast a message crosses between processes.
//!
//! `cargo run --release --example showcase`

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringshm::{mpmc, spsc, Options, RecvTimeoutError, WaitStrategy};

const ROLE: &str = "RINGSHM_SHOWCASE_ROLE";

/// A child process that is killed and reaped if still running when dropped.
struct Kid(Child);

impl Kid {
    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn spawn(role: &str, arg: &str) -> Kid {
    Kid(Command::new(std::env::current_exe().expect("current_exe"))
        .env(ROLE, role)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child"))
}

fn child(role: &str) -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    match role {
        // Sends 1..=1_000_000 into a ring it only knows by name.
        "producer" => {
            let mut tx = spsc::Ring::<u64>::open(&arg)?.producer()?;
            for i in 1..=1_000_000u64 {
                tx.push(i)?;
            }
        }
        // One of four workers squaring jobs from a shared MPMC queue.
        "worker" => {
            let (jobs, results) = arg.split_once(',').ok_or("bad args")?;
            let rx = mpmc::Ring::<u64>::open(jobs)?.receiver();
            let tx = mpmc::Ring::<[u64; 2]>::open(results)?.sender();
            while let Ok(x) = rx.recv() {
                tx.send([x, x * x])?;
            }
        }
        // Sends a little, then hangs until it is killed.
        "doomed" => {
            let mut tx = spsc::Ring::<u64>::open(&arg)?.producer()?;
            tx.push(7)?;
            std::thread::sleep(Duration::from_secs(3600));
        }
        "echo" => {
            let opts = Options::new().wait(WaitStrategy::Spin);
            let (a, b) = arg.split_once(',').ok_or("bad args")?;
            let mut rx = spsc::Ring::<u64>::open_with(a, &opts)?.consumer()?;
            let mut tx = spsc::Ring::<u64>::open_with(b, &opts)?.producer()?;
            while let Ok(v) = rx.pop() {
                tx.push(v)?;
            }
        }
        "pipe-echo" => {
            let mut buf = [0u8; 8];
            let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
            while i.read_exact(&mut buf).is_ok() {
                o.write_all(&buf)?;
                o.flush()?;
            }
        }
        _ => return Err(format!("unknown role {role}").into()),
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(role) = std::env::var(ROLE) {
        return child(&role);
    }
    let tag = std::process::id();

    println!("1. Two processes meet by name: a million numbers through an SPSC ring");
    let name = format!("showcase-stream-{tag}");
    let ring = spsc::Ring::<u64>::create(&name, 4096)?;
    let mut rx = ring.consumer()?;
    let start = Instant::now();
    let mut producer = spawn("producer", &name);
    let (mut n, mut sum, mut in_order) = (0u64, 0u64, true);
    while let Ok(v) = rx.pop() {
        n += 1;
        in_order &= v == n;
        sum += v;
    }
    let secs = start.elapsed().as_secs_f64();
    producer.wait()?;
    println!(
        "   received {n} items, in order: {in_order}, sum {sum} (expected {}), {:.0} M items/s including process start",
        1_000_000u64 * 1_000_001 / 2,
        n as f64 / secs / 1e6
    );

    println!("2. Four worker processes share one MPMC job queue");
    let (jobs_name, results_name) = (format!("showcase-jobs-{tag}"), format!("showcase-results-{tag}"));
    let jobs = mpmc::Ring::<u64>::create(&jobs_name, 256)?;
    let results = mpmc::Ring::<[u64; 2]>::create(&results_name, 256)?;
    let (jtx, rrx) = (jobs.sender(), results.receiver());
    let workers: Vec<Kid> = (0..4).map(|_| spawn("worker", &format!("{jobs_name},{results_name}"))).collect();
    let mut total = 0u64;
    let mut got = 0;
    for x in 1..=10_000u64 {
        while jtx.try_send(x).is_err() {
            if let Ok([_, sq]) = rrx.try_recv() {
                total += sq;
                got += 1;
            }
        }
    }
    drop(jtx); // workers see Disconnected once the queue is drained
    while let Ok([_, sq]) = rrx.recv() {
        total += sq;
        got += 1;
    }
    for mut w in workers {
        w.wait()?;
    }
    let want: u64 = (1..=10_000u64).map(|x| x * x).sum();
    println!("   {got} results, sum of squares {total} (expected {want}), lost: {}", jobs.lost());

    println!("3. A producer is killed with SIGKILL: its consumer is told, not wedged");
    let name = format!("showcase-crash-{tag}");
    let ring = spsc::Ring::<u64>::create(&name, 16)?;
    let mut rx = ring.consumer()?;
    let mut doomed = spawn("doomed", &name);
    println!("   got {:?} from the doomed process", rx.pop_timeout(Duration::from_secs(10))?);
    let t = Instant::now();
    doomed.0.kill()?;
    doomed.wait()?;
    let r = rx.pop_timeout(Duration::from_secs(10));
    println!("   after the kill: {r:?} within {:?} (not {:?})", t.elapsed(), RecvTimeoutError::Timeout);
    let mut tx = ring.producer()?;
    tx.push(8)?;
    println!("   the dead process's role was taken over: popped {:?}", rx.pop()?);

    println!("4. Round trip of 8 bytes between two processes");
    let (a, b) = (format!("showcase-ping-{tag}"), format!("showcase-pong-{tag}"));
    let opts = Options::new().wait(WaitStrategy::Spin);
    let (ping, pong) = (spsc::Ring::<u64>::create_with(&a, 64, &opts)?, spsc::Ring::<u64>::create_with(&b, 64, &opts)?);
    let (mut tx, mut rx) = (ping.producer()?, pong.consumer()?);
    let mut echo = spawn("echo", &format!("{a},{b}"));
    let rounds = 200_000u64;
    for i in 0..1000 {
        tx.push(i)?;
        rx.pop()?;
    }
    let t = Instant::now();
    for i in 0..rounds {
        tx.push(i)?;
        assert_eq!(rx.pop()?, i);
    }
    let shm_ns = t.elapsed().as_nanos() as f64 / rounds as f64;
    drop(tx);
    echo.wait()?;
    let mut pipe = spawn("pipe-echo", "");
    let (mut w, mut r) = (pipe.0.stdin.take().ok_or("stdin")?, pipe.0.stdout.take().ok_or("stdout")?);
    let mut buf = [0u8; 8];
    let prounds = 20_000u64;
    let t = Instant::now();
    for i in 0..prounds {
        w.write_all(&i.to_le_bytes())?;
        r.read_exact(&mut buf)?;
    }
    let pipe_ns = t.elapsed().as_nanos() as f64 / prounds as f64;
    drop(w);
    pipe.wait()?;
    println!("   ringshm (Spin): {shm_ns:.0} ns   Unix pipe: {pipe_ns:.0} ns   ({:.0}x faster)", pipe_ns / shm_ns);
    println!("\nMore: `cargo bench` compares with rtrb, crossbeam and std in one run; see README.md.");
    Ok(())
}
