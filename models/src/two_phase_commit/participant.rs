//! The 2PC **participant** (a resource manager): votes, then applies or
//! discards its staged effect as the coordinator decides.
//!
//! Its durable storage is a log of records — `Prepared(t)`, `Committed(t)`,
//! `Aborted(t)` — and a ledger of applied effects (client transaction ids; a
//! transaction's effect at this participant is identified by its id). Only
//! what it prepared is ever logged: `Aborted(t)` discards a staged effect.
//!
//! - `Prepare(t)`: a participant free to vote chooses yes or no (both explored,
//!   with Stateright's `choose_random`). Yes: append `Prepared(t)` — the staged
//!   effect — to the durable log FIRST, then send `Yes(t)` and arm `Query`. No:
//!   remember the refusal in memory only and send `No(t)` (a participant that
//!   has not voted yes may abort alone; it holds nothing to undo). A duplicate
//!   `Prepare` gets the same vote again — until a crash, which forgets a
//!   refusal: a `Prepare` after it is voted on afresh, as if it came first.
//! - It is not free to vote yes, and votes no, when it already holds `capacity`
//!   prepared transactions (the client's `in_flight`; one at a time it is still
//!   prepared for another transaction and holds its locks), or when the
//!   transaction's posting — one unit credited — might not fit: its balance
//!   (the length of its ledger), plus one unit for every transaction prepared
//!   here and undecided, plus this one, must stay within `balance_max`. That is
//!   the implementation's rule (`Participant::fits`): whichever of the staged
//!   postings commit, no `Commit` can take the balance beyond the bound.
//!   `vote-ignores-staged` forgets the staged postings.
//! - `Commit(t)`: if prepared for `t`, append `Committed(t)` and apply the effect
//!   to the ledger in one save — exactly once: a `Commit` for a transaction
//!   already committed is a duplicate and is only acknowledged. A `Commit` for a
//!   transaction it holds no staged effect for cannot be applied: it records
//!   `Aborted(t)` (its work is gone). That never happens in the correct protocol;
//!   it is how `vote-before-persist`, `commit-on-first-yes` and `presume-commit`
//!   show.
//! - `Abort(t)`: append `Aborted(t)` (discarding a staged effect) unless decided.
//!   The abort of a transaction it never prepared (it refused it, or its
//!   `Prepare` is lost or late) discards nothing and is not logged: it is kept
//!   in memory only, so that a late `Prepare` is ignored until a crash.
//! - Every decision is acknowledged with `Ack(t)`, duplicates included.
//! - While prepared it never decides alone: the `Query` timer asks the
//!   coordinator for the outcome. With `--coordinator-never-recovers` it queries
//!   at most [`retries_max`](super::TwoPhaseCfg::retries_max) times per
//!   incarnation, so that blocked behaviours end.
//! - On recovery it reads its log; if prepared, it resumes querying. Refusals
//!   and unlogged aborts are gone.
//!
//! This is what the implementation's `Participant` does (its `Refused` state,
//! and the in-memory `Finished(Abort)` of a transaction it never prepared);
//! docs/two-phase-commit.md says why not saving them is safe.

use super::{Decision, Msg, Node, NodeStorage, Timer, Tx, TxId, Variant, VoteChoice};
use stateright::actor::{model_timeout, Id, Out};
use std::sync::Arc;

/// A record in the participant's durable log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Record {
    /// Voted yes; the effect is staged.
    Prepared(TxId),
    Committed(TxId),
    Aborted(TxId),
}

/// What the participant keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantStorage {
    pub log: Vec<Record>,
    /// The applied effects, sorted; an id twice is a double application.
    pub ledger: Vec<Tx>,
}

