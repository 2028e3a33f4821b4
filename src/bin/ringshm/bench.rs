//! `ringshm bench [--quick] [--json]`: a one-screen comparison between real
//! processes of ringshm's `spsc::Ring`, `Pipe` and `Queue` against a Unix
//! pipe, a socketpair and a POSIX message queue, for 8 B, 64 B, 4 KiB and
//! 64 KiB messages: round trip and streaming, each with its ratio to the
//! floor (a bare atomic ping-pong between the same two processes) and to the
//! OS baselines.
//!
//! It uses the harness of `benches/` (included below with `#[path]`; its
//! docs state the method): the other side of every contender is this binary
//! re-executed with a hidden role (environment variable
//! `RINGSHM_BENCH_PEER`), parked between samples, pinned to CPU 1 while the
//! timing side runs on CPU 0. Per message size, every contender (and the
//! floor) is measured in turn, round after round, and the medians are
//! reported, so that a change of the host's state hits all of them alike.

#[path = "../../../benches/harness/mod.rs"]
mod harness;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use harness::{Contender, SIZES, TRANSPORTS};

use crate::{usage, Failure};

/// The two kinds of measurement.
const MODES: [&str; 2] = ["round_trip", "stream"];
/// The OS baselines (the last three transports).
const OS: [&str; 3] = ["unix pipe", "socketpair", "POSIX mq"];

/// One measured figure.
struct Row {
    mode: &'static str,
    transport: &'static str,
    bytes: usize,
    /// Median nanoseconds per round trip or per streamed message.
    ns: f64,
    /// The floor (canary) measured in the same rounds.
    floor_ns: f64,
}

/// Runs the `bench` subcommand (or, in a re-executed peer, its role).
pub fn run(args: &[String]) -> Result<(), Failure> {
    if harness::peer_main(|_, _| false) {
        return Ok(());
    }
    let (mut quick, mut json) = (false, false);
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            "--json" => json = true,
            other => return Err(usage(format!("bench: unknown option {other:?} (expected --quick, --json)"))),
        }
    }
    harness::set_peer_prefix(&["bench"]);
    harness::pin(harness::LOCAL_CPU);
    let (rounds, target) = if quick { (3, Duration::from_millis(6)) } else { (7, Duration::from_millis(30)) };
    let started = Instant::now();
    let mut rows = Vec::new();
    let total = SIZES.len() * (1 + MODES.len() * TRANSPORTS.len());
    let mut done = 0;
    for size in SIZES {
        let mut cs: Vec<Contender> = Vec::new();
        let mut what: Vec<(&'static str, &'static str)> = Vec::new();
        progress(done, total, &format!("{} starting peers", human_bytes(size)));
        cs.push(harness::canary());
        what.push(("floor", "floor"));
        for mode in MODES {
            for t in TRANSPORTS {
                cs.push(if mode == "round_trip" { harness::round_trip(t, size) } else { harness::stream(t, size) });
                what.push((mode, t));
            }
        }
        let mut iters = Vec::new();
        for (c, (m, t)) in cs.iter_mut().zip(&what) {
            let label = if *m == "floor" { "floor".to_owned() } else { format!("{t} {}", m.replace('_', " ")) };
            progress(done, total, &format!("{} calibrating {label}", human_bytes(size)));
            iters.push(c.calibrate(target));
            done += 1;
        }
        let meds = harness::interleave(&mut cs, &iters, rounds, |r| {
            progress(done, total, &format!("{} round {}/{rounds}", human_bytes(size), r + 1))
        });
        for (i, (mode, t)) in what.iter().enumerate().skip(1) {
            rows.push(Row { mode, transport: t, bytes: size, ns: meds[i], floor_ns: meds[0] });
        }
    }
    if std::io::stderr().is_terminal() {
        eprint!("\r{:79}\r", "");
    }
    let secs = started.elapsed().as_secs_f64();
    let out = if json { to_json(&rows, quick, rounds, secs) } else { table(&rows, rounds, secs) };
    let mut o = std::io::stdout().lock();
    o.write_all(out.as_bytes()).and_then(|_| o.flush()).map_err(|e| Failure::failed(format!("bench: {e}")))
}

/// The progress line on stderr (only on a terminal).
fn progress(done: usize, total: usize, what: &str) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    eprint!("\r{:79}\rringshm bench [{done:2}/{total}] {what}", "");
    let _ = std::io::stderr().flush();
}

fn human_bytes(b: usize) -> String {
    if b >= 1024 {
        format!("{} KiB", b / 1024)
    } else {
        format!("{b} B")
    }
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn human_rate(per_s: f64) -> String {
    if per_s >= 1e9 {
        format!("{:.2} G/s", per_s / 1e9)
    } else if per_s >= 1e6 {
        format!("{:.1} M/s", per_s / 1e6)
    } else {
        format!("{:.0} k/s", per_s / 1e3)
    }
}

fn find<'a>(rows: &'a [Row], mode: &str, t: &str, bytes: usize) -> &'a Row {
    rows.iter().find(|r| r.mode == mode && r.transport == t && r.bytes == bytes).expect("every row is measured")
}

/// How many times faster `r` is than each OS baseline of the same mode and size.
fn vs_os(rows: &[Row], r: &Row) -> [f64; 3] {
    OS.map(|t| find(rows, r.mode, t, r.bytes).ns / r.ns)
}

