//! A future awaiting an `Event` costs (almost) no CPU while it waits, and
//! another process's `set()` wakes it. Alone in its binary so that
//! `RUSAGE_SELF` counts only this test.
#![cfg(feature = "async")]

mod common;

use std::time::Duration;

use ringshm::Event;

/// User + system CPU time of this whole process.
fn cpu() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` fills the struct we pass; RUSAGE_SELF is valid.
    let ru = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()), 0);
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn waiting_on_an_event_costs_no_cpu_and_set_wakes_it() {
    if let Some(role) = common::role() {
        assert_eq!(role, "setter");
        let ev = Event::open(&common::args()[0]).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        ev.set();
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("aev-cpu");
    let ev = Event::create(&name).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Warm up: the waiter thread and the runtime exist before we measure.
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_millis(5), ev.wait_async()).await;
    });
    let child = common::spawn("waiting_on_an_event_costs_no_cpu_and_set_wakes_it", "setter", &[&name]);
    let before = cpu();
    rt.block_on(ev.wait_async());
    let used = cpu() - before;
    assert!(ev.is_set(), "woke without the event being set");
    // A resource bound, not a timing one: polling every millisecond for the
    // half second would cost far more than this.
    assert!(used < Duration::from_millis(50), "waiting for ~500 ms cost {used:?} of CPU");
    eprintln!("waiting for the event cost {used:?} of CPU");
    common::expect_success(child, 30);
}
