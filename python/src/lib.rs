//! `ringshm._ringshm`: the Python extension over ringshm's public API. The
//! `ringshm` Python package subclasses or wraps these classes into
//! multiprocessing's objects (names, pickling as a name, typecodes, pipe
//! hand-overs); this module does the hot paths:
//!
//! * queues and pipes pickle objects themselves (`pickle.dumps`/`loads`),
//!   and carry a message longer than a queue's `max_message_bytes` or a
//!   pipe through a spill area (a persistent `Array<u8>` named in a short
//!   marker message);
//! * a lock taken over from a holder that died holding it is acquired all
//!   the same, with `owner_died` set and a `ringshm.OwnerDiedWarning`;
//! * every blocking call releases the GIL and waits in slices of at most
//!   [`SLICE`], calling `PyErr_CheckSignals` between slices, so Ctrl-C
//!   (`KeyboardInterrupt`) interrupts it within about 50 ms;
//! * the uncontended paths do no more than they must: `acquire`/`release`
//!   of `Lock`, `RLock` and `Condition` are bare C methods that try the lock
//!   with the GIL held and return (see `install_fast`), a lock's hold is a
//!   `Cell` under the GIL, and a synchronized `Value`'s `.value` is a
//!   descriptor of this module (see `SyncedValue`);
//! * every error is a Python exception carrying the Rust error's message:
//!   `queue.Full`/`queue.Empty`, `EOFError`, `BrokenPipeError`,
//!   `FileNotFoundError`, `FileExistsError`, `PermissionError`, `ValueError`,
//!   `threading.BrokenBarrierError`, `BlockingIOError` (a pipe end held by
//!   another live handle), `OSError`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::exceptions::{
    PyBlockingIOError, PyBrokenPipeError, PyEOFError, PyFileExistsError, PyFileNotFoundError, PyOSError,
    PyPermissionError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::{GILOnceCell, GILProtected};
use pyo3::types::{PyBytes, PyList};
use pyo3::PyClass;

use ringshm::{LockGuard, Options, PipeSendError, PutBytesError};

/// The longest a blocking call waits with the GIL released before it checks
/// for signals (Ctrl-C) and, for finite waits, its deadline.
const SLICE: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Errors

/// A `ringshm::Error` as the closest Python exception, with its message.
fn err(e: ringshm::Error) -> PyErr {
    let msg = e.to_string();
    match e {
        ringshm::Error::NotFound { .. } => PyFileNotFoundError::new_err(msg),
        ringshm::Error::AlreadyExists { .. } => PyFileExistsError::new_err(msg),
        ringshm::Error::PermissionDenied { .. } => PyPermissionError::new_err(msg),
        ringshm::Error::InvalidName { .. } | ringshm::Error::InvalidArgument { .. } => PyValueError::new_err(msg),
        // A live handle holds the role (a pipe end): retry once it is let go.
        ringshm::Error::RoleTaken { .. } => PyBlockingIOError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// An exception of a class from the standard library (`queue.Full`, ...).
fn std_exc(py: Python<'_>, module: &str, class: &str, msg: String) -> PyErr {
    match py.import(module).and_then(|m| m.getattr(class)).and_then(|c| c.call1((msg,))) {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// A cached attribute of a module (`pickle.dumps`, ...).
fn cached<'py>(
    py: Python<'py>,
    cell: &'static GILOnceCell<PyObject>,
    module: &str,
    attr: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    Ok(cell.get_or_try_init(py, || py.import(module)?.getattr(attr).map(Bound::unbind))?.bind(py))
}

static DUMPS: GILOnceCell<PyObject> = GILOnceCell::new();
static LOADS: GILOnceCell<PyObject> = GILOnceCell::new();
static OWNER_DIED: GILOnceCell<PyObject> = GILOnceCell::new();

/// `pickle.dumps(obj, HIGHEST_PROTOCOL)`.
fn dumps<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(cached(py, &DUMPS, "pickle", "dumps")?.call1((obj, 5))?.downcast_into::<PyBytes>()?)
}

/// `pickle.loads(data)`.
fn loads<'py>(py: Python<'py>, data: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyAny>> {
    cached(py, &LOADS, "pickle", "loads")?.call1((data,))
}

/// Issues `ringshm.OwnerDiedWarning` for the object named `name`.
fn warn_owner_died(py: Python<'_>, what: &str, name: &str) -> PyResult<()> {
    let cat = cached(py, &OWNER_DIED, "ringshm._common", "OwnerDiedWarning")?;
    let msg = std::ffi::CString::new(format!(
        "{what} '{name}': the previous holder died while holding it; this process holds it now \
         (check the data it protects; .owner_died is True)"
    ))
    .unwrap_or_default();
    PyErr::warn(py, cat, &msg, 1)
}

/// The marker that starts a message standing for a spill area (a byte array
/// of its own, for messages longer than a queue's `max_message_bytes` or a
/// pipe).
const SPILL_MARK: &[u8] = b"\x00RSHM-SPILL\x00";

static SPILLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Stores `data` in a new spill area; returns the marker message.
fn spill(owner: &str, data: &[u8]) -> PyResult<Vec<u8>> {
    let n = SPILLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    let mut name = format!("{owner}.s{pid}-{n}");
    if name.len() > 200 {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        name = format!("rshm-spill-{pid}-{n}-{t}");
    }
    ringshm::Array::<u8>::create_from_with(&name, data, &options(true)).map_err(err)?;
    let mut m = SPILL_MARK.to_vec();
    m.extend_from_slice(name.as_bytes());
    Ok(m)
}

/// The message `m` stands for: itself, or the contents of its spill area
/// (whose name is then removed).
fn unspill<'py>(py: Python<'py>, m: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    match m.strip_prefix(SPILL_MARK) {
        Some(name) => {
            let name = std::str::from_utf8(name).map_err(|_| PyValueError::new_err("corrupt spill marker"))?;
            spill_read(py, name)
        }
        None => Ok(PyBytes::new(py, m)),
    }
}

/// The bytes of a bytes-like object (`bytes` without a copy).
fn as_bytes<'py>(py: Python<'py>, buf: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    match buf.downcast::<PyBytes>() {
        Ok(b) => Ok(b.clone()),
        Err(_) => Ok(py.import("builtins")?.getattr("bytes")?.call1((buf,))?.downcast_into::<PyBytes>()?),
    }
}

fn closed_handle() -> PyErr {
    PyOSError::new_err("handle is closed")
}

// ---------------------------------------------------------------------------
// Waiting

/// `timeout` seconds from now (`None`: forever; negative counts as 0).
fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() => Err(PyValueError::new_err("timeout must be a number, not NaN")),
        Some(t) => {
            let d = Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::from_secs(100 * 365 * 24 * 3600));
            Ok(Instant::now().checked_add(d))
        }
    }
}

