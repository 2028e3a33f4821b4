//! Uncontended lock/unlock (ringshm `Lock` vs `std::sync::Mutex` vs a
//! process-shared pthread mutex), semaphore acquire/release,
//! `Value::fetch_add`, and an `Event` set/wait round trip between two
//! processes.
//!
//!
//! # Method (the harness in `benches/harness/mod.rs`)
//!
//! The timed side runs on CPU 0. The `Event` round trip's other side is this
//! binary re-executed with a role, started before timing, parked between
//! samples and pinned to CPU 1; its loop has the same shape as every round
//! trip in `benches/` (`n` times: set, wait for the answer). The canary (a
//! bare atomic ping-pong between two processes: about 45 ns in the
//! reference host's fast state, about 400 ns in its slow one) is timed and
//! printed before each group, so every figure says which host state it came
//! from.
//!
//! `cargo bench --bench sync -- --warm-up-time 1 --measurement-time 2`

mod harness;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use harness::{Contender, Proc};
use ringshm::{Event, Lock, Semaphore, Value};

fn tag(t: &str) -> String {
    format!("bench-sync-{t}-{}", std::process::id())
}

/// A process-shared pthread mutex (in private memory here: uncontended
/// lock/unlock costs the same as in a shared mapping).
struct PMutex(Box<libc::pthread_mutex_t>);

impl PMutex {
    fn new() -> Self {
        // SAFETY: plain C initialisation of a zeroed attribute and mutex;
        // the mutex is boxed so it never moves after init.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            let mut m = Box::new(std::mem::zeroed::<libc::pthread_mutex_t>());
            libc::pthread_mutex_init(&mut *m, &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
            PMutex(m)
        }
    }
    fn lock_unlock(&mut self) {
        // SAFETY: an initialised mutex, locked and unlocked by this thread.
        unsafe {
            libc::pthread_mutex_lock(&mut *self.0);
            libc::pthread_mutex_unlock(&mut *self.0);
        }
    }
}

fn bench_locks(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended lock+unlock");
    let m = std::sync::Mutex::new(0u64);
    g.bench_function("std::sync::Mutex", |b| b.iter(|| drop(black_box(m.lock().unwrap()))));
    let mut pm = PMutex::new();
    g.bench_function("pthread pshared", |b| b.iter(|| pm.lock_unlock()));
    let l = Lock::create(&tag("lock")).unwrap();
    g.bench_function("ringshm::Lock", |b| b.iter(|| drop(black_box(l.lock().unwrap()))));
    let r = ringshm::RLock::create(&tag("rlock")).unwrap();
    g.bench_function("ringshm::RLock", |b| b.iter(|| drop(black_box(r.lock().unwrap()))));
    g.finish();
}

fn bench_sem_value(c: &mut Criterion) {
    let s = Semaphore::create(&tag("sem"), 1).unwrap();
    c.bench_function("Semaphore acquire+release", |b| {
        b.iter(|| {
            s.acquire();
            s.release();
        })
    });
    let v = Value::<u64>::create(&tag("val"), 0).unwrap();
    let a = std::sync::atomic::AtomicU64::new(0);
    let mut g = c.benchmark_group("fetch_add");
    g.bench_function("std AtomicU64", |b| b.iter(|| a.fetch_add(black_box(1), std::sync::atomic::Ordering::AcqRel)));
    g.bench_function("ringshm::Value<u64>", |b| b.iter(|| v.fetch_add(black_box(1))));
    g.finish();
}

fn bench_event_round_trip(c: &mut Criterion) {
    let t = tag("ev");
    let ping = Event::create(&format!("{t}-ping")).unwrap();
    let pong = Event::create(&format!("{t}-pong")).unwrap();
    let side = Proc::spawn("event-echo", &[t]);
    let mut k = Contender::new("Event set/wait round trip (2 processes)", side, move |n| {
        for _ in 0..n {
            ping.set();
            pong.wait();
            pong.clear();
        }
    });
    k.calibrate(Duration::from_millis(20));
    c.bench_function(&k.name.clone(), |b| b.iter_custom(|iters| k.run(iters)));
}

fn peer(role: &str, args: &[String]) -> bool {
    if role != "event-echo" {
        return false;
    }
    let ping = Event::open(&format!("{}-ping", args[0])).unwrap();
    let pong = Event::open(&format!("{}-pong", args[0])).unwrap();
    harness::serve(|n| {
        for _ in 0..n {
            ping.wait();
            ping.clear();
            pong.set();
        }
    });
    true
}

fn canary_line(canary: &mut Contender, what: &str) {
    let ns = harness::canary_ns(canary, 20_000);
    println!("canary before {what}: {ns:.0} ns ({})", harness::host_state(ns));
}

fn main() {
    let Some(mut canary) = harness::bench_main(peer) else { return };
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    canary_line(&mut canary, "locks");
    bench_locks(&mut c);
    canary_line(&mut canary, "semaphore, fetch_add");
    bench_sem_value(&mut c);
    canary_line(&mut canary, "Event round trip");
    bench_event_round_trip(&mut c);
    c.final_summary();
}
