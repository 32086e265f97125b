//! The 2PC **coordinator**: collects votes, logs the decision, then sends it
//! until every participant acknowledges.
//!
//! - `Begin(tx)` from the client: a transaction with a logged decision is
//!   answered with that outcome (dedup by transaction id); one being voted on is
//!   ignored; a new one starts a round: the coordinator durably records it as
//!   started FIRST, then sends `Prepare` to every participant and arms `Votes`.
//!   It holds at most `in_flight` transactions at once (voting, or decided and
//!   not yet acknowledged by every participant); a new one beyond that waits
//!   (the client retries) — as the implementation's coordinator drops a
//!   `Begin` beyond `COORDINATOR_TXNS_MAX`. With `in_flight = 1` (the default)
//!   it runs one transaction at a time, as Kafka's transaction coordinator
//!   refuses a producer's next transaction until the previous one's markers are
//!   written.
//! - `Yes`/`No`: a `No` decides abort; a `Yes` from every participant decides
//!   commit. The `Votes` timer (a participant that never answers) aborts the
//!   oldest round still being voted on, and is re-armed while others remain:
//!   the implementation's vote deadlines expire in the order the rounds
//!   started.
//! - Deciding: append the decision to the durable log FIRST, then send it to
//!   every participant and the outcome to the client, and arm `Resend`, which
//!   re-sends the decision to every participant that has not acknowledged. The
//!   acknowledgements are volatile; once all are in, `Resend` stops.
//! - A `Yes` for a transaction already decided is a prepared participant asking
//!   for the outcome: the logged decision is sent to it again.
//! - Recovery reads the log: every logged decision is re-sent until
//!   acknowledged, and every started transaction without a logged decision is
//!   aborted — presumed abort: the votes died with the crash, so the coordinator
//!   logs Abort and sends it at once. The start record is what lets it: without
//!   it a recovered coordinator would not know the transaction, and a client
//!   retry would run it a second time.

use super::{Decision, Mask, Msg, Node, NodeStorage, Timer, Tx, TxId, Variant, ROUNDS_MAX};
use stateright::actor::{model_timeout, Id, Out};
use std::sync::Arc;

/// The coordinator's durable state: the rounds started and not yet decided, in
/// the order started, and the decisions, in the order taken.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoordinatorStorage {
    pub started: Vec<TxId>,
    pub log: Vec<(TxId, Decision)>,
}

/// A round being voted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Voting {
    pub tx: TxId,
    /// The participants whose `Yes` arrived.
    pub yes: Mask,
}

/// A decision being re-sent until every participant acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unacked {
    pub tx: TxId,
    pub decision: Decision,
    /// The participants that have not acknowledged it yet.
    pub waiting: Mask,
}

/// The coordinator's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoordinatorState {
    /// The durable state as last saved.
    pub started: Vec<TxId>,
    pub log: Vec<(TxId, Decision)>,
    /// The rounds being voted on, oldest first.
    pub voting: Vec<Voting>,
    pub unacked: Vec<Unacked>,
    /// `decision-not-logged` only: decisions sent and not yet logged.
    pub unlogged: Vec<(TxId, Decision)>,
}

impl CoordinatorState {
    pub fn logged(&self, tx: TxId) -> Option<Decision> {
        self.log.iter().find(|(t, _)| *t == tx).map(|(_, d)| *d)
    }

    /// The transactions held: being voted on, decided and not yet logged
    /// (`decision-not-logged` logs late), or not yet acknowledged by every
    /// participant.
    fn held(&self) -> usize {
        let mut held: Vec<TxId> = self.voting.iter().map(|v| v.tx).collect();
        held.extend(self.unlogged.iter().map(|(t, _)| *t));
        held.extend(self.unacked.iter().map(|u| u.tx));
        held.sort_unstable();
        held.dedup();
        held.len()
    }

    /// Whether a new round must wait: `in_flight` transactions are held.
    fn busy(&self, in_flight: Tx) -> bool {
        self.held() >= usize::from(in_flight)
    }

    /// The round being voted on for `tx`, by its position.
    fn voting_on(&self, tx: TxId) -> Option<usize> {
        self.voting.iter().position(|v| v.tx == tx)
    }

    /// The latest logged round of client transaction `tx`.
    fn latest(&self, tx: Tx) -> Option<(TxId, Decision)> {
        self.log.iter().rev().find(|(t, _)| t.tx == tx).copied()
    }
}

