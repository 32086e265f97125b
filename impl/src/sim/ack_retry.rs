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
//! Kept outside the cores, from what they are seen to do:
//!
//! - `submitted`: `(sender, seq) → transfer`, when `submit` returns a seq. A
//!   sender crash may legitimately undo a submission whose record was not yet
//!   durable; it is then dropped from the history and its transfer goes back to
//!   the workload (the client retries). Undoing an *accepted* one (its
//!   `Accepted` event was released) is a `no-loss` violation.
//! - `applied`: `(sender, seq) → (count, transfer)`, from the receiver's
//!   `Applied` events as polled. A receiver crash may undo an application whose
//!   record was not durable; undoing an *acknowledged* one is a `no-loss`
//!   violation. A count of 2 is an `exactly-once` violation, at once.
//! - `acked`: every `(sender, seq)` the receiver acknowledged (an ack released
//!   with `hwm` covers every seq up to it).
//!
//! ## Invariants
//!
//! At every recovery: acknowledged ⇒ still applied; accepted ⇒ still submitted;
//! an outbox entry disappears only once acknowledged; the recovered bank equals
//! the ghost applications. After convergence: every submission applied exactly
//! once with its own transfer (`exactly-once`); nothing applied that was not
//! submitted; balances equal the sum of the unique transfers applied
//! (`balances`); total money is zero (`conservation`); dedup state within bounds.

use super::{Cluster, Either, Progress, ReadyOf, Scenario, SimRng, Violations};
use crate::ack_retry::{
    Msg, Receiver, ReceiverEvent, ReceiverRecord, Sender, SenderEvent, SenderRecord, Seq,
    DEDUP_ABOVE_MAX,
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

type Key = (NodeId, Seq);

/// The ack-retry scenario. See the module docs.
pub struct AckRetry {
    messages: u64,
    senders: Vec<NodeId>,
    /// Transfers not yet submitted, per sender.
    pending: BTreeMap<NodeId, VecDeque<Transfer>>,
    submitted: BTreeMap<Key, Transfer>,
    accepted: BTreeSet<Key>,
    applied: BTreeMap<Key, (u32, Transfer)>,
    acked: BTreeSet<Key>,
    /// Per sender, the highest hwm seen in a released ack (everything below is in `acked`).
    acked_hwm: BTreeMap<NodeId, Seq>,
    /// Counters of crashed incarnations.
    harvested: BTreeMap<String, u64>,
}

impl AckRetry {
    fn ack(&mut self, sender: NodeId, hwm: Seq, seq: Seq) {
        self.acked.insert((sender, seq));
        let from = self.acked_hwm.entry(sender).or_default();
        for s in (*from + 1)..=hwm {
            self.acked.insert((sender, s));
        }
        *from = (*from).max(hwm);
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

fn core_counters(core: &Node) -> [(&'static str, u64); 5] {
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
            applied: BTreeMap::new(),
            acked: BTreeSet::new(),
            acked_hwm: BTreeMap::new(),
            harvested: BTreeMap::new(),
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
            Either::Left(Sender::new(id, RECEIVER))
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
            Sender::recover(id, RECEIVER, now, records)
                .map(Either::Left)
                .map_err(|e| e.to_string())
        }
    }

    fn on_crash(&mut self, _id: NodeId, core: &Node) {
        self.harvest(core);
    }

    fn on_recovered(&mut self, id: NodeId, _now: Time, core: &Node, violations: &mut Violations) {
        match core {
            Either::Right(receiver) => {
                let undone: Vec<Key> = self
                    .applied
                    .keys()
                    .filter(|&&(s, q)| !receiver.has_applied(s, q))
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
                let lost: Vec<Key> = self
                    .submitted
                    .range((id, sender.next_seq())..=(id, Seq::MAX))
                    .map(|(&k, _)| k)
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
                for (&(s, seq), _) in self.submitted.range((id, 0)..(id, sender.next_seq())) {
                    if !sender.is_outstanding(seq) && !self.acked.contains(&(s, seq)) {
                        violations.push(
                            "no-loss",
                            format!(
                                "message {:?} left the outbox without an acknowledgement",
                                (s, seq)
                            ),
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
                seq,
                transfer,
            }) = *event
            {
                debug_assert_eq!(id, RECEIVER);
                let entry = self.applied.entry((from, seq)).or_insert((0, transfer));
                entry.0 += 1;
                if entry.0 > 1 {
                    violations.push(
                        "exactly-once",
                        format!("message {:?} applied {} times", (from, seq), entry.0),
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
            if let Msg::Ack { hwm, seq } = env.msg {
                debug_assert_eq!(id, RECEIVER);
                if !self.applied.contains_key(&(env.to, seq)) {
                    violations.push(
                        "no-loss",
                        format!("ack for {:?}, which is not applied", (env.to, seq)),
                    );
                }
                self.ack(env.to, hwm, seq);
            }
        }
        for event in events {
            if let Either::Left(SenderEvent::Accepted { seq, .. }) = *event {
                self.accepted.insert((id, seq));
            }
        }
    }

    fn workload(
        &mut self,
        now: Time,
        id: NodeId,
        core: &mut Node,
        _violations: &mut Violations,
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
                    let previous = self.submitted.insert((id, seq), transfer);
                    assert!(
                        previous.is_none(),
                        "seq {seq} of sender {id} assigned twice without a crash in between"
                    );
                }
                Err(_) => break, // backpressure: the window is full
            }
        }
        issued
    }

    fn workload_pending(&self) -> bool {
        self.pending.values().any(|q| !q.is_empty())
    }

    fn progress(&self) -> Progress {
        // Acknowledged submissions; every ack is for a submitted message.
        Progress {
            done: self.acked.len() as u64,
            total: self.messages,
        }
    }

    fn converged(&self, cluster: &Cluster<'_, Node>) -> bool {
        cluster.all_up()
            && !self.workload_pending()
            && self.progress().done >= self.messages
            && cluster.iter().all(|(_, core)| {
                core.and_then(Either::left)
                    .is_none_or(|s| s.in_flight() == 0)
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
            match self.applied.get(key) {
                None => violations.push("exactly-once", format!("message {key:?} never applied")),
                Some((count, applied)) if *count != 1 || applied != transfer => violations.push(
                    "exactly-once",
                    format!("message {key:?} applied {count} times as {applied:?}, submitted as {transfer:?}"),
                ),
                Some(_) => {}
            }
            if !receiver.has_applied(key.0, key.1) {
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
