//! The `ringshm` command-line tool: `ls`, `info`, `rm`, `gc`, and its exit
//! status on errors.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use ringshm::{spsc, Options};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringshm")).args(args).output().expect("run ringshm")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn exists(name: &str) -> bool {
    Path::new(&format!("/dev/shm/{name}")).exists()
}

#[test]
fn usage_errors_exit_2() {
    for args in [&[][..], &["frobnicate"], &["info"], &["info", "a", "b"], &["rm"], &["gc", "--now"], &["ls", "x"]] {
        let o = cli(args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("usage: ringshm"), "{args:?}: {err}");
    }
    let o = cli(&["help"]);
    assert!(o.status.success());
    assert!(text(&o).0.contains("gc [--dry-run]"));
}

#[test]
fn ls_and_info_describe_a_live_ring() {
    let name = common::unique("cli-ls");
    let ring = spsc::Ring::<u64>::create_with(&name, 100, &Options::new().mode(0o640)).unwrap();
    let o = cli(&["ls"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    let line = out.lines().find(|l| l.starts_with(&name)).unwrap_or_else(|| panic!("{name} not in:\n{out}"));
    for want in ["spsc::Ring", "u64", "128", "0640", &std::process::id().to_string(), "in use"] {
        assert!(line.contains(want), "{want:?} missing in {line:?}");
    }

    let o = cli(&["info", &name]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    for want in
        ["kind:", "spsc::Ring", "element type: u64", "capacity:     128", "mode:         0640", "persist:      no"]
    {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }
    assert!(out.contains("in use:       yes"), "{out}");
    drop(ring);
}

#[test]
fn info_and_rm_report_missing_names() {
    let name = common::unique("cli-missing");
    let o = cli(&["info", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no segment named"), "{:?}", text(&o));
    let o = cli(&["rm", &name]);
    assert_eq!(o.status.code(), Some(1));
    let o = cli(&["info", "bad/name"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("invalid segment name"), "{:?}", text(&o));
}

#[test]
fn rm_removes_ringshm_segments_and_needs_force_for_others() {
    let name = common::unique("cli-rm");
    let r = spsc::Ring::<u32>::create_with(&name, 4, &Options::new().persist(true)).unwrap();
    drop(r);
    assert!(exists(&name));
    let o = cli(&["rm", &name]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains(&format!("removed {name}")));
    assert!(!exists(&name));

    let other = common::unique("cli-other");
    std::fs::write(format!("/dev/shm/{other}"), b"not ours").unwrap();
    let o = cli(&["rm", &other]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("--force"), "{:?}", text(&o));
    assert!(exists(&other));
    let o = cli(&["rm", "--force", &other]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!exists(&other));
}

#[test]
fn gc_removes_a_segment_left_by_a_dead_process() {
    if let Some(role) = common::role() {
        assert_eq!(role, "leak");
        // Exit without dropping: the name stays, nobody holds it any more.
        std::mem::forget(spsc::Ring::<u64>::create(&common::args()[0], 8).unwrap());
        return;
    }
    let _wd = common::watchdog(60);
    let name = common::unique("cli-gc");
    common::expect_success(common::spawn("gc_removes_a_segment_left_by_a_dead_process", "leak", &[&name]), 30);
    assert!(exists(&name));
    let (out, _) = text(&cli(&["ls"]));
    let line = out.lines().find(|l| l.starts_with(&name)).unwrap_or_else(|| panic!("{name} not in:\n{out}"));
    assert!(line.contains("stale") && line.contains("(dead)"), "{line}");

    let o = cli(&["gc", "--dry-run"]);
    assert!(o.status.success());
    assert!(text(&o).0.contains(&format!("would remove {name}")), "{:?}", text(&o));
    assert!(exists(&name), "--dry-run removed it");

    let o = cli(&["gc"]);
    assert!(o.status.success());
    assert!(text(&o).0.contains(&format!("removed {name}")), "{:?}", text(&o));
    assert!(!exists(&name));
}

/// Overwrites `len` bytes at `off` of `/dev/shm/NAME`, as a stray process could.
fn scribble(name: &str, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm/{name}")).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

#[test]
fn rm_of_a_scribbled_segment_says_why_and_how_to_force_it() {
    // The magic word scribbled: no longer recognisable as ringshm's.
    let name = common::unique("cli-scribbled");
    drop(spsc::Ring::<u64>::create_with(&name, 8, &Options::new().persist(true)).unwrap());
    scribble(&name, 0, b"garbage!");
    let o = cli(&["rm", &name]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("segment '{name}' is not a valid ringshm segment (")), "{err}");
    assert!(err.contains("magic"), "the reason is missing: {err}");
    assert!(err.contains(&format!("remove it anyway with `ringshm rm --force {name}`")), "{err}");
    assert!(exists(&name), "removed without --force");
    let o = cli(&["rm", "--force", &name]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains(&format!("removed {name} (forced")), "{:?}", text(&o));
    assert!(!exists(&name));

    // Magic intact, the rest of the header scribbled: still ours, removed
    // without --force, and the reason is shown.
    let name = common::unique("cli-scribbled-hdr");
    drop(spsc::Ring::<u64>::create_with(&name, 8, &Options::new().persist(true)).unwrap());
    scribble(&name, 12, &[0xff; 12]); // kind and size
    let o = cli(&["rm", &name]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert!(out.contains(&format!("removed {name} (its header was invalid: ")), "{out}");
    assert!(!exists(&name));
}
