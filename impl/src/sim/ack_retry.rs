//! The ack-retry scenario: senders push transfers through their outboxes to one
//! receiver, which applies them to its bank.
//!
//! The cluster is one [`Receiver`] (node [`RECEIVER`]) and 1..=[`SENDERS_DRAW_MAX`]
//! [`Sender`]s (nodes 1, 2, …), their number drawn from the seed. The workload is
//! `messages` random transfers between [`ACCOUNTS`] accounts, dealt round-robin
//! to the senders; each sender submits as fast as its window allows.
//!
//! ## Ghost history
//!
//! Kept outside the cores, from what they are seen to do. A message's identity is
//! its *ghost submission id* `(sender, incarnation, seq)`: after a disk loss the
//! sender starts again at seq 1 under a new incarnation, and the history tells
//! the new message from the old one with the same seq.
//!
//! - `submitted`: id → transfer, when `submit` returns a seq. A sender crash may
//!   legitimately undo a submission whose record was not yet durable; it is then
//!   dropped from the history and its transfer goes back to the workload (the
//!   client retries). Undoing an *accepted* one (its `Accepted` event was
//!   released) is a `no-loss` violation. An id assigned twice is an
//!   `exactly-once` violation (a reused identity).
//! - `applied`: id → (count, transfer), from the receiver's `Applied` events as
//!   polled. A receiver crash may undo an application whose record was not
//!   durable; undoing an *acknowledged* one is a `no-loss` violation. A count of
//!   2 is an `exactly-once` violation, at once.
//! - `acked`: every id the receiver acknowledged (an ack released with `hwm`
//!   covers every seq of that incarnation up to it).
//! - `lost`: ids whose outcome the application cannot learn, and which are
//!   therefore applied **at most once**, not exactly once:
//!   - **a lost disk loses the old outbox.** When a sender's disk is lost, its
//!     accepted but unacknowledged messages are in nobody's durable care any
//!     more: copies in flight may still be applied (once: the receiver's dedup
//!     state for the old incarnation is intact) until the new incarnation's
//!     first message fences the old one, after which they are refused. Its
//!     submissions that never left it (no `Data` released, so not accepted either)
//!     go back to the workload;
//!   - messages reported `OutcomeUnknown` after the receiver retired or fenced
//!     their incarnation.
//!
//! ## Invariants
//!
//! At every recovery: acknowledged ⇒ still applied; accepted ⇒ still submitted
//! (unless the disk was lost); an outbox entry disappears only once acknowledged
//! or given up; the recovered bank equals the ghost applications. After
//! convergence: every submission not in `lost` applied exactly once with its own
//! transfer, every one in `lost` at most once (`exactly-once`); nothing applied
//! that was not submitted; balances equal the sum of the unique transfers applied
//! (`balances`); total money is zero (`conservation`); dedup state within bounds.

use super::{Cluster, Either, Progress, ReadyOf, Scenario, SimRng, Violations};
use crate::ack_retry::{
    Incarnation, Msg, Receiver, ReceiverError, ReceiverEvent, ReceiverRecord, Sender, SenderEvent,
    SenderRecord, Seq, DEDUP_ABOVE_MAX,
};
use crate::bank::{AccountId, Bank, Transfer};
use crate::core::{Envelope, NodeId, Time};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The receiver's node id; senders are 1, 2, ….
pub const RECEIVER: NodeId = 0;
/// Runs have 1..=SENDERS_DRAW_MAX senders, drawn from the seed.
pub const SENDERS_DRAW_MAX: u32 = 4;
/// Transfers move money among this many accounts.
pub const ACCOUNTS: AccountId = 8;
/// Transfers carry 1..=AMOUNT_DRAW_MAX.
pub const AMOUNT_DRAW_MAX: i64 = 1_000;
/// At most this many messages per run (the ghost history is in memory).
pub const MESSAGES_MAX: u64 = 10_000_000;

/// A cluster node: a sender (left) or the receiver (right).
pub type Node = Either<Sender, Receiver>;

/// What the user chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Transfers to push through, over all senders.
    pub messages: u64,
}

/// A ghost submission id: `(sender, incarnation, seq)`.
type Key = (NodeId, Incarnation, Seq);

