//! After a run: check every node's durable records against the workload (sans-IO).
//!
//! `eo run` stops a cluster, reads every node's log (`runtime::store`) and hands the
//! records here. The checks do **not** reuse the cores' recovery or deduplication:
//! they replay the records into their own ledger (`i128` sums per account) and
//! compare it with what the workload and the senders' and clients' own logs say
//! must be there, so a core that applies twice, or a log that drops a record, is
//! caught rather than reproduced.
//!
//! **Ack-retry** ([`check_ack_retry`]). A *life* of a sender is one data directory
//! between two disk losses: the current one, and every lost one kept as evidence.
//! From each life's log: its incarnation, the seqs it submitted (with their
//! transfers) and which of them were acknowledged. From the receiver's log: a base
//! (its snapshot, if compacted) and every `Applied` record after it.
//!
//! - `applied-twice`: one `(sender, incarnation, seq)` applied twice (two `Applied`
//!   records, or one covered by the snapshot's dedup state and applied again);
//! - `never-submitted`: applied, but no life of that sender submitted that seq in
//!   that incarnation, or submitted another transfer under it;
//! - `lost`: submitted and acknowledged, but not applied;
//! - `zombie-applied`: data of an incarnation applied after data of a newer
//!   incarnation of the same sender (the newer one fenced it);
//! - `bank`: the receiver's balances differ from the sum of the transfers that must
//!   be applied (every acknowledged one) plus those of unknown outcome that were
//!   (a lost life's unacknowledged messages: applied at most once). This is the
//!   check that still bites when the receiver's log was compacted.
//! - `incomplete`: the current life of a sender did not submit and see acknowledged
//!   its whole workload.
//!
//! **Two-phase commit** ([`check_two_phase_commit`]). Decisions come from the
//! coordinator's and the clients' logs; each participant's effective state is its
//! replayed bank plus the prepared postings whose decision is Commit (recovery
//! applies them: durable prepare + durable decision).
//!
//! - `decision-conflict`: two logs record different decisions for one transaction;
//! - `atomicity`: a transaction committed at one participant and aborted (or
//!   missing) at another of its participants;
//! - `applied-twice`: a participant committed one transaction twice;
//! - `money-conserved`: the participants' balances do not add up to the sum of the
//!   committed transactions' postings;
//! - `bank`: a participant's balances differ from the committed postings meant for
//!   it (checked when every decision is known);
//! - `incomplete`: a client did not learn the outcome of its whole workload.

use crate::ack_retry::{Incarnation, ReceiverRecord, SenderRecord, Seq};
use crate::bank::{AccountId, Posting, Transfer};
use crate::core::NodeId;
use crate::two_phase_commit::{
    ClientRecord, CoordinatorRecord, Decision, Leg, ParticipantRecord, Txn, TxnId,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The most violations kept in a report; the rest are only counted.
pub const VIOLATIONS_KEPT_MAX: usize = 100;

/// Balances as the checker computes them: wide, so no sum overflows.
pub type Ledger = BTreeMap<AccountId, i128>;

/// One property that does not hold, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// A message (ack-retry) or a transaction at one participant (2PC) was applied
    /// more than once.
    #[error("applied-twice: {what} applied more than once at node {node}")]
    AppliedTwice {
        /// The receiver or participant.
        node: NodeId,
        /// The message `sender/incarnation/seq` or the transaction `client:seq`.
        what: String,
    },
    /// The receiver applied a message that no sender life submitted.
    #[error("never-submitted: message {sender}/{incarnation}/{seq} applied but {why}")]
    NeverSubmitted {
        /// The sender named by the record.
        sender: NodeId,
        /// Its incarnation.
        incarnation: Incarnation,
        /// Its seq.
        seq: Seq,
        /// What the senders' logs say instead.
        why: String,
    },
    /// A message submitted and acknowledged is not applied.
    #[error("lost: message {sender}/{incarnation}/{seq} was acknowledged but is not applied")]
    Lost {
        /// The sender.
        sender: NodeId,
        /// The incarnation that submitted it.
        incarnation: Incarnation,
        /// Its seq.
        seq: Seq,
    },
    /// Data of a fenced incarnation applied after data of a newer one.
    #[error(
        "zombie-applied: message {sender}/{incarnation}/{seq} applied after incarnation {newer} fenced it"
    )]
    ZombieApplied {
        /// The sender.
        sender: NodeId,
        /// The old incarnation.
        incarnation: Incarnation,
        /// The seq applied.
        seq: Seq,
        /// The newer incarnation seen before it.
        newer: Incarnation,
    },
    /// A node's balances differ from what the workload and the outcomes imply.
    #[error("bank: node {node} account {account}: balance {actual}, expected {expected}")]
    Bank {
        /// The receiver or participant.
        node: NodeId,
        /// The account.
        account: AccountId,
        /// The balance expected (or the bound it breaks).
        expected: String,
        /// The balance found.
        actual: i128,
    },
    /// Two logs disagree on a transaction's decision.
    #[error("decision-conflict: transaction {txn}: {why}")]
    DecisionConflict {
        /// The transaction.
        txn: TxnId,
        /// Which logs say what.
        why: String,
    },
    /// A transaction committed at some of its participants and not at others.
    #[error("atomicity: transaction {txn} committed at {committed:?} but {not_at:?} {why}")]
    Atomicity {
        /// The transaction.
        txn: TxnId,
        /// Participants that committed it.
        committed: Vec<NodeId>,
        /// Participants that did not.
        not_at: Vec<NodeId>,
        /// Aborted there, or no trace.
        why: &'static str,
    },
    /// The participants' total differs from the committed transactions' postings.
    #[error("money-conserved: participants hold {actual} in total, expected {expected}")]
    MoneyConserved {
        /// The sum over committed postings.
        expected: i128,
        /// The sum of all participants' balances.
        actual: i128,
    },
    /// A workload node's log does not show its whole workload finished.
    #[error("incomplete: node {node}: {why}")]
    Incomplete {
        /// The sender or client.
        node: NodeId,
        /// What is missing.
        why: String,
    },
}

