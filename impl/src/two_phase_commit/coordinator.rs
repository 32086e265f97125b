//! The coordinator: runs the two phases and keeps the decisions.
//!
//! ## Call order
//!
//! 1. [`Coordinator::new`] on first start, or [`Coordinator::recover`] with the
//!    records its log returned (its [`CoordinatorSnapshot`] first, if any).
//! 2. For every input — [`Core::handle_message`] or, once [`Core::poll_timeout`]
//!    has passed, [`Core::handle_timeout`] — then [`Core::poll_ready`]: append and
//!    sync its records (`Started`, `Decided`, `Floor`), then send its messages. A
//!    `Prepare` always follows the `Started` record of its transaction, and a
//!    `Decision` or an `Outcome` the `Decided` record that makes it true.
//! 3. To compact the log, replace it with [`Core::snapshot`] (only when the last
//!    `Ready` has been carried out).
//!
//! ## Lifecycle of a transaction here
//!
//! `Begin` → `Started` record → *preparing* (collecting votes) → `Decided` record →
//! *deciding* (re-sending the decision until every participant acknowledged) →
//! *done* (a tombstone answering late retries and queries) → forgotten once the
//! client's floor passes it. A crash while preparing is a presumed abort: the
//! recovered coordinator finds the `Started` record without a decision and logs
//! and sends Abort at once. See the module docs of [`two_phase_commit`](super)
//! for why forgetting is safe.

use super::TRACE_TARGET;
use super::{
    backoff, check_legs, check_participants, role, step, Busy, Decision, Error, Event, Leg, Msg,
    Txn, TxnId, Vote, CLIENT_PENDING_TXNS_MAX, COORDINATOR_CLIENTS_MAX, COORDINATOR_TXNS_MAX,
    DECISION_RETRY_INTERVAL_MAX, DECISION_RETRY_INTERVAL_MIN, PREPARE_RETRY_INTERVAL, VOTE_TIMEOUT,
};
use crate::core::{Core, Envelope, NodeId, Ready, Time};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tracing::debug;

/// A transaction the coordinator started: what recovery needs to abort it (send
/// Abort to every participant and the outcome to the client).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StartedTxn {
    pub txn: TxnId,
    pub participants: Vec<NodeId>,
}

/// A logged decision.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DecidedTxn {
    pub txn: TxnId,
    pub participants: Vec<NodeId>,
    pub decision: Decision,
}

/// The coordinator's whole durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CoordinatorSnapshot {
    /// Per client: every transaction below it is finished and forgotten.
    pub floors: BTreeMap<NodeId, u64>,
    /// Every decision at or above its client's floor.
    pub decided: Vec<DecidedTxn>,
    /// Every started transaction without a decision (all at or above their
    /// client's floor). Recovery aborts them.
    pub started: Vec<StartedTxn>,
}

/// The coordinator's log records.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CoordinatorRecord {
    /// A transaction started: durable before any `Prepare` for it leaves. A
    /// recovered coordinator aborts every started transaction it holds no
    /// decision for, so a client retry is answered, never run a second time.
    Started(StartedTxn),
    /// A decision, durable before any participant or the client hears it.
    Decided(DecidedTxn),
    /// `client`'s floor rose to `floor`: every transaction of it below `floor` is
    /// finished everywhere and forgotten. It needs no sync of its own (it rides
    /// with the next `Ready`): losing it in a crash only means replaying, and
    /// re-sending, a few more decisions. Replay drops every decision below it, so
    /// recovery rebuilds the live core's bounded state from any log it wrote.
    Floor { client: NodeId, floor: u64 },
    /// Stands for all records before it; only ever the first record.
    Snapshot(CoordinatorSnapshot),
}

#[derive(Clone, Debug)]
enum Phase {
    /// Collecting votes. Only the `Started` record is durable: a crash here is a
    /// presumed abort, logged and sent by the recovered coordinator.
    Preparing {
        legs: Vec<Leg>,
        yes: BTreeSet<NodeId>,
        vote_deadline: Time,
        resend_at: Time,
    },
    /// Decision durable; re-sent until every participant acknowledged it.
    Deciding {
        decision: Decision,
        acked: BTreeSet<NodeId>,
        resend_at: Time,
        attempt: u32,
    },
    /// Every participant acknowledged; kept until the client's floor passes it.
    Done { decision: Decision },
}

