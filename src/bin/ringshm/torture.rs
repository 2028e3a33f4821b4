//! `ringshm torture`: crash torture of every primitive.
//!
//! The supervisor (this process) creates one object of every kind under a
//! prefix unique to its pid, then starts worker processes (this binary again,
//! as `ringshm __torture-worker ...`) that produce, consume, lock, acquire
//! and wait on them, each blocking call in its `_timeout` form. For the given
//! time it SIGKILLs a random worker every few tens of milliseconds and starts
//! it again. Then it stops everybody and checks:
//!
//! | check | how |
//! |-------|-----|
//! | nobody waited past its timeout | every bounded call is timed: returning later than its bound plus [`SLACK`] is a violation |
//! | no unexplained timeouts | bounds are [`BOUND`] (10 s) against holders that hold for microseconds and restart within milliseconds: any timeout is a violation |
//! | exactly once | each producer writes the sequence number it is about to send into an `intent` array first; consumers count every message in a `seen` array. Afterwards no count may exceed 1; a missing message must be a killed producer's in-flight one (its intent when it was killed), or one taken by a consumer that was killed before counting it (at most one per consumer kill) |
//! | `lost()` honest | at most the missing messages, at most one per kill on that channel |
//! | nothing hidden at drain | after the consumers saw `Disconnected`, the supervisor finds nothing left in the ring |
//! | locks usable | `Lock`, `RLock`, the condition's lock and the array's lock can be taken at the end |
//! | semaphores back at their counts | after `recover_dead`, `value()` is the initial count and that many permits can be taken |
//! | no wedged worker | every worker exits within [`GRACE`] of being told to stop (calls without a timeout form, such as `Array::lock`, show up here) |
//!
//! Workers report violations on stderr (`torture: VIOLATION ...`) and count
//! them in a shared statistics array; the supervisor prints the figures and
//! exits non-zero if there was any violation.

mod worker;

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringshm::{
    mpmc, spsc, Array, Barrier, BoundedSemaphore, ByteQueue, Condition, Event, JoinableQueue, Lock, LockTimeoutError,
    Queue, RLock, Semaphore, Value,
};

use crate::{usage, Failure};

pub use worker::worker;

/// The hidden subcommand a worker process runs.
pub const WORKER_CMD: &str = "__torture-worker";

/// Bound of every blocking call that should return promptly: holders hold
/// for microseconds and dead ones restart within milliseconds, so reaching
/// it means something is wedged.
pub const BOUND: Duration = Duration::from_secs(10);
/// How much later than its timeout a call may return before it counts as
/// "waited past its timeout" (the machine may be loaded).
pub const SLACK: Duration = Duration::from_secs(5);
/// Slice of the polling waits (consumers, event and condition waiters),
/// after which a worker checks whether it was told to stop.
pub const POLL: Duration = Duration::from_millis(100);
/// How long a worker may take to finish after being told to stop.
const GRACE: Duration = Duration::from_secs(40);
/// Sequence numbers per producer: `seen` arrays hold one byte per number.
pub const MAX_SEQ: u64 = 1 << 21;

/// Values of the shared `stop` word.
pub const RUN: u64 = 0;
/// Producers and every non-consumer role finish.
pub const STOP: u64 = 1;
/// Producers are gone and the queues closed: consumers drain and finish.
pub const DRAIN: u64 = 2;

/// Counters in the shared `stats` array.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub enum Stat {
    Violations,
    Sent,
    Received,
    OwnerDied,
    RolesTaken,
    Disconnects,
    LockRounds,
    SemRounds,
    EventWaits,
    CondWakeups,
    BarrierRounds,
    BarrierBreaks,
    PipeMessages,
    PipePeerDeaths,
    SeqlockReads,
}
/// Number of [`Stat`]s.
pub const STATS: usize = Stat::SeqlockReads as usize + 1;

/// The message channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ch {
    Spsc,
    Mpmc,
    Queue,
    Bytes,
    Joinable,
}

