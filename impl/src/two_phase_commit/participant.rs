//! The participant: a bank that stages a posting, votes, and applies the decision.
//!
//! ## Call order
//!
//! 1. [`Participant::new`] on first start, or [`Participant::recover`] with the
//!    records its log returned (its [`ParticipantSnapshot`] first, if any). A
//!    recovered participant asks the coordinator at once about every transaction
//!    it is still prepared for.
//! 2. For every input — [`Core::handle_message`] or, once [`Core::poll_timeout`]
//!    has passed, [`Core::handle_timeout`] — then [`Core::poll_ready`]: append and
//!    sync its records (`Prepared`, `Committed`, `Aborted`, `Floor`), then send its
//!    messages. A yes vote follows its `Prepared` record, an `Ack` the record of
//!    the decision it acknowledges.
//! 3. To compact the log, replace it with [`Core::snapshot`] (only when the last
//!    `Ready` has been carried out). The snapshot holds the bank.
//!
//! ## Rules
//!
//! - A yes vote is durable before it leaves; a no vote is not recorded (an
//!   unprepared transaction can only abort).
//! - While prepared, it never decides alone: it queries the coordinator with
//!   bounded backoff.
//! - Committing is one `Committed` record holding the posting and the mark, so
//!   replaying the log applies each transaction once.
//! - Every decision is acknowledged, duplicates included. A `Commit` for a
//!   transaction never prepared here cannot happen (the coordinator commits only
//!   after this node's durable yes) and is [`Error::CommitNeverPrepared`].
//! - Finished transactions are kept until the coordinator's floor (carried by
//!   `Prepare`) passes them; see [`two_phase_commit`](super).

use super::TRACE_TARGET;
use super::{
    backoff, check_participants, check_posting, role, step, Decision, Error, Event, Msg, TxnId,
    Vote, VotePolicy, PARTICIPANT_CLIENTS_MAX, PARTICIPANT_TXNS_MAX, QUERY_INTERVAL_MAX,
    QUERY_INTERVAL_MIN,
};
use crate::bank::{AccountId, Bank, Posting, BALANCE_MAX};
use crate::core::{Core, Envelope, NodeId, Ready, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::debug;

/// A transaction prepared here and not yet decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedTxn {
    pub txn: TxnId,
    pub posting: Posting,
    pub participants: Vec<NodeId>,
}

/// A transaction finished here, kept to deduplicate late messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedTxn {
    pub txn: TxnId,
    pub decision: Decision,
}

/// The participant's whole durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantSnapshot {
    pub bank: Bank,
    /// Per client: every transaction below it is finished everywhere and forgotten.
    pub floors: BTreeMap<NodeId, u64>,
    pub prepared: Vec<PreparedTxn>,
    pub finished: Vec<FinishedTxn>,
}

/// The participant's log records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParticipantRecord {
    /// Staged a posting and voted yes (the vote leaves after this is durable).
    Prepared(PreparedTxn),
    /// Applied `posting` to the bank and marked `txn` committed, in one record.
    Committed { txn: TxnId, posting: Posting },
    /// Discarded a prepared posting.
    Aborted { txn: TxnId },
    /// `client`'s floor (carried by a `Prepare`) rose to `floor`: everything of it
    /// below is finished everywhere and forgotten here. No sync of its own: it
    /// rides with the next `Ready`, and losing it in a crash only means replaying
    /// a few more records. Replay drops every transaction below it, so recovery
    /// rebuilds the live core's bounded state from any log it wrote.
    Floor { client: NodeId, floor: u64 },
    /// Stands for all records before it; only ever the first record.
    Snapshot(ParticipantSnapshot),
}

#[derive(Clone, Debug)]
enum State {
    Prepared {
        posting: Posting,
        participants: Vec<NodeId>,
        query_at: Time,
        attempt: u32,
    },
    /// Voted no; in memory only (a crash forgets it, which is safe: it can only abort).
    Refused,
    Finished(Decision),
}

/// The two-phase-commit participant. See the module docs for the call order.
#[derive(Clone, Debug)]
pub struct Participant {
    id: NodeId,
    coordinator: NodeId,
    policy: VotePolicy,
    now: Time,
    bank: Bank,
    txns: BTreeMap<TxnId, State>,
    /// Per account, the sums staged by the transactions in `txns` that are
    /// `Prepared`: kept in step with `txns` by `hold` and `unhold`, so a vote
    /// looks up one account instead of scanning every held transaction.
    staged: BTreeMap<AccountId, Staged>,
    /// Index entries a vote has looked at, over this process's life: the test of
    /// the vote's cost counts work, not time.
    vote_work: WorkCount,
    floors: BTreeMap<NodeId, u64>,
    out: Ready<ParticipantRecord, Msg, Event>,
}