#[derive(Clone, Debug)]
pub struct Coordinator {
    pub participants: u8,
    pub client: Id,
    /// Transactions held at once (see [`CoordinatorState::held`]).
    pub in_flight: Tx,
    pub variant: Variant,
}

/// A participant's actor id from its index: participants are ids `1..=P`.
pub fn participant_id(index: u8) -> Id {
    Id::from(usize::from(index) + 1)
}

impl Coordinator {
    fn all(&self) -> Mask {
        ((1u16 << self.participants) - 1) as Mask
    }

    fn save(&self, o: &mut Out<Node>, s: &CoordinatorState) {
        o.save(NodeStorage::Coordinator(Arc::new(CoordinatorStorage {
            started: s.started.clone(),
            log: s.log.clone(),
        })));
    }

    /// The decision message for `tx`, tagged with it — or not, in the
    /// `untagged-decision` bug.
    fn decision_msg(&self, tx: TxId, decision: Decision) -> Msg {
        let tag = if self.variant == Variant::UntaggedDecision {
            TxId::UNTAGGED
        } else {
            tx
        };
        match decision {
            Decision::Commit => Msg::Commit(tag),
            Decision::Abort => Msg::Abort(tag),
        }
    }

    fn outcome_msg(tx: TxId, decision: Decision) -> Msg {
        match decision {
            Decision::Commit => Msg::Committed(tx),
            Decision::Abort => Msg::Aborted(tx),
        }
    }

    fn send_to(&self, o: &mut Out<Node>, waiting: Mask, msg: Msg) {
        for p in 0..self.participants {
            if waiting & (1 << p) != 0 {
                o.send(participant_id(p), msg);
            }
        }
    }

    pub fn on_start(
        &self,
        storage: Option<&CoordinatorStorage>,
        o: &mut Out<Node>,
    ) -> CoordinatorState {
        let started = storage.map(|s| s.started.clone()).unwrap_or_default();
        let log = storage.map(|s| s.log.clone()).unwrap_or_default();
        let unacked: Vec<Unacked> = log
            .iter()
            .map(|(tx, decision)| Unacked {
                tx: *tx,
                decision: *decision,
                waiting: self.all(),
            })
            .collect();
        for u in &unacked {
            self.send_to(o, u.waiting, self.decision_msg(u.tx, u.decision));
        }
        if !unacked.is_empty() {
            o.set_timer(Timer::Resend, model_timeout());
        }
        let mut state = CoordinatorState {
            started: started.clone(),
            log,
            voting: Vec::new(),
            unacked,
            unlogged: Vec::new(),
        };
        for tx in started {
            // Started, undecided, its votes lost: presumed abort.
            let presumed = if self.variant == Variant::PresumeCommit {
                Decision::Commit // The bug.
            } else {
                Decision::Abort
            };
            self.decide(&mut state, tx, presumed, o);
        }
        state
    }

    /// Record the round as started, then ask for votes.
    fn start(&self, s: &mut CoordinatorState, tx: TxId, o: &mut Out<Node>) {
        s.voting.push(Voting { tx, yes: 0 });
        s.started.push(tx);
        self.save(o, s);
        self.send_to(o, self.all(), Msg::Prepare(tx));
        o.set_timer(Timer::Votes, model_timeout());
    }

    /// Log, then send: the decision is durable before anyone hears of it —
    /// except in `decision-not-logged`, which logs on a later `Log` timer. The
    /// log entry replaces the round's start record in the same save.
    fn decide(&self, s: &mut CoordinatorState, tx: TxId, decision: Decision, o: &mut Out<Node>) {
        if let Some(at) = s.voting_on(tx) {
            s.voting.remove(at);
            if s.voting.is_empty() {
                o.cancel_timer(Timer::Votes);
            }
        }
        if self.variant == Variant::DecisionNotLogged {
            s.unlogged.push((tx, decision));
            o.set_timer(Timer::Log, model_timeout());
        } else {
            s.log.push((tx, decision));
            s.started.retain(|t| *t != tx);
            self.save(o, s);
        }
        self.send_to(o, self.all(), self.decision_msg(tx, decision));
        o.send(self.client, Self::outcome_msg(tx, decision));
        s.unacked.push(Unacked {
            tx,
            decision,
            waiting: self.all(),
        });
        o.set_timer(Timer::Resend, model_timeout());
    }

