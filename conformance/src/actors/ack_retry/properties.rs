//! The ack-retry model's properties, evaluated on the implementation's durable
//! records: the receiver's `Applied` records are the ledger, a sender's
//! `Submitted`/`Acked`/`Incarnation`/`Expired` records its durable outbox. An
//! application message is named by its sender and the amount of its transfer
//! (see [`super::transfer`]).
//!
//! The same names as `eo_models::ack_retry::properties`: `exactly-once`,
//! `no-loss`, `no-phantom`, `within-window` (always), `all-delivered`
//! (sometimes), `eventually-delivered` (progress); and one the model needs
//! not: `recovers` (always) — every core's `recover` accepts the log it wrote.

use super::{ImplAckRetry, ImplAckRetryCfg, ImplState, Node, NodeState, NodeStorage};
use crate::actors::checked::Checked;
use eo_impl::ack_retry::{ReceiverRecord, SenderRecord, Seq};
use eo_models::check::{Explain, ProgressProperty};
use eo_models::system::System;
use eo_models::system::{live_state, storage};
use stateright::Expectation;

/// A message: (sender index, application number).
pub type MsgId = (u8, u8);

/// Adds the properties and the ledger boundary.
pub fn add(mut system: System<Node, ImplAckRetryCfg>) -> ImplAckRetry {
    system.within = |cfg, s| match storage(s, cfg.receiver_index()) {
        Some(NodeStorage::Receiver { records }) => within(cfg, records),
        _ => true,
    };
    Checked::new(system)
        .property(Expectation::Always, "exactly-once", |m, s| {
            let mut ledger = ledger(m, s);
            ledger.sort_unstable();
            ledger.windows(2).all(|w| w[0] != w[1])
        })
        .property(Expectation::Always, "no-loss", |m, s| {
            let ledger = ledger(m, s);
            (0..m.cfg().senders).all(|sender| {
                let Some(durable) = durable_sender(s, sender) else {
                    return true;
                };
                let retrying = retrying(s, sender, &durable);
                durable
                    .current
                    .iter()
                    .all(|&(seq, msg)| retrying.contains(&seq) || ledger.contains(&(sender, msg)))
            })
        })
        .property(Expectation::Always, "no-phantom", |m, s| {
            ledger(m, s)
                .iter()
                .all(|&(sender, msg)| durable_sender(s, sender).is_some_and(|d| msg <= d.handed))
        })
        .property(Expectation::Always, "within-window", |m, s| {
            !matches!(
                live_state(s, m.cfg().receiver_index()),
                Some(NodeState::Receiver { refused: true, .. })
            )
        })
        .property(Expectation::Always, "recovers", |_, s| {
            s.actor_states
                .iter()
                .all(|a| !matches!(**a, NodeState::Failed { .. }))
        })
        .property(Expectation::Sometimes, "all-delivered", all_applied)
        .progress("eventually-delivered", |m, s| {
            m.system.is_at_rest(s) && all_handed_over(m, s) && incarnation_applied(m, s)
        })
}

/// The boundary of the checked state space, on the receiver's durable log.
///
/// - As in the model, at most one application beyond the messages: a first
///   duplicate already violates `exactly-once`.
/// - At most [`GRANTS_SPARE`] grants beyond the installed ones and one per disk
///   loss. The implementation's receiver grants a fresh incarnation to every
///   request it receives, retransmissions included (the model answers a
///   repeated nonce alike), so a behaviour that loses every grant grows its
///   incarnation numbers without end; the boundary cuts it.
fn within(cfg: &ImplAckRetryCfg, records: &[ReceiverRecord]) -> bool {
    let total = usize::from(cfg.senders) * usize::from(cfg.messages);
    let applied = records
        .iter()
        .filter(|r| matches!(r, ReceiverRecord::Applied { .. }))
        .count();
    let grants = records.len() - applied;
    let grants_max = usize::from(cfg.senders) * (1 + usize::from(cfg.disk_losses)) + GRANTS_SPARE;
    applied <= total + 1 && grants <= grants_max
}

/// Grants the receiver may make beyond one per sender and disk (see [`within`]).
pub const GRANTS_SPARE: usize = 1;