impl Violation {
    /// The property's short name, as printed first in the message.
    pub fn property(&self) -> &'static str {
        match self {
            Violation::AppliedTwice { .. } => "applied-twice",
            Violation::NeverSubmitted { .. } => "never-submitted",
            Violation::Lost { .. } => "lost",
            Violation::ZombieApplied { .. } => "zombie-applied",
            Violation::Bank { .. } => "bank",
            Violation::DecisionConflict { .. } => "decision-conflict",
            Violation::Atomicity { .. } => "atomicity",
            Violation::MoneyConserved { .. } => "money-conserved",
            Violation::Incomplete { .. } => "incomplete",
        }
    }
}

/// What a check found: the violations (at most [`VIOLATIONS_KEPT_MAX`] kept) and
/// counts of what it looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Violations, in the order found.
    #[serde(serialize_with = "display_all")]
    pub violations: Vec<Violation>,
    /// Violations beyond [`VIOLATIONS_KEPT_MAX`], counted only.
    pub violations_dropped: u64,
    /// Messages or transactions whose outcome the logs fix (checked exactly).
    pub checked: u64,
    /// Messages or transactions of unknown outcome (a lost disk's unacknowledged
    /// messages; 2PC transactions compacted out of every log): only the bank
    /// bounds them.
    pub unknown: u64,
    /// Whether the balances were compared exactly (otherwise within bounds).
    pub bank_exact: bool,
}

fn display_all<S: serde::Serializer>(v: &[Violation], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

impl Verdict {
    fn push(&mut self, violation: Violation) {
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(violation);
        } else {
            self.violations_dropped += 1;
        }
    }

    /// No violation.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Whether some violation of `property` was found.
    pub fn has(&self, property: &str) -> bool {
        self.violations.iter().any(|v| v.property() == property)
    }
}

fn add(ledger: &mut Ledger, account: AccountId, delta: i128) {
    *ledger.entry(account).or_default() += delta;
}

fn add_transfer(ledger: &mut Ledger, t: &Transfer, times: i128) {
    add(ledger, t.from, -i128::from(t.amount) * times);
    add(ledger, t.to, i128::from(t.amount) * times);
}

fn add_posting(ledger: &mut Ledger, p: &Posting) {
    add(ledger, p.account, i128::from(p.delta));
}

