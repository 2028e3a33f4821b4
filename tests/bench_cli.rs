//! `ringshm bench --quick --json`: the command runs between real processes,
//! its JSON parses, and every expected row is there with a positive figure.
//! No timing thresholds: the figures depend on the host.

mod common;

use std::process::{Command, Stdio};

const MODES: [&str; 2] = ["round_trip", "stream"];
const TRANSPORTS: [&str; 6] = ["spsc::Ring", "Pipe", "Queue", "unix pipe", "socketpair", "POSIX mq"];
const SIZES: [u64; 4] = [8, 64, 4096, 65536];

#[test]
fn quick_json_has_every_row_with_a_positive_figure() {
    let _wd = common::watchdog(300);
    let child = Command::new(env!("CARGO_BIN_EXE_ringshm"))
        .args(["bench", "--quick", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run ringshm bench");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for ringshm bench");
    assert!(out.status.success(), "ringshm bench failed: {:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench --json prints valid JSON");
    assert_eq!(v["tool"], "ringshm bench");
    assert_eq!(v["quick"], true);
    let rows = v["rows"].as_array().expect("rows is an array");
    assert_eq!(rows.len(), MODES.len() * TRANSPORTS.len() * SIZES.len(), "one row per mode, transport, size");
    for mode in MODES {
        for t in TRANSPORTS {
            for size in SIZES {
                let r = rows
                    .iter()
                    .find(|r| r["mode"] == mode && r["transport"] == t && r["bytes"] == size)
                    .unwrap_or_else(|| panic!("missing row {mode} {t} {size}"));
                for key in ["ns", "per_s", "floor_ns", "vs_floor", "vs_unix_pipe", "vs_socketpair", "vs_posix_mq"] {
                    let x = r[key].as_f64().unwrap_or_else(|| panic!("{mode} {t} {size}: {key} is not a number"));
                    assert!(x.is_finite() && x > 0.0, "{mode} {t} {size}: {key} = {x}");
                }
                assert!(r["host_state"].is_string());
            }
        }
    }
    // Every segment it made is gone.
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rshm-bench-") && n.contains(&format!("-{pid}-")))
        .collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

#[test]
fn unknown_option_is_a_usage_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_ringshm")).args(["bench", "--fast"]).output().expect("run ringshm");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--quick"));
}
