//! Kernel-held ownership for the synchronisation objects: who holds a lock,
//! a semaphore ledger slot or a barrier arrival, in a form that neither pid
//! reuse, tid reuse nor pid namespaces can fool.
//!
//! # Implementation details
//!
//! Each handle of a sync object *claims an owner slot* `k` of its segment:
//! it opens a description of its own on the segment file and takes an
//! exclusive open-file-description lock on byte [`SLOT_OWNER0`]` + k` (see
//! [`crate::shm::lock`]). The kernel drops that lock when the handle drops its
//! description, or when the process exits or is killed — never earlier, and
//! a new holder can only get the byte after that. So "is the holder of slot
//! `k` alive?" is one `F_OFD_GETLK`, and shared words record `k` instead of a
//! pid or tid:
//!
//! | record (in the segment)   | written by                 | dead when                              |
//! |---------------------------|----------------------------|----------------------------------------|
//! | lock word: `k`, tid       | the holder of a lock       | byte `k` is free, or the word has `DIED` |
//! | semaphore ledger slot `k` | the handle that owns `k`   | byte `k` is free                        |
//! | barrier arrival: `k`, gen | a party of generation gen  | byte `k` is free                        |
//!
//! A slot is reused only after its holder died, and the new holder *scrubs*
//! it before using it (the `scrub` callback of [`Owners::claim`]): it marks a
//! lock word naming `k` with `DIED`, returns the dead ledger's permits, or
//! breaks a barrier generation the dead party was waiting in. Nobody else can
//! write records naming `k` meanwhile (only the holder of `k` does), so a
//! record never outlives its writer's death in a form that looks alive.
//!
//! Pid namespaces do not matter: the probe asks the kernel about a byte of a
//! file both processes have open, not about a number.
//!
//! Descriptions holding slots are [`PrivateFd`]s: a forked child closes its
//! copies at once (a child must not keep its parent's slots alive) and claims
//! its own slot on first use.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::process::{current_pid, PrivateFd};
use crate::shm::lock::{self, SLOT_OWNER0};

/// The owner slots of one segment, as seen by one handle.
#[derive(Debug)]
pub(crate) struct Owners {
    /// The segment's main descriptor (probes go through it: it holds no owner
    /// byte, so it sees every handle's, ours included). `None` for memory the
    /// caller mapped: no kernel-held liveness there.
    file: Option<RawFd>,
    /// Number of slots.
    count: u32,
    /// `(pid << 32) | (k + 1)`: slot `k` is ours in process `pid`; 0: none.
    mine: AtomicU64,
    /// Our own description of the file, holding our slot's byte.
    desc: Mutex<Option<PrivateFd>>,
}

impl Owners {
    /// # Safety
    /// `file` (if any) stays open for the life of the returned value.
    pub(crate) unsafe fn new(file: Option<BorrowedFd<'_>>, count: u32) -> Owners {
        use std::os::fd::AsRawFd;
        Owners { file: file.map(|f| f.as_raw_fd()), count, mine: AtomicU64::new(0), desc: Mutex::new(None) }
    }

    fn file(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: open for our life by the contract of `new`.
        self.file.map(|f| unsafe { BorrowedFd::borrow_raw(f) })
    }

    /// Our slot, if this handle claimed one in this process (no system call).
    #[inline]
    pub(crate) fn mine(&self) -> Option<u32> {
        // Relaxed: written once per process by this handle's claimer; a stale
        // read only sends us to the slow path.
        let c = self.mine.load(Ordering::Relaxed);
        (c != 0 && (c >> 32) as u32 == current_pid()).then(|| (c as u32).wrapping_sub(1))
    }

    /// Our slot, claiming a free one if needed. `scrub(k)` runs once we hold
    /// slot `k` and before we use it: it retires what a dead earlier holder of
    /// `k` left behind. `None` if every slot is taken or there is no file.
    #[inline]
    pub(crate) fn claim(&self, scrub: impl FnOnce(u32)) -> Option<u32> {
        self.mine().or_else(|| self.claim_slow(scrub))
    }

