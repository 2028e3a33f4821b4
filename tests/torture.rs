//! The crash torture (`ringshm torture`), briefly: many processes use every
//! primitive while random ones are SIGKILLed and restarted; afterwards every
//! message, lock and permit must be accounted for. CI runs it for 30 s
//! (`.ci/run`); here a few seconds, so that `cargo test` exercises it too.

mod common;

use std::process::{Command, Stdio};

fn torture(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ringshm"))
        .arg("torture")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ringshm torture");
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The number printed after `label` on the line starting with `line`.
fn figure(out: &str, line: &str, label: &str) -> u64 {
    let l = out
        .lines()
        .find(|l| l.starts_with(line) && l.contains(label))
        .unwrap_or_else(|| panic!("no {line:?} line with {label:?} in:\n{out}"));
    let rest = &l[l.find(label).expect("contains") + label.len()..];
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn a_few_seconds_of_random_kills_leave_everything_accounted_for() {
    let _wd = common::watchdog(600);
    // A different schedule every run; the seed is printed to replay one.
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000;
    let (code, out, err) = torture(&["--seconds", "4", "--procs", "1", "--seed", &seed.to_string()]);
    println!("{out}");
    eprintln!("{err}");
    assert_eq!(code, Some(0), "torture found violations (seed {seed}):\n{out}\n{err}");
    assert!(out.contains(&format!("torture: seed {seed}")), "{out}");
    assert!(out.contains("torture: OK, no violations"), "{out}");
    assert!(!err.contains("VIOLATION"), "{err}");
    assert!(figure(&out, "torture: kills", "kills") > 0, "nobody was killed:\n{out}");
    for ch in ["spsc", "mpmc", "queue", "bytes", "joinable"] {
        assert!(figure(&out, &format!("torture: {ch} "), "delivered") > 0, "no {ch} message delivered:\n{out}");
    }
    // Nothing of the run is left in /dev/shm.
    let pid_prefix = out.split("segments ").nth(1).and_then(|s| s.split('*').next()).unwrap().to_owned();
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&pid_prefix))
        .collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [&[][..], &["--seconds"], &["--seconds", "x"], &["--seconds", "1", "--procs", "0"], &["--bogus"]] {
        let (code, _, err) = torture(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("usage: ringshm"), "{args:?}: {err}");
    }
}
