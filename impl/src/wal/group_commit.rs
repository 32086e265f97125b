//! Group commit: a log shared by threads, one `fdatasync` per batch.
//!
//! Positions are the interface. [`GroupCommit::append`] returns the record's
//! [`Lsn`] at once, without waiting; [`GroupCommit::wait_durable`] returns once
//! every record up to a given LSN is durable, with the durable LSN (which may be
//! further). A pipelined driver appends many records and waits once, for the last;
//! [`GroupCommit::append_and_wait`] is the two in one.
//!
//! A waiting thread that finds no sync in progress becomes the leader: under the
//! lock it appends a sync mark and takes a sync handle for everything appended so
//! far, then syncs *without holding the lock* (other threads keep appending), and
//! wakes every waiter; those whose LSN is now durable return, the others elect the
//! next leader. N concurrent appends thus cost far fewer than N syncs.

use super::{Lsn, Wal, WalError};
use crate::disk::{Disk, FileSync};
use serde::Serialize;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A log shared by threads, each appending and waiting for durability, with one
/// `fdatasync` per batch (see the module docs). `Sync` when the disk and its
/// syncer are `Send`.
pub struct GroupCommit<D: Disk> {
    state: Mutex<GroupState<D>>,
    synced: Condvar,
}

struct GroupState<D: Disk> {
    wal: Wal<D>,
    /// A leader is syncing (without holding the lock).
    syncing: bool,
}

impl<D> GroupCommit<D>
where
    D: Disk + Send,
    D::Syncer: Send,
{
    /// Shares `wal`.
    pub fn new(wal: Wal<D>) -> GroupCommit<D> {
        GroupCommit {
            state: Mutex::new(GroupState {
                wal,
                syncing: false,
            }),
            synced: Condvar::new(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, GroupState<D>>, WalError> {
        // A thread panicked while holding the lock: an internal invariant failed,
        // so the log's state is unknown.
        self.state.lock().map_err(|_| WalError::Poisoned)
    }

    /// Appends one record without waiting; returns its LSN. It is durable once
    /// [`GroupCommit::wait_durable`] for this LSN (or a later one) returns.
    #[must_use = "wait_durable(lsn) before acting on the record"]
    pub fn append(&self, payload: &[u8]) -> Result<Lsn, WalError> {
        self.lock()?.wal.append(payload)
    }

    /// Serialises `record` with postcard and appends it without waiting.
    #[must_use = "wait_durable(lsn) before acting on the record"]
    pub fn append_record<T: Serialize + ?Sized>(&self, record: &T) -> Result<Lsn, WalError> {
        let payload = postcard::to_allocvec(record).map_err(WalError::Encode)?;
        self.append(&payload)
    }

    /// Returns once every record up to `lsn` is durable, with the durable LSN
    /// (at least `lsn`). Syncs if no other thread is syncing; otherwise waits for
    /// that sync and, if it did not reach `lsn`, leads the next one. `lsn` must
    /// have been appended: a later one is [`WalError::NotAppended`].
    pub fn wait_durable(&self, lsn: Lsn) -> Result<Lsn, WalError> {
        let state = self.lock()?;
        self.wait_locked(state, lsn)
    }

    /// Makes everything appended so far durable; returns the durable LSN.
    pub fn sync(&self) -> Result<Lsn, WalError> {
        let state = self.lock()?;
        let lsn = state.wal.lsn_last();
        self.wait_locked(state, lsn)
    }

    /// Every record up to this LSN is durable (no waiting, no I/O).
    pub fn lsn_durable(&self) -> Result<Lsn, WalError> {
        Ok(self.lock()?.wal.lsn_durable())
    }

    /// LSN of the last appended record.
    pub fn lsn_last(&self) -> Result<Lsn, WalError> {
        Ok(self.lock()?.wal.lsn_last())
    }

    /// Appends one record and returns once it is durable, with its LSN.
    pub fn append_and_wait(&self, payload: &[u8]) -> Result<Lsn, WalError> {
        let mut state = self.lock()?;
        let lsn = state.wal.append(payload)?;
        self.wait_locked(state, lsn)?;
        Ok(lsn)
    }

    /// Serialises `record` with postcard, appends it and waits until it is durable.
    pub fn append_record_and_wait<T: Serialize + ?Sized>(
        &self,
        record: &T,
    ) -> Result<Lsn, WalError> {
        let payload = postcard::to_allocvec(record).map_err(WalError::Encode)?;
        self.append_and_wait(&payload)
    }

    fn wait_locked<'a>(
        &'a self,
        mut state: MutexGuard<'a, GroupState<D>>,
        lsn: Lsn,
    ) -> Result<Lsn, WalError> {
        let lsn_last = state.wal.lsn_last();
        if lsn > lsn_last {
            return Err(WalError::NotAppended { lsn, lsn_last });
        }
        loop {
            if state.wal.lsn_durable() >= lsn {
                return Ok(state.wal.lsn_durable());
            }
            state.wal.check_usable()?;
            if state.syncing {
                state = self.synced.wait(state).map_err(|_| WalError::Poisoned)?;
                continue;
            }
            // Leader: sync everything appended so far, letting others append meanwhile.
            let job = state.wal.sync_begin()?;
            state.syncing = true;
            drop(state);
            let result = job.syncer.sync_data();
            state = self.lock().inspect_err(|_| self.synced.notify_all())?;
            state.syncing = false;
            let ended = state.wal.sync_end(job.target, result);
            self.synced.notify_all();
            ended?;
        }
    }

    /// Runs `f` on the log under the lock: to compact it, or read its counters.
    pub fn with_wal<R>(&self, f: impl FnOnce(&mut Wal<D>) -> R) -> Result<R, WalError> {
        let mut state = self.lock()?;
        let result = f(&mut state.wal);
        // `f` may have synced or compacted: waiters may be durable now.
        self.synced.notify_all();
        Ok(result)
    }

    /// `fdatasync`s issued so far.
    pub fn sync_count(&self) -> Result<u64, WalError> {
        self.with_wal(|wal| wal.sync_count())
    }

    /// Takes the log back.
    pub fn into_inner(self) -> Result<Wal<D>, WalError> {
        self.state
            .into_inner()
            .map(|s| s.wal)
            .map_err(|_| WalError::Poisoned)
    }
}