/// Set by `_exiting()`, which `ringshm` registers with `atexit`: the
/// interpreter is ending.
static EXITING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The thread that called `_exiting()` (it runs the atexit handlers and
/// finalizes the interpreter: it must be able to wait on).
static EXIT_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);
/// Threads inside a blocking call of this module now.
static BLOCKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `py.allow_threads(f)`, except at interpreter exit: a (daemon) thread
/// coming back for the GIL after the interpreter started finalizing is
/// ended with `pthread_exit`, which unwinds through these Rust frames and
/// aborts the process ("FATAL: exception not rethrown"). So once
/// `_exiting()` was called, a thread other than the exiting one never comes
/// back from a wait: it sleeps until the process ends (as Python 3.14 does
/// with such threads), having first dropped what its last slice got (a lock
/// taken is released; a message taken is lost, as it would be with the
/// thread).
fn released<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> R {
    struct Blocked;
    impl Drop for Blocked {
        fn drop(&mut self) {
            BLOCKED.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    fn park_if_exiting<R>(r: R) -> R {
        // Acquire: pairs with the Release store in `_exiting`.
        if EXITING.load(std::sync::atomic::Ordering::Acquire)
            && *lock(&EXIT_THREAD) != Some(std::thread::current().id())
        {
            drop(r);
            loop {
                std::thread::park();
            }
        }
        r
    }
    BLOCKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _blocked = Blocked;
    py.allow_threads(|| {
        park_if_exiting(());
        park_if_exiting(f())
    })
}

/// Called by `ringshm` at interpreter exit (`atexit`): from now on the
/// blocking calls of other threads never return (see [`released`]).
/// Returns how many threads are inside one: the caller then gives them a
/// slice to get there.
#[pyfunction]
fn _exiting() -> usize {
    *lock(&EXIT_THREAD) = Some(std::thread::current().id());
    // Release: pairs with the Acquire load in `released`.
    EXITING.store(true, std::sync::atomic::Ordering::Release);
    BLOCKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Calls `attempt(slice)` with the GIL released until it returns `Some`,
/// the deadline passes (`Ok(None)`), or a signal handler raises (Ctrl-C).
/// `attempt` waits at most `slice` itself.
fn blocking<R: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(Duration) -> Option<R> + Send,
) -> PyResult<Option<R>> {
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        if let Some(r) = released(py, || attempt(slice)) {
            return Ok(Some(r));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// How long a call may wait: `block=False` is "not at all", whatever the
/// timeout; otherwise `timeout` seconds (`None`: forever).
fn wait_deadline(block: bool, timeout: Option<f64>) -> PyResult<Option<Option<Instant>>> {
    if block {
        deadline(timeout).map(Some)
    } else {
        Ok(None)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn options(persist: bool) -> Options {
    Options::new().persist(persist)
}

// ---------------------------------------------------------------------------
// Guards kept across Python calls

/// A lock guard stored in a Python object between `acquire` and `release`.
///
/// ringshm's guards borrow their lock and are not `Send` (the lock belongs
/// to the thread that took it). Python's `multiprocessing.Lock` may be
/// released by another thread, and unlocking a ringshm lock is one atomic
/// swap on the shared word plus a futex wake (no thread-local state), so a
/// guard moved to another thread and dropped there releases the lock
/// correctly. The borrow is extended to `'static`: every `Held` lives in a
/// field declared *before* the `Arc` that owns the lock, so it is dropped
/// first, and the `Arc` is never replaced.
struct Held<G>(G);

impl<G> Held<G> {
    /// The guard (a method, so that closures capture the whole `Held`).
    fn into_inner(self) -> G {
        self.0
    }
}

// SAFETY: see the type's documentation: the guard only refers to an atomic
// word in a shared mapping kept alive by the owner's `Arc`, and releasing
// it from another thread is sound.
unsafe impl<G> Send for Held<G> {}

/// Extends a guard's borrow of `owner` to `'static`.
///
/// # Safety
/// The returned value must be dropped before `owner`'s `Arc` is (see
/// [`Held`]).
unsafe fn hold<'a, T, G: 'a, S>(_owner: &'a Arc<T>, g: G) -> Held<S> {
    assert_eq!(std::mem::size_of::<G>(), std::mem::size_of::<S>());
    // SAFETY: `G` and `S` are the same guard type up to its lifetime
    // parameter (sizes asserted); the caller keeps the lock alive.
    let s = unsafe { std::mem::transmute_copy::<G, S>(&g) };
    std::mem::forget(g);
    Held(s)
}

/// The state a robust lock acquisition ended in.
enum Got<G> {
    Clean(G),
    OwnerDied(G),
}

// ---------------------------------------------------------------------------
// ByteQueue

/// A named `ringshm::ByteQueue` (many producers and consumers of byte
/// messages), with the methods of `multiprocessing.Queue`: `put`/`get`
/// pickle, `put_bytes`/`get_bytes` do not; messages longer than
/// `max_message_bytes` go through a spill area (shorter ones stay in the
/// queue, whose memory follows what is queued). The handle that creates it also joins the
/// consumers' side at once, so that, as with a `multiprocessing.Queue`,
/// puts never fail for want of a consumer while the creating object lives.
#[pyclass(module = "ringshm._ringshm", frozen, subclass)]
struct ByteQueue {
    q: ringshm::ByteQueue,
    closed: std::sync::atomic::AtomicBool,
}

fn put_error(py: Python<'_>, e: PutBytesError) -> PyErr {
    let msg = e.to_string();
    match e {
        PutBytesError::Full => std_exc(py, "queue", "Full", msg),
        PutBytesError::Closed => PyValueError::new_err(msg),
        PutBytesError::Disconnected => PyBrokenPipeError::new_err(msg),
        PutBytesError::TooLarge { .. } => PyValueError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

fn get_error(py: Python<'_>, e: ringshm::GetError) -> PyErr {
    let msg = e.to_string();
    match e {
        ringshm::GetError::Empty => std_exc(py, "queue", "Empty", msg),
        ringshm::GetError::Disconnected => PyEOFError::new_err(msg),
    }
}

impl ByteQueue {
    fn wrap(q: ringshm::ByteQueue) -> Self {
        ByteQueue { q, closed: std::sync::atomic::AtomicBool::new(false) }
    }

    fn check_closed(&self) -> PyResult<()> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(PyValueError::new_err(format!("Queue '{}' is closed", self.q.name())));
        }
        Ok(())
    }

    fn put_msg(&self, py: Python<'_>, data: &[u8], block: bool, timeout: Option<f64>) -> PyResult<()> {
        self.check_closed()?;
        let spilled;
        let data = if data.len() > self.q.max_message_bytes() {
            spilled = spill(self.q.name(), data)?;
            &spilled[..]
        } else {
            data
        };
        match self.q.try_put(data) {
            Ok(()) => return Ok(()),
            Err(PutBytesError::Full) => {}
            Err(e) => return Err(put_error(py, e)),
        }
        let Some(d) = wait_deadline(block, timeout)? else {
            return Err(put_error(py, PutBytesError::Full));
        };
        let q = &self.q;
        let r = blocking(py, d, |s| match q.put_timeout(data, s) {
            Err(PutBytesError::Full) => None,
            r => Some(r),
        })?;
        r.unwrap_or(Err(PutBytesError::Full)).map_err(|e| put_error(py, e))
    }

    fn get_msg<'py>(&self, py: Python<'py>, block: bool, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        self.check_closed()?;
        let r = match self.q.try_get() {
            Err(ringshm::GetError::Empty) => {
                let Some(d) = wait_deadline(block, timeout)? else {
                    return Err(get_error(py, ringshm::GetError::Empty));
                };
                let q = &self.q;
                blocking(py, d, |s| match q.get_timeout(s) {
                    Err(ringshm::GetError::Empty) => None,
                    r => Some(r),
                })?
                .unwrap_or(Err(ringshm::GetError::Empty))
            }
            r => r,
        };
        match r {
            Ok(v) => unspill(py, &v),
            Err(e) => Err(get_error(py, e)),
        }
    }
}

#[pymethods]
impl ByteQueue {
    /// Creates (`create=True`) or opens the queue `name`.
    #[new]
    #[pyo3(signature = (name, capacity=0, max_message_bytes=0, create=true, persist=false))]
    fn py_new(name: &str, capacity: usize, max_message_bytes: usize, create: bool, persist: bool) -> PyResult<Self> {
        if create {
            Self::create(name, capacity, max_message_bytes, persist)
        } else {
            Self::open(name)
        }
    }

    /// Creates the queue `name` of `capacity` messages of up to
    /// `max_message_bytes` each.
    #[staticmethod]
    #[pyo3(signature = (name, capacity, max_message_bytes, persist=false))]
    fn create(name: &str, capacity: usize, max_message_bytes: usize, persist: bool) -> PyResult<Self> {
        let q = ringshm::ByteQueue::create_with(name, capacity, max_message_bytes, &options(persist)).map_err(err)?;
        // Join the consumers' side (the queue is empty: nothing is taken).
        let _ = q.try_get();
        Ok(ByteQueue::wrap(q))
    }

    /// Opens the existing queue `name`.
    #[staticmethod]
    fn open(name: &str) -> PyResult<Self> {
        Ok(ByteQueue::wrap(ringshm::ByteQueue::open(name).map_err(err)?))
    }

    /// Puts `obj` (pickled); `queue.Full` if there is no room (at once, or
    /// at the timeout).
    #[pyo3(signature = (obj, block=true, timeout=None))]
    fn put(&self, py: Python<'_>, obj: &Bound<'_, PyAny>, block: bool, timeout: Option<f64>) -> PyResult<()> {
        let data = dumps(py, obj)?;
        self.put_msg(py, data.as_bytes(), block, timeout)
    }

    fn put_nowait(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        self.put(py, obj, false, None)
    }

    /// Puts the bytes of `buf` as they are (no pickling).
    #[pyo3(signature = (buf, block=true, timeout=None))]
    fn put_bytes(&self, py: Python<'_>, buf: &Bound<'_, PyAny>, block: bool, timeout: Option<f64>) -> PyResult<()> {
        let b = as_bytes(py, buf)?;
        self.put_msg(py, b.as_bytes(), block, timeout)
    }

    /// Takes the oldest item (unpickled); `queue.Empty` if there is none (at
    /// once, or at the timeout); `EOFError` once it is empty and every
    /// producer is gone.
    #[pyo3(signature = (block=true, timeout=None))]
    fn get<'py>(&self, py: Python<'py>, block: bool, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.get_msg(py, block, timeout)?;
        loads(py, &m)
    }

    fn get_nowait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get(py, false, None)
    }

    /// Takes the oldest message as bytes (no unpickling).
    #[pyo3(signature = (block=true, timeout=None))]
    fn get_bytes<'py>(&self, py: Python<'py>, block: bool, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        self.get_msg(py, block, timeout)
    }

    /// Messages queued now.
    fn qsize(&self) -> usize {
        self.q.len()
    }
    fn empty(&self) -> bool {
        self.q.is_empty()
    }
    fn full(&self) -> bool {
        self.q.is_full()
    }
    /// No more puts or gets through this object (other handles, and other
    /// processes, are not affected).
    fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// Ends putting for every handle of every process (gets drain, then
    /// `EOFError`).
    fn close_all(&self) {
        self.q.close()
    }
    /// Does nothing: there is no feeder thread.
    fn join_thread(&self) {}
    /// Does nothing: there is no feeder thread.
    fn cancel_join_thread(&self) {}
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[getter]
    fn capacity(&self) -> usize {
        self.q.capacity()
    }
    #[getter]
    fn max_message_bytes(&self) -> usize {
        self.q.max_message_bytes()
    }
    /// Messages lost with processes killed in the middle of a put or get.
    #[getter]
    fn lost(&self) -> u64 {
        self.q.lost()
    }
    #[getter]
    fn name(&self) -> String {
        self.q.name().to_owned()
    }
}

/// Reads the byte array `name` and removes its name.
#[pyfunction]
fn spill_read<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
    let a = ringshm::Array::<u8>::open(name).map_err(err)?;
    let v = a.to_vec();
    drop(a);
    let _ = ringshm::unlink(name);
    Ok(PyBytes::new(py, &v))
}

/// Removes the name `name` (the objects stay usable by whoever has them
/// open). `FileNotFoundError` if there is no such name.
#[pyfunction]
fn unlink(name: &str) -> PyResult<()> {
    ringshm::unlink(name).map_err(err)
}

// ---------------------------------------------------------------------------
// Pipe

/// One end of a named `ringshm::Pipe`.
#[pyclass(module = "ringshm._ringshm", frozen)]
struct Conn {
    p: Mutex<Option<ringshm::Pipe>>,
    name: String,
    end: char,
    /// The longest message the pipe takes (longer ones are spilled).
    max: usize,
}

fn send_error(e: PipeSendError) -> PyErr {
    let msg = e.to_string();
    match e {
        PipeSendError::Disconnected => PyBrokenPipeError::new_err(msg),
        PipeSendError::TooLarge { .. } => PyValueError::new_err(msg),
        PipeSendError::Closed => closed_handle(),
        PipeSendError::WrongDirection => PyOSError::new_err(format!("connection is read-only: {msg}")),
        _ => PyOSError::new_err(msg),
    }
}

impl Conn {
    fn new(p: ringshm::Pipe) -> Self {
        let end = match p.end() {
            ringshm::End::A => 'A',
            _ => 'B',
        };
        Conn { name: p.name().to_owned(), end, max: p.max_message_len(), p: Mutex::new(Some(p)) }
    }

    fn with<R>(&self, f: impl FnOnce(&ringshm::Pipe) -> PyResult<R>) -> PyResult<R> {
        match &*lock(&self.p) {
            Some(p) if !p.is_closed() => f(p),
            _ => Err(closed_handle()),
        }
    }
}

#[pymethods]
impl Conn {
    /// Creates the pipe `name` and returns its end A.
    #[staticmethod]
    #[pyo3(signature = (name, capacity, duplex=true, persist=false))]
    fn create(name: &str, capacity: usize, duplex: bool, persist: bool) -> PyResult<Self> {
        let o = options(persist).duplex(duplex);
        Ok(Conn::new(ringshm::Pipe::create_with(name, capacity, &o).map_err(err)?))
    }

    /// Opens end `end` (`"A"` or `"B"`) of the existing pipe `name`.
    #[staticmethod]
    #[pyo3(signature = (name, end="B"))]
    fn open(name: &str, end: &str) -> PyResult<Self> {
        let e = match end {
            "A" => ringshm::End::A,
            "B" => ringshm::End::B,
            _ => return Err(PyValueError::new_err("end must be 'A' or 'B'")),
        };
        Ok(Conn::new(ringshm::Pipe::open_end(name, e).map_err(err)?))
    }

    /// Sends one message, waiting while the pipe is full; a message longer
    /// than the pipe goes through a spill area.
    fn send_bytes(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let spilled;
        let data = if data.len() > self.max {
            spilled = spill(&self.name, data)?;
            &spilled[..]
        } else {
            data
        };
        let first = self.with(|p| match p.try_send_bytes(data) {
            Err(PipeSendError::Full) => Ok(false),
            r => r.map(|()| true).map_err(send_error),
        })?;
        if first {
            return Ok(());
        }
        let m = &self.p;
        let r = blocking(py, None, |s| match &*lock(m) {
            Some(p) => match p.send_bytes_timeout(data, s) {
                Err(PipeSendError::Timeout) | Err(PipeSendError::Full) => None,
                r => Some(r),
            },
            None => Some(Err(PipeSendError::Closed)),
        })?;
        r.unwrap_or(Err(PipeSendError::Timeout)).map_err(send_error)
    }

    /// Sends `obj` pickled.
    fn send(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = dumps(py, obj)?;
        self.send_bytes(py, data.as_bytes())
    }

    /// Receives one message; `None` if nothing came before the timeout
    /// (`block=False`: do not wait); `EOFError` once the other end is gone
    /// and everything it sent was received.
    #[pyo3(signature = (block=true, timeout=None))]
    fn recv_bytes<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let d = wait_deadline(block, timeout)?;
        loop {
            let got = self.with(|p| match p.try_recv_with(|m| unspill(py, m)) {
                Ok(b) => b.map(Some),
                Err(ringshm::TryRecvError::Empty) => Ok(None),
                Err(ringshm::TryRecvError::Disconnected) => Err(PyEOFError::new_err(ringshm::RecvError.to_string())),
            })?;
            if got.is_some() {
                return Ok(got);
            }
            let Some(d) = d else { return Ok(None) };
            let m = &self.p;
            let ready = blocking(py, d, |s| match &*lock(m) {
                Some(p) => p.poll(Some(s)).then_some(()),
                None => Some(()),
            })?;
            if ready.is_none() {
                return Ok(None);
            }
        }
    }

    /// Receives one pickled object.
    fn recv<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.recv_bytes(py, true, None)? {
            Some(b) => loads(py, &b),
            None => Err(PyEOFError::new_err(ringshm::RecvError.to_string())),
        }
    }

    /// Whether a receive would not block (a message, or end-of-file), waiting
    /// at most `timeout` seconds (`None`: forever).
    #[pyo3(signature = (timeout=Some(0.0)))]
    fn poll(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if self.with(|p| Ok(p.poll(Some(Duration::ZERO))))? {
            return Ok(true);
        }
        let d = deadline(timeout)?;
        if d.is_some_and(|d| d <= Instant::now()) {
            return Ok(false);
        }
        let m = &self.p;
        Ok(blocking(py, d, |s| match &*lock(m) {
            Some(p) => p.poll(Some(s)).then_some(()),
            None => Some(()),
        })?
        .is_some())
    }

    /// Closes this end: the other end receives what was sent, then EOF.
    fn close(&self) {
        if let Some(p) = lock(&self.p).take() {
            p.close();
        }
    }

    #[getter]
    fn closed(&self) -> bool {
        lock(&self.p).as_ref().is_none_or(|p| p.is_closed())
    }
    #[getter]
    fn readable(&self) -> bool {
        lock(&self.p).as_ref().is_some_and(|p| p.readable())
    }
    #[getter]
    fn writable(&self) -> bool {
        lock(&self.p).as_ref().is_some_and(|p| p.writable())
    }
    /// Whether the other end is gone (closed, or its process died).
    fn peer_gone(&self) -> bool {
        lock(&self.p).as_ref().is_none_or(|p| p.is_peer_gone())
    }
    #[getter]
    fn max_message_len(&self) -> PyResult<usize> {
        self.with(|p| Ok(p.max_message_len()))
    }
    #[getter]
    fn duplex(&self) -> PyResult<bool> {
        self.with(|p| Ok(p.is_duplex()))
    }
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
    #[getter]
    fn end(&self) -> char {
        self.end
    }
}

