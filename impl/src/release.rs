//! # Persist, then release: the ordering contract between a core and its driver, as types
//!
//! A core's outputs come out of [`Core::poll_ready`](crate::Core::poll_ready) as a
//! [`Ready`]: records to persist, and messages and events that state facts true only
//! once those records — and the records of every earlier `Ready` of the same core —
//! are durable. The types make that order the only one a driver can write:
//!
//! 1. [`Ready::persist`] appends the records to a log (a [`Wal`] or, in unit tests,
//!    a [`MemLog`]) and returns a [`Release`]: the messages and events, sealed, with
//!    the log position they depend on ([`Release::needs`]). That position is the
//!    log's last position after the append, so it covers the records of this
//!    `Ready` *and of every earlier one*; a `Ready` without records still depends
//!    on the previous one's position.
//! 2. The log's sync returns a [`Durable`]: a proof that the log is durable up to a
//!    position. Only a log makes one ([`Wal::sync_proof`], [`Wal::durable_proof`],
//!    [`MemLog::sync`]); its field is private.
//! 3. [`Release::open`] takes the proof and gives back the messages and events only
//!    if the proof comes from the same life of the same log and covers
//!    [`Release::needs`]; otherwise it returns [`Refused`] with the release intact
//!    (a typed error, never a silent send).
//!
//! A `Ready`'s messages cannot be read without a `Release` (the fields are private),
//! and a `Release` cannot be made without appending the records, so sending before
//! persisting does not compile; sending before the sync is a runtime refusal, since
//! a proof from an earlier sync is a real proof of a smaller position. The one way
//! around it says so in its name: [`Release::open_before_durable`], which exists only
//! so the simulator can plant the `ack-before-persist` bug and show that its
//! checks catch it.
//!
//! A pipelined driver (group commit, sends overlapping a later sync) keeps each
//! `Release` until a proof covers it: proofs are positions, so one sync opens every
//! release at or below it, in any order.
//!
//! Every life of a log has its own [`LogId`]: a [`Wal`] gets a fresh one each time
//! it is opened (after a crash, or on a disk that was lost and starts again at
//! `Lsn(0)`), a [`MemLog`] when it is made and when it is wiped. A release and a
//! proof each carry the identity of the log life that made them, and
//! [`Release::open`] refuses a proof from another log or another life
//! ([`Refusal::OtherLog`]): positions of two lives are not comparable, since a lost
//! disk counts again from zero. After a crash the driver drops the core and every
//! release it had not opened; the recovered core re-sends what it must.
//!
//! ```compile_fail
//! // Reading a Ready's messages directly does not compile: the field is private.
//! use eo_impl::ack_retry::Sender;
//! use eo_impl::bank::Transfer;
//! use eo_impl::{Core, Time};
//! let mut sender = Sender::new(1, 2, Time::ZERO, 0);
//! sender.submit(Time::ZERO, Transfer { from: 1, to: 2, amount: 5 }).unwrap();
//! let ready = sender.poll_ready();
//! let early = ready.messages; // error[E0616]: field `messages` is private
//! ```
//!
//! ```compile_fail
//! // Nor does forging a durability proof instead of syncing the log.
//! use eo_impl::release::Durable;
//! use eo_impl::wal::Lsn;
//! let forged = Durable { lsn: Lsn(u64::MAX) }; // error[E0451]: fields are private
//! ```
//!
//! The order that compiles, and the refusal of a stale proof:
//!
//! ```
//! use eo_impl::ack_retry::{Msg, Sender};
//! use eo_impl::bank::Transfer;
//! use eo_impl::disk::SimDisk;
//! use eo_impl::release::Refusal;
//! use eo_impl::wal::{Lsn, Wal};
//! use eo_impl::{Core, Time};
//!
//! let (mut wal, _) = Wal::open(SimDisk::new()).unwrap();
//! let mut sender = Sender::new(1, 2, Time::ZERO, 0); // asks receiver 2 for an incarnation
//! sender.handle_message(Time::ZERO, 2, Msg::Granted { nonce: 1, incarnation: 1 }).unwrap();
//! let release = sender.poll_ready().persist(&mut wal).unwrap();
//! let _ = release.open(wal.sync_proof().unwrap()).unwrap();
//! let stale = wal.durable_proof();
//! sender.submit(Time::ZERO, Transfer { from: 1, to: 2, amount: 5 }).unwrap();
//! let release = sender.poll_ready().persist(&mut wal).unwrap(); // append
//! let refused = release.open(stale).unwrap_err(); // not durable yet: refused
//! let needs = wal.lsn_last();
//! assert_eq!(refused.reason, Refusal::NotYetDurable { needs, durable: Lsn(1) });
//! let proof = wal.sync_proof().unwrap(); // sync
//! let released = refused.release.open(proof).unwrap(); // now the data may leave
//! assert_eq!(released.messages.len(), 1);
//! ```