impl Ch {
    pub const ALL: [Ch; 5] = [Ch::Spsc, Ch::Mpmc, Ch::Queue, Ch::Bytes, Ch::Joinable];

    pub fn name(self) -> &'static str {
        match self {
            Ch::Spsc => "spsc",
            Ch::Mpmc => "mpmc",
            Ch::Queue => "queue",
            Ch::Bytes => "bytes",
            Ch::Joinable => "joinable",
        }
    }

    fn parse(s: &str) -> Option<Ch> {
        Ch::ALL.into_iter().find(|c| c.name() == s)
    }

    /// How many producer and consumer processes it has.
    pub fn sides(self, procs: usize) -> (usize, usize) {
        match self {
            Ch::Spsc => (1, 1),
            Ch::Mpmc | Ch::Queue => (procs, procs),
            // One consumer: its kills (each may leave one task undone) stay
            // few, so `unfinished_tasks()` at the end is a sharp check.
            Ch::Bytes | Ch::Joinable => (procs, 1),
        }
    }
}

/// What a worker process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Producer(Ch),
    Consumer(Ch),
    /// Runs pipes with echo children of its own, and kills some of them.
    Pipe,
    /// Lock, RLock, the array's guard, the seqlock value.
    Locker,
    /// Semaphore(2) and BoundedSemaphore(1).
    Sem,
    EventSetter,
    EventWaiter,
    CondNotifier,
    CondWaiter,
    BarrierParty,
}

impl Role {
    pub fn name(self) -> String {
        match self {
            Role::Producer(c) => format!("{}-prod", c.name()),
            Role::Consumer(c) => format!("{}-cons", c.name()),
            Role::Pipe => "pipe".into(),
            Role::Locker => "locker".into(),
            Role::Sem => "sem".into(),
            Role::EventSetter => "event-set".into(),
            Role::EventWaiter => "event-wait".into(),
            Role::CondNotifier => "cond-notify".into(),
            Role::CondWaiter => "cond-wait".into(),
            Role::BarrierParty => "barrier".into(),
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        if let Some(c) = s.strip_suffix("-prod").and_then(Ch::parse) {
            return Some(Role::Producer(c));
        }
        if let Some(c) = s.strip_suffix("-cons").and_then(Ch::parse) {
            return Some(Role::Consumer(c));
        }
        Some(match s {
            "pipe" => Role::Pipe,
            "locker" => Role::Locker,
            "sem" => Role::Sem,
            "event-set" => Role::EventSetter,
            "event-wait" => Role::EventWaiter,
            "cond-notify" => Role::CondNotifier,
            "cond-wait" => Role::CondWaiter,
            "barrier" => Role::BarrierParty,
            _ => return None,
        })
    }

    /// Consumers finish last (they drain after the producers are gone).
    fn finishes_last(self) -> bool {
        matches!(self, Role::Consumer(_))
    }
}

/// Every worker: (role, index within the role), for `procs` per role.
fn roster(procs: usize) -> Vec<(Role, usize)> {
    let mut out = Vec::new();
    for ch in Ch::ALL {
        let (p, c) = ch.sides(procs);
        out.extend((0..p).map(|i| (Role::Producer(ch), i)));
        out.extend((0..c).map(|i| (Role::Consumer(ch), i)));
    }
    out.push((Role::Pipe, 0));
    out.extend((0..procs).map(|i| (Role::Locker, i)));
    out.extend((0..procs + 1).map(|i| (Role::Sem, i)));
    out.push((Role::EventSetter, 0));
    out.extend((0..procs).map(|i| (Role::EventWaiter, i)));
    out.push((Role::CondNotifier, 0));
    out.extend((0..procs).map(|i| (Role::CondWaiter, i)));
    out.extend((0..barrier_parties(procs)).map(|i| (Role::BarrierParty, i)));
    out
}

pub fn barrier_parties(procs: usize) -> usize {
    procs + 1
}

/// Initial permits of the semaphore and the bounded semaphore.
pub const SEM_PERMITS: usize = 2;
pub const BSEM_PERMITS: usize = 1;
/// Length of the locked array.
pub const ARRAY_LEN: usize = 8;

/// Segment names of one torture run.
#[derive(Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names { prefix: prefix.to_owned() }
    }
    pub fn of(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }
    pub fn chan(&self, ch: Ch) -> String {
        self.of(ch.name())
    }
    pub fn intent(&self, ch: Ch) -> String {
        self.of(&format!("{}-intent", ch.name()))
    }
    pub fn seen(&self, ch: Ch) -> String {
        self.of(&format!("{}-seen", ch.name()))
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// A message: producer index in the top bits, sequence number below.
pub fn encode(producer: usize, seq: u64) -> u64 {
    ((producer as u64) << 40) | seq
}

/// The inverse of [`encode`], if the message is one a producer could send.
pub fn decode(v: u64, producers: usize) -> Option<(usize, u64)> {
    let (p, seq) = ((v >> 40) as usize, v & ((1 << 40) - 1));
    (p < producers && (1..MAX_SEQ).contains(&seq)).then_some((p, seq))
}

/// splitmix64: small, seedable, good enough to pick victims and delays.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    pub fn micros(&mut self, max: u64) -> Duration {
        Duration::from_micros(self.below(max + 1))
    }
}

