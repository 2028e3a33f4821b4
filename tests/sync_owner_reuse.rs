//! Defect 3 of issue 7: a holder SIGKILLed while it holds a Lock, an RLock,
//! a Condition's lock, an Array's lock, a Value's seqlock writer lock, a
//! semaphore permit and a Barrier arrival, whose pid and thread ids are then
//! taken by *live, unrelated* processes. Every primitive must still recover
//! (`OwnerDied`, the permit back, `Broken`) instead of timing out.
//!
//! The reuse is real: as root, `/proc/sys/kernel/ns_last_pid` makes the next
//! new process get the dead id. Without root the ids are not reused (the test
//! says so) and only plain recovery is checked.
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ringshm::{Array, Barrier, BarrierError, Condition, Event, Lock, LockTimeoutError, RLock, Semaphore, Value};

/// This thread's kernel id.
fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    (unsafe { libc::gettid() }) as u32
}

/// Starts a process that sleeps and has pid `id`, by setting `ns_last_pid`
/// (root only). `None` if that is not possible.
fn occupy(id: u32) -> Option<Child> {
    for _ in 0..20_000 {
        if std::path::Path::new(&format!("/proc/{id}")).exists() {
            // Taken by another new process meanwhile: wait for it to go.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", id - 1)).ok()?;
        let mut c = Command::new("sleep").arg("300").stdin(Stdio::null()).spawn().ok()?;
        if c.id() == id {
            return Some(c);
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    None
}

/// Whether a timed lock reported the holder's death.
/// A pid read from shared memory, checked before it is signalled: 0 would
/// name our own process group and -1 every process we may signal.
fn signalable(pid: u32) -> i32 {
    match i32::try_from(pid) {
        Ok(p) if p > 1 => p,
        _ => panic!("no pid to signal: read {pid}"),
    }
}

fn owner_died<G>(r: Result<G, LockTimeoutError<G>>) -> bool {
    matches!(r, Err(LockTimeoutError::OwnerDied(_)))
}

/// Runs `f` on a thread and waits for it at most `secs`; `None` if it is
/// still blocked then (a wedged primitive fails the test instead of hanging it).
fn within<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

#[test]
fn dead_holder_with_reused_ids_is_recovered() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let lock = Lock::open(&a[0]).unwrap();
        let rlock = RLock::open(&a[1]).unwrap();
        let cv = Condition::open(&a[2]).unwrap();
        let arr = Array::<u64>::open(&a[3]).unwrap();
        let sem = Semaphore::open(&a[4]).unwrap();
        let bar = Barrier::open(&a[5]).unwrap();
        let val = Value::<[u64; 4]>::open(&a[6]).unwrap();
        let ids = Array::<u32>::open(&a[7]).unwrap();
        let held = Event::open(&a[8]).unwrap();
        let writing = Event::open(&a[9]).unwrap();
        ids.set(0, std::process::id());
        ids.set(1, gettid());
        let _g1 = lock.lock().unwrap();
        let _g2 = rlock.lock().unwrap();
        let _g3 = rlock.lock().unwrap();
        let _g4 = cv.lock().unwrap();
        let _g5 = arr.lock();
        sem.acquire();
        std::thread::scope(|s| {
            s.spawn(|| {
                ids.set(2, gettid());
                let _ = bar.wait();
            });
            s.spawn(|| {
                ids.set(3, gettid());
                val.update(|v| {
                    writing.set();
                    std::thread::sleep(Duration::from_secs(600));
                    v
                });
            });
            held.set();
            std::thread::sleep(Duration::from_secs(600));
        });
        return;
    }
    let _wd = common::watchdog(240);
    let names: Vec<String> = (0..10).map(|i| common::unique(&format!("reuse{i}"))).collect();
    let lock = Lock::create(&names[0]).unwrap();
    let rlock = RLock::create(&names[1]).unwrap();
    let cv = Condition::create(&names[2]).unwrap();
    let arr = Array::<u64>::create(&names[3], 4).unwrap();
    let sem = Semaphore::create(&names[4], 1).unwrap();
    let bar = Barrier::create(&names[5], 3).unwrap();
    let val = Value::<[u64; 4]>::create(&names[6], [1; 4]).unwrap();
    let ids = Array::<u32>::create(&names[7], 4).unwrap();
    let held = Event::create(&names[8]).unwrap();
    let writing = Event::create(&names[9]).unwrap();
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let child = common::spawn("dead_holder_with_reused_ids_is_recovered", "hold", &args);
    assert!(held.wait_timeout(Duration::from_secs(60)), "the holder never took its locks");
    assert!(writing.wait_timeout(Duration::from_secs(60)), "the holder never started its seqlock write");
    assert!(common::eventually(60, || bar.n_waiting() == 1), "the holder never arrived at the barrier");
    assert!(lock.try_lock().unwrap_err().is_would_block());
    assert!(!sem.try_acquire());
    let dead = ids.to_vec();
    assert!(dead.iter().all(|&id| id != 0), "ids not reported: {dead:?}");
    common::kill9(child);

    // The dead process's pid and thread ids now name live, unrelated processes.
    let mut wanted = dead.clone();
    wanted.sort_unstable();
    wanted.dedup();
    let squatters: Vec<Child> = wanted.iter().filter_map(|&id| occupy(id)).collect();
    if squatters.len() == wanted.len() {
        eprintln!("ids {wanted:?} of the killed holder now belong to live processes");
    } else {
        eprintln!(
            "could not reuse the dead holder's ids {wanted:?} (needs root and a quiet pid space); \
             checking recovery without id reuse"
        );
    }

    // Every primitive is checked, and every failure reported together.
    let t = Duration::from_secs(10);
    let mut failed: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            failed.push(what.to_owned());
        }
    };
    check(owner_died(lock.lock_timeout(t)), "Lock: no OwnerDied");
    check(owner_died(rlock.lock_timeout(t)), "RLock: no OwnerDied");
    check(owner_died(cv.lock_timeout(t)), "Condition: no OwnerDied");
    check(sem.acquire_timeout(t), "Semaphore: the dead holder's permit never came back");
    check(bar.wait_timeout(t) == Err(BarrierError::Broken), "Barrier: the dead party was not noticed");
    let an = names[3].clone();
    check(
        within(20, move || Array::<u64>::open(&an).unwrap().lock().owner_died()) == Some(true),
        "Array: the lock was not taken over (owner_died)",
    );
    let vn = names[6].clone();
    check(
        within(20, move || Value::<[u64; 4]>::open(&vn).unwrap().store([2; 4])).is_some() && val.load() == [2; 4],
        "Value: the seqlock writer lock was not taken over",
    );
    drop(arr);
    for mut s in squatters {
        let _ = s.kill();
        let _ = s.wait();
    }
    assert!(failed.is_empty(), "not recovered after the holder died: {failed:#?}");
}