/// Compares `actual` with `expected` plus any subset of the `unknown` transfers:
/// exactly if there are none, else per account within the sums of their negative
/// and positive effects.
fn compare_banks(
    node: NodeId,
    actual: &Ledger,
    expected: &Ledger,
    unknown: &[Transfer],
    verdict: &mut Verdict,
) {
    let mut low = expected.clone();
    let mut high = expected.clone();
    for t in unknown {
        let mut one = Ledger::new();
        add_transfer(&mut one, t, 1);
        for (account, delta) in one {
            add(if delta < 0 { &mut low } else { &mut high }, account, delta);
        }
    }
    let accounts: BTreeSet<AccountId> = actual
        .keys()
        .chain(low.keys())
        .chain(high.keys())
        .copied()
        .collect();
    for account in accounts {
        let get = |l: &Ledger| l.get(&account).copied().unwrap_or(0);
        let (a, lo, hi) = (get(actual), get(&low), get(&high));
        if !(lo..=hi).contains(&a) {
            let expected = if lo == hi {
                lo.to_string()
            } else {
                format!("within [{lo}, {hi}]")
            };
            verdict.push(Violation::Bank {
                node,
                account,
                expected,
                actual: a,
            });
        }
    }
}

// ---------------------------------------------------------------------------
// Ack-retry
// ---------------------------------------------------------------------------

/// One life of a sender: the records of one data directory.
#[derive(Clone, Debug)]
pub struct SenderLife {
    /// The sender's node id.
    pub sender: NodeId,
    /// Its log, as recovered.
    pub records: Vec<SenderRecord>,
    /// A lost disk kept as evidence (`true`), or the sender's current directory.
    pub lost: bool,
}

/// What one incarnation of a life durably did.
#[derive(Clone, Debug, Default)]
struct IncarnationFacts {
    /// Seqs below it were submitted.
    next_seq: Seq,
    /// Transfers known from `Submitted` records or the snapshot's outbox.
    transfers: BTreeMap<Seq, Transfer>,
    /// Submitted and not acknowledged when the log ends.
    unacked: BTreeSet<Seq>,
    /// The incarnation was given up (`Expired`): its unacked seqs have an unknown
    /// outcome even in the current life.
    expired: bool,
    /// The number of the workload item of seq 1 (items are counted over the life).
    first_item: u64,
}

/// Replays a sender's log: per incarnation, what was submitted and acknowledged.
fn sender_facts(records: &[SenderRecord]) -> BTreeMap<Incarnation, IncarnationFacts> {
    let mut facts: BTreeMap<Incarnation, IncarnationFacts> = BTreeMap::new();
    let mut current: Option<Incarnation> = None;
    let mut items: u64 = 0;
    let start = |facts: &mut BTreeMap<Incarnation, IncarnationFacts>,
                 incarnation: Incarnation,
                 next_seq: Seq,
                 items: &mut u64| {
        let entry = facts
            .entry(incarnation)
            .or_insert_with(|| IncarnationFacts {
                next_seq: 1,
                first_item: *items + 1,
                ..IncarnationFacts::default()
            });
        entry.next_seq = entry.next_seq.max(next_seq);
    };
    for record in records {
        match record {
            SenderRecord::Incarnation { incarnation } => {
                start(&mut facts, *incarnation, 1, &mut items);
                current = Some(*incarnation);
            }
            SenderRecord::Snapshot {
                incarnation,
                next_seq,
                outbox,
            } => {
                current = *incarnation;
                if let Some(inc) = incarnation {
                    start(&mut facts, *inc, *next_seq, &mut items);
                    let f = facts.get_mut(inc).expect("inserted above");
                    f.unacked = outbox.iter().map(|(s, _)| *s).collect();
                    f.transfers.extend(outbox.iter().map(|(s, t)| (*s, *t)));
                }
            }
            SenderRecord::Submitted { seq, transfer } => {
                if let Some(f) = current.and_then(|i| facts.get_mut(&i)) {
                    f.next_seq = f.next_seq.max(seq.saturating_add(1));
                    f.transfers.insert(*seq, *transfer);
                    f.unacked.insert(*seq);
                }
            }
            SenderRecord::Acked { hwm, seq } => {
                if let Some(f) = current.and_then(|i| facts.get_mut(&i)) {
                    f.unacked.retain(|s| s > hwm && s != seq);
                }
            }
            SenderRecord::Expired { incarnation } => {
                if let Some(f) = facts.get_mut(incarnation) {
                    f.expired = true;
                    items += f.next_seq.saturating_sub(1);
                }
                if current == Some(*incarnation) {
                    current = None;
                }
            }
        }
    }
    facts
}