/// A count of work done by `&self` methods (a vote's index lookups). Atomic
/// rather than a `Cell` so that a participant is `Sync`: a model checker
/// shares its states between threads (eo-conformance's adapter).
#[derive(Debug, Default)]
struct WorkCount(AtomicU64);

impl WorkCount {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Clone for WorkCount {
    fn clone(&self) -> Self {
        WorkCount(AtomicU64::new(self.get()))
    }
}

/// The credits and debits that prepared transactions stage on one account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Staged {
    credits: i128,
    debits: i128,
    /// Prepared transactions on the account; the entry goes at zero.
    prepared: u64,
}

impl Participant {
    /// A participant with an empty log and bank, voting by `policy`.
    pub fn new(id: NodeId, coordinator: NodeId, policy: VotePolicy) -> Participant {
        Participant {
            id,
            coordinator,
            policy,
            now: Time::ZERO,
            bank: Bank::new(),
            txns: BTreeMap::new(),
            staged: BTreeMap::new(),
            vote_work: WorkCount::default(),
            floors: BTreeMap::new(),
            out: Ready::default(),
        }
    }

    /// Rebuilds a participant from its log; queries the coordinator at once about
    /// every transaction it is still prepared for.
    pub fn recover(
        id: NodeId,
        coordinator: NodeId,
        policy: VotePolicy,
        now: Time,
        records: impl IntoIterator<Item = ParticipantRecord>,
    ) -> Result<Participant, Error> {
        let mut p = Participant::new(id, coordinator, policy);
        p.now = now;
        for (index, record) in records.into_iter().enumerate() {
            p.replay(index, record)?;
        }
        let prepared: Vec<(TxnId, Vec<NodeId>)> = p
            .txns
            .iter_mut()
            .filter_map(|(id, s)| match s {
                State::Prepared {
                    participants,
                    query_at,
                    ..
                } => {
                    *query_at = now + QUERY_INTERVAL_MIN;
                    Some((*id, participants.clone()))
                }
                _ => None,
            })
            .collect();
        for (txn, participants) in &prepared {
            p.send(Msg::Query {
                txn: *txn,
                participants: participants.clone(),
            });
        }
        debug!(target: TRACE_TARGET,
            node = id,
            role = role::PARTICIPANT,
            step = step::RECOVER,
            txn = "-",
            persisted = "none",
            sent = "query",
            prepared = prepared.len(),
            held = p.txns.len(),
            total = p.bank.total()
        );
        Ok(p)
    }