/// The participant's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantState {
    pub log: Vec<Record>,
    pub ledger: Vec<Tx>,
    /// Queries sent this incarnation (counted only when queries are bounded).
    pub queries: u8,
    /// `vote-before-persist` only: voted yes, `Prepared` not yet durable.
    pub unpersisted: Option<TxId>,
    /// Voted no, not decided: in memory only, sorted. A duplicate `Prepare` is
    /// answered `No` again.
    pub refused: Vec<TxId>,
    /// Aborted without having been prepared: in memory only, sorted. A late
    /// `Prepare` is ignored.
    pub aborted: Vec<TxId>,
}

impl ParticipantState {
    /// Whether `t` is refused or aborted in memory (nothing logged).
    fn unlogged_abort(&self, t: TxId) -> bool {
        self.refused.contains(&t) || self.aborted.contains(&t)
    }

    /// Forgets the in-memory refusal or abort of `t`: a record now decides it.
    fn forget(&mut self, t: TxId) {
        self.refused.retain(|u| *u != t);
        self.aborted.retain(|u| *u != t);
    }
}

impl Record {
    /// The transaction the record is about.
    pub fn tx(&self) -> TxId {
        match self {
            Record::Prepared(t) | Record::Committed(t) | Record::Aborted(t) => *t,
        }
    }
}

/// The outcome `log` records for `tx`.
pub fn outcome(log: &[Record], tx: TxId) -> Option<Decision> {
    log.iter().find_map(|r| match r {
        Record::Committed(t) if *t == tx => Some(Decision::Commit),
        Record::Aborted(t) if *t == tx => Some(Decision::Abort),
        _ => None,
    })
}

/// The transactions `log` is prepared for and has not decided, in the order
/// prepared.
pub fn prepared_all(log: &[Record]) -> impl Iterator<Item = TxId> + '_ {
    log.iter().filter_map(|r| match r {
        Record::Prepared(t) if outcome(log, *t).is_none() => Some(*t),
        _ => None,
    })
}

/// The first transaction `log` is prepared for and has not decided.
pub fn prepared(log: &[Record]) -> Option<TxId> {
    prepared_all(log).next()
}

/// Whether `log` is prepared for `t` and has not decided it.
pub fn is_prepared(log: &[Record], t: TxId) -> bool {
    prepared_all(log).any(|p| p == t)
}

fn insert_sorted<T: Ord + Copy>(v: &mut Vec<T>, x: T) {
    let at = v.partition_point(|y| *y <= x);
    v.insert(at, x);
}

#[derive(Clone, Debug)]
pub struct Participant {
    pub coordinator: Id,
    pub variant: Variant,
    pub queries_max: Option<u8>,
    /// Prepared transactions held at once: the client's `in_flight`.
    pub capacity: Tx,
    /// The most units its balance may hold (see [`TwoPhaseCfg`](super::TwoPhaseCfg)).
    pub balance_max: Option<u8>,
}

/// The key of the vote choice for `t`: its slot in the client's window. The
/// transactions in flight at once are consecutive and at most `capacity`, so
/// their slots differ; one at a time, every transaction has the same slot.
fn vote_key(t: TxId, capacity: Tx) -> String {
    format!("vote {}", t.tx % capacity.max(1))
}

impl Participant {
    fn save(&self, o: &mut Out<Node>, s: &ParticipantState) {
        o.save(NodeStorage::Participant(Arc::new(ParticipantStorage {
            log: s.log.clone(),
            ledger: s.ledger.clone(),
        })));
    }

    /// Transactions held prepared: undecided `Prepared` records, and a yes vote
    /// not yet durable (`vote-before-persist`).
    fn held(&self, s: &ParticipantState) -> usize {
        prepared_all(&s.log).count() + usize::from(s.unpersisted.is_some())
    }

    /// Whether a yes vote for one more transaction is allowed: below
    /// `capacity`, and the posting fits whichever staged postings commit.
    fn may_prepare(&self, s: &ParticipantState) -> bool {
        let staged = if self.variant == Variant::VoteIgnoresStaged {
            0 // The bug: only the balance counts.
        } else {
            self.held(s)
        };
        self.held(s) < usize::from(self.capacity)
            && self
                .balance_max
                .is_none_or(|max| s.ledger.len() + staged < usize::from(max))
    }

