//! The properties of the ack-retry model, and the views of the state they read.
//!
//! - `exactly-once` (always): no id appears twice in the receiver's durable
//!   ledger.
//! - `no-loss` (always): a submitted message its sender no longer retries is in
//!   the receiver's durable ledger — acknowledged implies durable.
//! - `no-phantom` (always): every applied message was durably submitted.
//! - `within-window` (always): the receiver never refused a message beyond its
//!   window — the sender keeps the contract `F <= W` that lets the receiver's
//!   dedup state stay bounded without refusing anything a correct sender sends.
//! - `all-delivered` (sometimes): every message of every application applied —
//!   the model does something.
//! - `eventually-delivered` (progress): from every reachable state, a state at
//!   rest (no timer armed, nothing but dead messages in flight, no crashed actor
//!   that will recover) in which every application has submitted all its
//!   messages and every one is applied can be reached. Submissions are steps of
//!   their own, so "every message" means every message the application has to
//!   send, not only those submitted so far. On the finite state graph this is
//!   "eventually settled and delivered" under strong fairness of every
//!   transition: a behaviour that loses every retransmission forever is unfair
//!   and not a counterexample, but a state from which no behaviour at all can
//!   finish — a livelock such as `no-reack`'s, or a dead end such as
//!   `no-retry`'s — is. Checked on every network, the duplicating one included
//!   (loss can empty it).
//!
//! Properties read durable state — the receiver's saved ledger and the
//! senders' saved submissions — because that is what survives; "no longer
//! retries" reads a running sender's live outbox, or a crashed sender's saved
//! outbox (what it will recover with).

use super::{AckRetry, MsgId, NodeState, NodeStorage, Seq, Seqs, State};
use crate::check::{Explain, ProgressProperty};
use crate::system::{live_state, storage};
use stateright::Expectation;

/// Adds the properties and the ledger boundary to the system.
pub fn add(system: AckRetry) -> AckRetry {
    let mut system = system
        .property(Expectation::Always, "exactly-once", |m, s| {
            ledger(m, s).windows(2).all(|w| w[0] != w[1])
        })
        .property(Expectation::Always, "no-loss", |m, s| {
            let ledger = ledger(m, s);
            (0..m.actors.cfg.senders).all(|sender| {
                let (next, retrying) = sender_view(s, sender);
                (1..next)
                    .all(|seq| retrying.contains(seq) || ledger.contains(&MsgId { sender, seq }))
            })
        })
        .property(Expectation::Always, "no-phantom", |m, s| {
            ledger(m, s)
                .iter()
                .all(|id| id.seq < durable_next(s, id.sender))
        })
        .property(Expectation::Always, "within-window", |m, s| {
            !matches!(
                live_state(s, m.actors.cfg.receiver_index()),
                Some(NodeState::Receiver(r)) if r.refused
            )
        })
        .property(Expectation::Sometimes, "all-delivered", all_applied)
        .progress("eventually-delivered", |m, s| {
            m.is_at_rest(s) && all_submitted(m, s) && all_applied(m, s)
        });
    // A first duplicate already violates exactly-once; states with more
    // applications than messages plus one add nothing and would let the
    // buggy variants grow the ledger forever.
    system.within = |cfg, s| {
        let total = usize::from(cfg.senders) * usize::from(cfg.messages);
        match storage(s, cfg.receiver_index()) {
            Some(NodeStorage::Receiver(r)) => r.ledger.len() <= total + 1,
            _ => true,
        }
    };
    system
}

const EMPTY_LEDGER: &[MsgId] = &[];

/// The receiver's durable ledger.
fn ledger<'a>(m: &AckRetry, s: &'a State) -> &'a [MsgId] {
    match storage(s, m.actors.cfg.receiver_index()) {
        Some(NodeStorage::Receiver(r)) => &r.ledger,
        _ => EMPTY_LEDGER,
    }
}

/// The seq a sender's next submission gets, as durably saved: `1..next` were
/// durably submitted.
fn durable_next(s: &State, sender: u8) -> Seq {
    match storage(s, usize::from(sender)) {
        Some(NodeStorage::Sender(st)) => st.next,
        _ => 1,
    }
}

/// A sender's durable next seq, and what it is still retrying: its live outbox,
/// or while it is crashed, the outbox it will recover with.
fn sender_view(s: &State, sender: u8) -> (Seq, Seqs) {
    let index = usize::from(sender);
    let stored = match storage(s, index) {
        Some(NodeStorage::Sender(st)) => Some(st),
        _ => None,
    };
    let next = stored.map_or(1, |st| st.next);
    let retrying = match live_state(s, index) {
        Some(NodeState::Sender(live)) => live.outbox,
        _ => stored.map_or(Seqs::EMPTY, |st| st.outbox),
    };
    (next, retrying)
}

/// Every application durably submitted all its messages.
fn all_submitted(m: &AckRetry, s: &State) -> bool {
    let cfg = &m.actors.cfg;
    (0..cfg.senders).all(|sender| durable_next(s, sender) > cfg.messages)
}

/// Every message of every application is in the receiver's durable ledger.
pub(super) fn all_applied(m: &AckRetry, s: &State) -> bool {
    let ledger = ledger(m, s);
    let cfg = &m.actors.cfg;
    (0..cfg.senders)
        .all(|sender| (1..=cfg.messages).all(|seq| ledger.contains(&MsgId { sender, seq })))
}

impl Explain for AckRetry {
    fn summarize(&self, s: &State) -> String {
        let mut parts = vec![format!("receiver ledger {:?}", ledger(self, s))];
        for sender in 0..self.actors.cfg.senders {
            let (next, retrying) = sender_view(s, sender);
            parts.push(format!(
                "sender {sender}: submitted {}, retrying {retrying:?}",
                next - 1
            ));
        }
        parts.push(format!("crashes {}", s.history.crashes));
        parts.join("; ")
    }

    fn progress_properties(&self) -> Vec<ProgressProperty<Self>> {
        self.progress.clone()
    }
}
