//! The properties of the ack-retry model, and the views of the state they read.
//!
//! - `exactly-once` (always): no id appears twice in the receiver's durable
//!   ledger.
//! - `no-loss` (always): a message of its current incarnation that a sender no
//!   longer retries is in the receiver's durable ledger — acknowledged implies
//!   durable. Messages are told apart by their ghost application number, so a
//!   new incarnation's seq 1 is not taken for the old one's.
//! - `no-phantom` (always): every applied message was durably submitted.
//! - `within-window` (always): the receiver never refused a message beyond its
//!   window — the sender keeps the contract `F <= W` that lets the receiver's
//!   dedup state stay bounded without refusing anything a correct sender sends.
//! - `all-delivered` (sometimes): every message of every application applied —
//!   the model does something.
//! - `eventually-delivered` (progress): from every reachable state, a state at
//!   rest (no timer armed, nothing but dead messages in flight, no crashed actor
//!   that will recover) in which every application has submitted all its
//!   messages and every one of each sender's current incarnation is applied
//!   can be reached (without disk loss: every message). Submissions are steps of
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

use super::sender::SenderStorage;
use super::{AckRetry, MsgId, NodeState, NodeStorage, Seqs, State};
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
                let Some((stored, retrying)) = sender_view(s, sender) else {
                    return true;
                };
                (1..stored.next).all(|seq| {
                    let msg = stored.ghost.first + seq - 1;
                    retrying.contains(seq) || ledger.contains(&MsgId { sender, msg })
                })
            })
        })
        .property(Expectation::Always, "no-phantom", |m, s| {
            ledger(m, s)
                .iter()
                .all(|id| id.msg <= durable_handed_over(s, id.sender))
        })
        .property(Expectation::Always, "within-window", |m, s| {
            !matches!(
                live_state(s, m.actors.cfg.receiver_index()),
                Some(NodeState::Receiver(r)) if r.refused
            )
        })
        .property(Expectation::Sometimes, "all-delivered", all_applied)
        .progress("eventually-delivered", |m, s| {
            m.is_at_rest(s) && all_handed_over(m, s) && incarnation_applied(m, s)
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

fn stored(s: &State, sender: u8) -> Option<&SenderStorage> {
    match storage(s, usize::from(sender)) {
        Some(NodeStorage::Sender(st)) => Some(st),
        _ => None,
    }
}

/// How many messages the sender's application handed over, in every
/// incarnation, as durably saved (a lost disk's count lives on in the ghost).
fn durable_handed_over(s: &State, sender: u8) -> u8 {
    stored(s, sender).map_or(0, |st| st.ghost.first + st.next - 2)
}

/// A sender's durable state, and what it is still retrying: its live outbox,
/// or while it is crashed, the outbox it will recover with. `None` before its
/// first save.
fn sender_view(s: &State, sender: u8) -> Option<(&SenderStorage, Seqs)> {
    let stored = stored(s, sender)?;
    let retrying = match live_state(s, usize::from(sender)) {
        Some(NodeState::Sender(live)) => live.outbox,
        _ => stored.outbox,
    };
    Some((stored, retrying))
}

/// Every application handed over all its messages, durably.
fn all_handed_over(m: &AckRetry, s: &State) -> bool {
    let cfg = &m.actors.cfg;
    (0..cfg.senders).all(|sender| durable_handed_over(s, sender) >= cfg.messages)
}

/// Every message of every sender's current incarnation is in the receiver's
/// durable ledger. Without disk loss that is every message; with it, what the
/// lost disks' outboxes held may be missing (see docs/ack-retry.md).
fn incarnation_applied(m: &AckRetry, s: &State) -> bool {
    let ledger = ledger(m, s);
    (0..m.actors.cfg.senders).all(|sender| match stored(s, sender) {
        Some(st) => (st.ghost.first..st.ghost.first + st.next - 1)
            .all(|msg| ledger.contains(&MsgId { sender, msg })),
        None => true,
    })
}

/// Every message of every application is in the receiver's durable ledger.
pub(super) fn all_applied(m: &AckRetry, s: &State) -> bool {
    let ledger = ledger(m, s);
    let cfg = &m.actors.cfg;
    (0..cfg.senders)
        .all(|sender| (1..=cfg.messages).all(|msg| ledger.contains(&MsgId { sender, msg })))
}

impl Explain for AckRetry {
    fn summarize(&self, s: &State) -> String {
        let mut parts = vec![format!("receiver ledger {:?}", ledger(self, s))];
        for sender in 0..self.actors.cfg.senders {
            let (submitted, retrying) = match sender_view(s, sender) {
                Some((st, retrying)) => (st.next - 1, retrying),
                None => (0, Seqs::EMPTY),
            };
            let inc = match stored(s, sender) {
                Some(st) if st.ghost.losses > 0 => match st.inc {
                    Some(inc) => format!(" (inc {inc}, after {} disk losses)", st.ghost.losses),
                    None => format!(
                        " (asking for an incarnation, after {} disk losses)",
                        st.ghost.losses
                    ),
                },
                _ => String::new(),
            };
            parts.push(format!(
                "sender {sender}: submitted {submitted}, retrying {retrying:?}{inc}"
            ));
        }
        parts.push(format!("crashes {}", s.history.crashes));
        parts.join("; ")
    }

    fn progress_properties(&self) -> Vec<ProgressProperty<Self>> {
        self.progress.clone()
    }
}