/// The receiver's durable ledger: the message of each `Applied` record.
pub fn ledger(m: &ImplAckRetry, s: &ImplState) -> Vec<MsgId> {
    match storage(s, m.cfg().receiver_index()) {
        Some(NodeStorage::Receiver { records }) => records
            .iter()
            .filter_map(|r| match r {
                ReceiverRecord::Applied { from, transfer, .. } => Some((
                    u8::try_from(*from).unwrap_or(u8::MAX),
                    u8::try_from(transfer.amount).unwrap_or(u8::MAX),
                )),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What a sender's durable log says.
pub struct DurableSender {
    /// Messages its application handed over, in every incarnation.
    pub handed: u8,
    /// The current incarnation's submissions: (seq, application number).
    pub current: Vec<(Seq, u8)>,
    /// The current incarnation's unacknowledged seqs.
    pub outbox: Vec<Seq>,
}

/// Replays sender `sender`'s stored log; `None` before its first save.
pub fn durable_sender(s: &ImplState, sender: u8) -> Option<DurableSender> {
    let Some(NodeStorage::Sender { records, ghost }) = storage(s, usize::from(sender)) else {
        return None;
    };
    let mut d = DurableSender {
        handed: ghost.handed,
        current: Vec::new(),
        outbox: Vec::new(),
    };
    for r in records {
        match r {
            SenderRecord::Incarnation { .. } | SenderRecord::Expired { .. } => {
                d.current.clear();
                d.outbox.clear();
            }
            SenderRecord::Submitted { seq, transfer } => {
                d.current
                    .push((*seq, u8::try_from(transfer.amount).unwrap_or(u8::MAX)));
                d.outbox.push(*seq);
            }
            SenderRecord::Acked { hwm, seq } => d.outbox.retain(|q| q > hwm && q != seq),
            SenderRecord::Snapshot { .. } => {}
        }
    }
    Some(d)
}

/// The seqs a sender still retries: its live core's outbox, or while it is
/// down the outbox it will recover with.
fn retrying(s: &ImplState, sender: u8, durable: &DurableSender) -> Vec<Seq> {
    match live_state(s, usize::from(sender)) {
        Some(NodeState::Sender { core, .. }) => {
            core.protocol().outbox.iter().map(|o| o.0).collect()
        }
        _ => durable.outbox.clone(),
    }
}

/// Every application handed over all its messages, durably.
fn all_handed_over(m: &ImplAckRetry, s: &ImplState) -> bool {
    let cfg = &m.cfg();
    (0..cfg.senders)
        .all(|sender| durable_sender(s, sender).is_some_and(|d| d.handed >= cfg.messages))
}

/// Every message of every sender's current incarnation is in the ledger.
fn incarnation_applied(m: &ImplAckRetry, s: &ImplState) -> bool {
    let ledger = ledger(m, s);
    (0..m.cfg().senders).all(|sender| match durable_sender(s, sender) {
        Some(d) => d
            .current
            .iter()
            .all(|&(_, msg)| ledger.contains(&(sender, msg))),
        None => true,
    })
}

/// Every message of every application is in the ledger.
fn all_applied(m: &ImplAckRetry, s: &ImplState) -> bool {
    let ledger = ledger(m, s);
    let cfg = &m.cfg();
    (0..cfg.senders).all(|sender| (1..=cfg.messages).all(|msg| ledger.contains(&(sender, msg))))
}

impl Explain for ImplAckRetry {
    fn summarize(&self, s: &ImplState) -> String {
        let mut parts = vec![format!("receiver ledger {:?}", ledger(self, s))];
        for sender in 0..self.cfg().senders {
            match durable_sender(s, sender) {
                Some(d) => parts.push(format!(
                    "sender {sender}: handed over {}, durable outbox {:?}",
                    d.handed, d.outbox
                )),
                None => parts.push(format!("sender {sender}: nothing saved")),
            }
        }
        parts.push(format!("crashes {}", s.history.crashes));
        parts.join("; ")
    }

    fn progress_properties(&self) -> Vec<ProgressProperty<Self>> {
        Checked::progress_properties(self)
    }
}