/// What the receiver's log says: the snapshot's dedup state, then each `Applied`.
struct ReceiverFacts {
    /// Per sender, from the snapshot: (incarnation, hwm, seqs above hwm).
    base_dedup: BTreeMap<NodeId, (Incarnation, Seq, BTreeSet<Seq>)>,
    /// The snapshot's balances (empty if never compacted).
    base_bank: Ledger,
    /// Every `Applied` after the snapshot, in log order.
    applied: Vec<(NodeId, Incarnation, Seq, Transfer)>,
}

fn receiver_facts(records: &[ReceiverRecord]) -> ReceiverFacts {
    let mut facts = ReceiverFacts {
        base_dedup: BTreeMap::new(),
        base_bank: Ledger::new(),
        applied: Vec::new(),
    };
    for record in records {
        match record {
            ReceiverRecord::Snapshot { bank, senders, .. } => {
                facts.base_bank = bank
                    .balances()
                    .iter()
                    .map(|(a, b)| (*a, i128::from(*b)))
                    .collect();
                facts.base_dedup = senders
                    .iter()
                    .map(|d| {
                        (
                            d.sender,
                            (d.incarnation, d.hwm, d.above.iter().copied().collect()),
                        )
                    })
                    .collect();
                facts.applied.clear();
            }
            ReceiverRecord::Applied {
                from,
                incarnation,
                seq,
                transfer,
            } => facts.applied.push((*from, *incarnation, *seq, *transfer)),
            ReceiverRecord::Granted { .. } | ReceiverRecord::Retired { .. } => {}
        }
    }
    facts
}

/// Whether the snapshot's dedup state says `(sender, incarnation, seq)` was applied:
/// `Some(true/false)` if the snapshot speaks for that incarnation, `None` if the
/// incarnation is older than the one it kept (compacted away).
fn in_base(facts: &ReceiverFacts, sender: NodeId, inc: Incarnation, seq: Seq) -> Option<bool> {
    match facts.base_dedup.get(&sender) {
        None => Some(false),
        Some((base_inc, hwm, above)) => match inc.cmp(base_inc) {
            std::cmp::Ordering::Equal => Some(seq <= *hwm || above.contains(&seq)),
            std::cmp::Ordering::Greater => Some(false),
            std::cmp::Ordering::Less => None,
        },
    }
}

/// The workload's transfer for item `item` (1-based) of `sender`, if the caller
/// can recompute it.
pub type AckRetryWorkload<'a> = &'a dyn Fn(NodeId, u64) -> Option<Transfer>;