    fn replay(&mut self, index: usize, record: ParticipantRecord) -> Result<(), Error> {
        // Query deadlines are set by `recover` once every record is replayed.
        let prepared = |posting, participants| State::Prepared {
            posting,
            participants,
            query_at: Time::ZERO,
            attempt: 0,
        };
        match record {
            ParticipantRecord::Snapshot(s) => {
                if index != 0 {
                    return Err(Error::SnapshotNotFirst { index });
                }
                if !s.bank.is_well_formed() {
                    return Err(Error::CorruptLog {
                        index,
                        txn: TxnId { client: 0, seq: 0 },
                        reason: "snapshot balance beyond BALANCE_MAX",
                    });
                }
                self.bank = s.bank;
                self.floors = s.floors;
                for t in s.prepared {
                    let corrupt = |reason| Error::CorruptLog {
                        index,
                        txn: t.txn,
                        reason,
                    };
                    check_logged(index, &t)?;
                    if self.txns.contains_key(&t.txn) {
                        return Err(corrupt("held twice in the snapshot"));
                    }
                    self.hold(t.txn, prepared(t.posting, t.participants));
                }
                for f in s.finished {
                    if self.txns.contains_key(&f.txn) {
                        return Err(Error::CorruptLog {
                            index,
                            txn: f.txn,
                            reason: "held twice in the snapshot",
                        });
                    }
                    self.hold(f.txn, State::Finished(f.decision));
                }
            }
            ParticipantRecord::Prepared(t) => {
                let corrupt = |reason| Error::CorruptLog {
                    index,
                    txn: t.txn,
                    reason,
                };
                check_logged(index, &t)?;
                if t.txn.seq < self.floor(t.txn.client) {
                    return Err(corrupt("prepared below its client's floor"));
                }
                if self.txns.contains_key(&t.txn) {
                    return Err(corrupt("prepared twice"));
                }
                let beyond = |bound| Error::LogBeyondBound {
                    index,
                    txn: t.txn,
                    bound,
                };
                if self.txns.len() >= PARTICIPANT_TXNS_MAX {
                    return Err(beyond("PARTICIPANT_TXNS_MAX"));
                }
                if !self.floors.contains_key(&t.txn.client)
                    && self.floors.len() >= PARTICIPANT_CLIENTS_MAX
                {
                    return Err(beyond("PARTICIPANT_CLIENTS_MAX"));
                }
                self.floors.entry(t.txn.client).or_insert(0);
                self.hold(t.txn, prepared(t.posting, t.participants));
            }
            ParticipantRecord::Committed { txn, posting } => {
                let corrupt = |reason| Error::CorruptLog { index, txn, reason };
                match self.txns.get(&txn) {
                    Some(State::Prepared {
                        posting: staged, ..
                    }) if *staged == posting => {}
                    Some(State::Prepared { .. }) => {
                        return Err(corrupt("committed a posting other than the prepared one"))
                    }
                    Some(_) => return Err(corrupt("committed after it finished")),
                    None => return Err(corrupt("committed without being prepared")),
                }
                self.bank
                    .post(&posting)
                    .map_err(|_| corrupt("committed beyond BALANCE_MAX"))?;
                self.hold(txn, State::Finished(Decision::Commit));
            }
            ParticipantRecord::Floor { client, floor } => {
                let corrupt = |reason| Error::CorruptLog {
                    index,
                    txn: TxnId { client, seq: floor },
                    reason,
                };
                if !self.floors.contains_key(&client)
                    && self.floors.len() >= PARTICIPANT_CLIENTS_MAX
                {
                    return Err(Error::LogBeyondBound {
                        index,
                        txn: TxnId { client, seq: floor },
                        bound: "PARTICIPANT_CLIENTS_MAX",
                    });
                }
                let old = self.floors.entry(client).or_insert(0);
                if floor < *old {
                    return Err(corrupt("floor went backwards"));
                }
                *old = floor;
                let below: Vec<(TxnId, bool)> = self
                    .txns
                    .range(TxnId { client, seq: 0 }..TxnId { client, seq: floor })
                    .map(|(id, s)| (*id, matches!(s, State::Prepared { .. })))
                    .collect();
                for (txn, prepared) in below {
                    if prepared {
                        // The live core logs an `Aborted` before forgetting one.
                        return Err(Error::CorruptLog {
                            index,
                            txn,
                            reason: "still prepared below a logged floor",
                        });
                    }
                    self.unhold(&txn);
                }
            }
            ParticipantRecord::Aborted { txn } => match self.txns.get(&txn) {
                Some(State::Prepared { .. }) => {
                    self.hold(txn, State::Finished(Decision::Abort));
                }
                _ => {
                    return Err(Error::CorruptLog {
                        index,
                        txn,
                        reason: "aborted without being prepared",
                    })
                }
            },
        }
        Ok(())
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The durable bank (committed postings only).
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// Transactions held (prepared or finished): bounded by [`PARTICIPANT_TXNS_MAX`].
    pub fn txn_count(&self) -> usize {
        self.txns.len()
    }

    /// Transactions prepared and awaiting a decision.
    pub fn prepared(&self) -> Vec<TxnId> {
        self.txns
            .iter()
            .filter(|(_, s)| matches!(s, State::Prepared { .. }))
            .map(|(id, _)| *id)
            .collect()
    }

    /// What this participant finished `txn` with, if it still holds it.
    pub fn finished(&self, txn: TxnId) -> Option<Decision> {
        match self.txns.get(&txn) {
            Some(State::Finished(d)) => Some(*d),
            _ => None,
        }
    }

    /// Every transaction of `client` below this is finished everywhere and forgotten here.
    pub fn floor(&self, client: NodeId) -> u64 {
        self.floors.get(&client).copied().unwrap_or(0)
    }

    fn send(&mut self, msg: Msg) {
        self.out.push_message(Envelope {
            to: self.coordinator,
            msg,
        });
    }

    fn tick(&mut self, now: Time) {
        self.now.advance_to(now);
    }

    /// The sums of the credits and of the debits staged (prepared, not yet
    /// decided) on `account`: one index lookup.
    fn staged(&self, account: u32) -> (i128, i128) {
        self.vote_work.add(1);
        self.staged
            .get(&account)
            .map_or((0, 0), |s| (s.credits, s.debits))
    }

    /// Holds `txn` in `state`, keeping the staged sums in step.
    fn hold(&mut self, txn: TxnId, state: State) {
        if let State::Prepared { posting, .. } = &state {
            self.stage(*posting, true);
        }
        if let Some(State::Prepared { posting, .. }) = self.txns.insert(txn, state) {
            self.stage(posting, false);
        }
    }

    /// Forgets `txn`, keeping the staged sums in step.
    fn unhold(&mut self, txn: &TxnId) {
        if let Some(State::Prepared { posting, .. }) = self.txns.remove(txn) {
            self.stage(posting, false);
        }
    }

    /// Adds (or removes) `posting` to (from) its account's staged sums.
    fn stage(&mut self, posting: Posting, add: bool) {
        let entry = self.staged.entry(posting.account).or_default();
        let delta = if add {
            i128::from(posting.delta)
        } else {
            -i128::from(posting.delta)
        };
        if posting.delta >= 0 {
            entry.credits += delta;
        } else {
            entry.debits += delta;
        }
        if add {
            entry.prepared += 1;
        } else {
            entry.prepared -= 1;
        }
        if entry.prepared == 0 {
            debug_assert_eq!((entry.credits, entry.debits), (0, 0));
            self.staged.remove(&posting.account);
        }
    }

    /// Index entries looked at by votes so far (work, not time).
    pub fn vote_work(&self) -> u64 {
        self.vote_work.get()
    }

    /// The staged sums by a full scan of the held transactions: what the index
    /// must always equal (checked by tests).
    #[cfg(test)]
    pub(crate) fn staged_by_scan(&self, account: u32) -> (i128, i128) {
        let mut credits = 0i128;
        let mut debits = 0i128;
        for s in self.txns.values() {
            if let State::Prepared { posting: p, .. } = s {
                if p.account == account {
                    if p.delta >= 0 {
                        credits += i128::from(p.delta);
                    } else {
                        debits += i128::from(p.delta);
                    }
                }
            }
        }
        (credits, debits)
    }

    /// Asserts that the staged index equals a full scan, for every account that
    /// either holds (test drivers call it after every step).
    #[cfg(test)]
    pub(crate) fn assert_staged_index(&self) {
        let mut accounts: std::collections::BTreeSet<u32> = self.staged.keys().copied().collect();
        for s in self.txns.values() {
            if let State::Prepared { posting, .. } = s {
                accounts.insert(posting.account);
            }
        }
        for account in accounts {
            assert_eq!(
                self.staged_by_index(account),
                self.staged_by_scan(account),
                "participant {}: staged index of account {account}",
                self.id
            );
        }
    }

    /// The staged sums of `account` as the index holds them.
    #[cfg(test)]
    pub(crate) fn staged_by_index(&self, account: u32) -> (i128, i128) {
        self.staged
            .get(&account)
            .map_or((0, 0), |s| (s.credits, s.debits))
    }

    /// Whether `posting` keeps the account within `BALANCE_MAX` whichever of the
    /// staged postings commit: then no Commit can ever overflow the bank.
    fn fits(&self, posting: &Posting) -> bool {
        let (credits, debits) = self.staged(posting.account);
        let balance = i128::from(self.bank.balance(posting.account));
        let delta = i128::from(posting.delta);
        let max = i128::from(BALANCE_MAX);
        balance + credits + delta.max(0) <= max && balance + debits + delta.min(0) >= -max
    }

    fn vote_for(&self, posting: &Posting) -> Vote {
        if !self.fits(posting) {
            return Vote::No;
        }
        match self.policy {
            VotePolicy::Yes => Vote::Yes,
            VotePolicy::No => Vote::No,
            VotePolicy::MinBalance(min) => {
                if posting.delta >= 0 {
                    return Vote::Yes;
                }
                let (_, debits) = self.staged(posting.account);
                let worst = i128::from(self.bank.balance(posting.account))
                    + debits
                    + i128::from(posting.delta);
                if worst >= i128::from(min) {
                    Vote::Yes
                } else {
                    Vote::No
                }
            }
        }
    }

    /// Raises `client`'s floor and forgets what is below it. A transaction still
    /// prepared below the floor is a re-prepared duplicate of an aborted one (a
    /// committed one is never re-prepared), so it is aborted.
    fn raise_floor(&mut self, client: NodeId, floor: u64) {
        let old = self.floor(client);
        if floor <= old {
            return;
        }
        let below: Vec<(TxnId, bool)> = self
            .txns
            .range(TxnId { client, seq: old }..TxnId { client, seq: floor })
            .map(|(id, s)| (*id, matches!(s, State::Prepared { .. })))
            .collect();
        for (txn, prepared) in &below {
            self.unhold(txn);
            if *prepared {
                self.out
                    .push_record(ParticipantRecord::Aborted { txn: *txn });
                self.out.push_event(Event::Aborted { txn: *txn });
                debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step = step::ABORT, txn = %txn,
                    persisted = "aborted", sent = "none", reason = "below-floor");
            }
        }
        self.floors.insert(client, floor);
        self.out
            .push_record(ParticipantRecord::Floor { client, floor });
        debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step = step::FORGET, txn = %TxnId { client, seq: old },
            persisted = "floor", sent = "none", client, floor, forgotten = below.len());
    }

    fn on_prepare(
        &mut self,
        txn: TxnId,
        posting: Posting,
        participants: Vec<NodeId>,
        floor: u64,
    ) -> Result<(), Error> {
        check_participants(&participants).map_err(|reason| Error::InvalidTxn { txn, reason })?;
        check_posting(&posting).map_err(|reason| Error::InvalidTxn { txn, reason })?;
        if !participants.contains(&self.id) {
            return Err(Error::NotAParticipant { txn, from: self.id });
        }
        if let Some(State::Prepared {
            posting: staged, ..
        }) = self.txns.get(&txn)
        {
            if *staged != posting {
                return Err(Error::ConflictingPrepare { txn });
            }
        }
        let known_client = self.floors.contains_key(&txn.client);
        if known_client || self.floors.len() < PARTICIPANT_CLIENTS_MAX {
            self.raise_floor(txn.client, floor);
        }
        if txn.seq < self.floor(txn.client) {
            debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step = step::IGNORE, txn = %txn,
                persisted = "none", sent = "none", reason = "below-floor", msg = "prepare");
            return Ok(());
        }
        let vote = match self.txns.get(&txn) {
            Some(State::Prepared { .. }) => Some(Vote::Yes),
            Some(State::Refused) => Some(Vote::No),
            Some(State::Finished(_)) => None,
            None => {
                let full = self.txns.len() >= PARTICIPANT_TXNS_MAX
                    || (!known_client && self.floors.len() >= PARTICIPANT_CLIENTS_MAX);
                let vote = if full {
                    Vote::No
                } else {
                    self.vote_for(&posting)
                };
                match vote {
                    Vote::Yes => {
                        self.out
                            .push_record(ParticipantRecord::Prepared(PreparedTxn {
                                txn,
                                posting,
                                participants: participants.clone(),
                            }));
                        self.floors.entry(txn.client).or_insert(0);
                        let query_at = self.now + QUERY_INTERVAL_MIN;
                        self.hold(
                            txn,
                            State::Prepared {
                                posting,
                                participants,
                                query_at,
                                attempt: 0,
                            },
                        );
                    }
                    Vote::No if !full => {
                        self.floors.entry(txn.client).or_insert(0);
                        self.hold(txn, State::Refused);
                    }
                    Vote::No => {}
                }
                debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step = step::VOTE, txn = %txn,
                    persisted = if vote == Vote::Yes { "prepared" } else { "none" }, sent = "vote",
                    vote = ?vote, full, account = posting.account, delta = posting.delta);
                self.send(Msg::Vote { txn, vote });
                return Ok(());
            }
        };
        match vote {
            Some(vote) => {
                // A duplicate Prepare: repeat the vote; the record, if any, is already written.
                self.send(Msg::Vote { txn, vote });
                debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step = step::VOTE, txn = %txn,
                    persisted = "none", sent = "vote", vote = ?vote, duplicate = true);
            }
            None => {
                debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step = step::IGNORE, txn = %txn,
                    persisted = "none", sent = "none", reason = "finished", msg = "prepare");
            }
        }
        Ok(())
    }

    fn on_decision(&mut self, txn: TxnId, decision: Decision) -> Result<(), Error> {
        let below_floor = txn.seq < self.floor(txn.client);
        let step = match decision {
            Decision::Commit => step::COMMIT,
            Decision::Abort => step::ABORT,
        };
        let (persisted, held) = match (self.txns.get(&txn), decision) {
            (Some(State::Prepared { posting, .. }), Decision::Commit) => {
                let posting = *posting;
                // Cannot fail: the yes vote checked that every staged posting fits.
                self.bank
                    .post(&posting)
                    .map_err(|_| Error::BalanceOutOfRange { txn })?;
                self.out
                    .push_record(ParticipantRecord::Committed { txn, posting });
                self.out.push_event(Event::Committed { txn, posting });
                self.hold(txn, State::Finished(Decision::Commit));
                ("committed", Some(Decision::Commit))
            }
            (Some(State::Prepared { .. }), Decision::Abort) => {
                self.out.push_record(ParticipantRecord::Aborted { txn });
                self.out.push_event(Event::Aborted { txn });
                self.hold(txn, State::Finished(Decision::Abort));
                ("aborted", Some(Decision::Abort))
            }
            (Some(State::Finished(Decision::Abort) | State::Refused), Decision::Commit) => {
                return Err(Error::CommitAfterAbort { txn });
            }
            // A duplicate, acknowledged again and applied never; or a presumed
            // abort answering a late query of a transaction committed here, which
            // no longer waits for it: acknowledged with what is held.
            (Some(State::Finished(held)), _) => ("none", Some(*held)),
            (Some(State::Refused), Decision::Abort) => {
                self.hold(txn, State::Finished(Decision::Abort));
                ("none", Some(Decision::Abort))
            }
            (None, _) if below_floor => ("none", None),
            (None, Decision::Commit) => return Err(Error::CommitNeverPrepared { txn }),
            (None, Decision::Abort) => {
                // Never prepared here (its Prepare was lost or is late). Remember the
                // abort in memory, if there is room, so a late Prepare is not voted on.
                let known_client = self.floors.contains_key(&txn.client);
                if self.txns.len() < PARTICIPANT_TXNS_MAX
                    && (known_client || self.floors.len() < PARTICIPANT_CLIENTS_MAX)
                {
                    self.floors.entry(txn.client).or_insert(0);
                    self.hold(txn, State::Finished(Decision::Abort));
                }
                ("none", Some(Decision::Abort))
            }
        };
        self.send(Msg::Ack { txn, held });
        debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step, txn = %txn,
            persisted, sent = "ack", held = ?held, duplicate = persisted == "none");
        Ok(())
    }
}

