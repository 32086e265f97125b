//! The 2PC **client**: submits transactions, up to `in_flight` at once, and
//! retries each with the SAME id until it learns the outcome.
//!
//! It submits transaction `x` only while `x < low + in_flight`, where `low` is
//! the smallest transaction whose outcome it has not learned — the
//! implementation's window of `CLIENT_PENDING_TXNS_MAX` consecutive ids. With
//! `in_flight = 1` (the default) it runs its transactions one after another.
//!
//! On its first start the client durably records the transactions of its first
//! window as submitted and only then sends a `Begin` for each. A `Retry` timer
//! re-sends `Begin` for every pending transaction; the coordinator deduplicates
//! by transaction id, so a retry is never a second transaction (unless the
//! `retry-as-new-transaction` bug). On `Committed`/`Aborted` for a pending
//! transaction the client durably records the outcome — together with the
//! transactions the window now admits — and stops retrying once it knows every
//! outcome, which is what lets a settled behaviour end.
//!
//! With `--coordinator-never-recovers` retries are bounded per incarnation
//! ([`TwoPhaseCfg::retries_max`](super::TwoPhaseCfg::retries_max)): nobody can
//! ever answer, and a client retrying forever would leave no behaviour that ends.

use super::{Decision, Msg, Node, NodeStorage, Timer, Tx, TxId};
use stateright::actor::{model_timeout, Id, Out};
use std::sync::Arc;

/// What the client keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientStorage {
    /// Transactions `0..submitted` were submitted.
    pub submitted: Tx,
    /// The outcomes learned, sorted by transaction; the pending transactions
    /// are the ones submitted and not here.
    pub outcomes: Vec<(TxId, Decision)>,
}

/// The client's volatile state: its storage, plus retries sent this incarnation
/// (counted only when retries are bounded).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientState {
    pub submitted: Tx,
    pub outcomes: Vec<(TxId, Decision)>,
    pub retries: u8,
}

impl ClientState {
    /// Whether the outcome of transaction `x` is learned.
    pub fn learned(&self, x: Tx) -> bool {
        self.outcomes.iter().any(|(t, _)| t.tx == x)
    }

    /// The transactions submitted and not yet decided, in order.
    pub fn pending(&self) -> impl Iterator<Item = Tx> + '_ {
        (0..self.submitted).filter(|x| !self.learned(*x))
    }

    /// The smallest transaction whose outcome is not learned: the bottom of the
    /// window.
    fn low(&self) -> Tx {
        (0..self.submitted)
            .find(|x| !self.learned(*x))
            .unwrap_or(self.submitted)
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    pub coordinator: Id,
    pub transactions: Tx,
    pub in_flight: Tx,
    pub retries_max: Option<u8>,
}

impl Client {
    fn save(&self, o: &mut Out<Node>, s: &ClientState) {
        o.save(NodeStorage::Client(Arc::new(ClientStorage {
            submitted: s.submitted,
            outcomes: s.outcomes.clone(),
        })));
    }

    fn may_retry(&self, s: &ClientState) -> bool {
        self.retries_max.is_none_or(|max| s.retries < max)
    }

    /// Submits every transaction the window admits; returns them.
    fn admit(&self, s: &mut ClientState) -> std::ops::Range<Tx> {
        let from = s.submitted;
        let to = self
            .transactions
            .min(s.low().saturating_add(self.in_flight));
        s.submitted = s.submitted.max(to);
        from..s.submitted
    }

    pub fn on_start(&self, storage: Option<&ClientStorage>, o: &mut Out<Node>) -> ClientState {
        let Some(stored) = storage else {
            // Persist, then send: the submissions are durable before they leave.
            let mut state = ClientState {
                submitted: 0,
                outcomes: Vec::new(),
                retries: 0,
            };
            let admitted = self.admit(&mut state);
            self.save(o, &state);
            for x in admitted {
                o.send(self.coordinator, Msg::Begin(x));
            }
            o.set_timer(Timer::Retry, model_timeout());
            return state;
        };
        let state = ClientState {
            submitted: stored.submitted,
            outcomes: stored.outcomes.clone(),
            retries: 0,
        };
        if state.pending().next().is_some() && self.may_retry(&state) {
            o.set_timer(Timer::Retry, model_timeout());
        }
        state
    }

    pub fn on_msg(&self, s: &ClientState, msg: Msg, o: &mut Out<Node>) -> Option<ClientState> {
        let (tx, decision) = match msg {
            Msg::Committed(tx) => (tx, Decision::Commit),
            Msg::Aborted(tx) => (tx, Decision::Abort),
            _ => return None,
        };
        if tx.tx >= s.submitted || s.learned(tx.tx) {
            return None; // A duplicate or late outcome.
        }
        let mut next = s.clone();
        let at = next.outcomes.partition_point(|(t, _)| t.tx < tx.tx);
        next.outcomes.insert(at, (tx, decision));
        let admitted = self.admit(&mut next);
        if !admitted.is_empty() {
            // The outcome and the next submissions in one save, then send.
            next.retries = 0;
            self.save(o, &next);
            for x in admitted {
                o.send(self.coordinator, Msg::Begin(x));
            }
            o.set_timer(Timer::Retry, model_timeout());
        } else {
            self.save(o, &next);
            if next.pending().next().is_none() {
                o.cancel_timer(Timer::Retry);
            }
        }
        Some(next)
    }

    pub fn on_timeout(&self, s: &ClientState, o: &mut Out<Node>) -> Option<ClientState> {
        s.pending().next()?;
        if !self.may_retry(s) {
            return None;
        }
        let mut next = s.clone();
        if self.retries_max.is_some() {
            next.retries += 1;
        }
        for x in s.pending() {
            o.send(self.coordinator, Msg::Begin(x));
        }
        if self.may_retry(&next) {
            o.set_timer(Timer::Retry, model_timeout());
        }
        Some(next)
    }
}