/// Checks an ack-retry run (see the module docs). `messages` is each sender's
/// workload size, by sender; `workload` recomputes a transfer from the workload
/// (for messages whose `Submitted` record was compacted away).
pub fn check_ack_retry(
    receiver: NodeId,
    receiver_records: &[ReceiverRecord],
    lives: &[SenderLife],
    messages: &BTreeMap<NodeId, u64>,
    workload: AckRetryWorkload<'_>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let rx = receiver_facts(receiver_records);
    // (sender, incarnation) → facts; an incarnation is unique across senders.
    let mut by_inc: BTreeMap<(NodeId, Incarnation), (IncarnationFacts, bool)> = BTreeMap::new();
    for life in lives {
        for (inc, f) in sender_facts(&life.records) {
            by_inc.insert((life.sender, inc), (f, life.lost));
        }
    }
    let transfer_of = |sender: NodeId, f: &IncarnationFacts, seq: Seq| -> Option<Transfer> {
        f.transfers
            .get(&seq)
            .copied()
            .or_else(|| workload(sender, f.first_item + seq - 1))
    };

    // Receiver side: each Applied once, of a submitted message, never a zombie.
    let mut seen: BTreeSet<(NodeId, Incarnation, Seq)> = BTreeSet::new();
    let mut newest: BTreeMap<NodeId, Incarnation> = rx
        .base_dedup
        .iter()
        .map(|(s, (inc, _, _))| (*s, *inc))
        .collect();
    let mut actual = rx.base_bank.clone();
    for &(sender, inc, seq, transfer) in &rx.applied {
        add_transfer(&mut actual, &transfer, 1);
        if !seen.insert((sender, inc, seq)) || in_base(&rx, sender, inc, seq) == Some(true) {
            verdict.push(Violation::AppliedTwice {
                node: receiver,
                what: format!("message {sender}/{inc}/{seq}"),
            });
        }
        let newer = newest.entry(sender).or_insert(inc);
        if *newer > inc {
            verdict.push(Violation::ZombieApplied {
                sender,
                incarnation: inc,
                seq,
                newer: *newer,
            });
        }
        *newer = (*newer).max(inc);
        let why = match by_inc.get(&(sender, inc)) {
            None => Some(format!("sender {sender} never held incarnation {inc}")),
            Some((f, _)) if seq >= f.next_seq => Some(format!(
                "incarnation {inc} submitted only seqs below {}",
                f.next_seq
            )),
            Some((f, _)) => match transfer_of(sender, f, seq) {
                Some(t) if t != transfer => Some(format!("it submitted {t:?}, not {transfer:?}")),
                _ => None,
            },
        };
        if let Some(why) = why {
            verdict.push(Violation::NeverSubmitted {
                sender,
                incarnation: inc,
                seq,
                why,
            });
        }
    }

    // Sender side: every acknowledged message applied; the expected bank.
    let mut expected = Ledger::new();
    let mut unknown: Vec<Transfer> = Vec::new();
    let mut bank_exact = true;
    for (&(sender, inc), (f, _lost)) in &by_inc {
        for seq in 1..f.next_seq {
            let acked = !f.unacked.contains(&seq);
            let applied = match in_base(&rx, sender, inc, seq) {
                Some(true) => Some(true),
                _ if seen.contains(&(sender, inc, seq)) => Some(true),
                Some(false) => Some(false),
                None => None,
            };
            let transfer = transfer_of(sender, f, seq);
            if acked {
                verdict.checked += 1;
                if applied == Some(false) {
                    verdict.push(Violation::Lost {
                        sender,
                        incarnation: inc,
                        seq,
                    });
                }
                match transfer {
                    Some(t) => add_transfer(&mut expected, &t, 1),
                    None => bank_exact = false,
                }
            } else {
                verdict.unknown += 1;
                match (applied, transfer) {
                    (Some(true), Some(t)) => add_transfer(&mut expected, &t, 1),
                    (Some(false), _) => {}
                    (_, Some(t)) => unknown.push(t),
                    (_, None) => bank_exact = false,
                }
            }
        }
    }
    if bank_exact {
        compare_banks(receiver, &actual, &expected, &unknown, &mut verdict);
    }
    verdict.bank_exact = bank_exact && unknown.is_empty();

    // The current lives finished their workloads.
    for (&sender, &n) in messages {
        let current: Vec<&IncarnationFacts> = by_inc
            .iter()
            .filter(|((s, _), (_, lost))| *s == sender && !lost)
            .map(|(_, (f, _))| f)
            .collect();
        let submitted: u64 = current.iter().map(|f| f.next_seq.saturating_sub(1)).sum();
        let pending: usize = current
            .iter()
            .filter(|f| !f.expired)
            .map(|f| f.unacked.len())
            .sum();
        if submitted < n || pending > 0 {
            verdict.push(Violation::Incomplete {
                node: sender,
                why: format!("submitted {submitted} of {n} messages, {pending} not acknowledged"),
            });
        }
    }
    verdict
}

// ---------------------------------------------------------------------------
// Two-phase commit
// ---------------------------------------------------------------------------

/// Where a decision was read, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Coordinator,
    Client(NodeId),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Coordinator => f.write_str("the coordinator"),
            Source::Client(c) => write!(f, "client {c}"),
        }
    }
}

/// What one participant's log says.
#[derive(Default)]
struct ParticipantFacts {
    bank: Ledger,
    /// Per client, transactions below it were finished and forgotten (snapshot).
    floors: BTreeMap<NodeId, u64>,
    committed: BTreeSet<TxnId>,
    aborted: BTreeSet<TxnId>,
    /// Prepared and not finished when the log ends.
    prepared: BTreeMap<TxnId, Posting>,
}

