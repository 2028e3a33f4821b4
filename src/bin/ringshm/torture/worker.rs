//! One torture worker process: a role played until told to stop (or killed).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringshm::{
    mpmc, spsc, Array, Barrier, BarrierError, BoundedSemaphore, ByteQueue, Condition, Error, Event, GetError,
    JoinableQueue, Lock, LockTimeoutError, Pipe, PipeSendError, PutBytesError, PutError, Queue, RLock,
    RecvTimeoutError, Semaphore, SendTimeoutError, TryRecvError, TrySendError, Value,
};

use super::{
    decode, encode, pipe_name, worker_seed, Ch, Names, Rng, Role, Stat, ARRAY_LEN, BOUND, DRAIN, MAX_SEQ, POLL, RUN,
    SLACK, STATS, WORKER_CMD,
};
use crate::{usage, Failure};

/// What every role needs: the run's names, the stop word, the statistics.
struct Ctx {
    names: Names,
    who: String,
    procs: usize,
    idx: usize,
    rng: Rng,
    stop: Value<u64>,
    stats: Array<u64>,
    local: [u64; STATS],
    pending: u64,
}

impl Ctx {
    fn stop(&self) -> u64 {
        self.stop.load()
    }
    fn running(&self) -> bool {
        self.stop() == RUN
    }
    /// Counts `n` of `what`, flushed to the shared array now and then.
    fn count(&mut self, what: Stat, n: u64) {
        self.local[what as usize] += n;
        self.pending += n;
        if self.pending >= 256 {
            self.flush();
        }
    }
    fn flush(&mut self) {
        for (i, v) in self.local.iter_mut().enumerate() {
            if *v != 0 {
                self.stats.fetch_add(i, *v);
                *v = 0;
            }
        }
        self.pending = 0;
    }
    fn violation(&mut self, msg: impl AsRef<str>) {
        eprintln!("torture: VIOLATION [{} pid {}]: {}", self.who, std::process::id(), msg.as_ref());
        self.stats.fetch_add(Stat::Violations as usize, 1);
    }
    /// Sleeps up to `max_us` microseconds, once in `one_in` calls: gives
    /// the other processes (and the kills) a chance at odd moments.
    fn pause(&mut self, one_in: u64, max_us: u64) {
        if self.rng.one_in(one_in) {
            std::thread::sleep(self.rng.micros(max_us));
        }
    }
    /// Runs a call bounded by `bound`; reports it if it returned later than
    /// `bound` plus [`SLACK`].
    fn timed<R>(&mut self, what: &str, bound: Duration, f: impl FnOnce() -> R) -> R {
        let t0 = Instant::now();
        let r = f();
        let took = t0.elapsed();
        if took > bound + SLACK {
            self.violation(format!("{what} returned after {took:?}, its timeout was {bound:?}"));
        }
        r
    }
    /// Tracks how long something has been failing; reports it once past
    /// [`BOUND`].
    fn stuck_since(&mut self, since: &mut Option<Instant>, failing: bool, what: &str) {
        if !failing {
            *since = None;
            return;
        }
        let t0 = *since.get_or_insert_with(Instant::now);
        if t0.elapsed() > BOUND {
            self.violation(format!("{what} for {:?} while peers are restarted within milliseconds", t0.elapsed()));
            *since = None;
        }
    }
}