/// The seed of a worker's generator: the run's seed, its role and index, and
/// how many times it was started.
pub fn worker_seed(seed: u64, role: Role, idx: usize, start: u64) -> u64 {
    let mut h = seed ^ 0xA076_1D64_78BD_642F;
    for b in role.name().bytes().chain(idx.to_le_bytes()).chain(start.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    h
}

struct Args {
    seconds: u64,
    procs: usize,
    seed: u64,
}

fn parse_args(args: &[String]) -> Result<Args, Failure> {
    let mut seconds = None;
    let mut procs = 2;
    let mut seed = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .ok_or_else(|| usage(format!("torture: {a} needs {what}")))
                .and_then(|v| v.parse::<u64>().map_err(|_| usage(format!("torture: {a} wants a number, not {v:?}"))))
        };
        match a.as_str() {
            "--seconds" | "-s" => seconds = Some(value("a number of seconds")?),
            "--procs" | "-p" => procs = value("a number of processes per role")? as usize,
            "--seed" => seed = Some(value("a seed")?),
            other => return Err(usage(format!("torture: unknown argument {other:?}"))),
        }
    }
    let seconds = seconds.ok_or_else(|| usage("torture needs --seconds N"))?;
    if !(1..=16).contains(&procs) {
        return Err(usage("torture: --procs must be 1 to 16"));
    }
    let seed = seed.unwrap_or_else(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    Ok(Args { seconds, procs, seed })
}

/// Every object of a run, created by the supervisor (so they are unlinked
/// when it ends), plus the figures it keeps.
struct World {
    names: Names,
    procs: usize,
    stop: Value<u64>,
    stats: Array<u64>,
    intents: Vec<Array<u64>>,
    seen: Vec<Array<u8>>,
    spsc: spsc::Ring<u64>,
    mpmc: mpmc::Ring<u64>,
    queue: Queue<u64>,
    bytes: ByteQueue,
    joinable: JoinableQueue<u64>,
    _lock: Lock,
    _rlock: RLock,
    _cond: Condition,
    _array: Array<u64>,
    sem: Semaphore,
    bsem: BoundedSemaphore,
    event: Event,
    barrier: Barrier,
    _values: Vec<Value<[u64; 2]>>,
    _seqlock: Value<[u64; 4]>,
    _tick: Value<u64>,
}

