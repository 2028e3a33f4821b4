//! `ls`, `info`, `rm` and `gc`: the segments in `/dev/shm`.

use std::time::SystemTime;

use ringshm::{Error, SegmentInfo, SegmentState};

use crate::{usage, Failure};

pub fn ls() -> Result<(), Failure> {
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

pub fn info(args: &[String]) -> Result<(), Failure> {
    let name = match args {
        [name] => name,
        [] => return Err(usage("info needs a segment NAME")),
        _ => return Err(usage("info takes exactly one NAME")),
    };
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

pub fn rm(args: &[String]) -> Result<(), Failure> {
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
        Err(Failure::failed(format!("could not remove {} (the reason is above)", failed.join(", "))))
    }
}

/// Removes one segment; returns a note to print after "removed NAME", or
/// why it was not removed and what to do about it.
fn rm_one(name: &str, force: bool) -> Result<String, String> {
    let note = match ringshm::info(name) {
        Ok(s) => {
            let mut note = String::new();
            match &s.state {
                SegmentState::Corrupted(why) => note.push_str(&format!(" (its header was invalid: {why})")),
                SegmentState::Unsupported { version } => {
                    note.push_str(&format!(" (format version {version}, not this ringshm's)"));
                }
                _ => {}
            }
            if s.in_use {
                note.push_str(" (processes that have it open keep using it)");
            }
            note
        }
        Err(Error::Corrupted { reason, .. }) if !force => {
            return Err(format!(
                "segment '{name}' is not a valid ringshm segment ({reason}); it may belong to another \
                 program: remove it anyway with `ringshm rm --force {name}`"
            ))
        }
        Err(Error::Corrupted { .. }) => " (forced: it was not a valid ringshm segment)".to_owned(),
        Err(e) => return Err(e.to_string()),
    };
    ringshm::unlink(name).map_err(|e| e.to_string())?;
    Ok(note)
}

pub fn gc(args: &[String]) -> Result<(), Failure> {
    let dry_run = match args {
        [] => false,
        [f] if f == "--dry-run" || f == "-n" => true,
        _ => return Err(usage(format!("gc takes only --dry-run, not {:?}", args.join(" ")))),
    };
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