/// The ack-retry scenario. See the module docs.
pub struct AckRetry {
    messages: u64,
    senders: Vec<NodeId>,
    /// Transfers not yet submitted, per sender.
    pending: BTreeMap<NodeId, VecDeque<Transfer>>,
    submitted: BTreeMap<Key, Transfer>,
    accepted: BTreeSet<Key>,
    /// Ids whose data left the sender at least once (a recovered sender re-sends
    /// its outbox even when the crash lost the `Accepted` event).
    sent: BTreeSet<Key>,
    applied: BTreeMap<Key, (u32, Transfer)>,
    acked: BTreeSet<Key>,
    /// Per (sender, incarnation), the highest hwm seen in a released ack
    /// (everything below is in `acked`).
    acked_hwm: BTreeMap<(NodeId, Incarnation), Seq>,
    /// Applied at most once: the outcome is unknown (a lost disk, an expiry).
    lost: BTreeSet<Key>,
    /// `acked ∪ lost`: the units of work that are over.
    settled: BTreeSet<Key>,
    /// Per sender, the last incarnation it was seen to start.
    incarnations: BTreeMap<NodeId, Incarnation>,
    /// Sender processes booted so far: each gets nonces of its own.
    boots: u64,
    /// Counters of crashed processes.
    harvested: BTreeMap<String, u64>,
    /// Accepted submissions not yet taken for the trace: (sender, transfer, seq).
    submissions: Vec<(NodeId, Transfer, Seq)>,
}

impl AckRetry {
    fn ack(&mut self, sender: NodeId, incarnation: Incarnation, hwm: Seq, seq: Seq) {
        let from = self.acked_hwm.entry((sender, incarnation)).or_default();
        let start = *from + 1;
        *from = (*from).max(hwm);
        for s in std::iter::once(seq).chain(start..=hwm) {
            self.acked.insert((sender, incarnation, s));
            self.settled.insert((sender, incarnation, s));
        }
    }

    /// A nonce range of its own for every sender process (a real driver draws a
    /// random `u64`; the simulator's count is unique within the run).
    fn next_nonce(&mut self) -> u64 {
        self.boots += 1;
        self.boots << 32
    }

    fn settle_lost(&mut self, key: Key) {
        self.lost.insert(key);
        self.settled.insert(key);
    }

    fn harvest(&mut self, core: &Node) {
        for (k, v) in core_counters(core) {
            *self.harvested.entry(k.to_owned()).or_default() += v;
        }
    }

    fn check_bank(&self, bank: &Bank, violations: &mut Violations) {
        let mut expected = Bank::new();
        for (_, transfer) in self.applied.values() {
            expected
                .apply_transfer(transfer)
                .expect("ghost bank: workload amounts stay far below BALANCE_MAX");
        }
        if expected.balances() != bank.balances() {
            violations.push(
                "balances",
                format!(
                    "bank {:?} but the unique transfers applied give {:?}",
                    bank.balances(),
                    expected.balances()
                ),
            );
        }
    }
}

