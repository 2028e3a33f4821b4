//! `ringshm`: list, inspect and clean up ringshm segments in `/dev/shm`.
//!
//! ```text
//! ringshm ls                 table of every ringshm segment
//! ringshm info NAME          everything known about one segment
//! ringshm rm [--force] NAME  unlink segments (--force: even if not ringshm's)
//! ringshm gc [--dry-run]     unlink segments no live process holds
//! ```
//!
//! Exit status: 0 on success, 1 when an operation failed, 2 on a usage error.

use std::process::ExitCode;
use std::time::SystemTime;

use ringshm::{Error, SegmentInfo, SegmentState};

const USAGE: &str = "\
usage: ringshm <command> [args]

commands:
  ls                     list every ringshm segment in /dev/shm
  info NAME              show everything known about segment NAME
  rm [--force] NAME...   remove segments (processes that have them open keep
                         using them); --force also removes files that are not
                         ringshm segments
  gc [--dry-run]         remove segments that no live process holds and that
                         were not created with persist
  help                   show this text

exit status: 0 ok, 1 an operation failed, 2 usage error";

/// A failed command: what to print, and whether it was a usage error.
struct Failure {
    msg: String,
    usage: bool,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure { msg: e.to_string(), usage: false }
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure { msg: msg.into(), usage: true }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if f.usage => {
            eprintln!("ringshm: {}\n\n{USAGE}", f.msg);
            ExitCode::from(2)
        }
        Err(f) => {
            eprintln!("ringshm: {}", f.msg);
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let Some((cmd, rest)) = args.split_first() else { return Err(usage("no command given")) };
    match cmd.as_str() {
        "ls" | "list" => {
            no_more(cmd, rest)?;
            ls()
        }
        "info" => match rest {
            [name] => show_info(name),
            [] => Err(usage("info needs a segment NAME")),
            _ => Err(usage("info takes exactly one NAME")),
        },
        "rm" => rm(rest),
        "gc" => {
            let dry = match rest {
                [] => false,
                [f] if f == "--dry-run" || f == "-n" => true,
                _ => return Err(usage(format!("gc takes only --dry-run, not {:?}", rest.join(" ")))),
            };
            gc(dry)
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        "-V" | "--version" | "version" => {
            println!("ringshm {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => Err(usage(format!("unknown command {other:?}"))),
    }
}

fn no_more(cmd: &str, rest: &[String]) -> Result<(), Failure> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(usage(format!("{cmd} takes no arguments, got {:?}", rest.join(" "))))
    }
}

fn ls() -> Result<(), Failure> {
    let segs = ringshm::list()?;
    if segs.is_empty() {
        println!("no ringshm segments in /dev/shm");
        return Ok(());
    }
    let header = ["NAME", "KIND", "ELEMENT", "CAPACITY", "SIZE", "MODE", "CREATOR", "ATTACHED", "STATE"];
    let rows: Vec<[String; 9]> = segs
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.kind_text(),
                if s.element_type.is_empty() { "-".into() } else { s.element_type.clone() },
                s.capacity.to_string(),
                human_size(s.size),
                format!("{:04o}", s.mode),
                pid_text(s.creator.pid, s.creator.alive),
                attached_text(s),
                state_text(s),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(&header);
    for r in &rows {
        line(&r.each_ref().map(String::as_str));
    }
    let stale = segs.iter().filter(|s| s.is_stale()).count();
    if stale > 0 {
        println!("\n{stale} stale segment(s): `ringshm gc` removes them");
    }
    Ok(())
}

fn show_info(name: &str) -> Result<(), Failure> {
    let s = ringshm::info(name)?;
    let created = s.created.map_or_else(|| "unknown".to_owned(), ago);
    let fields: [(&str, String); 14] = [
        ("name", s.name.clone()),
        ("state", state_text(&s)),
        ("kind", s.kind_name().to_owned()),
        ("element type", if s.element_type.is_empty() { "-".into() } else { s.element_type.clone() }),
        ("element size", format!("{} bytes", s.element_size)),
        ("capacity", s.capacity.to_string()),
        ("size", format!("{} ({} bytes)", human_size(s.size), s.size)),
        ("mode", format!("{:04o}", s.mode)),
        ("owner uid", s.uid.to_string()),
        ("creator", pid_text(s.creator.pid, s.creator.alive)),
        ("created", created),
        ("attached", if s.attached.is_empty() { "-".into() } else { attached_text(&s) }),
        ("in use", if s.in_use { "yes (a live process holds it)".into() } else { "no".into() }),
        ("persist", if s.persist { "yes".into() } else { "no".into() }),
    ];
    for (k, v) in fields {
        println!("{:<13} {v}", format!("{k}:"));
    }
    if let Some(b) = &s.broadcast {
        println!("{:<13} {}", "mode:", if b.overwrite { "overwrite" } else { "lossless" });
        println!("{:<13} {}", "sent:", b.sent);
        for sub in &b.subscribers {
            let who = pid_text(sub.pid, sub.alive);
            println!("{:<13} #{} {who}: at {}, {} behind", "subscriber:", sub.place, sub.position, sub.behind);
        }
    }
    Ok(())
}

fn rm(args: &[String]) -> Result<(), Failure> {
    let mut force = false;
    let mut names = Vec::new();
    for a in args {
        match a.as_str() {
            "-f" | "--force" => force = true,
            s if s.starts_with('-') && s.len() > 1 => return Err(usage(format!("rm: unknown option {s:?}"))),
            s => names.push(s),
        }
    }
    if names.is_empty() {
        return Err(usage("rm needs at least one segment NAME"));
    }
    let mut failed = Vec::new();
    for name in names {
        match rm_one(name, force) {
            Ok(note) => println!("removed {name}{note}"),
            Err(e) => {
                eprintln!("ringshm: {e}");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure { msg: format!("could not remove {}", failed.join(", ")), usage: false })
    }
}

/// Removes one segment; returns a note to print after "removed NAME".
fn rm_one(name: &str, force: bool) -> Result<&'static str, String> {
    let note = match ringshm::info(name) {
        Ok(s) if s.in_use => " (processes that have it open keep using it)",
        Ok(_) => "",
        Err(Error::Corrupted { .. }) if !force => {
            return Err(format!(
                "'{name}' is not a ringshm segment; use `ringshm rm --force {name}` to remove it anyway"
            ))
        }
        Err(Error::Corrupted { .. }) => "",
        Err(e) => return Err(e.to_string()),
    };
    ringshm::unlink(name).map_err(|e| e.to_string())?;
    Ok(note)
}

fn gc(dry_run: bool) -> Result<(), Failure> {
    if dry_run {
        let stale: Vec<_> = ringshm::list()?.into_iter().filter(SegmentInfo::is_stale).collect();
        if stale.is_empty() {
            println!("nothing to remove");
        }
        for s in stale {
            println!("would remove {} ({}, creator {})", s.name, s.kind_name(), pid_text(s.creator.pid, false));
        }
        return Ok(());
    }
    let removed = ringshm::remove_stale()?;
    if removed.is_empty() {
        println!("nothing to remove");
    }
    for n in &removed {
        println!("removed {n}");
    }
    Ok(())
}

fn pid_text(pid: u32, alive: bool) -> String {
    match (pid, alive) {
        (0, _) => "-".into(),
        (p, true) => p.to_string(),
        (p, false) => format!("{p} (dead)"),
    }
}

fn attached_text(s: &SegmentInfo) -> String {
    let live: Vec<String> = s.attached.iter().filter(|p| p.alive).map(|p| p.pid.to_string()).collect();
    let dead = s.attached.iter().filter(|p| !p.alive).count();
    let mut out = if live.is_empty() { "-".to_owned() } else { live.join(",") };
    if dead > 0 {
        out.push_str(&format!(" (+{dead} dead)"));
    }
    out
}

fn state_text(s: &SegmentInfo) -> String {
    let base = match &s.state {
        SegmentState::Ready => {
            if s.in_use {
                "in use".to_owned()
            } else if s.is_stale() {
                "stale".to_owned()
            } else {
                "idle".to_owned()
            }
        }
        SegmentState::Initialising => "initialising".to_owned(),
        SegmentState::Unsupported { version } => format!("format v{version} (unsupported)"),
        SegmentState::Corrupted(why) => {
            format!("corrupted: {why}{}", if s.is_stale() { " (stale)" } else { "" })
        }
        other => format!("{other:?}"),
    };
    if s.persist {
        format!("{base}, persist")
    } else {
        base
    }
}

fn human_size(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn ago(t: SystemTime) -> String {
    let secs = SystemTime::now().duration_since(t).map_or(0, |d| d.as_secs());
    let rel = match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    };
    let unix = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{rel} (unix time {unix})")
}