/// `ringshm __torture-worker PREFIX ROLE IDX PROCS SEED START [ARG]`.
pub fn worker(args: &[String]) -> Result<(), Failure> {
    let [prefix, role, idx, procs, seed, start, extra @ ..] = args else {
        return Err(usage("torture worker: wrong arguments (started by `ringshm torture` only)"));
    };
    let num = |s: &String| s.parse::<u64>().map_err(|_| usage(format!("torture worker: bad number {s:?}")));
    let role_name = role.as_str();
    let (idx, procs, seed, start) = (num(idx)? as usize, num(procs)? as usize, num(seed)?, num(start)?);
    let names = Names::new(prefix);
    let who = format!("{role_name}#{idx}");
    let open_err = |what: &str, e: Error| Failure::failed(format!("torture: VIOLATION [{who}]: open {what}: {e}"));
    let mut cx = Ctx {
        stop: Value::open(&names.of("stop")).map_err(|e| open_err("stop", e))?,
        stats: Array::open(&names.of("stats")).map_err(|e| open_err("stats", e))?,
        rng: Rng::new(worker_seed(seed, Role::parse(role_name).unwrap_or(Role::Pipe), idx, start)),
        names,
        who: who.clone(),
        procs,
        idx,
        local: [0; STATS],
        pending: 0,
    };
    if role_name == "pipe-echo" {
        let [pipe] = extra else { return Err(usage("pipe-echo needs the pipe's name")) };
        pipe_echo(&mut cx, pipe);
        cx.flush();
        return Ok(());
    }
    // Die with the supervisor (not for pipe-echo: it must notice its peer's
    // death through the pipe).
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let role = Role::parse(role_name).ok_or_else(|| usage(format!("torture worker: unknown role {role_name:?}")))?;
    let r = match role {
        Role::Producer(ch) => producer(&mut cx, ch),
        Role::Consumer(ch) => consumer(&mut cx, ch),
        Role::Pipe => pipe(&mut cx, start),
        Role::Locker => locker(&mut cx),
        Role::Sem => sem(&mut cx),
        Role::EventSetter => event_setter(&mut cx),
        Role::EventWaiter => event_waiter(&mut cx),
        Role::CondNotifier => cond_notifier(&mut cx),
        Role::CondWaiter => cond_waiter(&mut cx),
        Role::BarrierParty => barrier(&mut cx),
    };
    cx.flush();
    r.map_err(|e| {
        cx.violation(format!("cannot open its objects: {e}"));
        Failure::failed(format!("torture worker {who}: {e}"))
    })
}

// ---------------------------------------------------------------------------
// Channels.

/// Outcome of a bounded send.
enum Sent {
    Ok,
    Timeout,
    /// Nobody on the other side right now (all killed), or closed.
    Gone,
}

/// Outcome of a bounded receive.
enum Got {
    Item(u64),
    Timeout,
    Gone,
    Garbled(String),
}

enum Tx {
    Spsc(spsc::Producer<u64>),
    Mpmc(mpmc::Sender<u64>),
    Queue(Queue<u64>),
    Bytes(ByteQueue),
    Joinable(JoinableQueue<u64>),
}

enum Rx {
    Spsc(spsc::Consumer<u64>),
    Mpmc(mpmc::Receiver<u64>),
    Queue(Queue<u64>),
    Bytes(ByteQueue),
    Joinable(JoinableQueue<u64>),
}

/// A byte message: the `u64` and a filler that depends on it, so that a
/// torn or misframed message is noticed.
fn encode_bytes(v: u64) -> Vec<u8> {
    let mut m = v.to_le_bytes().to_vec();
    m.extend((0..(v % 41) as u8).map(|i| (v as u8) ^ i.wrapping_mul(7)));
    m
}

/// The inverse of [`encode_bytes`].
pub fn decode_bytes(m: &[u8]) -> Option<u64> {
    let v = u64::from_le_bytes(m.get(..8)?.try_into().ok()?);
    (m.len() == 8 + (v % 41) as usize
        && m[8..].iter().enumerate().all(|(i, &b)| b == (v as u8) ^ (i as u8).wrapping_mul(7)))
    .then_some(v)
}

