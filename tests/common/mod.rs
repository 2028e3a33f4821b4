//! Cross-process test harness: a test re-runs its own test binary as a child
//! process with a *role*, so every cross-process claim is checked between real
//! OS processes.
//!
//! ```ignore
//! #[test]
//! fn ping() {
//!     if let Some(role) = common::role() {          // in the child
//!         match role.as_str() { "echo" => { /* ... */ } _ => unreachable!() }
//!         return;
//!     }
//!     let _wd = common::watchdog(60);
//!     let name = common::unique("ping");
//!     let child = common::spawn("ping", "echo", &[&name]);
//!     // ... parent side ...
//!     common::expect_success(child, 30);
//! }
//! ```
#![allow(dead_code)]

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const ROLE_VAR: &str = "RINGSHM_TEST_ROLE";
const ARGS_VAR: &str = "RINGSHM_TEST_ARGS";

/// The role this process was started with, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// The arguments the parent passed (split on `\x1f`).
pub fn args() -> Vec<String> {
    std::env::var(ARGS_VAR).map(|s| s.split('\x1f').map(str::to_owned).collect()).unwrap_or_default()
}

/// A segment name unique to this process and call.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("rshm-t-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Starts this test binary again, running only `test` (its full path in the
/// binary, e.g. `ping` or `module::ping`), in role `role` with `args`.
pub fn spawn(test: &str, role: &str, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env(ARGS_VAR, args.join("\x1f"))
        .stdin(Stdio::null())
        // The child's own libtest summary would read like ours to CI.
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child test process")
}

/// Waits for `child` at most `secs` seconds; kills it and panics on timeout.
pub fn wait(mut child: Child, secs: u64) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} did not finish within {secs} s", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for `child` (bounded) and asserts it exited successfully.
pub fn expect_success(child: Child, secs: u64) {
    let id = child.id();
    let st = wait(child, secs);
    assert!(st.success(), "child {id} failed: {st:?}");
}

/// Sends SIGKILL to `child` and reaps it.
pub fn kill9(mut child: Child) {
    let _ = child.kill(); // std's kill is SIGKILL
    let _ = child.wait();
}

/// Aborts the whole test process if it is still running after `secs`: a hang
/// becomes a failure instead of a stuck CI job. Keep the guard alive for the
/// test's duration.
pub fn watchdog(secs: u64) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
            eprintln!("watchdog: test still running after {secs} s, aborting");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

/// Disarms its watchdog when dropped.
pub struct Watchdog(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

/// Polls `cond` until it is true or `secs` pass; returns whether it became true.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}