impl World {
    fn create(names: Names, procs: usize) -> Result<World, ringshm::Error> {
        let n = |w: &str| names.of(w);
        let mut intents = Vec::new();
        let mut seen = Vec::new();
        for ch in Ch::ALL {
            let (p, _) = ch.sides(procs);
            intents.push(Array::<u64>::create(&names.intent(ch), p)?);
            seen.push(Array::<u8>::create(&names.seen(ch), p * MAX_SEQ as usize)?);
        }
        Ok(World {
            stop: Value::create(&n("stop"), RUN)?,
            stats: Array::create(&n("stats"), STATS)?,
            intents,
            seen,
            spsc: spsc::Ring::create(&names.chan(Ch::Spsc), 8)?,
            mpmc: mpmc::Ring::create(&names.chan(Ch::Mpmc), 2)?,
            queue: Queue::create(&names.chan(Ch::Queue), 3)?,
            bytes: ByteQueue::create(&names.chan(Ch::Bytes), 4, 64)?,
            joinable: JoinableQueue::create(&names.chan(Ch::Joinable), 2)?,
            _lock: Lock::create(&n("lock"))?,
            _rlock: RLock::create(&n("rlock"))?,
            _cond: Condition::create(&n("cond"))?,
            _array: Array::create(&n("array"), ARRAY_LEN)?,
            sem: Semaphore::create(&n("sem"), SEM_PERMITS)?,
            bsem: BoundedSemaphore::create(&n("bsem"), BSEM_PERMITS)?,
            event: Event::create(&n("event"))?,
            barrier: Barrier::create(&n("barrier"), barrier_parties(procs))?,
            _values: vec![Value::create(&n("lock-data"), [0; 2])?, Value::create(&n("rlock-data"), [0; 2])?],
            _seqlock: Value::create(&n("seqlock"), [0; 4])?,
            _tick: Value::create(&n("tick"), 0)?,
            names,
            procs,
        })
    }

    fn ch_index(ch: Ch) -> usize {
        Ch::ALL.iter().position(|&c| c == ch).expect("listed")
    }
}

/// One worker slot: its role, and the process now filling it.
struct Slot {
    role: Role,
    idx: usize,
    child: Option<Child>,
    starts: u64,
}

/// What the supervisor saw.
#[derive(Default)]
struct Report {
    violations: Vec<String>,
    kills: BTreeMap<String, u64>,
    /// Per channel: (producer, seq) that a killed producer was about to send.
    in_flight: Vec<HashSet<(usize, u64)>>,
    /// Per channel: kills of producers and of consumers.
    prod_kills: Vec<u64>,
    cons_kills: Vec<u64>,
    unexpected_exits: u64,
    recovered_permits: usize,
    owner_died_at_end: u64,
}

impl Report {
    fn violation(&mut self, msg: String) {
        eprintln!("torture: VIOLATION [supervisor]: {msg}");
        self.violations.push(msg);
    }
}

/// `ringshm torture --seconds N [--procs P] [--seed S]`.
pub fn run(args: &[String]) -> Result<(), Failure> {
    let a = parse_args(args)?;
    let prefix = format!("rshm-torture-{}-", std::process::id());
    println!(
        "torture: seed {} (rerun with --seed {}), {} s, --procs {}, segments {prefix}*",
        a.seed, a.seed, a.seconds, a.procs
    );
    // A supervisor stuck in a wedged primitive must still end: give up well
    // after the run should have finished.
    let limit = Duration::from_secs(a.seconds) + 4 * GRACE + Duration::from_secs(60);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("torture: VIOLATION [supervisor]: still running {limit:?} after the start: it is stuck");
        std::process::exit(3);
    });
    let result = supervise(&a, Names::new(&prefix));
    remove_leftovers(&prefix);
    let violations = result?;
    if violations == 0 {
        println!("torture: OK, no violations");
        Ok(())
    } else {
        Err(Failure::failed(format!("torture: {violations} violation(s); rerun with --seed {}", a.seed)))
    }
}