fn core_counters(core: &Node) -> [(&'static str, u64); 8] {
    let (s, r) = match core {
        Either::Left(s) => (s.stats(), Default::default()),
        Either::Right(r) => (Default::default(), r.stats()),
    };
    [
        ("submissions", s.submitted),
        ("retransmissions", s.retransmitted),
        ("applications", r.applied),
        ("duplicates_suppressed", r.duplicates),
        ("rejections", r.rejected),
        ("incarnations_granted", r.granted),
        ("expired_refused", r.expired),
        ("outcomes_unknown", s.unknown),
    ]
}

fn split<L: Clone + std::fmt::Debug, R: Clone + std::fmt::Debug>(
    records: Vec<Either<L, R>>,
    want_left: bool,
) -> Result<(Vec<L>, Vec<R>), String> {
    let mut left = Vec::new();
    let mut right = Vec::new();
    for (i, record) in records.into_iter().enumerate() {
        match record {
            Either::Left(l) if want_left => left.push(l),
            Either::Right(r) if !want_left => right.push(r),
            other => return Err(format!("record {i} belongs to the other role: {other:?}")),
        }
    }
    Ok((left, right))
}

impl Scenario for AckRetry {
    type Core = Node;
    type Config = Config;
    const NAME: &'static str = "ack-retry";
    const LOSES_DISKS: bool = true; // every sender may (not the receiver)

    fn new(config: &Config, rng: &mut SimRng) -> AckRetry {
        assert!(
            config.messages <= MESSAGES_MAX,
            "messages above MESSAGES_MAX"
        );
        let n = rng.random_range(1..=SENDERS_DRAW_MAX);
        let senders: Vec<NodeId> = (1..=n).collect();
        let mut pending: BTreeMap<NodeId, VecDeque<Transfer>> =
            senders.iter().map(|&s| (s, VecDeque::new())).collect();
        for i in 0..config.messages {
            let from = rng.random_range(0..ACCOUNTS);
            let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
            let amount = rng.random_range(1..=AMOUNT_DRAW_MAX);
            let sender = senders[(i % u64::from(n)) as usize];
            pending
                .get_mut(&sender)
                .expect("a queue per sender")
                .push_back(Transfer { from, to, amount });
        }
        AckRetry {
            messages: config.messages,
            senders,
            pending,
            submitted: BTreeMap::new(),
            accepted: BTreeSet::new(),
            sent: BTreeSet::new(),
            applied: BTreeMap::new(),
            acked: BTreeSet::new(),
            acked_hwm: BTreeMap::new(),
            lost: BTreeSet::new(),
            settled: BTreeSet::new(),
            incarnations: BTreeMap::new(),
            boots: 0,
            harvested: BTreeMap::new(),
            submissions: Vec::new(),
        }
    }

    fn replay_args(&self) -> String {
        format!("--messages {}", self.messages)
    }

    fn node_ids(&self) -> Vec<NodeId> {
        std::iter::once(RECEIVER)
            .chain(self.senders.iter().copied())
            .collect()
    }

    fn boot(&mut self, id: NodeId) -> Node {
        if id == RECEIVER {
            Either::Right(Receiver::new(id))
        } else {
            Either::Left(Sender::new(id, RECEIVER, Time::ZERO, self.next_nonce()))
        }
    }

    fn recover(
        &mut self,
        id: NodeId,
        now: Time,
        records: Vec<Either<SenderRecord, ReceiverRecord>>,
    ) -> Result<Node, String> {
        if id == RECEIVER {
            let (_, records) = split(records, false)?;
            Receiver::recover(id, now, records)
                .map(Either::Right)
                .map_err(|e| e.to_string())
        } else {
            let (records, _) = split(records, true)?;
            let nonce = self.next_nonce();
            Sender::recover(id, RECEIVER, now, nonce, records)
                .map(Either::Left)
                .map_err(|e| e.to_string())
        }
    }

    fn on_crash(&mut self, _id: NodeId, core: &Node) {
        self.harvest(core);
    }

    fn may_lose_disk(&self, id: NodeId) -> bool {
        id != RECEIVER
    }

    fn on_disk_lost(&mut self, id: NodeId, _now: Time) {
        let mine: Vec<Key> = self
            .submitted
            .range((id, 0, 0)..=(id, Incarnation::MAX, Seq::MAX))
            .map(|(&k, _)| k)
            .collect();
        for key in mine.into_iter().rev() {
            if self.acked.contains(&key) {
                continue;
            }
            if self.accepted.contains(&key) || self.sent.contains(&key) {
                self.settle_lost(key); // the old outbox: at most once from here
            } else {
                // Never sent (so never accepted): the client submits it again.
                let transfer = self.submitted.remove(&key).expect("listed above");
                self.pending
                    .get_mut(&id)
                    .expect("a queue per sender")
                    .push_front(transfer);
            }
        }
    }

    fn identity_records(&self, id: NodeId) -> Vec<Either<SenderRecord, ReceiverRecord>> {
        self.incarnations
            .get(&id)
            .map(|&incarnation| Either::Left(SenderRecord::Incarnation { incarnation }))
            .into_iter()
            .collect()
    }

    fn on_error(&mut self, id: NodeId, error: &<Node as crate::Core>::Error, v: &mut Violations) {
        // A receiver tracking SENDERS_MAX senders refuses a new one: that is the
        // bound working, as long as the run still converges (checked anyway).
        if let Either::Right(ReceiverError::TooManySenders { .. }) = error {
            return;
        }
        v.push("protocol-error", format!("node {id}: {error}"));
    }

    fn on_recovered(&mut self, id: NodeId, _now: Time, core: &Node, violations: &mut Violations) {
        match core {
            Either::Right(receiver) => {
                let undone: Vec<Key> = self
                    .applied
                    .keys()
                    .filter(|&&(s, i, q)| receiver.applied(s, i, q) == Some(false))
                    .copied()
                    .collect();
                for key in undone {
                    if self.acked.contains(&key) {
                        violations.push(
                            "no-loss",
                            format!(
                                "message {key:?} was acknowledged, then lost by a receiver crash"
                            ),
                        );
                    }
                    self.applied.remove(&key);
                }
                self.check_bank(receiver.bank(), violations);
            }
            Either::Left(sender) => {
                let Some(incarnation) = sender.incarnation() else {
                    return; // a new sender: nothing of it is durable
                };
                let lost: Vec<Key> = self
                    .submitted
                    .range((id, incarnation, sender.next_seq())..=(id, incarnation, Seq::MAX))
                    .map(|(&k, _)| k)
                    .filter(|k| !self.settled.contains(k)) // an earlier life's, not this crash's
                    .collect();
                for key in lost.into_iter().rev() {
                    if self.accepted.contains(&key) {
                        violations.push(
                            "no-loss",
                            format!("submission {key:?} was accepted, then lost by a sender crash"),
                        );
                    }
                    let transfer = self.submitted.remove(&key).expect("listed above");
                    // The client was never told: it submits the transfer again.
                    self.pending
                        .get_mut(&id)
                        .expect("a queue per sender")
                        .push_front(transfer);
                }
                let range = (id, incarnation, 0)..(id, incarnation, sender.next_seq());
                for (&key, _) in self.submitted.range(range) {
                    let settled = self.acked.contains(&key) || self.lost.contains(&key);
                    if !sender.is_outstanding(key.2) && !settled {
                        violations.push(
                            "no-loss",
                            format!("message {key:?} left the outbox without an acknowledgement"),
                        );
                    }
                }
            }
        }
    }

    fn on_polled(
        &mut self,
        id: NodeId,
        _now: Time,
        ready: &ReadyOf<Node>,
        violations: &mut Violations,
    ) {
        for event in ready.events() {
            if let Either::Right(ReceiverEvent::Applied {
                from,
                incarnation,
                seq,
                transfer,
            }) = *event
            {
                debug_assert_eq!(id, RECEIVER);
                let key = (from, incarnation, seq);
                let entry = self.applied.entry(key).or_insert((0, transfer));
                entry.0 += 1;
                if entry.0 > 1 {
                    violations.push(
                        "exactly-once",
                        format!("message {key:?} applied {} times", entry.0),
                    );
                }
            }
        }
    }

    fn on_released(
        &mut self,
        id: NodeId,
        _now: Time,
        messages: &[Envelope<Msg>],
        events: &[Either<SenderEvent, ReceiverEvent>],
        violations: &mut Violations,
    ) {
        for env in messages {
            if let Msg::Data {
                incarnation, seq, ..
            } = env.msg
            {
                self.sent.insert((id, incarnation, seq));
            }
            if let Msg::Ack {
                incarnation,
                hwm,
                seq,
            } = env.msg
            {
                debug_assert_eq!(id, RECEIVER);
                if !self.applied.contains_key(&(env.to, incarnation, seq)) {
                    violations.push(
                        "no-loss",
                        format!(
                            "ack for {:?}, which is not applied",
                            (env.to, incarnation, seq)
                        ),
                    );
                }
                self.ack(env.to, incarnation, hwm, seq);
            }
        }
        for event in events {
            match *event {
                Either::Left(SenderEvent::Accepted {
                    incarnation, seq, ..
                }) => {
                    self.accepted.insert((id, incarnation, seq));
                }
                Either::Left(SenderEvent::Started { incarnation }) => {
                    self.incarnations.insert(id, incarnation);
                }
                Either::Left(SenderEvent::OutcomeUnknown {
                    incarnation, seq, ..
                }) => self.settle_lost((id, incarnation, seq)),
                _ => {}
            }
        }
    }

    fn workload(
        &mut self,
        now: Time,
        id: NodeId,
        core: &mut Node,
        violations: &mut Violations,
    ) -> bool {
        let Either::Left(sender) = core else {
            return false;
        };
        let queue = self.pending.get_mut(&id).expect("a queue per sender");
        let mut issued = false;
        while let Some(&transfer) = queue.front() {
            match sender.submit(now, transfer) {
                Ok(seq) => {
                    queue.pop_front();
                    issued = true;
                    self.submissions.push((id, transfer, seq));
                    let incarnation = sender.incarnation().expect("a sender that accepts has one");
                    let key = (id, incarnation, seq);
                    if self.submitted.insert(key, transfer).is_some() {
                        violations.push(
                            "exactly-once",
                            format!("message id {key:?} assigned to a second submission (an identity reused)"),
                        );
                    }
                }
                Err(_) => break, // backpressure: window full, or no incarnation yet
            }
        }
        issued
    }

    fn workload_pending(&self) -> bool {
        self.pending.values().any(|q| !q.is_empty())
    }

    fn take_submissions(&mut self, id: NodeId) -> Vec<serde_json::Value> {
        let (mine, others) = std::mem::take(&mut self.submissions)
            .into_iter()
            .partition(|(sender, _, _)| *sender == id);
        self.submissions = others;
        mine.into_iter()
            .map(|(_, transfer, seq): (NodeId, Transfer, Seq)| {
                serde_json::json!({"transfer": transfer, "result": {"Ok": seq}})
            })
            .collect()
    }

    fn progress(&self) -> Progress {
        // Acknowledged or lost submissions; every ack is for a submitted message.
        Progress {
            done: self.settled.len() as u64,
            total: self.messages,
        }
    }

    fn converged(&self, cluster: &Cluster<'_, Node>) -> bool {
        cluster.all_up()
            && !self.workload_pending()
            && self.progress().done >= self.messages
            && cluster.iter().all(|(_, core)| {
                core.and_then(Either::left)
                    .is_none_or(|s| s.in_flight() == 0 && s.incarnation().is_some())
            })
    }

    fn check_final(&mut self, cluster: &Cluster<'_, Node>, violations: &mut Violations) {
        let Some(receiver) = cluster.core(RECEIVER).and_then(Either::right) else {
            return violations.push("convergence", "the receiver is down at the end");
        };
        if self.submitted.len() as u64 != self.messages {
            violations.push(
                "exactly-once",
                format!(
                    "{} of {} messages submitted",
                    self.submitted.len(),
                    self.messages
                ),
            );
        }
        for (key, transfer) in &self.submitted {
            let at_most_once = self.lost.contains(key);
            match self.applied.get(key) {
                None if at_most_once => {}
                None => violations.push("exactly-once", format!("message {key:?} never applied")),
                Some((count, applied)) if *count != 1 || applied != transfer => violations.push(
                    "exactly-once",
                    format!("message {key:?} applied {count} times as {applied:?}, submitted as {transfer:?}"),
                ),
                Some(_) => {}
            }
            if !at_most_once && receiver.applied(key.0, key.1, key.2) == Some(false) {
                violations.push(
                    "exactly-once",
                    format!("the receiver does not know message {key:?} is applied"),
                );
            }
        }
        for key in self.applied.keys() {
            if !self.submitted.contains_key(key) {
                violations.push(
                    "exactly-once",
                    format!("message {key:?} applied but never submitted"),
                );
            }
        }
        for key in &self.accepted {
            if !self.submitted.contains_key(key) {
                violations.push(
                    "no-loss",
                    format!("accepted message {key:?} is not in the history"),
                );
            }
        }
        self.check_bank(receiver.bank(), violations);
        if receiver.bank().total() != 0 {
            violations.push(
                "conservation",
                format!("total money is {}", receiver.bank().total()),
            );
        }
        let (senders, above) = receiver.dedup_size();
        if senders > self.senders.len() || above > DEDUP_ABOVE_MAX * senders {
            violations.push(
                "bounded-state",
                format!("dedup state of {senders} senders, {above} seqs above the hwms"),
            );
        }
    }

    fn counters(&self, cluster: &Cluster<'_, Node>) -> BTreeMap<String, u64> {
        let mut counters = self.harvested.clone();
        counters.insert("at_most_once".to_owned(), self.lost.len() as u64);
        for (_, core) in cluster.iter() {
            for (k, v) in core.map(core_counters).into_iter().flatten() {
                *counters.entry(k.to_owned()).or_default() += v;
            }
        }
        counters
    }
}

#[cfg(test)]
mod tests;