/// Takes a single-holder role, waiting while the kernel still counts a
/// just-killed holder (it is reaped before we start, so this is brief).
fn take_role<T>(cx: &mut Ctx, what: &str, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let t0 = Instant::now();
    loop {
        match f() {
            Ok(v) => {
                cx.count(Stat::RolesTaken, 1);
                return Ok(v);
            }
            Err(Error::RoleTaken { .. }) if t0.elapsed() < BOUND => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                if matches!(e, Error::RoleTaken { .. }) {
                    cx.violation(format!("the {what} role is still taken {BOUND:?} after its holder was killed"));
                }
                return Err(e);
            }
        }
    }
}

fn open_tx(cx: &mut Ctx, ch: Ch) -> Result<Tx, Error> {
    let name = cx.names.chan(ch);
    Ok(match ch {
        Ch::Spsc => Tx::Spsc(take_role(cx, "spsc producer", || spsc::Ring::<u64>::open(&name)?.producer())?),
        Ch::Mpmc => Tx::Mpmc(mpmc::Ring::<u64>::open(&name)?.sender()),
        Ch::Queue => Tx::Queue(Queue::open(&name)?),
        Ch::Bytes => Tx::Bytes(ByteQueue::open(&name)?),
        Ch::Joinable => Tx::Joinable(JoinableQueue::open(&name)?),
    })
}

fn open_rx(cx: &mut Ctx, ch: Ch) -> Result<Rx, Error> {
    let name = cx.names.chan(ch);
    Ok(match ch {
        Ch::Spsc => Rx::Spsc(take_role(cx, "spsc consumer", || spsc::Ring::<u64>::open(&name)?.consumer())?),
        Ch::Mpmc => Rx::Mpmc(mpmc::Ring::<u64>::open(&name)?.receiver()),
        Ch::Queue => Rx::Queue(Queue::open(&name)?),
        Ch::Bytes => Rx::Bytes(ByteQueue::open(&name)?),
        Ch::Joinable => Rx::Joinable(JoinableQueue::open(&name)?),
    })
}

impl Tx {
    /// `send_timeout(v, t)`, or `try_send(v)` when `t` is `None` (then a full
    /// ring is [`Sent::Timeout`] too: the caller retries).
    fn send(&mut self, v: u64, t: Option<Duration>) -> Sent {
        let put = |r: Result<(), PutError<u64>>| match r {
            Ok(()) => Sent::Ok,
            Err(PutError::Full(_)) => Sent::Timeout,
            Err(_) => Sent::Gone,
        };
        let timed = |r: Result<(), SendTimeoutError<u64>>| match r {
            Ok(()) => Sent::Ok,
            Err(SendTimeoutError::Timeout(_)) => Sent::Timeout,
            Err(SendTimeoutError::Disconnected(_)) => Sent::Gone,
        };
        let tried = |r: Result<(), TrySendError<u64>>| match r {
            Ok(()) => Sent::Ok,
            Err(TrySendError::Full(_)) => Sent::Timeout,
            Err(TrySendError::Disconnected(_)) => Sent::Gone,
        };
        match (self, t) {
            (Tx::Spsc(p), Some(t)) => timed(p.push_timeout(v, t)),
            (Tx::Spsc(p), None) => tried(p.try_push(v)),
            (Tx::Mpmc(s), Some(t)) => timed(s.send_timeout(v, t)),
            (Tx::Mpmc(s), None) => tried(s.try_send(v)),
            (Tx::Queue(q), Some(t)) => put(q.put_timeout(v, t)),
            (Tx::Queue(q), None) => put(q.try_put(v)),
            (Tx::Joinable(q), Some(t)) => put(q.put_timeout(v, t)),
            (Tx::Joinable(q), None) => put(q.try_put(v)),
            (Tx::Bytes(q), t) => {
                let m = encode_bytes(v);
                match t.map_or_else(|| q.try_put(&m), |t| q.put_timeout(&m, t)) {
                    Ok(()) => Sent::Ok,
                    Err(PutBytesError::Full) => Sent::Timeout,
                    Err(_) => Sent::Gone,
                }
            }
        }
    }
}