use crate::core::Envelope;
use crate::disk::Disk;
use crate::wal::{Lsn, Wal, WalError};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The identity of one life of one log: a [`Wal`] gets a fresh one at each open, a
/// [`MemLog`] at creation and at each wipe. Only compared for equality; its value
/// says nothing else (it comes from a process-wide counter, so two logs of one
/// process never share one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogId(u64);

/// The next unused [`LogId`] of this process.
static NEXT_LOG_ID: AtomicU64 = AtomicU64::new(1);

impl LogId {
    /// An identity no other log life of this process has had.
    pub(crate) fn fresh() -> LogId {
        // Relaxed is enough: only uniqueness matters, and fetch_add gives it. At one
        // id per nanosecond the counter lasts 584 years; it never wraps in practice.
        LogId(NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "log#{}", self.0)
    }
}

/// What a core asks its driver to do: persist the records, then release the
/// messages and events. The fields are private: [`Ready::persist`] is the only way
/// to the messages (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a Ready holds records to persist and messages to release"]
pub struct Ready<R, M, E> {
    records: Vec<R>,
    messages: Vec<Envelope<M>>,
    events: Vec<E>,
}

impl<R, M, E> Default for Ready<R, M, E> {
    fn default() -> Self {
        Ready {
            records: Vec::new(),
            messages: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl<R, M, E> Ready<R, M, E> {
    /// A core adds a record to persist before anything in this `Ready` leaves.
    pub(crate) fn push_record(&mut self, record: R) {
        self.records.push(record);
    }

    /// A core adds a message, released once the log is durable up to this `Ready`.
    pub(crate) fn push_message(&mut self, envelope: Envelope<M>) {
        self.messages.push(envelope);
    }

    /// A core adds an application event, released with the messages.
    pub(crate) fn push_event(&mut self, event: E) {
        self.events.push(event);
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.messages.is_empty() && self.events.is_empty()
    }

    /// The records to persist.
    pub fn records(&self) -> &[R] {
        &self.records
    }

    /// The events the release will carry, to read (a simulator's ghost history
    /// notes what was promised before it is durable); handing them to the
    /// application still waits for [`Release::open`].
    pub fn events(&self) -> &[E] {
        &self.events
    }

    /// How many messages the release will carry.
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }

    /// The same outputs with records and events converted (a node of several
    /// roles wraps each role's records in its own record type).
    pub fn map<R2, E2>(
        self,
        record: impl FnMut(R) -> R2,
        event: impl FnMut(E) -> E2,
    ) -> Ready<R2, M, E2> {
        Ready {
            records: self.records.into_iter().map(record).collect(),
            messages: self.messages,
            events: self.events.into_iter().map(event).collect(),
        }
    }

    /// Step one: appends every record to `log` and returns the sealed messages and
    /// events, which depend on the log's last position after the append (this
    /// `Ready`'s records and every earlier one's). On an error from the log,
    /// nothing may be released: the messages are dropped with the `Ready`.
    pub fn persist<L: Log<R>>(self, log: &mut L) -> Result<Release<M, E>, L::Error> {
        for record in &self.records {
            log.append(record)?;
        }
        Ok(Release {
            log: log.id(),
            needs: log.last(),
            messages: self.messages,
            events: self.events,
        })
    }
}

/// Messages and events whose records were appended at or below [`Release::needs`],
/// waiting for a proof that the log is durable that far.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a Release holds messages and events to send once the log is durable"]
pub struct Release<M, E> {
    /// The log life the records were appended to.
    log: LogId,
    needs: Lsn,
    messages: Vec<Envelope<M>>,
    events: Vec<E>,
}

/// What a [`Release`] yields once opened: send the messages, hand the events to
/// the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released<M, E> {
    pub messages: Vec<Envelope<M>>,
    pub events: Vec<E>,
}

/// Why a [`Release`] refused a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The proof does not reach the position the release depends on.
    #[error("release needs the log durable up to {needs}, the proof reaches only {durable}")]
    NotYetDurable {
        /// The position the release depends on.
        needs: Lsn,
        /// The position the proof covers.
        durable: Lsn,
    },
    /// The proof comes from another log, or from another life of the same log (one
    /// opened again after a crash, or started again on a lost disk): its position
    /// says nothing about the records of this release.
    #[error("release was persisted to {release_log}, the proof comes from {proof_log}")]
    OtherLog {
        /// The log life the release's records were appended to.
        release_log: LogId,
        /// The log life that made the proof.
        proof_log: LogId,
    },
}