// ---------------------------------------------------------------------------
// Lock

/// A robust named lock, acquired and released like Python's (the guard is
/// kept in the object between the calls).
#[pyclass(module = "ringshm._ringshm", frozen, subclass)]
struct Lock {
    // Declared before `l`: dropped first (see `Held`). Only touched with the
    // GIL held (every acquire and release runs with it), so a `Cell` under
    // the GIL instead of a `Mutex`: the uncontended acquire/release pair
    // costs no atomic operation beyond the lock word's own.
    held: GILProtected<Cell<Option<Held<LockGuard<'static>>>>>,
    died: std::sync::atomic::AtomicBool,
    l: Arc<ringshm::Lock>,
}

/// Records how an acquisition went; warns if it took the lock over from a
/// dead holder. Returns whether it acquired.
#[inline]
fn acquired(
    py: Python<'_>,
    got: Option<bool>,
    died: &std::sync::atomic::AtomicBool,
    what: &str,
    name: &str,
) -> PyResult<bool> {
    match got {
        None => Ok(false),
        Some(false) => {
            died.store(false, std::sync::atomic::Ordering::Relaxed);
            Ok(true)
        }
        Some(true) => {
            died.store(true, std::sync::atomic::Ordering::Relaxed);
            warn_owner_died(py, what, name)?;
            Ok(true)
        }
    }
}