fn participant_facts(
    node: NodeId,
    records: &[ParticipantRecord],
    verdict: &mut Verdict,
) -> ParticipantFacts {
    let mut p = ParticipantFacts::default();
    for record in records {
        match record {
            ParticipantRecord::Snapshot(s) => {
                p = ParticipantFacts::default();
                p.bank = s
                    .bank
                    .balances()
                    .iter()
                    .map(|(a, b)| (*a, i128::from(*b)))
                    .collect();
                p.floors = s.floors.clone();
                for f in &s.finished {
                    match f.decision {
                        Decision::Commit => p.committed.insert(f.txn),
                        Decision::Abort => p.aborted.insert(f.txn),
                    };
                }
                p.prepared = s.prepared.iter().map(|t| (t.txn, t.posting)).collect();
            }
            ParticipantRecord::Prepared(t) => {
                p.prepared.insert(t.txn, t.posting);
            }
            ParticipantRecord::Committed { txn, posting } => {
                let below_floor = p.floors.get(&txn.client).is_some_and(|f| txn.seq < *f);
                if !p.committed.insert(*txn) || below_floor {
                    verdict.push(Violation::AppliedTwice {
                        node,
                        what: format!("transaction {txn}"),
                    });
                }
                p.prepared.remove(txn);
                add_posting(&mut p.bank, posting);
            }
            ParticipantRecord::Aborted { txn } => {
                p.prepared.remove(txn);
                p.aborted.insert(*txn);
            }
            ParticipantRecord::Floor { client, floor } => {
                let f = p.floors.entry(*client).or_default();
                *f = (*f).max(*floor);
            }
        }
    }
    p
}

/// The workload's transaction `seq` (0-based) of `client`, if the caller can
/// recompute it.
pub type TwoPhaseCommitWorkload<'a> = &'a dyn Fn(NodeId, u64) -> Option<Txn>;