impl Rx {
    /// `recv_timeout(t)`, or `try_recv()` when `t` is `None` (then an empty
    /// ring is [`Got::Timeout`]).
    fn recv(&mut self, t: Option<Duration>) -> Got {
        let get = |r: Result<u64, GetError>| match r {
            Ok(v) => Got::Item(v),
            Err(GetError::Empty) => Got::Timeout,
            Err(_) => Got::Gone,
        };
        let timed = |r: Result<u64, RecvTimeoutError>| match r {
            Ok(v) => Got::Item(v),
            Err(RecvTimeoutError::Timeout) => Got::Timeout,
            Err(_) => Got::Gone,
        };
        let tried = |r: Result<u64, TryRecvError>| match r {
            Ok(v) => Got::Item(v),
            Err(TryRecvError::Empty) => Got::Timeout,
            Err(_) => Got::Gone,
        };
        match (self, t) {
            (Rx::Spsc(c), Some(t)) => timed(c.pop_timeout(t)),
            (Rx::Spsc(c), None) => tried(c.try_pop()),
            (Rx::Mpmc(r), Some(t)) => timed(r.recv_timeout(t)),
            (Rx::Mpmc(r), None) => tried(r.try_recv()),
            (Rx::Queue(q), Some(t)) => get(q.get_timeout(t)),
            (Rx::Queue(q), None) => get(q.try_get()),
            (Rx::Joinable(q), Some(t)) => get(q.get_timeout(t)),
            (Rx::Joinable(q), None) => get(q.try_get()),
            (Rx::Bytes(q), t) => match t.map_or_else(|| q.try_get(), |t| q.get_timeout(t)) {
                Ok(m) => match decode_bytes(&m) {
                    Some(v) => Got::Item(v),
                    None => Got::Garbled(format!("a {}-byte message that no producer wrote: {m:02x?}", m.len())),
                },
                Err(GetError::Empty) => Got::Timeout,
                Err(_) => Got::Gone,
            },
        }
    }
}