fn lock_result<G>(r: Result<G, ringshm::LockTimeoutError<G>>) -> Option<Got<G>> {
    match r {
        Ok(g) => Some(Got::Clean(g)),
        Err(ringshm::LockTimeoutError::OwnerDied(d)) => Some(Got::OwnerDied(d.into_inner())),
        Err(_) => None,
    }
}

fn try_lock_result<G>(r: Result<G, ringshm::TryLockError<G>>) -> Option<Got<G>> {
    match r {
        Ok(g) => Some(Got::Clean(g)),
        Err(ringshm::TryLockError::OwnerDied(d)) => Some(Got::OwnerDied(d.into_inner())),
        Err(_) => None,
    }
}

/// Acquires with `try_lock` (GIL held), then in slices of `lock_timeout`
/// (GIL released). Returns the guard (made `'static` and `Send` by
/// `hold`) and whether it was taken over from a dead holder.
fn acquire_robust<'a, T: Send + Sync, G: 'a, S>(
    py: Python<'_>,
    owner: &'a Arc<T>,
    block: bool,
    timeout: Option<f64>,
    try_lock: impl FnOnce() -> Option<Got<G>>,
    lock_timeout: impl Fn(Duration) -> Option<Got<G>> + Sync,
) -> PyResult<Option<(Held<S>, bool)>> {
    // SAFETY: the callers store the result in a field declared before the
    // `Arc` that `owner` refers to (see `Held`).
    let conv = |g: Got<G>| unsafe {
        match g {
            Got::Clean(g) => (hold::<T, G, S>(owner, g), false),
            Got::OwnerDied(g) => (hold::<T, G, S>(owner, g), true),
        }
    };
    if let Some(g) = try_lock() {
        return Ok(Some(conv(g)));
    }
    let Some(d) = wait_deadline(block, timeout)? else { return Ok(None) };
    blocking(py, d, |s| lock_timeout(s).map(&conv))
}

/// What each robust lock class (`Lock`, `RLock`, `Condition`) gives
/// `robust_lock!`, which writes their shared Python methods.
trait Robust: Sized {
    /// The class name, for warnings.
    const WHAT: &'static str;
    /// Creates (`create`) or opens the object `name`.
    fn make(name: &str, create: bool) -> PyResult<Self>;
    /// `None` if not acquired, else whether it was taken over from a dead
    /// holder.
    fn acquire_raw(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<bool>>;
    fn release_raw(&self, py: Python<'_>) -> PyResult<()>;
    fn died(&self) -> &std::sync::atomic::AtomicBool;
    fn seg_name(&self) -> &str;
}

/// `acquire(block, timeout)` of a robust lock class.
#[inline]
fn robust_acquire<T: Robust>(s: &T, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
    let got = s.acquire_raw(py, block, timeout)?;
    acquired(py, got, s.died(), T::WHAT, s.seg_name())
}

/// The `#[pymethods]` of a robust lock class: `__new__(name, create=True)`,
/// `acquire(block=True, timeout=None)`, `release()`, `with`, `owner_died`,
/// `name`, plus the class's own methods given in braces.
macro_rules! robust_lock {
    ($t:ty { $($extra:tt)* }) => {
        #[pymethods]
        impl $t {
            #[new]
            #[pyo3(signature = (name, create=true))]
            fn py_new(name: &str, create: bool) -> PyResult<Self> {
                <$t as Robust>::make(name, create)
            }
            /// Acquires; `False` if that did not happen (`block=False`, or at
            /// the timeout). A lock taken over from a holder that died
            /// holding it is acquired all the same: `owner_died` becomes
            /// true and an `OwnerDiedWarning` is issued.
            #[pyo3(signature = (block=true, timeout=None))]
            fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
                robust_acquire(self, py, block, timeout)
            }
            fn release(&self, py: Python<'_>) -> PyResult<()> {
                Robust::release_raw(self, py)
            }
            fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
                self.acquire(py, true, None)
            }
            #[pyo3(signature = (*_exc))]
            fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
                Robust::release_raw(self, py)
            }
            /// Whether the last acquisition took the lock over from a dead
            /// holder.
            #[getter]
            fn owner_died(&self) -> bool {
                Robust::died(self).load(std::sync::atomic::Ordering::Relaxed)
            }
            #[getter]
            fn name(&self) -> String {
                Robust::seg_name(self).to_owned()
            }
            $($extra)*
        }
    };
}

robust_lock!(Lock {
    fn is_locked(&self) -> bool {
        self.l.is_locked()
    }
    /// Whether this object holds the lock.
    fn held(&self, py: Python<'_>) -> bool {
        let h = self.held.get(py).take();
        let held = h.is_some();
        self.held.get(py).set(h);
        held
    }
});

impl Robust for Lock {
    const WHAT: &'static str = "Lock";
    fn make(name: &str, create: bool) -> PyResult<Self> {
        let l = if create { ringshm::Lock::create(name) } else { ringshm::Lock::open(name) }.map_err(err)?;
        Ok(Lock { held: GILProtected::new(Cell::new(None)), died: Default::default(), l: Arc::new(l) })
    }
    fn acquire_raw(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<bool>> {
        self.acquire_lock(py, block, timeout)
    }
    /// Releases the lock (from any thread of the process that holds this
    /// object); `ValueError` if this object does not hold it.
    fn release_raw(&self, py: Python<'_>) -> PyResult<()> {
        match self.held.get(py).take() {
            Some(g) => {
                drop(g);
                Ok(())
            }
            None => Err(PyValueError::new_err("semaphore or lock released too many times")),
        }
    }
    fn died(&self) -> &std::sync::atomic::AtomicBool {
        &self.died
    }
    fn seg_name(&self) -> &str {
        self.l.name()
    }
}

impl Lock {
    fn acquire_lock(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<bool>> {
        let r = acquire_robust::<_, LockGuard<'_>, LockGuard<'static>>(
            py,
            &self.l,
            block,
            timeout,
            || try_lock_result(self.l.try_lock()),
            |s| lock_result(self.l.lock_timeout(s)),
        )?;
        Ok(r.map(|(g, died)| {
            // A guard still here is a stale hold (one inherited through
            // fork): forgotten, never dropped, so as not to unlock the lock
            // just taken.
            std::mem::forget(self.held.get(py).replace(Some(g)));
            died
        }))
    }
}

// ---------------------------------------------------------------------------
// Bare C methods for the uncontended lock paths

// `acquire`, `release`, `__enter__` and `__exit__` of `Lock`, `RLock` and
// `Condition` run
// millions of times a second in Python programs, and PyO3's generic method
// wrapper (argument parsing, re-checking the receiver's type, its GIL
// bookkeeping) costs several times the lock itself. `install_fast` replaces
// them with plain C methods (`METH_NOARGS` / `METH_VARARGS`), whose
// descriptors CPython type-checks; `acquire` with keyword arguments or
// arguments of other types goes to the PyO3 method, kept as
// `_acquire_args`, which checks and reports them.

/// Runs `f` as the body of a C method: an error becomes the raised Python
/// exception (NULL returned), as does a panic.
///
/// # Safety
/// The GIL is held (CPython calls methods with it held).
unsafe fn c_method(f: impl FnOnce(Python<'_>) -> PyResult<PyObject>) -> *mut pyo3::ffi::PyObject {
    // SAFETY: the caller holds the GIL.
    let py = unsafe { Python::assume_gil_acquired() };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(py)))
        .unwrap_or_else(|_| Err(PyRuntimeError::new_err("ringshm: internal error (a panic) in a lock method")));
    match r {
        Ok(o) => o.into_ptr(),
        Err(e) => {
            e.restore(py);
            std::ptr::null_mut()
        }
    }
}

/// The receiver of a C method of class `T`.
///
/// # Safety
/// `slf` is an instance of `T` (a method descriptor made for `T`'s type
/// checks it before calling), alive for `'py`.
unsafe fn receiver<'py, T: PyClass>(py: Python<'py>, slf: *mut pyo3::ffi::PyObject) -> Bound<'py, T> {
    // SAFETY: see the function's contract.
    unsafe { Bound::from_borrowed_ptr(py, slf).downcast_into_unchecked::<T>() }
}

/// `release()` (`METH_NOARGS`) and `__exit__(*exc)` (`METH_VARARGS`).
unsafe extern "C" fn fast_release<T: Robust + PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync>(
    slf: *mut pyo3::ffi::PyObject,
    _args: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls a method with the GIL held, through the
    // descriptor `install_fast` made for `T`'s type, which checked `slf`.
    unsafe {
        c_method(|py| {
            receiver::<T>(py, slf).get().release_raw(py)?;
            Ok(py.None())
        })
    }
}