/// Runs the torture; returns the number of violations.
fn supervise(a: &Args, names: Names) -> Result<usize, Failure> {
    let world = World::create(names.clone(), a.procs)?;
    let exe = std::env::current_exe().map_err(|e| Failure::failed(format!("cannot find this program: {e}")))?;
    let mut rng = Rng::new(a.seed);
    let mut report = Report {
        in_flight: vec![HashSet::new(); Ch::ALL.len()],
        prod_kills: vec![0; Ch::ALL.len()],
        cons_kills: vec![0; Ch::ALL.len()],
        ..Report::default()
    };
    let spawn = |slot: &mut Slot| {
        slot.starts += 1;
        let child = Command::new(&exe)
            .args([
                WORKER_CMD,
                names.prefix(),
                &slot.role.name(),
                &slot.idx.to_string(),
                &a.procs.to_string(),
                &a.seed.to_string(),
                &slot.starts.to_string(),
            ])
            .stdin(Stdio::null())
            .spawn();
        match child {
            Ok(c) => slot.child = Some(c),
            Err(e) => eprintln!("torture: cannot start a {} worker: {e}", slot.role.name()),
        }
    };
    let mut slots: Vec<Slot> =
        roster(a.procs).into_iter().map(|(role, idx)| Slot { role, idx, child: None, starts: 0 }).collect();
    for s in &mut slots {
        spawn(s);
    }
    println!("torture: {} worker processes", slots.len());

    let started = Instant::now();
    let run_for = Duration::from_secs(a.seconds);
    let mut kills = 0u64;
    while started.elapsed() < run_for {
        std::thread::sleep(Duration::from_millis(10 + rng.below(90)));
        // Restart workers that ended on their own (they reported why).
        for s in &mut slots {
            if let Some(Ok(Some(st))) = s.child.as_mut().map(Child::try_wait) {
                report.unexpected_exits += 1;
                report.violation(format!("{}#{} exited by itself during the run ({st})", s.role.name(), s.idx));
                s.child = None;
                spawn(s);
            }
        }
        let victim = rng.below(slots.len() as u64) as usize;
        let s = &mut slots[victim];
        let Some(mut child) = s.child.take() else { continue };
        let _ = child.kill();
        let _ = child.wait();
        kills += 1;
        *report.kills.entry(s.role.name()).or_default() += 1;
        match s.role {
            Role::Producer(ch) => {
                let i = World::ch_index(ch);
                report.prod_kills[i] += 1;
                let seq = world.intents[i].get(s.idx).unwrap_or(0);
                if seq != 0 {
                    report.in_flight[i].insert((s.idx, seq));
                }
            }
            Role::Consumer(ch) => report.cons_kills[World::ch_index(ch)] += 1,
            _ => {}
        }
        if rng.one_in(4) {
            std::thread::sleep(Duration::from_millis(rng.below(30)));
        }
        spawn(s);
    }
    println!("torture: {kills} kills in {:.1} s; stopping", started.elapsed().as_secs_f64());

    // Stop everybody but the consumers, then let the consumers drain.
    world.stop.store(STOP);
    let aborter = || world.barrier.abort();
    finish(&mut slots, |r| !r.finishes_last(), &mut report, aborter);
    world.stop.store(DRAIN);
    world.mpmc.close();
    world.queue.close();
    world.bytes.close();
    world.joinable.close();
    finish(&mut slots, |_| true, &mut report, || {});

    check_messages(&world, &mut report);
    check_sync(&world, &mut report);

    let stats = world.stats.to_vec();
    let barrier_kills = report.kills.get(&Role::BarrierParty.name()).copied().unwrap_or(0);
    if stats[Stat::BarrierBreaks as usize] > 0 && barrier_kills == 0 {
        report.violation("the barrier broke although no party was killed".into());
    }
    print_figures(a, &world, &report, &stats, kills);
    Ok(report.violations.len() + stats[Stat::Violations as usize] as usize)
}