/// A [`Release`] was offered a proof that does not open it: nothing is released,
/// and the release comes back to wait for a proper proof.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refused<M: fmt::Debug, E: fmt::Debug> {
    /// Why the proof was refused.
    pub reason: Refusal,
    /// The release, unopened.
    pub release: Release<M, E>,
}

impl<M: fmt::Debug, E: fmt::Debug> Release<M, E> {
    /// The log position that must be durable before anything here leaves.
    pub fn needs(&self) -> Lsn {
        self.needs
    }

    /// The log life the release's records were appended to.
    pub fn log(&self) -> LogId {
        self.log
    }

    /// Step three: the messages and events, if `proof` comes from the log life the
    /// records were appended to and covers [`Release::needs`].
    #[allow(clippy::result_large_err)] // the release comes back whole, by design
    pub fn open(self, proof: Durable) -> Result<Released<M, E>, Refused<M, E>> {
        let reason = if proof.log != self.log {
            Refusal::OtherLog {
                release_log: self.log,
                proof_log: proof.log,
            }
        } else if proof.lsn < self.needs {
            Refusal::NotYetDurable {
                needs: self.needs,
                durable: proof.lsn,
            }
        } else {
            return Ok(Released {
                messages: self.messages,
                events: self.events,
            });
        };
        Err(Refused {
            reason,
            release: self,
        })
    }

    /// Opens the release **without** a proof: the `ack-before-persist` bug, under
    /// its own name. Only for a simulator that plants the bug on purpose to show
    /// that its invariants catch it; a real driver never calls this.
    pub fn open_before_durable(self) -> Released<M, E> {
        Released {
            messages: self.messages,
            events: self.events,
        }
    }
}

/// A proof, made only by a log, that the log is durable up to a position. See the
/// [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The log life that made the proof.
    log: LogId,
    lsn: Lsn,
}

impl Durable {
    /// The log life that made the proof.
    pub fn log(&self) -> LogId {
        self.log
    }

    /// Every record at or below this position is durable.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A log that [`Ready::persist`] appends to. Sealed: only this crate's logs
/// ([`Wal`], [`MemLog`]) implement it, so a `Release`'s position always comes from
/// a real log.
pub trait Log<R>: sealed::Sealed {
    type Error;
    /// Appends one record; returns its position.
    fn append(&mut self, record: &R) -> Result<Lsn, Self::Error>;
    /// The position of the last record appended (or of the snapshot).
    fn last(&self) -> Lsn;
    /// The identity of this life of the log.
    fn id(&self) -> LogId;
}

impl<D: Disk> sealed::Sealed for Wal<D> {}

impl<D: Disk, R: Serialize> Log<R> for Wal<D> {
    type Error = WalError;
    fn append(&mut self, record: &R) -> Result<Lsn, WalError> {
        self.append_record(record)
    }
    fn last(&self) -> Lsn {
        self.lsn_last()
    }
    fn id(&self) -> LogId {
        self.log_id()
    }
}

/// Proofs from the write-ahead log.
impl<D: Disk> Wal<D> {
    /// The identity of this life of the log, fresh at each open: releases and
    /// proofs carry it.
    pub fn log_id(&self) -> LogId {
        self.log_id
    }