impl Core for Participant {
    type Msg = Msg;
    type Record = ParticipantRecord;
    type Event = Event;
    type Error = Error;

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) -> Result<(), Error> {
        self.tick(now);
        let kind = msg.kind();
        if from != self.coordinator {
            return Err(Error::UnexpectedMessage { from, kind });
        }
        match msg {
            Msg::Prepare {
                txn,
                posting,
                participants,
                floor,
            } => self.on_prepare(txn, posting, participants, floor),
            Msg::Decision { txn, decision } => self.on_decision(txn, decision),
            _ => Err(Error::UnexpectedMessage { from, kind }),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        self.tick(now);
        let mut queries = Vec::new();
        for (&txn, state) in self.txns.iter_mut() {
            if let State::Prepared {
                participants,
                query_at,
                attempt,
                ..
            } = state
            {
                if *query_at <= now {
                    *attempt = attempt.saturating_add(1);
                    *query_at = now + backoff(QUERY_INTERVAL_MIN, QUERY_INTERVAL_MAX, *attempt);
                    queries.push((txn, participants.clone(), *attempt));
                }
            }
        }
        for (txn, participants, attempt) in queries {
            self.send(Msg::Query { txn, participants });
            debug!(target: TRACE_TARGET, node = self.id, role = role::PARTICIPANT, step = step::QUERY, txn = %txn,
                persisted = "none", sent = "query", attempt);
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.txns
            .values()
            .filter_map(|s| match s {
                State::Prepared { query_at, .. } => Some(*query_at),
                _ => None,
            })
            .min()
    }

    fn poll_ready(&mut self) -> Ready<ParticipantRecord, Msg, Event> {
        std::mem::take(&mut self.out)
    }

    /// # Panics
    /// If records from the last input have not been taken with `poll_ready`.
    fn snapshot(&self) -> ParticipantRecord {
        assert!(
            self.out.records().is_empty(),
            "snapshot before the pending records were polled"
        );
        let mut s = ParticipantSnapshot {
            bank: self.bank.clone(),
            floors: self.floors.clone(),
            ..Default::default()
        };
        for (&txn, state) in &self.txns {
            match state {
                State::Prepared {
                    posting,
                    participants,
                    ..
                } => s.prepared.push(PreparedTxn {
                    txn,
                    posting: *posting,
                    participants: participants.clone(),
                }),
                State::Finished(decision) => s.finished.push(FinishedTxn {
                    txn,
                    decision: *decision,
                }),
                State::Refused => s.finished.push(FinishedTxn {
                    txn,
                    decision: Decision::Abort,
                }),
            }
        }
        ParticipantRecord::Snapshot(s)
    }
}

/// Checks a prepared transaction read back from the log (a snapshot or a
/// `Prepared` record) against the bounds a live participant enforces.
fn check_logged(index: usize, t: &PreparedTxn) -> Result<(), Error> {
    let corrupt = |reason| Error::CorruptLog {
        index,
        txn: t.txn,
        reason,
    };
    check_participants(&t.participants).map_err(corrupt)?;
    check_posting(&t.posting).map_err(corrupt)
}

// ---- Read-only view for eo-conformance's abstraction functions (no behaviour change). ----

/// Where one held transaction is, as [`Participant::txn_views`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnView {
    /// Staged and voted yes; waiting for the decision.
    Prepared,
    /// Voted no (in memory only).
    Refused,
    /// Decided here.
    Finished(Decision),
}