/// `__enter__()` (`METH_NOARGS`): `acquire()`.
unsafe extern "C" fn fast_enter<T: Robust + PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync>(
    slf: *mut pyo3::ffi::PyObject,
    _args: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: as in `fast_release`.
    unsafe {
        c_method(|py| {
            let got = robust_acquire(receiver::<T>(py, slf).get(), py, true, None)?;
            Ok(pyo3::types::PyBool::new(py, got).to_owned().into_any().unbind())
        })
    }
}

/// `acquire(block=True, timeout=None)` (`METH_VARARGS | METH_KEYWORDS`):
/// positional `bool` and `float`/`None` arguments here, anything else
/// through `_acquire_args`.
unsafe extern "C" fn fast_acquire<T: Robust + PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync>(
    slf: *mut pyo3::ffi::PyObject,
    args: *mut pyo3::ffi::PyObject,
    kwargs: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: as in `fast_release`; CPython passes the positional arguments
    // as a tuple and the keyword arguments as a dict or NULL.
    unsafe {
        c_method(|py| {
            let s = receiver::<T>(py, slf);
            let args = Bound::from_borrowed_ptr(py, args).downcast_into_unchecked::<pyo3::types::PyTuple>();
            let plain = || -> Option<(bool, Option<f64>)> {
                let n = args.len();
                if !kwargs.is_null() || n > 2 {
                    return None;
                }
                let block = if n > 0 { args.get_borrowed_item(0).ok()?.extract::<bool>().ok()? } else { true };
                let timeout = if n > 1 { args.get_borrowed_item(1).ok()?.extract::<Option<f64>>().ok()? } else { None };
                Some((block, timeout))
            };
            match plain() {
                Some((block, timeout)) => {
                    let got = robust_acquire(s.get(), py, block, timeout)?;
                    Ok(pyo3::types::PyBool::new(py, got).to_owned().into_any().unbind())
                }
                None => {
                    let kw = (!kwargs.is_null())
                        .then(|| Bound::from_borrowed_ptr(py, kwargs).downcast_into_unchecked::<pyo3::types::PyDict>());
                    Ok(s.as_any().getattr(pyo3::intern!(py, "_acquire_args"))?.call(args, kw.as_ref())?.unbind())
                }
            }
        })
    }
}

/// Replaces `acquire`, `release`, `__enter__` and `__exit__` of `T`'s type
/// with the C methods above (keeping their docs; the PyO3 `acquire` stays
/// as `_acquire_args`).
fn install_fast<T: Robust + PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync>(
    py: Python<'_>,
) -> PyResult<()> {
    use pyo3::ffi::{PyMethodDefPointer, METH_KEYWORDS, METH_NOARGS, METH_VARARGS};
    let ty = py.get_type::<T>();
    ty.setattr("_acquire_args", ty.getattr("acquire")?)?;
    let methods: [(&'static std::ffi::CStr, PyMethodDefPointer, std::os::raw::c_int); 4] = [
        (c"acquire", PyMethodDefPointer { PyCFunctionWithKeywords: fast_acquire::<T> }, METH_VARARGS | METH_KEYWORDS),
        (c"release", PyMethodDefPointer { PyCFunction: fast_release::<T> }, METH_NOARGS),
        (c"__enter__", PyMethodDefPointer { PyCFunction: fast_enter::<T> }, METH_NOARGS),
        (c"__exit__", PyMethodDefPointer { PyCFunction: fast_release::<T> }, METH_VARARGS),
    ];
    for (name, meth, flags) in methods {
        let name_str = name.to_str().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let doc: Option<String> = ty.getattr(name_str)?.getattr("__doc__")?.extract()?;
        let doc = doc.and_then(|d| std::ffi::CString::new(d).ok()).map(|d| &*Box::leak(d.into_boxed_c_str()));
        // Lives as long as the type (the process): the descriptor keeps a
        // pointer to it.
        let def = Box::leak(Box::new(pyo3::ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: meth,
            ml_flags: flags,
            ml_doc: doc.map_or(std::ptr::null(), |d| d.as_ptr()),
        }));
        // SAFETY: `ty` is a live type object and `def` a method definition
        // that outlives it; the result is a new reference or NULL (error).
        let descr = unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyDescr_NewMethod(ty.as_type_ptr(), def))? };
        ty.setattr(name_str, descr)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// RLock

#[pyclass(module = "ringshm._ringshm", frozen, subclass)]
struct RLock {
    // Declared before `l`: dropped first (see `Held`). Under the GIL, as
    // `Lock::held`: the outermost guard and the depth of this object's hold.
    held: GILProtected<RHeld>,
    died: std::sync::atomic::AtomicBool,
    l: Arc<ringshm::RLock>,
}

/// An `RLock`'s hold through one object: the outermost guard, and how many
/// times the holding thread acquired it.
struct RHeld {
    guard: Cell<Option<Held<ringshm::RLockGuard<'static>>>>,
    count: Cell<usize>,
}

robust_lock!(RLock {
    /// Whether the calling thread holds it.
    fn is_owned(&self) -> bool {
        self.l.is_owned()
    }
    /// How many times the calling thread holds it through this object.
    fn count(&self, py: Python<'_>) -> usize {
        if self.l.is_owned() {
            self.held.get(py).count.get()
        } else {
            0
        }
    }
    fn is_locked(&self) -> bool {
        self.l.is_locked()
    }
});

impl Robust for RLock {
    const WHAT: &'static str = "RLock";
    fn make(name: &str, create: bool) -> PyResult<Self> {
        let l = if create { ringshm::RLock::create(name) } else { ringshm::RLock::open(name) }.map_err(err)?;
        let held = RHeld { guard: Cell::new(None), count: Cell::new(0) };
        Ok(RLock { held: GILProtected::new(held), died: Default::default(), l: Arc::new(l) })
    }
    /// As `Lock`'s; a thread that holds it acquires again at once.
    fn acquire_raw(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<bool>> {
        self.acquire_lock(py, block, timeout)
    }
    /// Releases one level; `RuntimeError` if the calling thread does not
    /// hold it.
    fn release_raw(&self, py: Python<'_>) -> PyResult<()> {
        let h = self.held.get(py);
        let n = h.count.get();
        if n == 0 || !self.l.is_owned() {
            return Err(PyRuntimeError::new_err("cannot release un-acquired lock"));
        }
        h.count.set(n - 1);
        if n == 1 {
            drop(h.guard.take());
        }
        Ok(())
    }
    fn died(&self) -> &std::sync::atomic::AtomicBool {
        &self.died
    }
    fn seg_name(&self) -> &str {
        self.l.name()
    }
}

impl RLock {
    fn acquire_lock(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<bool>> {
        let h = self.held.get(py);
        if h.count.get() > 0 && self.l.is_owned() {
            h.count.set(h.count.get() + 1);
            return Ok(Some(false));
        }
        let r = acquire_robust::<_, ringshm::RLockGuard<'_>, ringshm::RLockGuard<'static>>(
            py,
            &self.l,
            block,
            timeout,
            || try_lock_result(self.l.try_lock()),
            |s| lock_result(self.l.lock_timeout(s)),
        )?;
        Ok(r.map(|(g, died)| {
            let h = self.held.get(py);
            // As in `Lock::acquire_lock`: a stale guard is forgotten.
            std::mem::forget(h.guard.replace(Some(g)));
            h.count.set(1);
            died
        }))
    }
}

// ---------------------------------------------------------------------------
// Semaphores

macro_rules! semaphore {
    ($py:ident, $rs:ty, $release:expr) => {
        #[pyclass(module = "ringshm._ringshm", frozen, subclass)]
        struct $py {
            s: $rs,
        }

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (name, value=1, create=true))]
            fn py_new(name: &str, value: usize, create: bool) -> PyResult<Self> {
                if create {
                    Self::create(name, value, false)
                } else {
                    Self::open(name)
                }
            }
            fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
                self.acquire(py, true, None)
            }
            #[pyo3(signature = (*_exc))]
            fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
                self.release(1)
            }
            #[staticmethod]
            #[pyo3(signature = (name, value, persist=false))]
            fn create(name: &str, value: usize, persist: bool) -> PyResult<Self> {
                Ok($py { s: <$rs>::create_with(name, value, &options(persist)).map_err(err)? })
            }
            #[staticmethod]
            fn open(name: &str) -> PyResult<Self> {
                Ok($py { s: <$rs>::open(name).map_err(err)? })
            }
            /// Takes a permit; `False` if none came (at once, or at the timeout).
            #[pyo3(signature = (block=true, timeout=None))]
            fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
                if self.s.try_acquire() {
                    return Ok(true);
                }
                let Some(d) = wait_deadline(block, timeout)? else { return Ok(false) };
                let s = &self.s;
                Ok(blocking(py, d, |t| s.acquire_timeout(t).then_some(()))?.is_some())
            }
            /// Returns `n` permits.
            #[pyo3(signature = (n=1))]
            fn release(&self, n: usize) -> PyResult<()> {
                let f: fn(&$rs) -> PyResult<()> = $release;
                for _ in 0..n {
                    f(&self.s)?;
                }
                Ok(())
            }
            fn get_value(&self) -> usize {
                self.s.value()
            }
            #[getter]
            fn name(&self) -> String {
                self.s.name().to_owned()
            }
        }
    };
}