    /// Step two: [`Wal::sync`], and the proof of the durable position it reached.
    pub fn sync_proof(&mut self) -> Result<Durable, WalError> {
        let lsn = self.sync()?;
        Ok(Durable {
            log: self.log_id(),
            lsn,
        })
    }

    /// The proof of what is durable already, without I/O: opens every release at
    /// or below the last sync (a group-commit driver gets it through
    /// `GroupCommit::with_wal` after its `append_and_wait` returned).
    pub fn durable_proof(&self) -> Durable {
        Durable {
            log: self.log_id(),
            lsn: self.lsn_durable(),
        }
    }
}

/// An in-memory log for unit tests that drive cores by hand: records are durable
/// once [`MemLog::sync`] returns, and [`MemLog::crash`] loses what was appended
/// after the last sync, as a disk would. Positions only grow, across compactions
/// too, like the write-ahead log's; [`MemLog::wipe`] starts a new life at `Lsn(0)`,
/// as a write-ahead log opened on a lost disk does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemLog<R> {
    /// This life of the log (a clone shares it: it is the same log's state).
    id: LogId,
    records: Vec<R>,
    /// Position of the record before `records[0]` (compacted away).
    offset: u64,
    /// Every position at or below this is durable.
    durable: u64,
}

impl<R> Default for MemLog<R> {
    fn default() -> Self {
        MemLog {
            id: LogId::fresh(),
            records: Vec::new(),
            offset: 0,
            durable: 0,
        }
    }
}

impl<R> sealed::Sealed for MemLog<R> {}

impl<R: Clone> Log<R> for MemLog<R> {
    type Error = std::convert::Infallible;
    fn append(&mut self, record: &R) -> Result<Lsn, Self::Error> {
        self.records.push(record.clone());
        Ok(self.last())
    }
    fn last(&self) -> Lsn {
        Lsn(self.offset + self.records.len() as u64)
    }
    fn id(&self) -> LogId {
        self.id
    }
}

impl<R: Clone> MemLog<R> {
    pub fn new() -> MemLog<R> {
        MemLog::default()
    }

    /// Makes every appended record durable; returns the proof.
    pub fn sync(&mut self) -> Durable {
        self.durable = self.last().0;
        Durable {
            log: self.id,
            lsn: Lsn(self.durable),
        }
    }

    /// Forgets the records appended since the last sync.
    pub fn crash(&mut self) {
        let keep = (self.durable - self.offset) as usize;
        self.records.truncate(keep);
    }

    /// Every record, durable or not, in append order.
    pub fn records(&self) -> &[R] {
        &self.records
    }

    /// Replaces the whole log by one durable record (a snapshot) at the next
    /// position.
    pub fn compact(&mut self, snapshot: R) {
        self.offset = self.last().0;
        self.records = vec![snapshot];
        self.durable = self.last().0;
    }

    /// Loses everything: the disk is gone. The log starts a new life at `Lsn(0)`
    /// with a new [`LogId`], as a write-ahead log opened on a lost disk does, so no
    /// proof of the old life opens a release of the new one.
    pub fn wipe(&mut self) {
        *self = MemLog::default();
    }
}

/// What a unit test sees after carrying out one `Ready` in full on a fresh
/// in-memory log: the records it persisted and what it released.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Settled<R, M, E> {
    pub records: Vec<R>,
    pub messages: Vec<Envelope<M>>,
    pub events: Vec<E>,
}