fn ratio(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.1}×")
    }
}

fn table(rows: &[Row], rounds: usize, secs: f64) -> String {
    let floors: Vec<f64> = SIZES.iter().map(|&s| find(rows, "round_trip", TRANSPORTS[0], s).floor_ns).collect();
    let floor = floors.iter().sum::<f64>() / floors.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "ringshm bench: two processes pinned to CPUs 0 and 1, ringshm with WaitStrategy::Spin,\n\
         medians of {rounds} interleaved rounds ({secs:.0} s). {}",
        host_line()
    );
    let _ = writeln!(
        s,
        "floor (bare atomic ping-pong between the two processes): {} ({})",
        human_ns(floor),
        harness::host_state(floor)
    );
    let _ = writeln!(s, "×floor: round trip ÷ floor; vs X: X's time ÷ this one's (above 1: faster than X)\n");
    let _ = writeln!(
        s,
        "{:<7}{:<12}{:>9}{:>7}{:>8}{:>8}{:>8} |{:>10}{:>10}{:>8}{:>8}{:>8}",
        "size",
        "transport",
        "rtt",
        "×floor",
        "vs pipe",
        "vs sock",
        "vs mq",
        "stream",
        "MB/s",
        "vs pipe",
        "vs sock",
        "vs mq"
    );
    for size in SIZES {
        for (i, t) in TRANSPORTS.iter().enumerate() {
            let (rt, st) = (find(rows, "round_trip", t, size), find(rows, "stream", t, size));
            let (a, b) = (vs_os(rows, rt), vs_os(rows, st));
            let cell = |x: f64| if i < 3 { ratio(x) } else { String::new() };
            let _ = writeln!(
                s,
                "{:<7}{:<12}{:>9}{:>7}{:>8}{:>8}{:>8} |{:>10}{:>10.0}{:>8}{:>8}{:>8}",
                if i == 0 { human_bytes(size) } else { String::new() },
                t,
                human_ns(rt.ns),
                ratio(rt.ns / rt.floor_ns),
                cell(a[0]),
                cell(a[1]),
                cell(a[2]),
                human_rate(1e9 / st.ns),
                size as f64 * 1e3 / st.ns,
                cell(b[0]),
                cell(b[1]),
                cell(b[2]),
            );
        }
    }
    let (rt, st) = (find(rows, "round_trip", TRANSPORTS[0], 64), find(rows, "stream", "Pipe", 65536));
    let _ = writeln!(
        s,
        "\nIn short: a 64-byte round trip over spsc::Ring takes {} ({} the floor), {} faster than over a Unix pipe;\n\
         Pipe streams 64 KiB messages at {:.1} GB/s, {} a Unix pipe's rate.",
        human_ns(rt.ns),
        ratio(rt.ns / rt.floor_ns),
        ratio(find(rows, "round_trip", "unix pipe", 64).ns / rt.ns),
        65536.0 / st.ns,
        ratio(find(rows, "stream", "unix pipe", 65536).ns / st.ns),
    );
    let _ = writeln!(s, "\nJSON: ringshm bench --json; chart: cargo run --example plot_bench -- bench.json bench.svg");
    s
}

/// CPU model and kernel, as far as /proc tells.
fn host_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    // SAFETY: `sysconf` only reads a system value.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    format!("Host: {cpus} CPUs, {cpu}, Linux {}", kernel.trim())
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn to_json(rows: &[Row], quick: bool, rounds: usize, secs: f64) -> String {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut s = String::new();
    let _ = writeln!(s, "{{");
    let _ = writeln!(s, "  \"tool\": \"ringshm bench\",");
    let _ = writeln!(s, "  \"version\": {},", json_str(env!("CARGO_PKG_VERSION")));
    let _ = writeln!(s, "  \"unix_time\": {unix},");
    let _ = writeln!(s, "  \"host\": {},", json_str(&host_line()));
    let _ = writeln!(s, "  \"quick\": {quick},");
    let _ = writeln!(s, "  \"rounds\": {rounds},");
    let _ = writeln!(s, "  \"seconds\": {secs:.2},");
    let _ = writeln!(s, "  \"wait\": \"Spin\",");
    let _ = writeln!(s, "  \"rows\": [");
    for (i, r) in rows.iter().enumerate() {
        let v = vs_os(rows, r);
        let _ = writeln!(
            s,
            "    {{\"mode\": {}, \"transport\": {}, \"bytes\": {}, \"ns\": {:.2}, \"per_s\": {:.1}, \"floor_ns\": {:.2}, \
             \"host_state\": {}, \"vs_floor\": {:.3}, \"vs_unix_pipe\": {:.3}, \"vs_socketpair\": {:.3}, \"vs_posix_mq\": {:.3}}}{}",
            json_str(r.mode),
            json_str(r.transport),
            r.bytes,
            r.ns,
            1e9 / r.ns,
            r.floor_ns,
            json_str(harness::host_state(r.floor_ns)),
            r.ns / r.floor_ns,
            v[0],
            v[1],
            v[2],
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    let _ = writeln!(s, "  ]");
    let _ = writeln!(s, "}}");
    s
}