#[derive(Clone, Debug)]
struct Entry {
    participants: Vec<NodeId>,
    phase: Phase,
}

impl Entry {
    fn decision(&self) -> Option<Decision> {
        match self.phase {
            Phase::Preparing { .. } => None,
            Phase::Deciding { decision, .. } | Phase::Done { decision } => Some(decision),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct ClientWindow {
    /// Every transaction of the client below it is finished and forgotten.
    floor: u64,
    /// The highest `low` the client reported: it knows every outcome below it.
    low: u64,
}

/// The two-phase-commit coordinator. See the module docs for the call order.
#[derive(Clone, Debug)]
pub struct Coordinator {
    id: NodeId,
    participants: BTreeSet<NodeId>,
    now: Time,
    txns: BTreeMap<TxnId, Entry>,
    clients: BTreeMap<NodeId, ClientWindow>,
    out: Ready<CoordinatorRecord, Msg, Event>,
}

impl Coordinator {
    /// A coordinator with an empty log, for a cluster whose participants are `participants`.
    pub fn new(id: NodeId, participants: impl IntoIterator<Item = NodeId>) -> Coordinator {
        Coordinator {
            id,
            participants: participants.into_iter().collect(),
            now: Time::ZERO,
            txns: BTreeMap::new(),
            clients: BTreeMap::new(),
            out: Ready::default(),
        }
    }

    /// Rebuilds a coordinator from its log. Every logged decision that is not below
    /// its client's floor is re-sent at once (to the participants and the client).
    /// Every started transaction without a logged decision is aborted at once: its
    /// votes were lost with the crash, so the coordinator logs `Decided(Abort)` for
    /// it (in this first `Ready`) and sends Abort to its participants and the
    /// outcome to its client, re-sending until acknowledged like any decision.
    ///
    /// Fails with a typed error on a log this coordinator could not have written:
    /// a snapshot after the first record, records that contradict each other
    /// ([`Error::CorruptLog`]), or more transactions or clients than its bounds
    /// allow ([`Error::LogBeyondBound`]).
    pub fn recover(
        id: NodeId,
        participants: impl IntoIterator<Item = NodeId>,
        now: Time,
        records: impl IntoIterator<Item = CoordinatorRecord>,
    ) -> Result<Coordinator, Error> {
        let mut c = Coordinator::new(id, participants);
        c.now = now;
        for (index, record) in records.into_iter().enumerate() {
            match record {
                CoordinatorRecord::Snapshot(s) => {
                    if index != 0 {
                        return Err(Error::SnapshotNotFirst { index });
                    }
                    for (client, floor) in s.floors {
                        if c.clients.len() >= COORDINATOR_CLIENTS_MAX {
                            return Err(Error::LogBeyondBound {
                                index,
                                txn: TxnId { client, seq: floor },
                                bound: "COORDINATOR_CLIENTS_MAX",
                            });
                        }
                        c.clients.insert(client, ClientWindow { floor, low: floor });
                    }
                    for d in s.decided {
                        c.recover_decided(index, d)?;
                    }
                    for t in s.started {
                        c.recover_started(index, t)?;
                    }
                }
                CoordinatorRecord::Started(t) => c.recover_started(index, t)?,
                CoordinatorRecord::Decided(d) => c.recover_decided(index, d)?,
                CoordinatorRecord::Floor { client, floor } => {
                    c.recover_floor(index, client, floor)?
                }
            }
        }
        // Re-send every decision now: acknowledgements were never logged.
        let decided: Vec<(TxnId, Decision, Vec<NodeId>)> = c
            .txns
            .iter()
            .filter_map(|(id, e)| e.decision().map(|d| (*id, d, e.participants.clone())))
            .collect();
        for (txn, decision, participants) in &decided {
            for &p in participants {
                c.send(
                    p,
                    Msg::Decision {
                        txn: *txn,
                        decision: *decision,
                    },
                );
            }
            c.send(
                txn.client,
                Msg::Outcome {
                    txn: *txn,
                    decision: *decision,
                },
            );
        }
        // Started, never decided: presumed abort, made durable now.
        let undecided: Vec<TxnId> = c
            .txns
            .iter()
            .filter(|(_, e)| e.decision().is_none())
            .map(|(id, _)| *id)
            .collect();
        debug!(target: TRACE_TARGET,
            node = id,
            role = role::COORDINATOR,
            step = step::RECOVER,
            txn = "-",
            persisted = if undecided.is_empty() { "none" } else { "decided" },
            sent = if decided.is_empty() && undecided.is_empty() { "none" } else { "decision" },
            decided = decided.len(),
            aborted = undecided.len(),
            clients = c.clients.len(),
        );
        for txn in undecided {
            c.decide(txn, Decision::Abort, "recovered");
        }
        Ok(c)
    }

    /// Checks that one more transaction of `txn.client` fits the bounds a live
    /// coordinator enforces.
    fn recover_fits(&self, index: usize, txn: TxnId) -> Result<(), Error> {
        let beyond = |bound| Error::LogBeyondBound { index, txn, bound };
        if !self.clients.contains_key(&txn.client) && self.clients.len() >= COORDINATOR_CLIENTS_MAX
        {
            return Err(beyond("COORDINATOR_CLIENTS_MAX"));
        }
        if self.txns.len() >= COORDINATOR_TXNS_MAX {
            return Err(beyond("COORDINATOR_TXNS_MAX"));
        }
        Ok(())
    }

    /// Replays a started transaction: it is preparing until a decision for it is
    /// replayed; if none is, recovery aborts it.
    fn recover_started(&mut self, index: usize, t: StartedTxn) -> Result<(), Error> {
        let txn = t.txn;
        let corrupt = |reason| Error::CorruptLog { index, txn, reason };
        check_participants(&t.participants).map_err(corrupt)?;
        if txn.seq < self.floor(txn.client) {
            return Err(corrupt("started below its client's floor"));
        }
        if self.txns.contains_key(&txn) {
            // A live coordinator starts an id only when it holds nothing for it.
            return Err(corrupt("started while already held"));
        }
        self.recover_fits(index, txn)?;
        self.clients.entry(txn.client).or_default();
        self.txns.insert(
            txn,
            Entry {
                participants: t.participants,
                phase: Phase::Preparing {
                    legs: Vec::new(),
                    yes: BTreeSet::new(),
                    vote_deadline: self.now,
                    resend_at: self.now,
                },
            },
        );
        Ok(())
    }

    fn recover_decided(&mut self, index: usize, d: DecidedTxn) -> Result<(), Error> {
        let txn = d.txn;
        let corrupt = |reason| Error::CorruptLog { index, txn, reason };
        check_participants(&d.participants).map_err(corrupt)?;
        if d.txn.seq < self.floor(txn.client) {
            return Err(corrupt("decision below its client's floor"));
        }
        match self.txns.get(&txn) {
            Some(e) if e.decision().is_none() => {
                if e.participants != d.participants {
                    return Err(corrupt(
                        "decided with other participants than it started with",
                    ));
                }
            }
            Some(e) if e.decision() == Some(d.decision) => return Ok(()),
            Some(_) => return Err(corrupt("two decisions")),
            None => self.recover_fits(index, txn)?,
        }
        self.clients.entry(txn.client).or_default();
        let phase = Phase::Deciding {
            decision: d.decision,
            acked: BTreeSet::new(),
            resend_at: self.now + DECISION_RETRY_INTERVAL_MIN,
            attempt: 0,
        };
        self.txns.insert(
            txn,
            Entry {
                participants: d.participants,
                phase,
            },
        );
        Ok(())
    }

    /// Replays a floor raise: forgets `client`'s transactions below `floor`, as the
    /// live core did when it logged the record. The live core raises a floor only
    /// past decided transactions, so a started one without a decision below it
    /// means the log is corrupt.
    fn recover_floor(&mut self, index: usize, client: NodeId, floor: u64) -> Result<(), Error> {
        let corrupt = |reason| Error::CorruptLog {
            index,
            txn: TxnId { client, seq: floor },
            reason,
        };
        let known = self.clients.contains_key(&client);
        if !known && self.clients.len() >= COORDINATOR_CLIENTS_MAX {
            return Err(Error::LogBeyondBound {
                index,
                txn: TxnId { client, seq: floor },
                bound: "COORDINATOR_CLIENTS_MAX",
            });
        }
        let window = self.clients.entry(client).or_default();
        if floor < window.floor {
            return Err(corrupt("floor went backwards"));
        }
        window.floor = floor;
        window.low = window.low.max(floor);
        let below: Vec<(TxnId, bool)> = self
            .txns
            .range(TxnId { client, seq: 0 }..TxnId { client, seq: floor })
            .map(|(id, e)| (*id, e.decision().is_some()))
            .collect();
        for (txn, decided) in below {
            if !decided {
                return Err(Error::CorruptLog {
                    index,
                    txn,
                    reason: "started and undecided below a logged floor",
                });
            }
            self.txns.remove(&txn);
        }
        Ok(())
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Transactions held (preparing, deciding or done): bounded by [`COORDINATOR_TXNS_MAX`].
    pub fn txn_count(&self) -> usize {
        self.txns.len()
    }

    /// Clients with a floor: bounded by [`COORDINATOR_CLIENTS_MAX`].
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The logged decision for `txn`, if it is still held.
    pub fn decision(&self, txn: TxnId) -> Option<Decision> {
        self.txns.get(&txn).and_then(Entry::decision)
    }

    /// Every transaction of `client` below this is finished and forgotten.
    pub fn floor(&self, client: NodeId) -> u64 {
        self.clients.get(&client).map_or(0, |w| w.floor)
    }

    fn send(&mut self, to: NodeId, msg: Msg) {
        self.out.push_message(Envelope { to, msg });
    }

    fn tick(&mut self, now: Time) {
        self.now.advance_to(now);
    }

    fn check_txn(&self, txn: TxnId, participants: &[NodeId]) -> Result<(), Error> {
        check_participants(participants).map_err(|reason| Error::InvalidTxn { txn, reason })?;
        if participants.iter().any(|p| !self.participants.contains(p)) {
            return Err(Error::InvalidTxn {
                txn,
                reason: "unknown participant",
            });
        }
        Ok(())
    }

    fn on_begin(&mut self, from: NodeId, txn: Txn, low: u64) -> Result<(), Error> {
        let id = txn.id;
        if from != id.client {
            return Err(Error::UnexpectedMessage {
                from,
                kind: "begin",
            });
        }
        if low > id.seq || id.seq - low >= CLIENT_PENDING_TXNS_MAX {
            return Err(Error::OutsideWindow { txn: id, low });
        }
        self.check_txn(id, &txn.participants())?;
        check_legs(&txn.legs).map_err(|reason| Error::InvalidTxn { txn: id, reason })?;
        if !self.clients.contains_key(&from) && self.clients.len() >= COORDINATOR_CLIENTS_MAX {
            self.send(
                from,
                Msg::Busy {
                    txn: id,
                    reason: Busy::Clients,
                },
            );
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::BUSY, txn = %id,
                persisted = "none", sent = "busy", reason = "clients-full");
            return Ok(());
        }
        let window = self.clients.entry(from).or_default();
        window.low = window.low.max(low);
        self.raise_floor(from);
        if id.seq < self.floor(from) {
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::IGNORE, txn = %id,
                persisted = "none", sent = "none", reason = "below-floor");
            return Ok(());
        }
        match self.txns.get(&id).map(|e| e.decision()) {
            Some(None) => {
                // In progress: never restarted; the client hears the decision when it is logged.
                debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::RETRY, txn = %id,
                    persisted = "none", sent = "none", state = "preparing");
            }
            Some(Some(decision)) => {
                self.send(id.client, Msg::Outcome { txn: id, decision });
                debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::RETRY, txn = %id,
                    persisted = "none", sent = "outcome", decision = ?decision);
            }
            None if self.txns.len() >= COORDINATOR_TXNS_MAX => {
                // Nothing recorded, nothing promised: the client learns why and backs off.
                let busy = Msg::Busy {
                    txn: id,
                    reason: Busy::Transactions,
                };
                self.send(id.client, busy);
                debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::BUSY, txn = %id,
                    persisted = "none", sent = "busy", reason = "txns-full");
            }
            None => {
                // Started before Prepare: if this coordinator crashes before
                // deciding, the recovered one finds the record and aborts the
                // transaction, so a retry of this id is answered, never run again.
                // Record and Prepares go out in one Ready, and a Ready's messages
                // leave only once its records are durable (see `crate::core`):
                // no Prepare can leave before the `Started` record is durable.
                let participants = txn.participants();
                self.out.push_record(CoordinatorRecord::Started(StartedTxn {
                    txn: id,
                    participants: participants.clone(),
                }));
                let floor = self.floor(from);
                for leg in &txn.legs {
                    self.send(
                        leg.participant,
                        Msg::Prepare {
                            txn: id,
                            posting: leg.posting,
                            participants: participants.clone(),
                            floor,
                        },
                    );
                }
                let phase = Phase::Preparing {
                    legs: txn.legs,
                    yes: BTreeSet::new(),
                    vote_deadline: self.now + VOTE_TIMEOUT,
                    resend_at: self.now + PREPARE_RETRY_INTERVAL,
                };
                self.txns.insert(
                    id,
                    Entry {
                        participants,
                        phase,
                    },
                );
                debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::PREPARE, txn = %id,
                    persisted = "started", sent = "prepare", participants = self.txns[&id].participants.len());
            }
        }
        Ok(())
    }

    fn on_vote(&mut self, from: NodeId, txn: TxnId, vote: Vote) -> Result<(), Error> {
        let Some(entry) = self.txns.get_mut(&txn) else {
            // Unknown: finished and forgotten below the floor. (A round of a
            // previous incarnation is held: recovery aborted it.) A prepared voter
            // will query, and the query is answered.
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::IGNORE, txn = %txn,
                persisted = "none", sent = "none", reason = "unknown", from, vote = ?vote);
            return Ok(());
        };
        if !entry.participants.contains(&from) {
            return Err(Error::NotAParticipant { txn, from });
        }
        let Phase::Preparing { yes, .. } = &mut entry.phase else {
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::IGNORE, txn = %txn,
                persisted = "none", sent = "none", reason = "decided", from, vote = ?vote);
            return Ok(());
        };
        debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::VOTE, txn = %txn,
            persisted = "none", sent = "none", from, vote = ?vote);
        match vote {
            Vote::No => self.decide(txn, Decision::Abort, "no-vote"),
            Vote::Yes => {
                yes.insert(from);
                if yes.len() == entry.participants.len() {
                    self.decide(txn, Decision::Commit, "all-yes");
                }
            }
        }
        Ok(())
    }

    /// Logs `decision` for a preparing `txn` and sends it after the record.
    fn decide(&mut self, txn: TxnId, decision: Decision, reason: &'static str) {
        let entry = self.txns.get_mut(&txn).expect("decide: txn is held");
        assert!(
            matches!(entry.phase, Phase::Preparing { .. }),
            "decide: only once, before any decision"
        );
        entry.phase = Phase::Deciding {
            decision,
            acked: BTreeSet::new(),
            resend_at: self.now + DECISION_RETRY_INTERVAL_MIN,
            attempt: 0,
        };
        let participants = entry.participants.clone();
        self.out.push_record(CoordinatorRecord::Decided(DecidedTxn {
            txn,
            participants: participants.clone(),
            decision,
        }));
        for p in participants {
            self.send(p, Msg::Decision { txn, decision });
        }
        self.send(txn.client, Msg::Outcome { txn, decision });
        self.out.push_event(Event::Decided { txn, decision });
        debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::DECIDE, txn = %txn,
            persisted = "decided", sent = "decision", decision = ?decision, reason);
    }

    /// `held: None` counts: the participant finished `txn` and forgot it, which it
    /// does only once the floor passed it, i.e. after everyone acknowledged.
    fn on_ack(&mut self, from: NodeId, txn: TxnId, held: Option<Decision>) -> Result<(), Error> {
        let Some(entry) = self.txns.get_mut(&txn) else {
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::IGNORE, txn = %txn,
                persisted = "none", sent = "none", reason = "unknown", from);
            return Ok(());
        };
        if !entry.participants.contains(&from) {
            return Err(Error::NotAParticipant { txn, from });
        }
        let decision = match (entry.decision(), held) {
            (None, _) => return Err(Error::AckBeforeDecision { txn, from }),
            (Some(logged), Some(held)) if logged != held => {
                return Err(Error::AckMismatch { txn, from })
            }
            (Some(logged), _) => logged,
        };
        let all_acked = match &mut entry.phase {
            Phase::Deciding { acked, .. } => {
                acked.insert(from);
                acked.len() == entry.participants.len()
            }
            _ => false,
        };
        debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::ACK, txn = %txn,
            persisted = "none", sent = "none", from, held = ?held, done = all_acked);
        if all_acked {
            entry.phase = Phase::Done { decision };
            self.raise_floor(txn.client);
        }
        Ok(())
    }

    fn on_query(
        &mut self,
        from: NodeId,
        txn: TxnId,
        participants: Vec<NodeId>,
    ) -> Result<(), Error> {
        if !participants.contains(&from) {
            return Err(Error::NotAParticipant { txn, from });
        }
        self.check_txn(txn, &participants)?;
        if let Some(entry) = self.txns.get(&txn) {
            if !entry.participants.contains(&from) {
                return Err(Error::NotAParticipant { txn, from });
            }
            match entry.decision() {
                None => {
                    // Still collecting votes; the vote timeout bounds the wait.
                    debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::QUERY, txn = %txn,
                        persisted = "none", sent = "none", from, answer = "pending");
                }
                Some(decision) => {
                    self.send(from, Msg::Decision { txn, decision });
                    debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::QUERY, txn = %txn,
                        persisted = "none", sent = "decision", from, answer = ?decision);
                }
            }
            return Ok(());
        }
        if txn.seq < self.floor(txn.client) {
            // Finished and acknowledged by every participant: the asker either
            // finished it too (and ignores this) or re-prepared a late duplicate
            // Prepare of an aborted transaction. Committed ones are never re-prepared.
            self.send(
                from,
                Msg::Decision {
                    txn,
                    decision: Decision::Abort,
                },
            );
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::QUERY, txn = %txn,
                persisted = "none", sent = "decision", from, answer = ?Decision::Abort, presumed = "below-floor");
            return Ok(());
        }
        let new_client = !self.clients.contains_key(&txn.client);
        if self.txns.len() >= COORDINATOR_TXNS_MAX
            || (new_client && self.clients.len() >= COORDINATOR_CLIENTS_MAX)
        {
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::IGNORE, txn = %txn,
                persisted = "none", sent = "none", reason = "txns-full", from);
            return Ok(());
        }
        // Unknown at or above the floor. A log this coordinator wrote never leads
        // here: a Prepare leaves only once its `Started` record is durable, and
        // recovery decides every started transaction. Should it happen anyway (a
        // log lost or replaced), presume abort durably, as recovery does, so this
        // id can never commit later.
        self.clients.entry(txn.client).or_default();
        self.txns.insert(
            txn,
            Entry {
                participants,
                phase: Phase::Preparing {
                    legs: Vec::new(),
                    yes: BTreeSet::new(),
                    vote_deadline: self.now,
                    resend_at: self.now,
                },
            },
        );
        debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::QUERY, txn = %txn,
            persisted = "decided", sent = "decision", from, answer = ?Decision::Abort, presumed = "no-decision");
        self.decide(txn, Decision::Abort, "presumed");
        Ok(())
    }

    /// Raises `client`'s floor past every finished transaction below its `low`,
    /// forgetting them.
    fn raise_floor(&mut self, client: NodeId) {
        let Some(window) = self.clients.get(&client).copied() else {
            return;
        };
        let start = TxnId {
            client,
            seq: window.floor,
        };
        let end = TxnId {
            client,
            seq: window.low.max(window.floor),
        };
        let mut floor = end.seq;
        for (id, e) in self.txns.range(start..end) {
            if !matches!(e.phase, Phase::Done { .. }) {
                floor = id.seq;
                break;
            }
        }
        if floor <= window.floor {
            return;
        }
        let forgotten: Vec<TxnId> = self
            .txns
            .range(start..TxnId { client, seq: floor })
            .map(|(id, _)| *id)
            .collect();
        for id in &forgotten {
            self.txns.remove(id);
        }
        self.clients.get_mut(&client).expect("window exists").floor = floor;
        self.out
            .push_record(CoordinatorRecord::Floor { client, floor });
        debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::FORGET, txn = %start,
            persisted = "floor", sent = "none", client, floor, forgotten = forgotten.len());
    }
}