    pub fn on_msg(
        &self,
        s: &CoordinatorState,
        src: Id,
        msg: Msg,
        o: &mut Out<Node>,
    ) -> Option<CoordinatorState> {
        let mut next = s.clone();
        match msg {
            Msg::Begin(x) => {
                if s.voting.iter().any(|v| v.tx.tx == x)
                    || s.unlogged.iter().any(|(t, _)| t.tx == x)
                {
                    return None; // In progress: the outcome will come.
                }
                match s.latest(x) {
                    Some((t, _))
                        if self.variant == Variant::RetryAsNewTransaction
                            && t.round + 1 < ROUNDS_MAX =>
                    {
                        // The bug: a retry of a decided transaction runs again
                        // under a fresh id.
                        if s.busy(self.in_flight) {
                            return None;
                        }
                        self.start(
                            &mut next,
                            TxId {
                                tx: x,
                                round: t.round + 1,
                            },
                            o,
                        );
                    }
                    // The `retry-unanswered` bug: a retry of a decided
                    // transaction is deduplicated but not answered.
                    Some(_) if self.variant == Variant::RetryUnanswered => return None,
                    Some((t, d)) => o.send(src, Self::outcome_msg(t, d)),
                    None => {
                        if s.busy(self.in_flight) {
                            return None; // The client retries.
                        }
                        self.start(&mut next, TxId { tx: x, round: 0 }, o);
                    }
                }
            }
            Msg::Yes(tx) => {
                let p = self.index(src)?;
                if let Some(d) = s.logged(tx) {
                    // A prepared participant asking: the decision again.
                    o.send(src, self.decision_msg(tx, d));
                    return None;
                }
                // Not being voted on: a late vote of a round decided but not
                // yet logged (`decision-not-logged`) or of an earlier round.
                let at = s.voting_on(tx)?;
                let voting = s.voting[at];
                let yes = voting.yes | (1 << p);
                if yes == voting.yes {
                    return None;
                }
                if yes == self.all() || self.variant == Variant::CommitOnFirstYes {
                    self.decide(&mut next, tx, Decision::Commit, o);
                } else {
                    next.voting[at].yes = yes;
                }
            }
            Msg::No(tx) => {
                s.voting_on(tx)?;
                self.decide(&mut next, tx, Decision::Abort, o);
            }
            Msg::Ack(tx) => {
                let p = self.index(src)?;
                let at = s
                    .unacked
                    .iter()
                    .position(|u| u.tx == tx && u.waiting & (1 << p) != 0)?;
                next.unacked[at].waiting &= !(1 << p);
                if next.unacked[at].waiting == 0 {
                    next.unacked.remove(at);
                }
                if next.unacked.is_empty() {
                    o.cancel_timer(Timer::Resend);
                }
            }
            _ => return None,
        }
        Some(next)
    }

    fn index(&self, src: Id) -> Option<u8> {
        let i = usize::from(src).checked_sub(1)?;
        u8::try_from(i).ok().filter(|i| *i < self.participants)
    }

    pub fn on_timeout(
        &self,
        s: &CoordinatorState,
        timer: Timer,
        o: &mut Out<Node>,
    ) -> Option<CoordinatorState> {
        let mut next = s.clone();
        match timer {
            Timer::Votes => {
                // The oldest round's deadline passes first.
                let oldest = s.voting.first()?.tx;
                self.decide(&mut next, oldest, Decision::Abort, o);
                if !next.voting.is_empty() {
                    o.set_timer(Timer::Votes, model_timeout());
                }
            }
            Timer::Resend => {
                if s.unacked.is_empty() {
                    return None;
                }
                for u in &s.unacked {
                    self.send_to(o, u.waiting, self.decision_msg(u.tx, u.decision));
                }
                o.set_timer(Timer::Resend, model_timeout());
                return None;
            }
            Timer::Log => {
                if next.unlogged.is_empty() {
                    return None;
                }
                for (tx, decision) in std::mem::take(&mut next.unlogged) {
                    next.log.push((tx, decision));
                    next.started.retain(|t| *t != tx);
                }
                self.save(o, &next);
            }
            _ => return None,
        }
        Some(next)
    }
}