semaphore!(Semaphore, ringshm::Semaphore, |s| {
    s.release();
    Ok(())
});
semaphore!(BoundedSemaphore, ringshm::BoundedSemaphore, |s| s
    .release()
    .map_err(|e| PyValueError::new_err(e.to_string())));

// ---------------------------------------------------------------------------
// Event

#[pyclass(module = "ringshm._ringshm", frozen, subclass)]
struct Event {
    e: ringshm::Event,
}

#[pymethods]
impl Event {
    #[staticmethod]
    #[pyo3(signature = (name, persist=false))]
    fn create(name: &str, persist: bool) -> PyResult<Self> {
        Ok(Event { e: ringshm::Event::create_with(name, &options(persist)).map_err(err)? })
    }
    #[staticmethod]
    fn open(name: &str) -> PyResult<Self> {
        Ok(Event { e: ringshm::Event::open(name).map_err(err)? })
    }
    #[new]
    #[pyo3(signature = (name, create=true))]
    fn py_new(name: &str, create: bool) -> PyResult<Self> {
        if create {
            Self::create(name, false)
        } else {
            Self::open(name)
        }
    }
    fn set(&self) {
        self.e.set()
    }
    fn clear(&self) {
        self.e.clear()
    }
    fn is_set(&self) -> bool {
        self.e.is_set()
    }
    /// Waits until set; `False` at the timeout.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if self.e.is_set() {
            return Ok(true);
        }
        let e = &self.e;
        Ok(blocking(py, deadline(timeout)?, |s| e.wait_timeout(s).then_some(()))?.is_some())
    }
    #[getter]
    fn name(&self) -> String {
        self.e.name().to_owned()
    }
}

// ---------------------------------------------------------------------------
// Condition

/// Who holds a `Condition`'s lock through this object, and how often.
struct CondHeld {
    guard: Option<Held<LockGuard<'static>>>,
    /// The holding thread, with its process: a child forked while this
    /// object was held inherits the thread id but does not hold the lock.
    owner: Option<(u32, ThreadId)>,
    count: usize,
}

impl Drop for CondHeld {
    fn drop(&mut self) {
        // A copy inherited through fork: the hold is the parent's, not ours
        // to give back.
        if self.owner.is_some_and(|(pid, _)| pid != std::process::id()) {
            std::mem::forget(self.guard.take());
        }
    }
}

/// The calling thread as a `CondHeld::owner`.
fn cond_me() -> (u32, ThreadId) {
    (std::process::id(), std::thread::current().id())
}

/// A named condition variable with its own (re-entrant per object) lock.
#[pyclass(module = "ringshm._ringshm", frozen, subclass)]
struct Condition {
    // Declared before `c`: dropped first (see `Held`).
    held: Mutex<CondHeld>,
    died: std::sync::atomic::AtomicBool,
    c: Arc<ringshm::Condition>,
}

impl Condition {
    fn new(c: ringshm::Condition) -> Self {
        Condition {
            held: Mutex::new(CondHeld { guard: None, owner: None, count: 0 }),
            died: Default::default(),
            c: Arc::new(c),
        }
    }
    fn mine(&self) -> bool {
        lock(&self.held).owner == Some(cond_me())
    }
}

robust_lock!(Condition {
    /// Releases the lock (all levels), waits for a notification, takes it
    /// again. `False` at the timeout.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let (notified, died) = self.wait_raw(py, timeout)?;
        if died {
            acquired(py, Some(true), &self.died, "Condition", self.c.name())?;
        }
        Ok(notified)
    }
    fn is_owned(&self) -> bool {
        self.mine()
    }
    #[pyo3(signature = (n=1))]
    fn notify(&self, n: usize) -> PyResult<()> {
        if !self.mine() {
            return Err(PyRuntimeError::new_err("cannot notify on un-acquired lock"));
        }
        for _ in 0..n {
            self.c.notify_one();
        }
        Ok(())
    }
    fn notify_all(&self) -> PyResult<()> {
        if !self.mine() {
            return Err(PyRuntimeError::new_err("cannot notify on un-acquired lock"));
        }
        self.c.notify_all();
        Ok(())
    }
});