fn producer(cx: &mut Ctx, ch: Ch) -> Result<(), Error> {
    let p = cx.idx;
    let intent = Array::<u64>::open(&cx.names.intent(ch))?;
    let mut tx = open_tx(cx, ch)?;
    // Resume after the number that was in flight when the last one died.
    let mut seq = intent.get(p).unwrap_or(0) + 1;
    let mut gone_since = None;
    while cx.running() {
        if seq >= MAX_SEQ {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        intent.set(p, seq);
        // Now and then the try_ form, retried while full.
        let bound = (!cx.rng.one_in(8)).then_some(BOUND);
        let what = format!("{} send_timeout", ch.name());
        match cx.timed(&what, BOUND, || tx.send(encode(p, seq), bound)) {
            Sent::Ok => {
                cx.count(Stat::Sent, 1);
                seq += 1;
                cx.stuck_since(&mut gone_since, false, "");
            }
            Sent::Timeout if bound.is_none() => std::thread::yield_now(),
            Sent::Timeout => cx.violation(format!(
                "{} send_timeout({BOUND:?}) timed out: consumers run and restart within milliseconds",
                ch.name()
            )),
            Sent::Gone => {
                cx.count(Stat::Disconnects, 1);
                cx.stuck_since(&mut gone_since, true, &format!("{} sends say every consumer is gone", ch.name()));
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        cx.pause(32, 300);
    }
    Ok(())
}

fn consumer(cx: &mut Ctx, ch: Ch) -> Result<(), Error> {
    let (producers, _) = ch.sides(cx.procs);
    let seen = Array::<u8>::open(&cx.names.seen(ch))?;
    let mut rx = open_rx(cx, ch)?;
    let mut gone_since = None;
    let mut drain_started = None;
    loop {
        let stop = cx.stop();
        let what = format!("{} receive", ch.name());
        let poll = (!cx.rng.one_in(8)).then_some(POLL);
        match cx.timed(&what, POLL, || rx.recv(poll)) {
            Got::Item(v) => {
                cx.stuck_since(&mut gone_since, false, "");
                match decode(v, producers) {
                    Some((p, seq)) => {
                        seen.fetch_add(p * MAX_SEQ as usize + seq as usize, 1);
                        cx.count(Stat::Received, 1);
                    }
                    None => cx.violation(format!("{}: received {v:#x}, which no producer sent", ch.name())),
                }
                if let Rx::Joinable(q) = &rx {
                    if let Err(e) = q.task_done() {
                        cx.violation(format!("joinable: task_done after a get failed: {e}"));
                    }
                }
            }
            Got::Garbled(m) => cx.violation(format!("{}: {m}", ch.name())),
            Got::Timeout if poll.is_none() => std::thread::sleep(Duration::from_micros(50)),
            Got::Timeout => {}
            Got::Gone if stop == DRAIN => return Ok(()),
            Got::Gone => {
                cx.count(Stat::Disconnects, 1);
                let what = format!("{} receives say every producer is gone", ch.name());
                cx.stuck_since(&mut gone_since, true, &what);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if stop == DRAIN {
            let t0 = *drain_started.get_or_insert_with(Instant::now);
            if t0.elapsed() > BOUND {
                cx.violation(format!(
                    "{}: producers gone and the queue closed {BOUND:?} ago, yet no Disconnected",
                    ch.name()
                ));
                return Ok(());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Pipe: a worker with echo children of its own, some of which it kills.

/// How a pipe call ended, for the checks.
fn pipe(cx: &mut Ctx, start: u64) -> Result<(), Error> {
    let exe =
        std::env::current_exe().map_err(|e| Error::Io { name: "torture".into(), op: "current_exe", source: e })?;
    let mut n = start * 1_000_000;
    while cx.running() {
        n += 1;
        let name = pipe_name(&cx.names, std::process::id(), n);
        let a = Pipe::create(&name, 4096)?;
        let spawned = Command::new(&exe)
            .args([WORKER_CMD, cx.names.prefix(), "pipe-echo", "0", &cx.procs.to_string(), "0", "0", &name])
            .stdin(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                eprintln!("torture: cannot start a pipe echo child: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let rounds = 2 + cx.rng.below(200);
        // Only after a round trip: a child killed before it attached was
        // never a peer, and waiting for one that never came is no failure.
        let kill_at = cx.rng.one_in(2).then(|| 1 + cx.rng.below(rounds - 1));
        let mut killed = false;
        for i in 0..rounds {
            if !cx.running() {
                break;
            }
            let len = cx.rng.below(300) as usize;
            let msg: Vec<u8> = (0..len).map(|k| (i as u8).wrapping_add(k as u8).wrapping_mul(31)).collect();
            if kill_at == Some(i) {
                // Kill the echo child, perhaps with this message in flight:
                // its echo may come back, then the pipe must say Disconnected.
                let in_flight = cx.rng.one_in(2) && a.send_bytes_timeout(&msg, BOUND).is_ok();
                kill(&mut child);
                killed = true;
                pipe_after_kill(cx, &a, in_flight.then_some(&msg[..]));
                break;
            }
            match cx.timed("pipe send_bytes_timeout", BOUND, || a.send_bytes_timeout(&msg, BOUND)) {
                Ok(()) => {}
                Err(e) => {
                    cx.violation(format!("pipe: send to a live echo child failed: {e}"));
                    break;
                }
            }
            match cx.timed("pipe recv_bytes_timeout", BOUND, || a.recv_bytes_timeout(BOUND)) {
                Ok(m) if m == msg => cx.count(Stat::PipeMessages, 1),
                Ok(m) => {
                    cx.violation(format!("pipe: sent {} bytes, the echo was {} different bytes", msg.len(), m.len()));
                    break;
                }
                Err(e) => {
                    cx.violation(format!("pipe: receive from a live echo child failed: {e}"));
                    break;
                }
            }
        }
        if !killed {
            // Closing our end ends the child (it sees Disconnected).
            drop(a);
            wait_bounded(cx, child);
        }
    }
    Ok(())
}

/// After the echo child was SIGKILLed: at most the echo of `in_flight`, then
/// `Disconnected` — never a timeout.
fn pipe_after_kill(cx: &mut Ctx, a: &Pipe, in_flight: Option<&[u8]>) {
    for _ in 0..2 {
        match cx.timed("pipe recv after the peer's death", BOUND, || a.recv_bytes_timeout(BOUND)) {
            Ok(m) if in_flight == Some(&m[..]) => cx.count(Stat::PipeMessages, 1),
            Ok(m) => {
                cx.violation(format!("pipe: after the peer's death, a {}-byte message it never sent", m.len()));
                return;
            }
            Err(RecvTimeoutError::Disconnected) => {
                cx.count(Stat::PipePeerDeaths, 1);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                cx.violation(format!("pipe: peer SIGKILLed, yet recv_bytes_timeout({BOUND:?}) timed out"));
                return;
            }
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits for a child that should exit by itself soon.
fn wait_bounded(cx: &mut Ctx, mut child: Child) {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return,
            Ok(Some(st)) => {
                cx.violation(format!("pipe echo child ended with {st}"));
                return;
            }
            Ok(None) if t0.elapsed() > BOUND + SLACK => {
                cx.violation("pipe echo child did not exit after its peer closed the pipe");
                kill(&mut child);
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => return,
        }
    }
}

/// The echo child: returns every message until the pipe says Disconnected.
fn pipe_echo(cx: &mut Ctx, name: &str) {
    let b = match Pipe::open(name) {
        Ok(b) => b,
        // Its parent was killed before we attached, and the name is gone:
        // nothing to echo.
        Err(Error::NotFound { .. }) => return,
        Err(e) => {
            cx.violation(format!("pipe echo: open: {e}"));
            return;
        }
    };
    loop {
        match cx.timed("pipe echo recv", BOUND, || b.recv_bytes_timeout(BOUND)) {
            Ok(m) => match b.send_bytes_timeout(&m, BOUND) {
                Ok(()) => {}
                Err(PipeSendError::Disconnected | PipeSendError::Closed) => return,
                Err(e) => {
                    cx.violation(format!("pipe echo: send: {e}"));
                    return;
                }
            },
            Err(RecvTimeoutError::Disconnected) => return,
            Err(e) => {
                cx.violation(format!(
                    "pipe echo: recv_bytes_timeout({BOUND:?}): {e} (its peer died or went quiet and it was not told)"
                ));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Locks and cells.

/// Takes `lock_timeout`'s result apart: the guard, and whether the holder died.
fn acquired<G>(cx: &mut Ctx, what: &str, r: Result<G, LockTimeoutError<G>>) -> Option<(G, bool)> {
    match r {
        Ok(g) => Some((g, false)),
        Err(LockTimeoutError::OwnerDied(e)) => {
            cx.count(Stat::OwnerDied, 1);
            Some((e.into_inner(), true))
        }
        Err(LockTimeoutError::Timeout) => {
            cx.violation(format!("{what}: lock_timeout({BOUND:?}) timed out; holders hold it for microseconds"));
            None
        }
    }
}

/// The critical section: `data` is `[n, n]` between holders; a holder
/// writes `[n + 1, n]` then `[n + 1, n + 1]`, so a half-done update is
/// visible only if a holder died in between (and then we were told).
fn critical(cx: &mut Ctx, what: &str, data: &Value<[u64; 2]>, died: bool) {
    let [a, b] = data.load();
    if a != b && !died {
        cx.violation(format!(
            "{what}: found its data half-updated ({a} vs {b}) without OwnerDied: two holders at once?"
        ));
    }
    let n = a.max(b) + 1;
    data.store([n, b]);
    cx.pause(4, 2000);
    data.store([n, n]);
}

fn locker(cx: &mut Ctx) -> Result<(), Error> {
    let lock = Lock::open(&cx.names.of("lock"))?;
    let rlock = RLock::open(&cx.names.of("rlock"))?;
    let data = Value::<[u64; 2]>::open(&cx.names.of("lock-data"))?;
    let rdata = Value::<[u64; 2]>::open(&cx.names.of("rlock-data"))?;
    let array = Array::<u64>::open(&cx.names.of("array"))?;
    let seqlock = Value::<[u64; 4]>::open(&cx.names.of("seqlock"))?;
    while cx.running() {
        match cx.rng.below(4) {
            0 => {
                let r = cx.timed("Lock::lock_timeout", BOUND, || lock.lock_timeout(BOUND));
                if let Some((g, died)) = acquired(cx, "Lock", r) {
                    critical(cx, "Lock", &data, died);
                    drop(g);
                }
            }
            1 => {
                let r = cx.timed("RLock::lock_timeout", BOUND, || rlock.lock_timeout(BOUND));
                if let Some((g, died)) = acquired(cx, "RLock", r) {
                    // Re-entrant: the owner takes it again at once.
                    match rlock.try_lock() {
                        Ok(inner) => {
                            critical(cx, "RLock", &rdata, died);
                            drop(inner);
                        }
                        Err(_) => cx.violation("RLock: its owner could not take it again"),
                    }
                    drop(g);
                }
            }
            2 => {
                let mut g = array.lock();
                let died = g.owner_died();
                if died {
                    cx.count(Stat::OwnerDied, 1);
                }
                let first = g[0];
                if !died && g.iter().any(|&x| x != first) {
                    let v = g.to_vec();
                    cx.violation(format!("Array: elements half-updated without owner_died: {v:?}"));
                }
                let n = g.iter().copied().max().unwrap_or(0) + 1;
                for i in 0..ARRAY_LEN {
                    g[i] = n;
                    if i == ARRAY_LEN / 2 {
                        cx.pause(4, 1000);
                    }
                }
            }
            _ => {
                if cx.rng.one_in(2) {
                    seqlock.store([cx.rng.next_u64(); 4].map(|x| x | 1));
                } else {
                    let v = seqlock.load();
                    cx.count(Stat::SeqlockReads, 1);
                    if v.iter().any(|&x| x != v[0]) {
                        cx.violation(format!("Value<[u64; 4]>: torn read {v:?}"));
                    }
                }
            }
        }
        cx.count(Stat::LockRounds, 1);
        cx.pause(16, 300);
    }
    Ok(())
}

fn sem(cx: &mut Ctx) -> Result<(), Error> {
    let sem = Semaphore::open(&cx.names.of("sem"))?;
    let bsem = BoundedSemaphore::open(&cx.names.of("bsem"))?;
    while cx.running() {
        let bounded = cx.rng.one_in(2);
        let got = if bounded {
            cx.timed("BoundedSemaphore::acquire_timeout", BOUND, || bsem.acquire_timeout(BOUND))
        } else {
            cx.timed("Semaphore::acquire_timeout", BOUND, || sem.acquire_timeout(BOUND))
        };
        if !got {
            cx.violation(format!(
                "{}: acquire_timeout({BOUND:?}) timed out; holders hold a permit for microseconds \
                 and a dead holder's permit must come back",
                if bounded { "BoundedSemaphore" } else { "Semaphore" }
            ));
            continue;
        }
        cx.pause(3, 1000);
        if bounded {
            if let Err(e) = bsem.release() {
                cx.violation(format!("BoundedSemaphore: release of a permit we hold failed: {e}"));
            }
        } else {
            sem.release();
        }
        cx.count(Stat::SemRounds, 1);
        cx.pause(16, 300);
    }
    Ok(())
}

fn event_setter(cx: &mut Ctx) -> Result<(), Error> {
    let ev = Event::open(&cx.names.of("event"))?;
    while cx.running() {
        ev.set();
        std::thread::sleep(Duration::from_millis(1 + cx.rng.below(10)));
        ev.clear();
        std::thread::sleep(cx.rng.micros(2000));
    }
    ev.set();
    Ok(())
}

fn event_waiter(cx: &mut Ctx) -> Result<(), Error> {
    let ev = Event::open(&cx.names.of("event"))?;
    let mut unset_since = None;
    while cx.running() {
        let set = cx.timed("Event::wait_timeout", POLL, || ev.wait_timeout(POLL));
        cx.stuck_since(&mut unset_since, !set, "Event::wait_timeout never saw the event set");
        if set {
            cx.count(Stat::EventWaits, 1);
            std::thread::sleep(cx.rng.micros(3000));
        }
    }
    Ok(())
}

fn cond_notifier(cx: &mut Ctx) -> Result<(), Error> {
    let cv = Condition::open(&cx.names.of("cond"))?;
    let tick = Value::<u64>::open(&cx.names.of("tick"))?;
    loop {
        let running = cx.running();
        let r = cx.timed("Condition::lock_timeout", BOUND, || cv.lock_timeout(BOUND));
        if let Some((g, _)) = acquired(cx, "Condition", r) {
            tick.fetch_add(1);
            if running && cx.rng.one_in(2) {
                cv.notify_one();
            } else {
                cv.notify_all();
            }
            drop(g);
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(cx.rng.micros(3000));
    }
}

fn cond_waiter(cx: &mut Ctx) -> Result<(), Error> {
    let cv = Condition::open(&cx.names.of("cond"))?;
    let tick = Value::<u64>::open(&cx.names.of("tick"))?;
    while cx.running() {
        let r = cx.timed("Condition::lock_timeout", BOUND, || cv.lock_timeout(BOUND));
        let Some((mut g, _)) = acquired(cx, "Condition", r) else { continue };
        let start = tick.load();
        let t0 = Instant::now();
        while cx.running() {
            let t1 = Instant::now();
            let (g2, timed_out) = match cv.wait_timeout(g, POLL) {
                Ok((g2, r)) => (g2, r.timed_out()),
                Err(e) => {
                    cx.count(Stat::OwnerDied, 1);
                    let (g2, r) = e.into_inner();
                    (g2, r.timed_out())
                }
            };
            g = g2;
            if t1.elapsed() > POLL + SLACK {
                cx.violation(format!("Condition::wait_timeout({POLL:?}) returned after {:?}", t1.elapsed()));
            }
            if tick.load() != start {
                cx.count(Stat::CondWakeups, 1);
                break;
            }
            if timed_out && t0.elapsed() > BOUND {
                cx.violation(format!(
                    "Condition: no wakeup for {:?} while the notifier ticks every few ms",
                    t0.elapsed()
                ));
                break;
            }
        }
        drop(g);
    }
    Ok(())
}

fn barrier(cx: &mut Ctx) -> Result<(), Error> {
    let bar = Barrier::open(&cx.names.of("barrier"))?;
    while cx.running() {
        let r = cx.timed("Barrier::wait_timeout", BOUND, || bar.wait_timeout(BOUND));
        if !cx.running() {
            break;
        }
        match r {
            Ok(_) => {
                cx.count(Stat::BarrierRounds, 1);
                std::thread::sleep(cx.rng.micros(500));
            }
            Err(BarrierError::Broken) => {
                cx.count(Stat::BarrierBreaks, 1);
                if bar.is_broken() {
                    bar.reset();
                }
            }
            Err(e) => {
                cx.violation(format!("Barrier::wait_timeout({BOUND:?}): {e}; parties restart within milliseconds"));
                if bar.is_broken() {
                    bar.reset();
                }
            }
        }
    }
    Ok(())
}
