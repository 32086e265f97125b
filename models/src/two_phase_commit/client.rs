//! The 2PC **client**: submits transactions one after another and retries each
//! with the SAME id until it learns the outcome.
//!
//! On its first start the client durably records its first transaction as
//! pending (`submitted = 1`) and only then sends `Begin`. A `Retry` timer
//! re-sends `Begin` for the pending transaction; the coordinator deduplicates by
//! transaction id, so a retry is never a second transaction (unless the
//! `retry-as-new-transaction` bug). On `Committed`/`Aborted` for the pending
//! transaction the client durably records the outcome — together with the next
//! transaction, if it runs two — and stops retrying once it knows every outcome,
//! which is what lets a settled behaviour end.
//!
//! With `--coordinator-never-recovers` retries are bounded per incarnation
//! ([`TwoPhaseCfg::retries_max`](super::TwoPhaseCfg::retries_max)): nobody can
//! ever answer, and a client retrying forever would leave no behaviour that ends.

use super::{Decision, Msg, Node, NodeStorage, Timer, Tx, TxId};
use stateright::actor::{model_timeout, Id, Out};

/// What the client keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientStorage {
    /// Transactions `0..submitted` were submitted.
    pub submitted: Tx,
    /// The outcomes learned, in order; the pending transaction is the one
    /// submitted and not yet here.
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
    /// The transaction submitted and not yet decided, if any.
    pub fn pending(&self) -> Option<Tx> {
        (usize::from(self.submitted) > self.outcomes.len()).then_some(self.submitted - 1)
    }
}

#[derive(Clone, Debug)]
pub struct Client {
    pub coordinator: Id,
    pub transactions: Tx,
    pub retries_max: Option<u8>,
}

impl Client {
    fn save(&self, o: &mut Out<Node>, s: &ClientState) {
        o.save(NodeStorage::Client(ClientStorage {
            submitted: s.submitted,
            outcomes: s.outcomes.clone(),
        }));
    }

    fn may_retry(&self, s: &ClientState) -> bool {
        self.retries_max.is_none_or(|max| s.retries < max)
    }

    pub fn on_start(&self, storage: Option<&ClientStorage>, o: &mut Out<Node>) -> ClientState {
        let Some(stored) = storage else {
            // Persist, then send: the submission is durable before it leaves.
            let state = ClientState {
                submitted: 1,
                outcomes: Vec::new(),
                retries: 0,
            };
            self.save(o, &state);
            o.send(self.coordinator, Msg::Begin(0));
            o.set_timer(Timer::Retry, model_timeout());
            return state;
        };
        let state = ClientState {
            submitted: stored.submitted,
            outcomes: stored.outcomes.clone(),
            retries: 0,
        };
        if state.pending().is_some() && self.may_retry(&state) {
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
        if s.pending() != Some(tx.tx) {
            return None; // A duplicate or late outcome.
        }
        let mut next = s.clone();
        next.outcomes.push((tx, decision));
        if next.submitted < self.transactions {
            // The outcome and the next submission in one save, then send.
            next.submitted += 1;
            next.retries = 0;
            self.save(o, &next);
            o.send(self.coordinator, Msg::Begin(next.submitted - 1));
            o.set_timer(Timer::Retry, model_timeout());
        } else {
            self.save(o, &next);
            o.cancel_timer(Timer::Retry);
        }
        Some(next)
    }

    pub fn on_timeout(&self, s: &ClientState, o: &mut Out<Node>) -> Option<ClientState> {
        let pending = s.pending()?;
        if !self.may_retry(s) {
            return None;
        }
        let mut next = s.clone();
        if self.retries_max.is_some() {
            next.retries += 1;
        }
        o.send(self.coordinator, Msg::Begin(pending));
        if self.may_retry(&next) {
            o.set_timer(Timer::Retry, model_timeout());
        }
        Some(next)
    }
}