impl Robust for Condition {
    const WHAT: &'static str = "Condition";
    fn make(name: &str, create: bool) -> PyResult<Self> {
        let c = if create { ringshm::Condition::create(name) } else { ringshm::Condition::open(name) };
        Ok(Condition::new(c.map_err(err)?))
    }
    /// As `RLock`'s (re-entrant for the thread that holds it).
    fn acquire_raw(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<bool>> {
        self.acquire_lock(py, block, timeout)
    }
    fn release_raw(&self, _py: Python<'_>) -> PyResult<()> {
        let mut h = lock(&self.held);
        if h.owner != Some(cond_me()) {
            return Err(PyRuntimeError::new_err("cannot release un-acquired lock"));
        }
        h.count -= 1;
        if h.count == 0 {
            h.guard = None;
            h.owner = None;
        }
        Ok(())
    }
    fn died(&self) -> &std::sync::atomic::AtomicBool {
        &self.died
    }
    fn seg_name(&self) -> &str {
        self.c.name()
    }
}

impl Condition {
    fn acquire_lock(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Option<bool>> {
        let me = cond_me();
        {
            let mut h = lock(&self.held);
            if h.owner == Some(me) {
                h.count += 1;
                return Ok(Some(false));
            }
        }
        let r = acquire_robust::<_, LockGuard<'_>, LockGuard<'static>>(
            py,
            &self.c,
            block,
            timeout,
            || try_lock_result(self.c.try_lock()),
            |s| lock_result(self.c.lock_timeout(s)),
        )?;
        Ok(r.map(|(g, died)| {
            *lock(&self.held) = CondHeld { guard: Some(g), owner: Some(me), count: 1 };
            died
        }))
    }

    /// Releases the lock (all levels), waits for a notification, takes it
    /// again. `False` at the timeout. Returns `(notified, owner_died)`.
    fn wait_raw(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(bool, bool)> {
        let me = cond_me();
        let (guard, count) = {
            let mut h = lock(&self.held);
            if h.owner != Some(me) {
                return Err(PyRuntimeError::new_err("cannot wait on un-acquired lock"));
            }
            (h.guard.take(), h.count)
        };
        let Some(Held(mut g)) = guard else {
            return Err(PyRuntimeError::new_err("cannot wait on un-acquired lock"));
        };
        let d = deadline(timeout)?;
        let c: &ringshm::Condition = &self.c;
        let mut died = false;
        let mut notified = false;
        let mut raised = None;
        loop {
            let slice = match d {
                None => SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            };
            let cur = Held(g);
            let (next, timed_out, d2) = released(py, move || {
                // The guard's lifetime was extended; `wait_timeout` ties it to `c`.
                let g: LockGuard<'_> = cur.into_inner();
                match c.wait_timeout(g, slice) {
                    Ok((g, t)) => (Held(g), t.timed_out(), false),
                    Err(e) => {
                        let (g, t) = e.into_inner();
                        (Held(g), t.timed_out(), true)
                    }
                }
            });
            // SAFETY: the same guard as before the wait (same lock, same
            // owner `Arc`): only its lifetime is restated.
            g = unsafe { hold::<ringshm::Condition, LockGuard<'_>, LockGuard<'static>>(&self.c, next.0).0 };
            died |= d2;
            if !timed_out {
                notified = true;
                break;
            }
            if let Err(e) = py.check_signals() {
                raised = Some(e);
                break;
            }
            if d.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        *lock(&self.held) = CondHeld { guard: Some(Held(g)), owner: Some(me), count };
        match raised {
            Some(e) => Err(e),
            None => Ok((notified, died)),
        }
    }
}

// ---------------------------------------------------------------------------
// Barrier

#[pyclass(module = "ringshm._ringshm", frozen)]
struct Barrier {
    b: Arc<ringshm::Barrier>,
}

fn broken(py: Python<'_>, e: ringshm::BarrierError) -> PyErr {
    std_exc(py, "threading", "BrokenBarrierError", e.to_string())
}

#[pymethods]
impl Barrier {
    #[staticmethod]
    #[pyo3(signature = (name, parties, persist=false))]
    fn create(name: &str, parties: usize, persist: bool) -> PyResult<Self> {
        Ok(Barrier { b: Arc::new(ringshm::Barrier::create_with(name, parties, &options(persist)).map_err(err)?) })
    }
    #[staticmethod]
    fn open(name: &str) -> PyResult<Self> {
        Ok(Barrier { b: Arc::new(ringshm::Barrier::open(name).map_err(err)?) })
    }

    /// Waits for every party; `True` in exactly one of them (the last to
    /// arrive). `threading.BrokenBarrierError` if the barrier is or becomes
    /// broken (a timeout breaks it). A barrier wait cannot be cut into
    /// slices (a party that leaves breaks it), so it runs on a helper
    /// thread while this one checks for signals: Ctrl-C aborts the barrier
    /// (as `threading.Barrier` does on any exception) and raises.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let d = deadline(timeout)?;
        let b = self.b.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = match d {
                None => b.wait(),
                Some(d) => b.wait_timeout(d.saturating_duration_since(Instant::now())),
            };
            let _ = tx.send(r);
        });
        let mut rx = Some(rx);
        let mut interrupted: Option<PyErr> = None;
        loop {
            let r0 = rx.take().expect("receiver");
            let (r0, got) = released(py, move || {
                let got = r0.recv_timeout(SLICE);
                (r0, got)
            });
            rx = Some(r0);
            match got {
                Ok(r) => {
                    if let Some(e) = interrupted {
                        return Err(e);
                    }
                    return r.map(|w| w.is_leader()).map_err(|e| broken(py, e));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if interrupted.is_none() {
                        if let Err(e) = py.check_signals() {
                            self.b.abort();
                            interrupted = Some(e);
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("the barrier's helper thread ended without an answer"));
                }
            }
        }
    }
    fn abort(&self) {
        self.b.abort()
    }
    fn reset(&self) {
        self.b.reset()
    }
    #[getter]
    fn n_waiting(&self) -> usize {
        self.b.n_waiting()
    }
    #[getter]
    fn parties(&self) -> usize {
        self.b.parties()
    }
    #[getter]
    fn broken(&self) -> bool {
        self.b.is_broken()
    }
    #[getter]
    fn name(&self) -> String {
        self.b.name().to_owned()
    }
}

// ---------------------------------------------------------------------------
// Value and Array

macro_rules! cells {
    ($($v:ident $t:ty),* $(,)?) => {
        /// A `ringshm::Value<T>` of one of the element types Python's
        /// typecodes map to.
        enum AnyValue { $($v(ringshm::Value<$t>)),* }
        /// A `ringshm::Array<T>` of one of those element types.
        enum AnyArray { $($v(ringshm::Array<$t>)),* }

        fn value_new(kind: &str, name: &str, init: Option<&Bound<'_, PyAny>>, persist: bool) -> PyResult<AnyValue> {
            match kind {
                $(stringify!($t) => Ok(AnyValue::$v(match init {
                    Some(i) => ringshm::Value::<$t>::create_with(name, i.extract::<$t>()?, &options(persist)),
                    None => ringshm::Value::<$t>::open(name),
                }.map_err(err)?)),)*
                _ => Err(PyValueError::new_err(format!("unknown element type {kind:?}"))),
            }
        }

        fn array_new(kind: &str, name: &str, init: Option<&Bound<'_, PyAny>>, persist: bool) -> PyResult<AnyArray> {
            match kind {
                $(stringify!($t) => Ok(AnyArray::$v(match init {
                    Some(i) => ringshm::Array::<$t>::create_from_with(name, &i.extract::<Vec<$t>>()?, &options(persist)),
                    None => ringshm::Array::<$t>::open(name),
                }.map_err(err)?)),)*
                _ => Err(PyValueError::new_err(format!("unknown element type {kind:?}"))),
            }
        }

        impl AnyValue {
            fn load(&self, py: Python<'_>) -> PyResult<PyObject> {
                match self { $(AnyValue::$v(x) => Ok(x.load().into_pyobject(py)?.into_any().unbind()),)* }
            }
            fn store(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
                match self { $(AnyValue::$v(x) => { x.store(v.extract::<$t>()?); Ok(()) })* }
            }
            fn add(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<PyObject> {
                match self { $(AnyValue::$v(x) => Ok(x.fetch_add(v.extract::<$t>()?).into_pyobject(py)?.into_any().unbind()),)* }
            }
            fn name(&self) -> &str {
                match self { $(AnyValue::$v(x) => x.name(),)* }
            }
            /// The value's bytes (loaded once), zero-extended to a `u64`.
            fn bits(&self) -> u64 {
                match self { $(AnyValue::$v(x) => {
                    let mut b = [0u8; 8];
                    b[..std::mem::size_of::<$t>()].copy_from_slice(&x.load().to_ne_bytes());
                    u64::from_ne_bytes(b)
                })* }
            }
            /// The number whose bytes `bits` holds (see `bits`).
            fn of_bits(&self, py: Python<'_>, bits: u64) -> PyResult<PyObject> {
                let b = bits.to_ne_bytes();
                match self { $(AnyValue::$v(_) => {
                    let mut v = [0u8; std::mem::size_of::<$t>()];
                    v.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                    Ok(<$t>::from_ne_bytes(v).into_pyobject(py)?.into_any().unbind())
                })* }
            }
        }

        impl AnyArray {
            fn len(&self) -> usize {
                match self { $(AnyArray::$v(x) => x.len(),)* }
            }
            fn get(&self, py: Python<'_>, i: usize) -> PyResult<PyObject> {
                match self { $(AnyArray::$v(x) => match x.get(i) {
                    Some(v) => Ok(v.into_pyobject(py)?.into_any().unbind()),
                    None => Err(pyo3::exceptions::PyIndexError::new_err("array index out of range")),
                },)* }
            }
            fn set(&self, i: usize, v: &Bound<'_, PyAny>) -> PyResult<()> {
                if i >= self.len() {
                    return Err(pyo3::exceptions::PyIndexError::new_err("array assignment index out of range"));
                }
                match self { $(AnyArray::$v(x) => { x.set(i, v.extract::<$t>()?); Ok(()) })* }
            }
            fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
                match self { $(AnyArray::$v(x) => PyList::new(py, x.to_vec()),)* }
            }
            fn add(&self, py: Python<'_>, i: usize, v: &Bound<'_, PyAny>) -> PyResult<PyObject> {
                if i >= self.len() {
                    return Err(pyo3::exceptions::PyIndexError::new_err("array index out of range"));
                }
                match self { $(AnyArray::$v(x) => Ok(x.fetch_add(i, v.extract::<$t>()?).into_pyobject(py)?.into_any().unbind()),)* }
            }
            fn store_all(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
                match self { $(AnyArray::$v(x) => {
                    let v = v.extract::<Vec<$t>>()?;
                    if v.len() != x.len() {
                        return Err(PyValueError::new_err("can only assign a sequence of the array's length"));
                    }
                    x.copy_from_slice(&v);
                    Ok(())
                })* }
            }
            fn name(&self) -> &str {
                match self { $(AnyArray::$v(x) => x.name(),)* }
            }
        }
    };
}

cells!(I8 i8, U8 u8, I16 i16, U16 u16, I32 i32, U32 u32, I64 i64, U64 u64, F32 f32, F64 f64);

/// A `ringshm::Value<T>`; `kind` is the Rust element type (`"i32"`, ...).
#[pyclass(module = "ringshm._ringshm", frozen, subclass, name = "Value")]
struct PyValue {
    v: AnyValue,
    /// Python's typecode `'c'`: the value reads and writes as one byte.
    char: bool,
    /// For `v.value += n` being one atomic add (see `_arm`): this value's
    /// `int` subclass that `_loaded` returns, and the one that adding to it
    /// gives.
    loaded: GILOnceCell<PyObject>,
    pending: GILOnceCell<PyObject>,
    /// The last number `_loaded` gave, with its bits: given again while
    /// the value is unchanged (it is immutable), which spares building one.
    last: GILProtected<Cell<Option<(u64, PyObject)>>>,
}

impl PyValue {
    fn new(v: AnyValue, char: bool) -> Self {
        PyValue {
            v,
            char,
            loaded: GILOnceCell::new(),
            pending: GILOnceCell::new(),
            last: GILProtected::new(Cell::new(None)),
        }
    }
}

/// A `'c'` element as its byte: one character `bytes` or `bytearray`, or an
/// integer in `0..=255` (as ctypes' `c_char`).
fn char_byte(v: &Bound<'_, PyAny>) -> PyResult<u8> {
    let b = if let Ok(b) = v.downcast::<PyBytes>() {
        match b.as_bytes() {
            [c] => Some(*c),
            _ => None,
        }
    } else if let Ok(b) = v.downcast::<pyo3::types::PyByteArray>() {
        match b.to_vec()[..] {
            [c] => Some(c),
            _ => None,
        }
    } else if v.is_instance_of::<pyo3::types::PyInt>() && !v.is_instance_of::<pyo3::types::PyBool>() {
        v.extract::<u8>().ok()
    } else {
        None
    };
    b.ok_or_else(|| PyTypeError::new_err("one character bytes, bytearray or integer expected"))
}

#[pymethods]
impl PyValue {
    #[staticmethod]
    #[pyo3(signature = (kind, name, initial, persist=false))]
    fn create(kind: &str, name: &str, initial: &Bound<'_, PyAny>, persist: bool) -> PyResult<Self> {
        Ok(PyValue::new(value_new(kind, name, Some(initial), persist)?, false))
    }
    #[staticmethod]
    fn open(kind: &str, name: &str) -> PyResult<Self> {
        Ok(PyValue::new(value_new(kind, name, None, false)?, false))
    }
    /// Creates (`initial` given) or opens the value `name` of element type
    /// `kind`; `char`: `.value` is one byte (typecode `'c'`, kind `u8`).
    #[new]
    #[pyo3(signature = (kind, name, initial=None, char=false))]
    fn py_new(kind: &str, name: &str, initial: Option<&Bound<'_, PyAny>>, char: bool) -> PyResult<Self> {
        let v = match initial {
            Some(i) if char => {
                let b = i.downcast::<PyBytes>().map_err(|_| PyTypeError::new_err("one character bytes expected"))?;
                match b.as_bytes() {
                    [c] => value_new(kind, name, Some(&c.into_pyobject(i.py())?.into_any()), false)?,
                    _ => return Err(PyTypeError::new_err("one character bytes expected")),
                }
            }
            Some(i) => value_new(kind, name, Some(i), false)?,
            None => value_new(kind, name, None, false)?,
        };
        Ok(PyValue::new(v, char))
    }
    /// The value (`bytes` of length 1 for typecode `'c'`).
    #[getter]
    fn get_value(&self, py: Python<'_>) -> PyResult<PyObject> {
        let v = self.v.load(py)?;
        if self.char {
            let c: u8 = v.extract(py)?;
            return Ok(PyBytes::new(py, &[c]).into_any().unbind());
        }
        Ok(v)
    }
    /// Stores `v`; for typecode `'c'` one character `bytes` or `bytearray`,
    /// or an integer in `0..=255`. A number got by adding `n` to what
    /// `_loaded` read (`v.value += n`) adds `n` atomically instead.
    #[setter]
    fn set_value(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = v.py();
        if let Some(p) = self.pending.get(py) {
            if v.is_instance(p.bind(py))? {
                self.v.add(py, &v.getattr(pyo3::intern!(py, "_delta"))?)?;
                return Ok(());
            }
        }
        if self.char {
            return self.v.store(&char_byte(v)?.into_pyobject(py)?.into_any());
        }
        self.v.store(v)
    }
    /// `.value` as a synchronized `Value` gives it: once armed (`_arm`), an
    /// integer is returned as this value's `int` subclass, to which adding
    /// an `int` gives a number (an instance of `pending` or a subclass of
    /// it) that `.value = ...` applies as an atomic add.
    #[getter]
    fn _loaded(&self, py: Python<'_>) -> PyResult<PyObject> {
        let Some(cls) = self.loaded.get(py) else { return self.get_value(py) };
        let bits = self.v.bits();
        let last = self.last.get(py);
        if let Some((b, o)) = last.take() {
            if b == bits {
                let r = o.clone_ref(py);
                last.set(Some((b, o)));
                return Ok(r);
            }
        }
        let o = cls.bind(py).call1((self.v.of_bits(py, bits)?,))?.unbind();
        last.set(Some((bits, o.clone_ref(py))));
        Ok(o)
    }
    /// Arms `v.value += n` (see `_loaded`): `loaded` is the `int` subclass
    /// reads give, `pending` the one (or the base of those) adding to them
    /// gives, with the amount in `_delta`. Once only: later calls keep the
    /// first classes.
    fn _arm(&self, py: Python<'_>, loaded: PyObject, pending: PyObject) {
        if self.loaded.get(py).is_none() && self.pending.set(py, pending).is_ok() {
            let _ = self.loaded.set(py, loaded);
        }
    }
    fn load(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.v.load(py)
    }
    fn store(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.v.store(v)
    }
    /// Atomically adds `v`; returns the previous value.
    fn fetch_add(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        self.v.add(py, v)
    }
    #[getter]
    fn name(&self) -> String {
        self.v.name().to_owned()
    }
}

/// The `value` attribute of the `ringshm.Value` class (whose instances hold
/// their `RawValue` in `_obj`): reads `_obj._loaded` and stores into
/// `_obj.value` with no Python frame in between.
#[pyclass(module = "ringshm._ringshm", frozen)]
struct SyncedValue {}

#[pymethods]
impl SyncedValue {
    #[new]
    fn py_new() -> Self {
        SyncedValue {}
    }
    fn __get__(
        slf: &Bound<'_, Self>,
        obj: Option<&Bound<'_, PyAny>>,
        _owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let py = slf.py();
        match obj {
            Some(o) if !o.is_none() => o.getattr(pyo3::intern!(py, "_obj"))?.downcast::<PyValue>()?.get()._loaded(py),
            _ => Ok(slf.clone().into_any().unbind()),
        }
    }
    fn __set__(&self, obj: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        obj.getattr(pyo3::intern!(obj.py(), "_obj"))?.downcast::<PyValue>()?.get().set_value(value)
    }
}

/// A `ringshm::Array<T>`.
#[pyclass(module = "ringshm._ringshm", frozen, name = "Array")]
struct PyArray {
    a: AnyArray,
    /// Python's typecode `'c'` (see `_chars`): `item`/`put` give and take
    /// one-byte `bytes`.
    char: std::sync::atomic::AtomicBool,
}

impl PyArray {
    fn new(a: AnyArray) -> Self {
        PyArray { a, char: Default::default() }
    }
    /// `i` as an index into the array, counting from the end if negative.
    fn index(&self, i: isize) -> PyResult<usize> {
        let n = self.a.len();
        let j = if i < 0 { n.checked_sub(i.unsigned_abs()) } else { Some(i.unsigned_abs()) };
        j.filter(|&j| j < n).ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("invalid index"))
    }
}

#[pymethods]
impl PyArray {
    #[staticmethod]
    #[pyo3(signature = (kind, name, initial, persist=false))]
    fn create(kind: &str, name: &str, initial: &Bound<'_, PyAny>, persist: bool) -> PyResult<Self> {
        Ok(PyArray::new(array_new(kind, name, Some(initial), persist)?))
    }
    #[staticmethod]
    fn open(kind: &str, name: &str) -> PyResult<Self> {
        Ok(PyArray::new(array_new(kind, name, None, false)?))
    }
    fn __len__(&self) -> usize {
        self.a.len()
    }
    fn get(&self, py: Python<'_>, i: usize) -> PyResult<PyObject> {
        self.a.get(py, i)
    }
    fn set(&self, i: usize, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.a.set(i, v)
    }
    /// Makes `item`/`put` give and take one-byte `bytes` (typecode `'c'`).
    fn _chars(&self) {
        self.char.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// Element `i` (negative: from the end), as `arr[i]` gives it; one-byte
    /// `bytes` for typecode `'c'`. `IndexError` out of range.
    fn item(&self, py: Python<'_>, i: isize) -> PyResult<PyObject> {
        let v = self.a.get(py, self.index(i)?)?;
        if self.char.load(std::sync::atomic::Ordering::Relaxed) {
            let c: u8 = v.extract(py)?;
            return Ok(PyBytes::new(py, &[c]).into_any().unbind());
        }
        Ok(v)
    }
    /// `arr[i] = v` (negative `i`: from the end); for typecode `'c'` one
    /// character `bytes` or `bytearray`, or an integer in `0..=255`.
    fn put(&self, i: isize, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let j = self.index(i)?;
        if self.char.load(std::sync::atomic::Ordering::Relaxed) {
            return self.a.set(j, &char_byte(v)?.into_pyobject(v.py())?.into_any());
        }
        self.a.set(j, v)
    }
    fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.a.to_list(py)
    }
    /// Atomically adds `v` to element `i`; returns the previous value.
    fn fetch_add(&self, py: Python<'_>, i: usize, v: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        self.a.add(py, i, v)
    }
    fn store_all(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        self.a.store_all(v)
    }
    /// The bytes of a `u8` array.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match &self.a {
            AnyArray::U8(x) => Ok(PyBytes::new(py, &x.to_vec())),
            _ => Err(PyTypeError::new_err("to_bytes needs an array of bytes")),
        }
    }
    #[getter]
    fn name(&self) -> String {
        self.a.name().to_owned()
    }
}

// ---------------------------------------------------------------------------

#[pymodule]
fn _ringshm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ByteQueue>()?;
    m.add_class::<Conn>()?;
    m.add_class::<Lock>()?;
    m.add_class::<RLock>()?;
    install_fast::<Lock>(m.py())?;
    m.add_class::<Semaphore>()?;
    m.add_class::<BoundedSemaphore>()?;
    m.add_class::<Event>()?;
    m.add_class::<Condition>()?;
    install_fast::<RLock>(m.py())?;
    install_fast::<Condition>(m.py())?;
    m.add_class::<Barrier>()?;
    m.add_class::<PyValue>()?;
    m.add_class::<PyArray>()?;
    m.add_class::<SyncedValue>()?;
    m.add_function(wrap_pyfunction!(spill_read, m)?)?;
    m.add_function(wrap_pyfunction!(unlink, m)?)?;
    m.add_function(wrap_pyfunction!(_exiting, m)?)?;
    m.add("SLICE_SECONDS", SLICE.as_secs_f64())?;
    Ok(())
}