    #[cold]
    fn claim_slow(&self, scrub: impl FnOnce(u32)) -> Option<u32> {
        let mut desc = self.desc.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = self.mine() {
            return Some(k);
        }
        let fd = self.desc_fd(&mut desc)?;
        // Start where processes are unlikely to collide.
        let first = current_pid() % self.count.max(1);
        for i in 0..self.count {
            let k = (first + i) % self.count;
            if lock::try_lock(fd, SLOT_OWNER0 + k, true).unwrap_or(false) {
                scrub(k);
                // Relaxed: see `mine`.
                self.mine.store(u64::from(current_pid()) << 32 | u64::from(k + 1), Ordering::Relaxed);
                return Some(k);
            }
        }
        None
    }

    /// Our description, opened on first use in this process.
    fn desc_fd<'a>(&self, desc: &'a mut Option<PrivateFd>) -> Option<BorrowedFd<'a>> {
        if desc.as_ref().is_none_or(|d| d.get().is_none()) {
            // First use, or a forked child whose copy was closed at `fork`.
            *desc = Some(PrivateFd::new(lock::reopen(self.file()?).ok()?));
        }
        desc.as_ref()?.get()
    }

    /// Whether slot `k` has a live holder (ours included). A slot number out
    /// of range (scribbled) has none; when the kernel cannot tell, `true`.
    pub(crate) fn held(&self, k: u32) -> bool {
        if k >= self.count {
            return false;
        }
        self.file().is_none_or(|f| lock::is_held(f, SLOT_OWNER0 + k))
    }

    /// If slot `k` has no live holder, holds it for the duration of
    /// `repair` (so no claimer or other repairer uses it meanwhile) and
    /// returns `repair`'s result. Not for our own slot.
    pub(crate) fn with_dead<R>(&self, k: u32, repair: impl FnOnce() -> R) -> Option<R> {
        if k >= self.count || self.mine() == Some(k) {
            return None;
        }
        let mut desc = self.desc.lock().unwrap_or_else(|e| e.into_inner());
        let fd = self.desc_fd(&mut desc)?;
        if !lock::try_lock(fd, SLOT_OWNER0 + k, true).unwrap_or(false) {
            return None;
        }
        let r = repair();
        lock::unlock(fd, SLOT_OWNER0 + k);
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::object;
    use crate::shm::Options;
    use crate::sync::lock::Lock;

    #[test]
    fn slots_are_exclusive_kernel_held_and_freed_by_drop() {
        let name = format!("rshm-unit-owners-{}", std::process::id());
        let seg = object::create_segment::<Lock>(&name, &(), &Options::new()).unwrap();
        // SAFETY: `seg` outlives both.
        let (a, b) = unsafe { (Owners::new(seg.fd(), 4), Owners::new(seg.fd(), 4)) };
        let mut scrubbed = Vec::new();
        let ka = a.claim(|k| scrubbed.push(k)).unwrap();
        assert_eq!(a.claim(|_| panic!("claimed twice")), Some(ka));
        let kb = b.claim(|k| scrubbed.push(k)).unwrap();
        assert_ne!(ka, kb);
        assert_eq!(scrubbed, [ka, kb], "each new holder scrubs its slot once");
        assert!(a.held(ka) && a.held(kb) && b.held(ka));
        assert!(!a.held(99), "a scribbled slot number has no holder");
        assert_eq!(b.with_dead(ka, || ()), None, "a live holder's slot is not repaired");
        drop(a);
        assert!(!b.held(ka), "dropping the handle frees its slot");
        assert_eq!(b.with_dead(ka, || 7), Some(7));
        assert!(!b.held(ka), "a repairer holds the slot only while it repairs");
        assert!(b.held(kb));
    }
}