    fn may_query(&self, s: &ParticipantState) -> bool {
        self.queries_max.is_none_or(|max| s.queries < max)
    }

    fn arm_query(&self, s: &ParticipantState, o: &mut Out<Node>) {
        if self.may_query(s) {
            o.set_timer(Timer::Query, model_timeout());
        }
    }

    pub fn on_start(
        &self,
        storage: Option<&ParticipantStorage>,
        o: &mut Out<Node>,
    ) -> ParticipantState {
        let state = ParticipantState {
            log: storage.map(|s| s.log.clone()).unwrap_or_default(),
            ledger: storage.map(|s| s.ledger.clone()).unwrap_or_default(),
            queries: 0,
            unpersisted: None,
            refused: Vec::new(),
            aborted: Vec::new(),
        };
        if prepared(&state.log).is_some() {
            self.arm_query(&state, o);
        }
        state
    }

    /// The transaction a decision is about: its tag — or, when decisions carry
    /// no id (`untagged-decision`), whatever this participant is working on now.
    fn resolve(&self, s: &ParticipantState, tag: TxId) -> Option<TxId> {
        if tag != TxId::UNTAGGED {
            return Some(tag);
        }
        prepared(&s.log).or_else(|| s.log.last().map(Record::tx))
    }

    pub fn on_msg(
        &self,
        s: &ParticipantState,
        msg: Msg,
        o: &mut Out<Node>,
    ) -> Option<ParticipantState> {
        let mut next = s.clone();
        match msg {
            Msg::Prepare(t) => {
                match outcome(&s.log, t) {
                    Some(Decision::Abort) => o.send(self.coordinator, Msg::No(t)),
                    Some(Decision::Commit) => return None,
                    None if is_prepared(&s.log, t) || s.unpersisted == Some(t) => {
                        o.send(self.coordinator, Msg::Yes(t))
                    }
                    None if s.refused.contains(&t) => o.send(self.coordinator, Msg::No(t)),
                    // Aborted unprepared: the coordinator has decided.
                    None if s.aborted.contains(&t) => return None,
                    None if !self.may_prepare(s) => {
                        // Full, or the posting might not fit: vote no, in memory.
                        insert_sorted(&mut next.refused, t);
                        o.send(self.coordinator, Msg::No(t));
                    }
                    None => o.choose_random(
                        vote_key(t, self.capacity),
                        vec![VoteChoice::Yes(t), VoteChoice::No(t)],
                    ),
                }
                if next == *s {
                    return None;
                }
            }
            Msg::Commit(tag) => {
                let t = self.resolve(s, tag)?;
                match outcome(&s.log, t) {
                    Some(Decision::Commit) if self.variant == Variant::NoDedupOnCommit => {
                        // The bug: every delivery of Commit applies the effect.
                        insert_sorted(&mut next.ledger, t.tx);
                        self.save(o, &next);
                    }
                    Some(_) => {}
                    None if is_prepared(&s.log, t) || s.unpersisted == Some(t) => {
                        if next.unpersisted.take().is_some() {
                            o.cancel_timer(Timer::Persist);
                        }
                        // The decision and the effect in one save.
                        next.log.push(Record::Committed(t));
                        insert_sorted(&mut next.ledger, t.tx);
                        self.save(o, &next);
                        if prepared(&next.log).is_none() {
                            o.cancel_timer(Timer::Query);
                        }
                    }
                    None => {
                        // Nothing staged to apply: the work is lost.
                        next.forget(t);
                        next.log.push(Record::Aborted(t));
                        if next.unpersisted == Some(t) {
                            next.unpersisted = None;
                            o.cancel_timer(Timer::Persist);
                        }
                        self.save(o, &next);
                    }
                }
                o.send(self.coordinator, Msg::Ack(t));
            }
            Msg::Abort(tag) => {
                let t = self.resolve(s, tag)?;
                let was_prepared = is_prepared(&s.log, t);
                if outcome(&s.log, t).is_none() && (was_prepared || s.unpersisted == Some(t)) {
                    // Discard the staged effect.
                    next.log.push(Record::Aborted(t));
                    if next.unpersisted == Some(t) {
                        next.unpersisted = None;
                        o.cancel_timer(Timer::Persist);
                    }
                    self.save(o, &next);
                    if was_prepared && prepared(&next.log).is_none() {
                        o.cancel_timer(Timer::Query);
                    }
                } else if outcome(&s.log, t).is_none() && !s.aborted.contains(&t) {
                    // Never prepared: nothing to discard, nothing to log.
                    next.refused.retain(|u| *u != t);
                    insert_sorted(&mut next.aborted, t);
                }
                o.send(self.coordinator, Msg::Ack(t));
            }
            _ => return None,
        }
        Some(next)
    }