#[cfg(test)]
impl<R: Clone, M: fmt::Debug, E: fmt::Debug> Ready<R, M, E> {
    /// Persists into a fresh [`MemLog`], syncs, opens: the contract's order, for
    /// tests that inspect one `Ready` of a core driven by hand.
    pub(crate) fn settle(self) -> Settled<R, M, E> {
        let mut log = MemLog::new();
        let Ok(release) = self.persist(&mut log);
        let proof = log.sync();
        let released = release
            .open(proof)
            .expect("a fresh sync covers the release");
        Settled {
            records: log.records().to_vec(),
            messages: released.messages,
            events: released.events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack_retry::{Msg, Receiver, ReceiverEvent, ReceiverRecord, Sender};
    use crate::bank::Transfer;
    use crate::core::{Core, Time};
    use crate::disk::SimDisk;

    const SENDER: u32 = 1;
    const RECEIVER: u32 = 2;

    fn data(seq: u64) -> Msg {
        Msg::Data {
            incarnation: 1,
            seq,
            transfer: Transfer {
                from: 1,
                to: 2,
                amount: 3,
            },
        }
    }

    /// A receiver that granted incarnation 1 to `SENDER`, that Ready carried out.
    fn granted_receiver() -> Receiver {
        let mut receiver = Receiver::new(RECEIVER);
        let request = Msg::NewIncarnation { nonce: 1 };
        receiver
            .handle_message(Time::ZERO, SENDER, request)
            .unwrap();
        let _ = receiver.poll_ready().settle();
        receiver
    }

    /// Finding 1: a release opened with a proof from before the sync is refused
    /// with a typed error naming both positions, and opens after the sync.
    #[test]
    fn a_proof_from_before_the_sync_is_refused() {
        let (mut wal, _) = Wal::open(SimDisk::new()).unwrap();
        let mut receiver = granted_receiver();
        receiver
            .handle_message(Time::ZERO, SENDER, data(1))
            .unwrap();
        let before = wal.durable_proof();
        let release = receiver.poll_ready().persist(&mut wal).unwrap();
        assert_eq!(release.needs(), Lsn(1));
        let refused = release.open(before).unwrap_err();
        let reason = Refusal::NotYetDurable {
            needs: Lsn(1),
            durable: Lsn(0),
        };
        assert_eq!(refused.reason, reason);
        let proof = wal.sync_proof().unwrap();
        let released = refused.release.open(proof).unwrap();
        assert_eq!(released.messages.len(), 1, "the ack leaves after the sync");
    }

    /// A Ready without records (a re-ack of a duplicate) rests on the record of an
    /// earlier Ready: a pipelined driver that syncs the first Ready later cannot
    /// open the second one early.
    #[test]
    fn a_ready_without_records_depends_on_the_earlier_ready() {
        let mut log: MemLog<ReceiverRecord> = MemLog::new();
        let stale = log.sync();
        let mut receiver = granted_receiver();
        receiver
            .handle_message(Time::ZERO, SENDER, data(1))
            .unwrap();
        let Ok(first) = receiver.poll_ready().persist(&mut log);
        receiver
            .handle_message(Time::ZERO, SENDER, data(1))
            .unwrap();
        let second = receiver.poll_ready();
        assert!(second.records().is_empty() && second.message_count() == 1);
        let Ok(second) = second.persist(&mut log);
        assert_eq!(second.needs(), first.needs());
        let second = second.open(stale).unwrap_err().release;
        // A crash now loses the unsynced Applied record; the re-ack never left.
        let proof = log.sync();
        assert!(second.open(proof).is_ok() && first.open(proof).is_ok());
    }

    /// The in-memory log loses what was not synced, and its positions only grow
    /// across compaction; a wipe starts a new life at `Lsn(0)`, as the WAL does.
    #[test]
    fn mem_log_positions_grow_until_a_wipe_starts_a_new_life() {
        let mut log: MemLog<u8> = MemLog::new();
        let Ok(_) = log.append(&1);
        let first = log.sync();
        let Ok(_) = log.append(&2);
        log.crash();
        assert_eq!(log.records(), [1]);
        log.compact(9);
        assert_eq!(log.last(), Lsn(2));
        let life = log.id();
        log.wipe();
        assert_eq!((log.last(), log.records().len()), (Lsn(0), 0));
        assert_ne!(log.id(), life, "a wipe starts a new life");
        let Ok(lsn) = log.append(&3);
        assert_eq!(lsn, Lsn(1));
        assert!(first.lsn() >= lsn, "an old position covers a new record");
        assert_eq!(first.log(), life);
    }

    /// A receiver that applied seq 1 and released its ack, on `log`; the release
    /// of a second data message (seq 2), persisted but not synced.
    fn unsynced_release<L: Log<ReceiverRecord>>(log: &mut L) -> Release<Msg, ReceiverEvent>
    where
        L::Error: fmt::Debug,
    {
        let mut receiver = granted_receiver();
        receiver
            .handle_message(Time::ZERO, SENDER, data(1))
            .unwrap();
        receiver
            .handle_message(Time::ZERO, SENDER, data(2))
            .unwrap();
        receiver.poll_ready().persist(log).unwrap()
    }

    /// Review finding: a proof made before the disk was lost (its position 5) must
    /// not open a release of the log reopened on the wiped disk, whose positions
    /// start again at 0 and whose records are not synced.
    #[test]
    fn a_proof_from_before_a_disk_loss_is_refused() {
        let disk = SimDisk::new();
        let (mut wal, _) = Wal::open(disk.clone()).unwrap();
        for n in 0..5u8 {
            wal.append_record(&n).unwrap();
        }
        let old = wal.sync_proof().unwrap();
        assert_eq!(old.lsn(), Lsn(5));
        drop(wal);
        disk.wipe();
        let (mut wal, _) = Wal::open(disk.clone()).unwrap();
        let release = unsynced_release(&mut wal);
        assert_eq!((release.needs(), wal.lsn_durable()), (Lsn(2), Lsn(0)));
        let refused = release.open(old).unwrap_err();
        let reason = Refusal::OtherLog {
            release_log: wal.log_id(),
            proof_log: old.log(),
        };
        assert_eq!(refused.reason, reason);
        let released = refused.release.open(wal.sync_proof().unwrap()).unwrap();
        assert!(
            !released.messages.is_empty(),
            "the acks leave after their sync"
        );
    }

    /// The same on the in-memory log: its wipe restarts positions at 0 like the
    /// WAL, and the old proof is refused by identity.
    #[test]
    fn a_mem_log_proof_from_before_a_wipe_is_refused() {
        let mut log: MemLog<ReceiverRecord> = MemLog::new();
        for _ in 0..5 {
            let Ok(_) = log.append(&ReceiverRecord::Granted {
                sender: SENDER,
                incarnation: 1,
                nonce: 1,
            });
        }
        let old = log.sync();
        log.wipe();
        let release = unsynced_release(&mut log);
        assert!(
            old.lsn() >= release.needs(),
            "the position alone would open it"
        );
        let refused = release.open(old).unwrap_err();
        assert!(matches!(refused.reason, Refusal::OtherLog { .. }));
    }

    /// A proof of one log never opens a release of another, nor of the same disk
    /// reopened after a crash.
    #[test]
    fn a_proof_of_another_log_or_life_is_refused() {
        let mut other: MemLog<ReceiverRecord> = MemLog::new();
        let Ok(_) = other.append(&ReceiverRecord::Granted {
            sender: SENDER,
            incarnation: 1,
            nonce: 1,
        });
        let Ok(_) = other.append(&ReceiverRecord::Granted {
            sender: SENDER,
            incarnation: 2,
            nonce: 2,
        });
        let proof = other.sync();
        let mut log = MemLog::new();
        let release = unsynced_release(&mut log);
        let refused = release.open(proof).unwrap_err();
        assert!(matches!(refused.reason, Refusal::OtherLog { .. }));

        let disk = SimDisk::new();
        let (mut wal, _) = Wal::open(disk.clone()).unwrap();
        let release = unsynced_release(&mut wal);
        let proof = wal.sync_proof().unwrap();
        drop(wal);
        let (reopened, _) = Wal::open(disk).unwrap();
        assert_ne!(reopened.log_id(), proof.log());
        assert!(release.open(proof).is_ok(), "same life: opens");
    }

    /// The one way around the proof says so: the simulator's planted bug uses it.
    #[test]
    fn opening_before_durable_is_named() {
        let mut log = MemLog::new();
        let mut sender = Sender::new(SENDER, RECEIVER, Time::ZERO, 0);
        let grant = Msg::Granted {
            nonce: 1,
            incarnation: 1,
        };
        sender.handle_message(Time::ZERO, RECEIVER, grant).unwrap();
        let _ = sender.poll_ready().settle();
        let transfer = Transfer {
            from: 1,
            to: 2,
            amount: 1,
        };
        sender.submit(Time::ZERO, transfer).unwrap();
        let Ok(release) = sender.poll_ready().persist(&mut log);
        let released = release.open_before_durable();
        assert_eq!(released.messages.len(), 1);
        log.crash();
        assert!(log.records().is_empty(), "sent, yet nothing durable");
    }
}
