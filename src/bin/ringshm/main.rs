//! `ringshm`: list, inspect and clean up ringshm segments in `/dev/shm`, and
//! torture-test the library.
//!
//! ```text
//! ringshm ls                 table of every ringshm segment
//! ringshm info NAME          everything known about one segment
//! ringshm rm [--force] NAME  unlink segments (--force: even if not ringshm's)
//! ringshm gc [--dry-run]     unlink segments no live process holds
//! ringshm torture --seconds N [--procs P] [--seed S]
//!                            crash torture: many processes, random SIGKILLs
//! ringshm bench [--quick] [--json]
//!                            ringshm against pipes, sockets, message queues
//! ```
//!
//! Exit status: 0 on success, 1 when an operation failed (or the torture
//! found a violation), 2 on a usage error.
//!
//! Each subcommand lives in its own module and takes the arguments after its
//! name; `run` only dispatches.

mod bench;
mod segments;
mod torture;

use std::process::ExitCode;

use ringshm::Error;

const USAGE: &str = "\
usage: ringshm <command> [args]

commands:
  ls                     list every ringshm segment in /dev/shm
  info NAME              show everything known about segment NAME
  rm [--force] NAME...   remove segments (processes that have them open keep
                         using them); --force also removes files that are not
                         valid ringshm segments
  gc [--dry-run]         remove segments that no live process holds and that
                         were not created with persist
  torture --seconds N [--procs P] [--seed S]
                         crash torture: P processes per role use every
                         primitive for N seconds while random ones are
                         SIGKILLed and restarted, then every message, lock
                         and permit is accounted for (exit 1 on a violation)
  bench [--quick] [--json]
                         round trip and streaming of spsc::Ring, Pipe and
                         Queue against a Unix pipe, a socketpair and a POSIX
                         message queue between two processes (8 B to 64 KiB)
  help                   show this text

exit status: 0 ok, 1 an operation failed, 2 usage error";

/// A failed command: what to print, and whether it was a usage error.
pub struct Failure {
    msg: String,
    usage: bool,
}

impl Failure {
    /// An operation failed (exit status 1).
    pub fn failed(msg: impl Into<String>) -> Self {
        Failure { msg: msg.into(), usage: false }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::failed(e.to_string())
    }
}

/// A usage error (exit status 2, prints the usage text).
pub fn usage(msg: impl Into<String>) -> Failure {
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
            segments::ls()
        }
        "info" => segments::info(rest),
        "rm" => segments::rm(rest),
        "gc" => segments::gc(rest),
        "torture" => torture::run(rest),
        "bench" => bench::run(rest),
        // Internal: one torture worker process (started by `torture`).
        torture::WORKER_CMD => torture::worker(rest),
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

/// Fails with a usage error if `cmd` got arguments.
pub fn no_more(cmd: &str, rest: &[String]) -> Result<(), Failure> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(usage(format!("{cmd} takes no arguments, got {:?}", rest.join(" "))))
    }
}