impl Core for Coordinator {
    type Msg = Msg;
    type Record = CoordinatorRecord;
    type Event = Event;
    type Error = Error;

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) -> Result<(), Error> {
        self.tick(now);
        let kind = msg.kind();
        let from_participant = self.participants.contains(&from);
        match msg {
            Msg::Begin { txn, low } => self.on_begin(from, txn, low),
            Msg::Vote { txn, vote } if from_participant => self.on_vote(from, txn, vote),
            Msg::Ack { txn, held } if from_participant => self.on_ack(from, txn, held),
            Msg::Query { txn, participants } if from_participant => {
                self.on_query(from, txn, participants)
            }
            _ => Err(Error::UnexpectedMessage { from, kind }),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        self.tick(now);
        let mut timed_out = Vec::new();
        let mut prepares = Vec::new();
        let mut decisions = Vec::new();
        for (&txn, entry) in self.txns.iter_mut() {
            match &mut entry.phase {
                Phase::Preparing { vote_deadline, .. } if *vote_deadline <= now => {
                    timed_out.push(txn)
                }
                Phase::Preparing {
                    legs,
                    yes,
                    resend_at,
                    ..
                } if *resend_at <= now => {
                    *resend_at = now + PREPARE_RETRY_INTERVAL;
                    for leg in legs.iter().filter(|l| !yes.contains(&l.participant)) {
                        prepares.push((txn, *leg, entry.participants.clone()));
                    }
                }
                Phase::Deciding {
                    decision,
                    acked,
                    resend_at,
                    attempt,
                } if *resend_at <= now => {
                    *attempt = attempt.saturating_add(1);
                    *resend_at = now
                        + backoff(
                            DECISION_RETRY_INTERVAL_MIN,
                            DECISION_RETRY_INTERVAL_MAX,
                            *attempt,
                        );
                    for &p in entry.participants.iter().filter(|p| !acked.contains(p)) {
                        decisions.push((txn, p, *decision, *attempt));
                    }
                }
                _ => {}
            }
        }
        for txn in timed_out {
            self.decide(txn, Decision::Abort, "vote-timeout");
        }
        for (txn, leg, participants) in prepares {
            let floor = self.floor(txn.client);
            self.send(
                leg.participant,
                Msg::Prepare {
                    txn,
                    posting: leg.posting,
                    participants,
                    floor,
                },
            );
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::PREPARE, txn = %txn,
                persisted = "none", sent = "prepare", to = leg.participant, resend = true);
        }
        for (txn, p, decision, attempt) in decisions {
            self.send(p, Msg::Decision { txn, decision });
            debug!(target: TRACE_TARGET, node = self.id, role = role::COORDINATOR, step = step::RETRY, txn = %txn,
                persisted = "none", sent = "decision", to = p, decision = ?decision, attempt);
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.txns
            .values()
            .filter_map(|e| match &e.phase {
                Phase::Preparing {
                    vote_deadline,
                    resend_at,
                    ..
                } => Some((*vote_deadline).min(*resend_at)),
                Phase::Deciding { resend_at, .. } => Some(*resend_at),
                Phase::Done { .. } => None,
            })
            .min()
    }

    fn poll_ready(&mut self) -> Ready<CoordinatorRecord, Msg, Event> {
        std::mem::take(&mut self.out)
    }

    /// # Panics
    /// If records from the last input have not been taken with `poll_ready`: a
    /// snapshot replaces the log, so it may only cover what is already durable.
    fn snapshot(&self) -> CoordinatorRecord {
        assert!(
            self.out.records().is_empty(),
            "snapshot before the pending records were polled"
        );
        let decided = self
            .txns
            .iter()
            .filter_map(|(id, e)| {
                e.decision().map(|decision| DecidedTxn {
                    txn: *id,
                    participants: e.participants.clone(),
                    decision,
                })
            })
            .collect();
        let started = self
            .txns
            .iter()
            .filter(|(_, e)| e.decision().is_none())
            .map(|(id, e)| StartedTxn {
                txn: *id,
                participants: e.participants.clone(),
            })
            .collect();
        let floors = self.clients.iter().map(|(c, w)| (*c, w.floor)).collect();
        CoordinatorRecord::Snapshot(CoordinatorSnapshot {
            floors,
            decided,
            started,
        })
    }
}