impl Participant {
    /// Every held transaction, by id, and where it is.
    pub fn txn_views(&self) -> Vec<(TxnId, TxnView)> {
        self.txns
            .iter()
            .map(|(id, s)| {
                let view = match s {
                    State::Prepared { .. } => TxnView::Prepared,
                    State::Refused => TxnView::Refused,
                    State::Finished(d) => TxnView::Finished(*d),
                };
                (*id, view)
            })
            .collect()
    }
}

/// One held transaction in a [`ParticipantProtocol`]: its id, where it is and,
/// while prepared, its staged posting and its participants.
pub type HeldTxn = (TxnId, TxnView, Option<(Posting, Vec<NodeId>)>);

/// A participant's protocol state: everything but its clock, its query
/// deadlines and counters, its vote policy (configuration, like its id) and its
/// work counter. Two participants with equal protocol states, the same policy
/// and every query already due (a driver whose `now` is past them all) answer
/// every input alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParticipantProtocol {
    /// Every held transaction, by id, where it is and, while prepared, its
    /// staged posting and its participants.
    pub txns: Vec<HeldTxn>,
    /// The bank's balances, by account.
    pub balances: Vec<(AccountId, crate::bank::Amount)>,
    /// Per client: its floor.
    pub floors: Vec<(NodeId, u64)>,
    /// Whether outputs wait to be polled.
    pub unpolled: bool,
}

impl Participant {
    /// The protocol state (see [`ParticipantProtocol`]).
    pub fn protocol(&self) -> ParticipantProtocol {
        ParticipantProtocol {
            txns: self
                .txn_views()
                .into_iter()
                .map(|(id, view)| {
                    let staged = match self.txns.get(&id) {
                        Some(State::Prepared {
                            posting,
                            participants,
                            ..
                        }) => Some((*posting, participants.clone())),
                        _ => None,
                    };
                    (id, view, staged)
                })
                .collect(),
            balances: self.bank.balances().iter().map(|(a, b)| (*a, *b)).collect(),
            floors: self.floors.iter().map(|(c, f)| (*c, *f)).collect(),
            unpolled: !self.out.is_empty(),
        }
    }
}

// ---- Configuration knob for eo-conformance's model-driven tests (no behaviour change). ----
impl Participant {
    /// Replaces the vote policy for the votes to come: a driver that stands in
    /// for the application's choice (the model leaves each vote to a
    /// nondeterministic choice) sets it before handing over a `Prepare`.
    pub fn set_vote_policy(&mut self, policy: VotePolicy) {
        self.policy = policy;
    }
}