/// Checks a two-phase-commit run (see the module docs). `transactions` is each
/// client's workload size, by client.
pub fn check_two_phase_commit(
    coordinator: &[CoordinatorRecord],
    participants: &[(NodeId, Vec<ParticipantRecord>)],
    clients: &[(NodeId, Vec<ClientRecord>)],
    transactions: &BTreeMap<NodeId, u64>,
    workload: TwoPhaseCommitWorkload<'_>,
) -> Verdict {
    let mut verdict = Verdict::default();
    let mut decisions: BTreeMap<TxnId, (Decision, Source)> = BTreeMap::new();
    let mut legs: BTreeMap<TxnId, Vec<Leg>> = BTreeMap::new();
    let mut note =
        |txn: TxnId, d: Decision, src: Source, verdict: &mut Verdict| match decisions.get(&txn) {
            Some((old, old_src)) if *old != d => verdict.push(Violation::DecisionConflict {
                txn,
                why: format!("{old_src} says {old:?}, {src} says {d:?}"),
            }),
            Some(_) => {}
            None => {
                decisions.insert(txn, (d, src));
            }
        };
    for record in coordinator {
        let decided: Vec<_> = match record {
            CoordinatorRecord::Decided(d) => vec![d],
            CoordinatorRecord::Snapshot(s) => s.decided.iter().collect(),
            _ => vec![],
        };
        for d in decided {
            note(d.txn, d.decision, Source::Coordinator, &mut verdict);
        }
    }
    // Per client: what it submitted (log or workload) and learned.
    let mut learned: BTreeMap<NodeId, BTreeSet<u64>> = BTreeMap::new();
    let mut floors: BTreeMap<NodeId, u64> = BTreeMap::new();
    for (client, records) in clients {
        let src = Source::Client(*client);
        for record in records {
            match record {
                ClientRecord::Submitted(txn) => {
                    legs.insert(txn.id, txn.legs.clone());
                }
                ClientRecord::Learned { txn, decision } => {
                    note(*txn, *decision, src, &mut verdict);
                    learned.entry(*client).or_default().insert(txn.seq);
                }
                ClientRecord::Snapshot(s) => {
                    // Below next_seq and not pending: learned before the snapshot.
                    floors.insert(*client, s.next_seq);
                    let pending: BTreeSet<u64> = s.pending.iter().map(|t| t.id.seq).collect();
                    let l = learned.entry(*client).or_default();
                    l.clear();
                    l.extend((0..s.next_seq).filter(|q| !pending.contains(q)));
                    for t in &s.pending {
                        legs.insert(t.id, t.legs.clone());
                    }
                }
            }
        }
    }
    for (&client, &n) in transactions {
        for seq in 0..n {
            let id = TxnId { client, seq };
            if let std::collections::btree_map::Entry::Vacant(slot) = legs.entry(id) {
                if let Some(txn) = workload(client, seq) {
                    slot.insert(txn.legs);
                }
            }
        }
        let done = learned
            .get(&client)
            .map_or(0, |l| l.range(0..n).count() as u64);
        if done < n {
            verdict.push(Violation::Incomplete {
                node: client,
                why: format!("learned the outcome of {done} of {n} transactions"),
            });
        }
    }

    // Each participant's effective state: replayed, plus prepared postings whose
    // decision is Commit (recovery applies them).
    let mut facts: BTreeMap<NodeId, ParticipantFacts> = BTreeMap::new();
    for (node, records) in participants {
        let mut p = participant_facts(*node, records, &mut verdict);
        let in_doubt: Vec<(TxnId, Posting)> = p
            .prepared
            .iter()
            .filter(|(t, _)| matches!(decisions.get(t), Some((Decision::Commit, _))))
            .map(|(t, posting)| (*t, *posting))
            .collect();
        for (txn, posting) in in_doubt {
            p.prepared.remove(&txn);
            p.committed.insert(txn);
            add_posting(&mut p.bank, &posting);
        }
        facts.insert(*node, p);
    }

    // Atomicity, per transaction seen committed or aborted anywhere.
    let seen: BTreeSet<TxnId> = facts
        .values()
        .flat_map(|p| p.committed.iter().chain(p.aborted.iter()))
        .chain(decisions.keys())
        .copied()
        .collect();
    for txn in &seen {
        let Some(txn_legs) = legs.get(txn) else {
            verdict.unknown += 1;
            continue;
        };
        verdict.checked += 1;
        let mut committed = Vec::new();
        let mut aborted = Vec::new();
        let mut missing = Vec::new();
        for leg in txn_legs {
            let Some(p) = facts.get(&leg.participant) else {
                missing.push(leg.participant);
                continue;
            };
            let forgotten = p.floors.get(&txn.client).is_some_and(|f| txn.seq < *f);
            if p.committed.contains(txn) {
                committed.push(leg.participant);
            } else if p.aborted.contains(txn) {
                aborted.push(leg.participant);
            } else if !forgotten && !p.prepared.contains_key(txn) {
                missing.push(leg.participant);
            }
        }
        if !committed.is_empty() && !aborted.is_empty() {
            verdict.push(Violation::Atomicity {
                txn: *txn,
                committed,
                not_at: aborted,
                why: "aborted it",
            });
        } else if matches!(decisions.get(txn), Some((Decision::Commit, _))) && !missing.is_empty() {
            verdict.push(Violation::Atomicity {
                txn: *txn,
                committed,
                not_at: missing,
                why: "hold no trace of it",
            });
        } else if matches!(decisions.get(txn), Some((Decision::Abort, _))) && !committed.is_empty()
        {
            verdict.push(Violation::Atomicity {
                txn: *txn,
                committed,
                not_at: aborted,
                why: "the decision was Abort",
            });
        }
    }

    // Banks: exact per participant if every transaction's decision and legs are
    // known; money conserved in any case where the decisions are.
    let all: Vec<TxnId> = transactions
        .iter()
        .flat_map(|(&client, &n)| (0..n).map(move |seq| TxnId { client, seq }))
        .collect();
    let known = all
        .iter()
        .all(|t| decisions.contains_key(t) && legs.contains_key(t));
    verdict.bank_exact = known;
    if known {
        let mut expected: BTreeMap<NodeId, Ledger> = BTreeMap::new();
        let mut expected_total: i128 = 0;
        for txn in &all {
            if let (Some((Decision::Commit, _)), Some(txn_legs)) =
                (decisions.get(txn), legs.get(txn))
            {
                for leg in txn_legs {
                    add_posting(expected.entry(leg.participant).or_default(), &leg.posting);
                    expected_total += i128::from(leg.posting.delta);
                }
            }
        }
        let actual_total: i128 = facts.values().flat_map(|p| p.bank.values()).sum();
        if actual_total != expected_total {
            verdict.push(Violation::MoneyConserved {
                expected: expected_total,
                actual: actual_total,
            });
        }
        for (node, p) in &facts {
            let e = expected.remove(node).unwrap_or_default();
            compare_banks(*node, &p.bank, &e, &[], &mut verdict);
        }
    }
    verdict
}

#[cfg(test)]
mod tests;