// ---- Read-only view for eo-conformance's abstraction functions (no behaviour change). ----

/// Where one held transaction is, as [`Coordinator::phases`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PhaseView {
    /// Collecting votes: the participants that voted yes so far.
    Preparing { yes: Vec<NodeId> },
    /// Decision logged: the participants that acknowledged it so far.
    Deciding {
        decision: Decision,
        acked: Vec<NodeId>,
    },
    /// Every participant acknowledged.
    Done { decision: Decision },
}

impl Coordinator {
    /// Every held transaction, by id: its participants and its phase.
    pub fn phases(&self) -> Vec<(TxnId, Vec<NodeId>, PhaseView)> {
        self.txns
            .iter()
            .map(|(id, e)| {
                let phase = match &e.phase {
                    Phase::Preparing { yes, .. } => PhaseView::Preparing {
                        yes: yes.iter().copied().collect(),
                    },
                    Phase::Deciding {
                        decision, acked, ..
                    } => PhaseView::Deciding {
                        decision: *decision,
                        acked: acked.iter().copied().collect(),
                    },
                    Phase::Done { decision } => PhaseView::Done {
                        decision: *decision,
                    },
                };
                (*id, e.participants.clone(), phase)
            })
            .collect()
    }
}

/// A coordinator's protocol state: everything but its clock, its vote and
/// re-send deadlines and its re-send counters. Two coordinators with equal
/// protocol states and every deadline already due (a driver whose `now` is past
/// them all) answer every input alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoordinatorProtocol {
    /// Every held transaction, by id: its participants, its phase and, while
    /// preparing, the legs a re-sent `Prepare` carries (none after recovery).
    pub txns: Vec<(TxnId, Vec<NodeId>, PhaseView, Vec<Leg>)>,
    /// Per client: its floor and the highest `low` it reported.
    pub clients: Vec<(NodeId, u64, u64)>,
    /// Whether outputs wait to be polled.
    pub unpolled: bool,
}

impl Coordinator {
    /// The protocol state (see [`CoordinatorProtocol`]).
    pub fn protocol(&self) -> CoordinatorProtocol {
        let legs = |id: &TxnId| match self.txns.get(id).map(|e| &e.phase) {
            Some(Phase::Preparing { legs, .. }) => legs.clone(),
            _ => Vec::new(),
        };
        CoordinatorProtocol {
            txns: self
                .phases()
                .into_iter()
                .map(|(id, participants, phase)| (id, participants, phase, legs(&id)))
                .collect(),
            clients: self
                .clients
                .iter()
                .map(|(c, w)| (*c, w.floor, w.low))
                .collect(),
            unpolled: !self.out.is_empty(),
        }
    }
}
