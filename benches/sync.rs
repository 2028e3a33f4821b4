//! Uncontended lock/unlock (ringshm `Lock` vs `std::sync::Mutex` vs a
//! process-shared pthread mutex), semaphore acquire/release,
//! `Value::fetch_add`, and an `Event` set/wait round trip between two
//! processes.
//!
//! `cargo bench --bench sync -- --warm-up-time 1 --measurement-time 2`
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ringshm::{Event, Lock, Semaphore, Value};

const CHILD: &str = "RINGSHM_BENCH_SYNC_CHILD";

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
    let stop = Value::<u32>::create(&format!("{t}-stop"), 0).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap()).env(CHILD, &t).spawn().unwrap();
    c.bench_function("Event set/wait round trip (2 processes)", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                ping.set();
                pong.wait();
                pong.clear();
            }
            start.elapsed()
        })
    });
    stop.store(1);
    ping.set();
    let _ = child.wait();
}

fn child(t: &str) {
    let ping = Event::open(&format!("{t}-ping")).unwrap();
    let pong = Event::open(&format!("{t}-pong")).unwrap();
    let stop = Value::<u32>::open(&format!("{t}-stop")).unwrap();
    loop {
        ping.wait();
        ping.clear();
        if stop.load() != 0 {
            return;
        }
        pong.set();
    }
}

fn main() {
    if let Ok(t) = std::env::var(CHILD) {
        child(&t);
        return;
    }
    let mut c = Criterion::default().warm_up_time(Duration::from_secs(1)).configure_from_args();
    bench_locks(&mut c);
    bench_sem_value(&mut c);
    bench_event_round_trip(&mut c);
    c.final_summary();
}