/// A holder whose process forked a child (that never execs) and was then
/// killed: the child must not keep the holder's ownership alive.
#[test]
fn forked_child_does_not_keep_a_dead_holder_alive() {
    if let Some(_role) = common::role() {
        let a = common::args();
        let lock = Lock::open(&a[0]).unwrap();
        let held = Event::open(&a[1]).unwrap();
        let kid = Value::<u32>::open(&a[2]).unwrap();
        let g = lock.lock().unwrap();
        // SAFETY: the child only calls async-signal-safe functions.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: sleep and _exit are async-signal-safe.
            unsafe {
                libc::sleep(600);
                libc::_exit(0);
            }
        }
        kid.store(pid as u32);
        held.set();
        std::thread::sleep(Duration::from_secs(600));
        drop(g);
        return;
    }
    let _wd = common::watchdog(120);
    let (l, e, k) = (common::unique("forkl"), common::unique("forke"), common::unique("forkk"));
    let lock = Lock::create(&l).unwrap();
    let held = Event::create(&e).unwrap();
    let kid = Value::<u32>::create(&k, 0).unwrap();
    let child = common::spawn("forked_child_does_not_keep_a_dead_holder_alive", "hold", &[&l, &e, &k]);
    assert!(held.wait_timeout(Duration::from_secs(60)));
    assert!(lock.try_lock().unwrap_err().is_would_block());
    common::kill9(child);
    let grandchild = signalable(kid.load());
    let r = lock.lock_timeout(Duration::from_secs(10));
    let died = owner_died(r);
    // SAFETY: kills the forked grandchild, which is still sleeping (a real
    // pid: `signalable` refused 0 and -1, which would name our process group
    // or every process).
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(died, "the forked child kept the dead holder's ownership alive");
}

/// A holder in another pid namespace (where it is pid 1, as is init here):
/// its death is noticed all the same. Needs root for `unshare(CLONE_NEWPID)`.
#[test]
fn holder_in_another_pid_namespace_is_recovered() {
    if let Some(role) = common::role() {
        let a = common::args();
        if role == "outer" {
            // SAFETY: unshare has no memory-safety preconditions; children
            // we start from now on live in a new pid namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
                std::process::exit(3); // not permitted: the parent skips
            }
            let mut inner =
                common::spawn("holder_in_another_pid_namespace_is_recovered", "inner", &[&a[0], &a[1], &a[2]]);
            Value::<u32>::open(&a[2]).unwrap().store(inner.id());
            let _ = inner.wait(); // until the parent kills it
            return;
        }
        let lock = Lock::open(&a[0]).unwrap();
        assert_eq!(std::process::id(), 1, "the inner holder is pid 1 of its namespace");
        let _g = lock.lock().unwrap();
        Event::open(&a[1]).unwrap().set();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let _wd = common::watchdog(120);
    let (l, e, p) = (common::unique("nsl"), common::unique("nse"), common::unique("nsp"));
    let lock = Lock::create(&l).unwrap();
    let held = Event::create(&e).unwrap();
    let inner = Value::<u32>::create(&p, 0).unwrap();
    let mut outer = common::spawn("holder_in_another_pid_namespace_is_recovered", "outer", &[&l, &e, &p]);
    if !held.wait_timeout(Duration::from_secs(60)) {
        let st = outer.try_wait().unwrap();
        common::kill9(outer);
        assert_eq!(st.and_then(|s| s.code()), Some(3), "the holder never took the lock");
        eprintln!("skipped: unshare(CLONE_NEWPID) is not permitted here (needs root)");
        return;
    }
    assert!(lock.try_lock().unwrap_err().is_would_block(), "a live holder in another namespace holds it");
    // The outer process stores the inner pid after its `spawn` returns,
    // which can be after the inner one already set `held`: wait for it. (Read
    // too early, it was 0, and `kill(0, SIGKILL)` killed this test's whole
    // process group: cargo and the CI script with it.)
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while inner.load() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = signalable(inner.load());
    // Killing pid 1 of a namespace ends everything in it.
    // SAFETY: kills the inner holder, whose pid in our namespace we were told
    // (a real pid: `signalable` refused 0 and -1).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let died = owner_died(lock.lock_timeout(Duration::from_secs(10)));
    common::kill9(outer);
    assert!(died, "the death of a holder in another pid namespace was not noticed");
}