/// Waits up to [`GRACE`] for the workers matching `which` to exit (calling
/// `nudge` meanwhile); kills and reports the ones that do not.
fn finish(slots: &mut [Slot], which: impl Fn(Role) -> bool, report: &mut Report, nudge: impl Fn()) {
    let deadline = Instant::now() + GRACE;
    loop {
        let mut pending = 0;
        for s in slots.iter_mut().filter(|s| which(s.role)) {
            let Some(c) = s.child.as_mut() else { continue };
            match c.try_wait() {
                Ok(Some(st)) => {
                    if !st.success() {
                        report.violation(format!("{}#{} ended with {st}", s.role.name(), s.idx));
                    }
                    s.child = None;
                }
                Ok(None) => pending += 1,
                Err(_) => s.child = None,
            }
        }
        if pending == 0 {
            return;
        }
        if Instant::now() > deadline {
            for s in slots.iter_mut().filter(|s| which(s.role)) {
                if let Some(mut c) = s.child.take() {
                    report.violation(format!(
                        "{}#{} (pid {}) did not finish within {GRACE:?} of being told to stop: \
                         blocked in a call without a timeout?",
                        s.role.name(),
                        s.idx,
                        c.id()
                    ));
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            return;
        }
        nudge();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `f` on a helper thread for at most `limit`; `None` if it hangs (the
/// thread is left behind; the process ends soon anyway).
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// Exactly-once accounting of every channel.
fn check_messages(w: &World, report: &mut Report) {
    for ch in Ch::ALL {
        let i = World::ch_index(ch);
        let (producers, _) = ch.sides(w.procs);
        let leftovers = drain_leftovers(w, ch);
        let seen = w.seen[i].to_vec();
        for &v in &leftovers {
            match decode(v, producers) {
                Some((p, seq)) => seen_add(&w.seen[i], p, seq),
                None => report.violation(format!("{}: leftover message {v:#x} that no producer sent", ch.name())),
            }
        }
        if !leftovers.is_empty() {
            report.violation(format!(
                "{}: {} message(s) were still in the ring after its consumers were told Disconnected \
                 (a receiver reported Disconnected while a published message was in the ring)",
                ch.name(),
                leftovers.len()
            ));
        }
        let seen = if leftovers.is_empty() { seen } else { w.seen[i].to_vec() };
        let intents = w.intents[i].to_vec();
        let mut dup = 0u64;
        let mut delivered = 0u64;
        let mut missing_in_flight = 0u64;
        let mut missing_other = Vec::new();
        for (p, &last) in intents.iter().enumerate() {
            for seq in 1..=last.min(MAX_SEQ - 1) {
                let n = seen[p * MAX_SEQ as usize + seq as usize];
                match n {
                    0 if report.in_flight[i].contains(&(p, seq)) || seq == last => missing_in_flight += 1,
                    0 => missing_other.push((p, seq)),
                    1 => delivered += 1,
                    _ => {
                        dup += 1;
                        delivered += 1;
                    }
                }
            }
            // Anything counted past the last intent was never sent.
            let beyond = (last + 1..MAX_SEQ).filter(|&s| seen[p * MAX_SEQ as usize + s as usize] != 0).count();
            if beyond > 0 {
                report.violation(format!(
                    "{}: {beyond} message(s) of producer {p} delivered past its last sequence number {last}",
                    ch.name()
                ));
            }
        }
        let lost = lost_of(w, ch);
        let missing = missing_in_flight + missing_other.len() as u64;
        let (pk, ck) = (report.prod_kills[i], report.cons_kills[i]);
        if dup > 0 {
            report.violation(format!("{}: {dup} message(s) delivered more than once", ch.name()));
        }
        if missing_other.len() as u64 > ck {
            let first: Vec<String> = missing_other.iter().take(5).map(|(p, s)| format!("{p}:{s}")).collect();
            report.violation(format!(
                "{}: {} message(s) neither delivered nor in flight at a producer's kill, more than the {ck} \
                 consumer kill(s) can explain (producer:seq {}...)",
                ch.name(),
                missing_other.len(),
                first.join(", ")
            ));
        }
        if lost > missing {
            report.violation(format!("{}: lost() = {lost} but only {missing} message(s) are missing", ch.name()));
        }
        if lost > pk + ck {
            report.violation(format!("{}: lost() = {lost} but there were only {} kill(s) on it", ch.name(), pk + ck));
        }
        if ch == Ch::Joinable {
            let unfinished = w.joinable.unfinished_tasks();
            println!("torture: unfinished_tasks() of joinable at the end {unfinished} (at most {ck}: consumer kills)");
            // Items got but never task_done: only by consumers killed in between.
            if unfinished > ck {
                report.violation(format!(
                    "joinable: unfinished_tasks() = {unfinished} after every item was taken, more than the {ck} \
                     consumer kill(s) between get and task_done can explain"
                ));
            }
        }
        println!(
            "torture: {:<8} sent {:>8}, delivered {delivered:>8}, lost() {lost}, in flight at a kill or stop {missing_in_flight}, \
             taken by a killed consumer {}, duplicates {dup}, leftovers {}, kills {pk} producer / {ck} consumer",
            ch.name(),
            intents.iter().sum::<u64>(),
            missing_other.len(),
            leftovers.len()
        );
    }
}

fn seen_add(seen: &Array<u8>, p: usize, seq: u64) {
    seen.fetch_add(p * MAX_SEQ as usize + seq as usize, 1);
}

fn lost_of(w: &World, ch: Ch) -> u64 {
    match ch {
        Ch::Spsc => 0,
        Ch::Mpmc => w.mpmc.lost(),
        Ch::Queue => w.queue.lost(),
        Ch::Bytes => w.bytes.lost(),
        Ch::Joinable => w.joinable.lost(),
    }
}

/// Whatever is still in `ch` once its consumers have finished.
fn drain_leftovers(w: &World, ch: Ch) -> Vec<u64> {
    let t = Duration::from_millis(500);
    let mut out = Vec::new();
    match ch {
        Ch::Spsc => {
            if let Ok(mut rx) = w.spsc.consumer() {
                while let Ok(v) = rx.pop_timeout(t) {
                    out.push(v);
                }
            }
        }
        Ch::Mpmc => {
            let rx = w.mpmc.receiver();
            while let Ok(v) = rx.recv_timeout(t) {
                out.push(v);
            }
        }
        Ch::Queue => {
            while let Ok(v) = w.queue.get_timeout(t) {
                out.push(v);
            }
        }
        Ch::Bytes => {
            while let Ok(m) = w.bytes.get_timeout(t) {
                out.push(worker::decode_bytes(&m).unwrap_or(0));
            }
        }
        Ch::Joinable => {
            while let Ok(v) = w.joinable.get_timeout(t) {
                let _ = w.joinable.task_done();
                out.push(v);
            }
        }
    }
    out
}

/// Whether a `lock_timeout` took the lock over from a dead holder; an error
/// if it timed out.
fn owner_died<G>(r: Result<G, LockTimeoutError<G>>) -> Result<bool, String> {
    match r {
        Ok(_) => Ok(false),
        Err(LockTimeoutError::OwnerDied(_)) => Ok(true),
        Err(LockTimeoutError::Timeout) => Err("lock_timeout timed out".into()),
    }
}

/// Every lock usable, semaphores back at their counts.
fn check_sync(w: &World, report: &mut Report) {
    let t = Duration::from_secs(10);
    let names = w.names.clone();
    let (lock, rlock, cond, array) = (names.of("lock"), names.of("rlock"), names.of("cond"), names.of("array"));
    // Each on a helper thread: a wedged lock must not wedge the supervisor.
    let checks: Vec<(&str, Option<Result<bool, String>>)> = vec![
        (
            "Lock",
            within(t + SLACK, move || {
                let l = Lock::open(&lock).map_err(|e| e.to_string())?;
                let r = owner_died(l.lock_timeout(t));
                r
            }),
        ),
        (
            "RLock",
            within(t + SLACK, move || {
                let l = RLock::open(&rlock).map_err(|e| e.to_string())?;
                let r = owner_died(l.lock_timeout(t));
                r
            }),
        ),
        (
            "Condition",
            within(t + SLACK, move || {
                let c = Condition::open(&cond).map_err(|e| e.to_string())?;
                let r = owner_died(c.lock_timeout(t));
                c.notify_all();
                r
            }),
        ),
        (
            "Array",
            within(t + SLACK, move || {
                let a = Array::<u64>::open(&array).map_err(|e| e.to_string())?;
                let g = a.lock();
                Ok(g.owner_died())
            }),
        ),
    ];
    for (what, r) in checks {
        match r {
            None => report.violation(format!("{what}: still not lockable after {:?} at the end", t + SLACK)),
            Some(Err(e)) => report.violation(format!("{what}: not usable at the end: {e}")),
            Some(Ok(died)) => report.owner_died_at_end += u64::from(died),
        }
    }

    report.recovered_permits = w.sem.recover_dead() + w.bsem.recover_dead();
    for (what, value, want, take) in [
        ("Semaphore", w.sem.value(), SEM_PERMITS, &|| w.sem.try_acquire() as usize as u64),
        ("BoundedSemaphore", w.bsem.value(), BSEM_PERMITS, &|| w.bsem.try_acquire() as usize as u64),
    ] as [(&str, usize, usize, &dyn Fn() -> u64); 2]
    {
        if value != want {
            report.violation(format!("{what}: value() = {value} at the end, want its initial {want}"));
        }
        let got: u64 = (0..want).map(|_| take()).sum();
        if got != want as u64 {
            report.violation(format!("{what}: only {got} of its {want} permits could be taken at the end"));
        }
    }
    for _ in 0..SEM_PERMITS {
        w.sem.release();
    }
    for _ in 0..BSEM_PERMITS {
        if let Err(e) = w.bsem.release() {
            report.violation(format!("BoundedSemaphore: release at the end: {e}"));
        }
    }
    w.event.set();
    if !w.event.wait_timeout(t) {
        report.violation("Event: wait_timeout on a set event timed out".into());
    }
    w.barrier.reset();
    if w.barrier.is_broken() {
        report.violation("Barrier: still broken after reset".into());
    }
}

fn print_figures(a: &Args, w: &World, r: &Report, stats: &[u64], kills: u64) {
    let s = |k: Stat| stats[k as usize];
    let by_role: Vec<String> = r.kills.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("torture: kills {kills} ({})", by_role.join(", "));
    println!(
        "torture: messages sent {} received {}, pipe round trips {}",
        s(Stat::Sent),
        s(Stat::Received),
        s(Stat::PipeMessages)
    );
    println!(
        "torture: recoveries: OwnerDied seen {} (+{} at the end), roles taken over {}, peers seen gone {}, \
         pipe peer deaths noticed {}, barrier breaks {}, permits of dead holders returned at the end {}",
        s(Stat::OwnerDied),
        r.owner_died_at_end,
        s(Stat::RolesTaken),
        s(Stat::Disconnects),
        s(Stat::PipePeerDeaths),
        s(Stat::BarrierBreaks),
        r.recovered_permits
    );
    println!(
        "torture: rounds: locks {}, semaphores {}, event waits {}, condition wakeups {}, barrier {}, seqlock reads {}",
        s(Stat::LockRounds),
        s(Stat::SemRounds),
        s(Stat::EventWaits),
        s(Stat::CondWakeups),
        s(Stat::BarrierRounds),
        s(Stat::SeqlockReads)
    );
    println!(
        "torture: violations: {} by workers, {} by the supervisor; seed {}, --procs {}, {} s; unexpected exits {}",
        s(Stat::Violations),
        r.violations.len(),
        a.seed,
        w.procs,
        a.seconds,
        r.unexpected_exits
    );
}

/// Unlinks every segment of this run still in /dev/shm (those of killed
/// workers, such as their pipes).
fn remove_leftovers(prefix: &str) {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else { return };
    for e in dir.flatten() {
        if let Some(n) = e.file_name().to_str() {
            if n.starts_with(prefix) {
                let _ = ringshm::unlink(n);
            }
        }
    }
}

/// Used by workers: the pipe they create for one echo child.
pub fn pipe_name(names: &Names, pid: u32, n: u64) -> String {
    names.of(&format!("pipe-{pid}-{n}"))
}