    pub fn on_random(
        &self,
        s: &ParticipantState,
        choice: VoteChoice,
        o: &mut Out<Node>,
    ) -> Option<ParticipantState> {
        let mut next = s.clone();
        match choice {
            VoteChoice::Yes(t) => {
                if outcome(&s.log, t).is_some()
                    || is_prepared(&s.log, t)
                    || s.unlogged_abort(t)
                    || s.unpersisted.is_some()
                    || !self.may_prepare(s)
                {
                    return None;
                }
                if self.variant == Variant::VoteBeforePersist {
                    // The bug: the vote leaves now; `Prepared` is saved on a later
                    // `Persist` timer, a separate step a crash can precede.
                    next.unpersisted = Some(t);
                    o.send(self.coordinator, Msg::Yes(t));
                    o.set_timer(Timer::Persist, model_timeout());
                } else {
                    // Persist, then send.
                    next.log.push(Record::Prepared(t));
                    next.queries = 0;
                    self.save(o, &next);
                    o.send(self.coordinator, Msg::Yes(t));
                    self.arm_query(&next, o);
                }
            }
            VoteChoice::No(t) => {
                if outcome(&s.log, t).is_some()
                    || is_prepared(&s.log, t)
                    || s.unlogged_abort(t)
                    || s.unpersisted == Some(t)
                {
                    return None;
                }
                // In memory only: unprepared, it can only abort.
                insert_sorted(&mut next.refused, t);
                o.send(self.coordinator, Msg::No(t));
            }
        }
        Some(next)
    }

    pub fn on_timeout(
        &self,
        s: &ParticipantState,
        timer: Timer,
        o: &mut Out<Node>,
    ) -> Option<ParticipantState> {
        let mut next = s.clone();
        match timer {
            Timer::Query => {
                let t = prepared(&s.log)?;
                if self.variant == Variant::ParticipantTimeoutAbort {
                    // The bug: tired of waiting, it aborts on its own (the
                    // oldest prepared transaction; the timer is re-armed while
                    // it holds others).
                    next.log.push(Record::Aborted(t));
                    self.save(o, &next);
                    if prepared(&next.log).is_some() {
                        self.arm_query(&next, o);
                    }
                    return Some(next);
                }
                if !self.may_query(s) {
                    return None;
                }
                if self.queries_max.is_some() {
                    next.queries += 1;
                }
                // Ask by re-sending the yes vote, for every transaction held:
                // the coordinator answers a vote for a decided transaction with
                // the decision.
                for t in prepared_all(&s.log) {
                    o.send(self.coordinator, Msg::Yes(t));
                }
                self.arm_query(&next, o);
            }
            Timer::Persist => {
                let t = next.unpersisted.take()?;
                next.log.push(Record::Prepared(t));
                next.queries = 0;
                self.save(o, &next);
                self.arm_query(&next, o);
            }
            _ => return None,
        }
        Some(next)
    }
}
