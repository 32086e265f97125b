//! The two-phase-commit scenario: clients move money between banks, each
//! transfer a transaction with a debit at one participant and credits at others.
//!
//! The cluster is one [`Coordinator`] (node [`COORDINATOR`]), `participants`
//! [`Participant`]s (nodes 1, 2, …; 3 by default) and 1..=[`CLIENTS_DRAW_MAX`]
//! [`Client`]s (nodes [`FIRST_CLIENT`], …), their number drawn from the seed. All
//! are [`two_phase_commit::Node`](crate::two_phase_commit::Node)s behind one core
//! type. The workload is `transactions` random transfers, dealt round-robin to
//! the clients; each client submits as fast as its window allows. A transfer
//! debits 1..=[`AMOUNT_DRAW_MAX`] from an account at one participant and credits
//! it at another; one in [`THREE_LEG_ONE_IN`] (with three or more participants)
//! splits the credit over two others. Participant 1 votes by
//! [`VotePolicy::MinBalance`], the others by a seeded mix of `MinBalance` and
//! `Yes`, so both outcomes occur (vote timeouts under loss abort some more).
//!
//! ## Ghost history
//!
//! Kept outside the cores, from what they are seen to do:
//!
//! - `submitted`: `txn → legs`, when `submit` returns an id. A client crash may
//!   undo a submission whose record was not yet durable (its Begin never left);
//!   it is dropped and its legs go back to the workload.
//! - `yes`: every `(participant, txn)` whose yes vote was *released*: a promise
//!   that the participant can commit after any crash.
//! - `decided`: `txn → decision`, from the coordinator's `Decided` events as
//!   released (the decision is durable and may have reached anyone).
//! - `commits`: `(participant, txn) → (count, posting)`, from `Committed` events
//!   as polled. A participant crash may undo a commit whose record was not
//!   durable; `acked` holds the commits acknowledged (an `Ack` holding `Commit`
//!   was released), which no crash may undo.
//! - `learned`: `txn → decision`, from the clients' `Outcome` events as released.
//!   A client that crashed after syncing a `Learned` record but before releasing
//!   its event knows the outcome without having told the application; such a
//!   transaction is `learned_unreported` (it counts as decided, but has no
//!   reported outcome to compare).
//!
//! ## Invariants
//!
//! Found the moment they break: a second application of one transaction at one
//! participant, or a posting other than the submitted leg (`exactly-once`); a
//! commit decided without a released yes vote from every participant
//! (`validity`); two different decisions for one transaction, a commit where the
//! decision is abort or an abort where it is commit (`atomicity`); an outcome
//! the client reports that differs from the decision, or reports twice
//! (`client-agreement`). Protocol errors a core returns are named the same way
//! (`CommitAfterAbort`, `AckMismatch` → `atomicity`; `CommitNeverPrepared` →
//! `validity`).
//!
//! At every recovery (`no-loss`): a client keeps every submission whose outcome
//! it reported; a coordinator holds every released decision at or above its
//! floor; a participant still holds every transaction it voted yes on (or has
//! passed it with its floor) and every acknowledged commit; and its recovered
//! [`Bank`] equals the ghost commits at it (`exactly-once`).
//!
//! After convergence: every transaction submitted and decided, within
//! [`HEALED_DECIDE_WITHIN`] of healing (`decided`); at every participant of a
//! committed transaction exactly one commit with its leg's posting, at none of an
//! aborted one (`atomicity`, `exactly-once`); every commit preceded by yes votes
//! of all its participants (`validity`); every reported outcome equal to the
//! decision (`client-agreement`); every bank equal both to its ghost commits and
//! to the sum of the committed legs at it (`exactly-once`); the sum of all
//! balances over all participants zero (`conservation`); and every table within
//! its bound, sampled throughout the run (`bounded-state`).

use super::{Cluster, Progress, ReadyOf, Scenario, SimRng, Violations};
use crate::bank::{AccountId, Amount, Bank, Posting};
use crate::core::{Core, Envelope, NodeId, Time};
use crate::two_phase_commit::{
    Client, Coordinator, Decision, Error, Event, Leg, Msg, Node, NodeRecord, Participant, Role,
    TxnId, Vote, VotePolicy, CLIENT_PENDING_TXNS_MAX, COORDINATOR_TXNS_MAX, PARTICIPANT_TXNS_MAX,
};
use rand::Rng;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// The coordinator's node id; participants are 1, 2, …, clients `FIRST_CLIENT`, ….
pub const COORDINATOR: NodeId = 0;
/// The first client's node id (above every participant's).
pub const FIRST_CLIENT: NodeId = 100;
/// Runs have 1..=CLIENTS_DRAW_MAX clients, drawn from the seed.
pub const CLIENTS_DRAW_MAX: u32 = 3;
/// Participants per cluster, as a user may choose them.
pub const PARTICIPANTS_MIN: u32 = 2;
pub const PARTICIPANTS_MAX: u32 = 16;
/// At most this many transactions per run (the ghost history is in memory).
pub const TRANSACTIONS_MAX: u64 = 1_000_000;
/// Each participant's bank has this many accounts.
pub const ACCOUNTS: AccountId = 4;
/// Transfers carry 1..=AMOUNT_DRAW_MAX.
pub const AMOUNT_DRAW_MAX: Amount = 1_000;
/// One transfer in this many splits its credit over two participants.
pub const THREE_LEG_ONE_IN: u32 = 4;
/// A `MinBalance` participant refuses a debit that could take an account below
/// a minimum drawn in `[MIN_BALANCE_DRAW_LOW, MIN_BALANCE_DRAW_HIGH]`.
pub const MIN_BALANCE_DRAW_LOW: Amount = -5_000;
pub const MIN_BALANCE_DRAW_HIGH: Amount = -1_000;
/// Participants other than the first vote `Yes` always with probability 1 in this.
pub const YES_POLICY_ONE_IN: u32 = 3;
/// After healing, every transaction is decided, known to its client and finished
/// at every participant within this much virtual time.
pub const HEALED_DECIDE_WITHIN: Duration = Duration::from_secs(10);

/// What the user chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Transactions to run, over all clients.
    pub transactions: u64,
    /// Participants (banks) in the cluster.
    pub participants: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            transactions: 1_000,
            participants: 3,
        }
    }
}

/// The two-phase-commit scenario. See the module docs.
pub struct TwoPhaseCommit {
    config: Config,
    clients: Vec<NodeId>,
    participants: Vec<NodeId>,
    roles: BTreeMap<NodeId, Role>,
    /// Transactions (their legs) not yet submitted, per client.
    pending: BTreeMap<NodeId, VecDeque<Vec<Leg>>>,
    submitted: BTreeMap<TxnId, Vec<Leg>>,
    /// `(participant, txn)` of every released yes vote.
    yes: BTreeSet<(NodeId, TxnId)>,
    decided: BTreeMap<TxnId, Decision>,
    /// `(participant, txn) → (times applied, posting)`.
    commits: BTreeMap<(NodeId, TxnId), (u32, Posting)>,
    /// `(participant, txn)` of every released `Ack` holding `Commit`.
    acked: BTreeSet<(NodeId, TxnId)>,
    /// `(participant, txn)` of every released `Aborted` event.
    aborted: BTreeSet<(NodeId, TxnId)>,
    learned: BTreeMap<TxnId, Decision>,
    learned_unreported: BTreeSet<TxnId>,
    /// What was sent before, to count re-sends: Begins, Prepares and Decisions
    /// per `(to, txn)`, Outcomes per txn.
    begun: BTreeSet<TxnId>,
    prepares: BTreeSet<(NodeId, TxnId)>,
    decisions: BTreeSet<(NodeId, TxnId)>,
    outcomes: BTreeSet<TxnId>,
    counters: BTreeMap<&'static str, u64>,
    /// Largest table sizes seen: coordinator, participant, client.
    held_max: (usize, usize, usize),
    /// The last virtual time a node was flushed at; convergence can only happen
    /// at a flush, so this is when it happened.
    now: Time,
    healed_at: Option<Time>,
    /// Set by `converged` (which takes `&self`) the first time it holds.
    converged_at: Cell<Option<Time>>,
}

impl TwoPhaseCommit {
    fn count(&mut self, name: &'static str) {
        *self.counters.entry(name).or_default() += 1;
    }

    /// The posting of `txn` at `participant`, as submitted.
    fn leg(&self, txn: TxnId, participant: NodeId) -> Option<Posting> {
        self.submitted
            .get(&txn)?
            .iter()
            .find(|l| l.participant == participant)
            .map(|l| l.posting)
    }

    /// The coordinator released `decision` for `txn`: it is logged.
    fn decide(&mut self, txn: TxnId, decision: Decision, violations: &mut Violations) {
        if let Some(before) = self.decided.insert(txn, decision) {
            if before != decision {
                violations.push(
                    "atomicity",
                    format!("transaction {txn} decided {before:?}, then {decision:?}"),
                );
            }
        }
    }

    fn ghost_bank(&self, participant: NodeId) -> Bank {
        let mut bank = Bank::new();
        for (_, (_, posting)) in self
            .commits
            .range((participant, TxnId { client: 0, seq: 0 })..)
            .take_while(|((p, _), _)| *p == participant)
        {
            bank.post(posting)
                .expect("ghost bank: workload amounts stay far below BALANCE_MAX");
        }
        bank
    }

    fn check_bank(&self, participant: &Participant, violations: &mut Violations) {
        let expected = self.ghost_bank(participant.id());
        if expected.balances() != participant.bank().balances() {
            violations.push(
                "exactly-once",
                format!(
                    "participant {}: bank {:?}, but the commits it reported give {:?}",
                    participant.id(),
                    participant.bank().balances(),
                    expected.balances()
                ),
            );
        }
    }

    fn sample_bounds(&mut self, core: &Node) {
        let held = &mut self.held_max;
        match core {
            Node::Coordinator(c) => held.0 = held.0.max(c.txn_count()),
            Node::Participant(p) => held.1 = held.1.max(p.txn_count()),
            Node::Client(c) => held.2 = held.2.max(c.pending().len()),
        }
    }

    /// The tables' bounds: the cores' own limits. (How far below them cleanup
    /// keeps the tables is reported in the `*_held_max` counters; it depends on
    /// throughput and on how long a decision waits for a lost acknowledgement,
    /// not only on the client windows.)
    fn bounds(&self) -> (usize, usize, usize) {
        (
            COORDINATOR_TXNS_MAX,
            PARTICIPANT_TXNS_MAX,
            CLIENT_PENDING_TXNS_MAX as usize,
        )
    }

    fn on_client_recovered(&mut self, id: NodeId, client: &Client, violations: &mut Violations) {
        let next = client.next_seq();
        let last = TxnId {
            client: id,
            seq: u64::MAX,
        };
        let undone: Vec<TxnId> = self
            .submitted
            .range(
                TxnId {
                    client: id,
                    seq: next,
                }..=last,
            )
            .map(|(t, _)| *t)
            .collect();
        for txn in undone.into_iter().rev() {
            if self.learned.contains_key(&txn) {
                violations.push(
                    "no-loss",
                    format!(
                        "transaction {txn}: its outcome was reported, then a client crash lost it"
                    ),
                );
            }
            let legs = self.submitted.remove(&txn).expect("listed above");
            // Its Begin never left: the application submits the transfer again.
            self.pending
                .get_mut(&id)
                .expect("a queue per client")
                .push_front(legs);
        }
        let pending: BTreeSet<TxnId> = client.pending().into_iter().collect();
        let below: Vec<TxnId> = self
            .submitted
            .range(
                TxnId { client: id, seq: 0 }..TxnId {
                    client: id,
                    seq: next,
                },
            )
            .map(|(t, _)| *t)
            .collect();
        for txn in below {
            let reported = self.learned.contains_key(&txn);
            if pending.contains(&txn) && reported {
                violations.push(
                    "no-loss",
                    format!("transaction {txn}: its outcome was reported, then a client crash forgot it"),
                );
            }
            if !pending.contains(&txn) && !reported {
                // Its Learned record is durable but the crash came before the event
                // was released: the client knows, the application was never told.
                if self.learned_unreported.insert(txn) {
                    self.count("outcomes_unreported");
                }
            }
        }
    }

    fn on_coordinator_recovered(&mut self, coordinator: &Coordinator, violations: &mut Violations) {
        for (&txn, &decision) in &self.decided {
            if txn.seq < coordinator.floor(txn.client) {
                continue;
            }
            let held = coordinator.decision(txn);
            if held != Some(decision) {
                violations.push(
                    "no-loss",
                    format!(
                        "transaction {txn}: decision {decision:?} was released, the recovered coordinator holds {held:?}"
                    ),
                );
            }
        }
    }

    fn on_participant_recovered(
        &mut self,
        id: NodeId,
        participant: &Participant,
        violations: &mut Violations,
    ) {
        let prepared: BTreeSet<TxnId> = participant.prepared().into_iter().collect();
        let holds = |txn: TxnId| {
            prepared.contains(&txn)
                || participant.finished(txn).is_some()
                || txn.seq < participant.floor(txn.client)
        };
        let first = (id, TxnId { client: 0, seq: 0 });
        for &(_, txn) in self.yes.range(first..).take_while(|(p, _)| *p == id) {
            if !holds(txn) {
                violations.push(
                    "no-loss",
                    format!("participant {id} voted yes on {txn}, then a crash made it forget"),
                );
            }
        }
        let undone: Vec<TxnId> = self
            .commits
            .range(first..)
            .take_while(|((p, _), _)| *p == id)
            .map(|((_, t), _)| *t)
            .filter(|&t| {
                participant.finished(t) != Some(Decision::Commit)
                    && t.seq >= participant.floor(t.client)
            })
            .collect();
        for txn in undone {
            if self.acked.contains(&(id, txn)) {
                violations.push(
                    "no-loss",
                    format!(
                        "participant {id} acknowledged committing {txn}, then a crash undid it"
                    ),
                );
            }
            self.commits.remove(&(id, txn));
        }
        self.check_bank(participant, violations);
    }
}

/// A transaction of 2..=3 legs moving `amount` out of one participant's account.
fn draw_legs(rng: &mut SimRng, participants: &[NodeId]) -> Vec<Leg> {
    let n = participants.len();
    let three = n >= 3 && rng.random_range(0..THREE_LEG_ONE_IN) == 0;
    let mut chosen: Vec<NodeId> = Vec::with_capacity(3);
    while chosen.len() < if three { 3 } else { 2 } {
        let p = participants[rng.random_range(0..n)];
        if !chosen.contains(&p) {
            chosen.push(p);
        }
    }
    let amount = rng.random_range(if three { 2 } else { 1 }..=AMOUNT_DRAW_MAX);
    let deltas = if three {
        let part = rng.random_range(1..amount);
        vec![-amount, part, amount - part]
    } else {
        vec![-amount, amount]
    };
    chosen
        .into_iter()
        .zip(deltas)
        .map(|(participant, delta)| Leg {
            participant,
            posting: Posting {
                account: rng.random_range(0..ACCOUNTS),
                delta,
            },
        })
        .collect()
}

fn property_of(error: &Error) -> &'static str {
    match error {
        Error::CommitAfterAbort { .. } | Error::AckMismatch { .. } => "atomicity",
        Error::CommitNeverPrepared { .. } => "validity",
        _ => "protocol-error",
    }
}

impl Scenario for TwoPhaseCommit {
    type Core = Node;
    type Config = Config;
    const NAME: &'static str = "two-phase-commit";

    fn new(config: &Config, rng: &mut SimRng) -> TwoPhaseCommit {
        assert!(
            config.transactions <= TRANSACTIONS_MAX,
            "transactions above TRANSACTIONS_MAX"
        );
        assert!(
            (PARTICIPANTS_MIN..=PARTICIPANTS_MAX).contains(&config.participants),
            "participants out of range"
        );
        let participants: Vec<NodeId> = (1..=config.participants).collect();
        let n = rng.random_range(1..=CLIENTS_DRAW_MAX);
        let clients: Vec<NodeId> = (FIRST_CLIENT..FIRST_CLIENT + n).collect();
        let mut roles = BTreeMap::new();
        roles.insert(
            COORDINATOR,
            Role::Coordinator {
                participants: participants.clone(),
            },
        );
        for &p in &participants {
            let yes = p != 1 && rng.random_range(0..YES_POLICY_ONE_IN) == 0;
            let policy = if yes {
                VotePolicy::Yes
            } else {
                VotePolicy::MinBalance(
                    rng.random_range(MIN_BALANCE_DRAW_LOW..=MIN_BALANCE_DRAW_HIGH),
                )
            };
            roles.insert(
                p,
                Role::Participant {
                    coordinator: COORDINATOR,
                    policy,
                },
            );
        }
        for &c in &clients {
            roles.insert(
                c,
                Role::Client {
                    coordinator: COORDINATOR,
                },
            );
        }
        let mut pending: BTreeMap<NodeId, VecDeque<Vec<Leg>>> =
            clients.iter().map(|&c| (c, VecDeque::new())).collect();
        for i in 0..config.transactions {
            let legs = draw_legs(rng, &participants);
            let client = clients[(i % u64::from(n)) as usize];
            pending
                .get_mut(&client)
                .expect("a queue per client")
                .push_back(legs);
        }
        TwoPhaseCommit {
            config: *config,
            clients,
            participants,
            roles,
            pending,
            submitted: BTreeMap::new(),
            yes: BTreeSet::new(),
            decided: BTreeMap::new(),
            commits: BTreeMap::new(),
            acked: BTreeSet::new(),
            aborted: BTreeSet::new(),
            learned: BTreeMap::new(),
            learned_unreported: BTreeSet::new(),
            begun: BTreeSet::new(),
            prepares: BTreeSet::new(),
            decisions: BTreeSet::new(),
            outcomes: BTreeSet::new(),
            counters: BTreeMap::new(),
            held_max: (0, 0, 0),
            now: Time::ZERO,
            healed_at: None,
            converged_at: Cell::new(None),
        }
    }

    fn replay_args(&self) -> String {
        format!(
            "--transactions {} --participants {}",
            self.config.transactions, self.config.participants
        )
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.roles.keys().copied().collect()
    }

    fn boot(&mut self, id: NodeId) -> Node {
        Node::new(id, &self.roles[&id])
    }

    fn recover(&mut self, id: NodeId, now: Time, records: Vec<NodeRecord>) -> Result<Node, String> {
        Node::recover(id, &self.roles[&id], now, records).map_err(|e| e.to_string())
    }

    fn on_crash(&mut self, _id: NodeId, core: &Node) {
        self.sample_bounds(core);
        self.count(match core {
            Node::Client(_) => "client_crashes",
            Node::Coordinator(_) => "coordinator_crashes",
            Node::Participant(_) => "participant_crashes",
        });
    }

    fn on_recovered(&mut self, id: NodeId, now: Time, core: &Node, violations: &mut Violations) {
        #[cfg(test)]
        let mut unchecked = Violations::default();
        #[cfg(test)]
        let violations = if tests::END_TO_END_ONLY.with(Cell::get) {
            &mut unchecked
        } else {
            violations
        };
        self.now = now;
        self.sample_bounds(core);
        match core {
            Node::Client(c) => self.on_client_recovered(id, c, violations),
            Node::Coordinator(c) => self.on_coordinator_recovered(c, violations),
            Node::Participant(p) => self.on_participant_recovered(id, p, violations),
        }
    }

    fn on_polled(
        &mut self,
        id: NodeId,
        now: Time,
        ready: &ReadyOf<Node>,
        violations: &mut Violations,
    ) {
        self.now = now;
        for event in ready.events() {
            match *event {
                Event::Committed { txn, posting } => {
                    let entry = self.commits.entry((id, txn)).or_insert((0, posting));
                    entry.0 += 1;
                    if entry.0 > 1 {
                        violations.push(
                            "exactly-once",
                            format!("participant {id} applied {txn} {} times", entry.0),
                        );
                    }
                    if self.leg(txn, id) != Some(posting) {
                        violations.push(
                            "exactly-once",
                            format!(
                                "participant {id} applied {posting:?} for {txn}, submitted as {:?}",
                                self.leg(txn, id)
                            ),
                        );
                    }
                }
                Event::Decided {
                    txn,
                    decision: Decision::Commit,
                } => {
                    let Some(legs) = self.submitted.get(&txn) else {
                        violations.push(
                            "validity",
                            format!("commit decided for {txn}, which was never submitted"),
                        );
                        continue;
                    };
                    for leg in legs {
                        if !self.yes.contains(&(leg.participant, txn)) {
                            violations.push(
                                "validity",
                                format!(
                                    "commit decided for {txn} without a yes vote from participant {}",
                                    leg.participant
                                ),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn on_released(
        &mut self,
        id: NodeId,
        _now: Time,
        messages: &[Envelope<Msg>],
        events: &[Event],
        violations: &mut Violations,
    ) {
        // Events first: a decision is known before the messages that carry it.
        for event in events {
            match *event {
                Event::Decided { txn, decision } => self.decide(txn, decision, violations),
                Event::Committed { txn, .. } => {
                    if self.decided.get(&txn) == Some(&Decision::Abort) {
                        violations.push(
                            "atomicity",
                            format!("participant {id} committed {txn}, which was decided abort"),
                        );
                    }
                }
                Event::Aborted { txn } => {
                    self.aborted.insert((id, txn));
                    if self.decided.get(&txn) == Some(&Decision::Commit) {
                        violations.push(
                            "atomicity",
                            format!("participant {id} aborted {txn}, which was decided commit"),
                        );
                    }
                }
                // Backpressure, reported to the application; the txn stays pending.
                Event::Busy { .. } => self.count("busy"),
                Event::Outcome { txn, decision } => {
                    if let Some(before) = self.learned.insert(txn, decision) {
                        violations.push(
                            "client-agreement",
                            format!(
                                "client {id} reported {txn} twice: {before:?}, then {decision:?}"
                            ),
                        );
                    }
                    let decided = self.decided.get(&txn).copied();
                    if decided != Some(decision) {
                        violations.push(
                            "client-agreement",
                            format!("client {id} reported {decision:?} for {txn}, the coordinator decided {decided:?}"),
                        );
                    }
                }
            }
        }
        let applied_in_step: BTreeSet<TxnId> = events
            .iter()
            .filter_map(|e| match *e {
                Event::Committed { txn, .. } => Some(txn),
                _ => None,
            })
            .collect();
        for env in messages {
            match env.msg {
                Msg::Begin { ref txn, .. } => {
                    if !self.begun.insert(txn.id) {
                        self.count("retries");
                    }
                }
                Msg::Prepare { txn, .. } => {
                    if !self.prepares.insert((env.to, txn)) {
                        self.count("retransmissions");
                    }
                }
                Msg::Decision { txn, .. } => {
                    if !self.decisions.insert((env.to, txn)) {
                        self.count("retransmissions");
                    }
                }
                Msg::Outcome { txn, decision } => {
                    // Only ever said from a logged decision, so it is one: after a
                    // crash between sync and release, the recovered coordinator's
                    // re-sent Outcome is the first the ghost hears of it. (A
                    // Decision message is not: below the floor the coordinator
                    // answers Abort to a participant that committed long ago.)
                    self.decide(txn, decision, violations);
                    if !self.outcomes.insert(txn) {
                        self.count("retransmissions");
                    }
                }
                Msg::Query { .. } => self.count("queries"),
                Msg::Busy { .. } => {}
                Msg::Vote { txn, vote } => {
                    let fresh = match vote {
                        Vote::Yes => self.yes.insert((id, txn)),
                        Vote::No => true,
                    };
                    if !fresh {
                        // A duplicate Prepare answered with the vote already given.
                        self.count("duplicates_suppressed");
                    }
                }
                Msg::Ack { txn, held } => {
                    if held == Some(Decision::Commit) {
                        self.acked.insert((id, txn));
                    }
                    // A duplicate Commit, or any decision below the floor:
                    // acknowledged, not applied. (A bare abort ack may also be
                    // for a transaction never prepared here, so it is not counted.)
                    let duplicate = match held {
                        Some(Decision::Commit) => !applied_in_step.contains(&txn),
                        Some(Decision::Abort) => false,
                        None => true,
                    };
                    if duplicate {
                        self.count("duplicates_suppressed");
                    }
                }
            }
        }
    }

    fn on_error(&mut self, id: NodeId, error: &Error, violations: &mut Violations) {
        violations.push(property_of(error), format!("node {id}: {error}"));
    }

    fn workload(
        &mut self,
        now: Time,
        id: NodeId,
        core: &mut Node,
        _violations: &mut Violations,
    ) -> bool {
        self.sample_bounds(core);
        let Some(client) = core.as_client_mut() else {
            return false;
        };
        let queue = self.pending.get_mut(&id).expect("a queue per client");
        let mut issued = false;
        while let Some(legs) = queue.front() {
            match client.submit(now, legs.clone()) {
                Ok(txn) => {
                    let legs = queue.pop_front().expect("just looked");
                    issued = true;
                    let previous = self.submitted.insert(txn, legs);
                    assert!(
                        previous.is_none(),
                        "{txn} assigned twice without a crash in between"
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
        // Outcomes the clients know; every one is for a submitted transaction.
        Progress {
            done: (self.learned.len() + self.learned_unreported.len()) as u64,
            total: self.config.transactions,
        }
    }

    fn converged(&self, cluster: &Cluster<'_, Node>) -> bool {
        let converged = cluster.all_up()
            && !self.workload_pending()
            && self.progress().done >= self.config.transactions
            // At rest: no client pending, no coordinator round unacknowledged,
            // no participant prepared.
            && cluster
                .iter()
                .all(|(_, core)| core.is_some_and(|c| c.poll_timeout().is_none()));
        if converged && self.converged_at.get().is_none() {
            self.converged_at.set(Some(self.now));
        }
        converged
    }

    fn on_healed(&mut self, now: Time) {
        self.healed_at = Some(now);
    }

    fn check_final(&mut self, cluster: &Cluster<'_, Node>, violations: &mut Violations) {
        if let (Some(healed), Some(converged)) = (self.healed_at, self.converged_at.get()) {
            let took = converged.saturating_since(healed);
            if took > HEALED_DECIDE_WITHIN {
                violations.push(
                    "decided",
                    format!("converged {took:?} after healing, bound {HEALED_DECIDE_WITHIN:?}"),
                );
            }
        }
        for (id, core) in cluster.iter() {
            match core {
                Some(core) => self.sample_bounds(core),
                None => violations.push("decided", format!("node {id} is down at the end")),
            }
        }
        if self.submitted.len() as u64 != self.config.transactions {
            violations.push(
                "decided",
                format!(
                    "{} of {} transactions submitted",
                    self.submitted.len(),
                    self.config.transactions
                ),
            );
        }
        // Per transaction: decided, reported consistently, applied atomically.
        let mut expected: BTreeMap<NodeId, Bank> = BTreeMap::new();
        for (&txn, legs) in &self.submitted {
            let Some(&decision) = self.decided.get(&txn) else {
                violations.push("decided", format!("transaction {txn} never decided"));
                continue;
            };
            match self.learned.get(&txn) {
                Some(&d) if d != decision => violations.push(
                    "client-agreement",
                    format!("client reported {d:?} for {txn}, decided {decision:?}"),
                ),
                None if !self.learned_unreported.contains(&txn) => violations.push(
                    "decided",
                    format!("the client never learned the outcome of {txn}"),
                ),
                _ => {}
            }
            for leg in legs {
                let p = leg.participant;
                let commit = self.commits.get(&(p, txn));
                match (decision, commit) {
                    (Decision::Commit, Some(&(1, posting))) if posting == leg.posting => {
                        expected
                            .entry(p)
                            .or_default()
                            .post(&posting)
                            .expect("ghost bank: workload amounts stay far below BALANCE_MAX");
                    }
                    (Decision::Commit, other) => violations.push(
                        "exactly-once",
                        format!(
                            "{txn} committed, participant {p} applied it as {other:?}, leg {:?}",
                            leg.posting
                        ),
                    ),
                    (Decision::Abort, Some(_)) => violations.push(
                        "atomicity",
                        format!("{txn} aborted, but participant {p} committed it"),
                    ),
                    (Decision::Abort, None) => {}
                }
                if decision == Decision::Commit {
                    if !self.yes.contains(&(p, txn)) {
                        violations.push(
                            "validity",
                            format!("{txn} committed without a yes vote from participant {p}"),
                        );
                    }
                    if self.aborted.contains(&(p, txn)) {
                        violations.push(
                            "atomicity",
                            format!("{txn} committed, but participant {p} aborted it"),
                        );
                    }
                }
            }
        }
        for &(p, txn) in self.commits.keys() {
            if !self.submitted.contains_key(&txn) {
                violations.push(
                    "exactly-once",
                    format!("participant {p} committed {txn}, which was never submitted"),
                );
            }
        }
        // Banks: as reported, as decided, and money conserved over all of them.
        let mut total: i128 = 0;
        for &p in &self.participants {
            let Some(participant) = cluster.core(p).and_then(Node::as_participant) else {
                continue;
            };
            self.check_bank(participant, violations);
            let decided = expected.remove(&p).unwrap_or_default();
            if decided.balances() != participant.bank().balances() {
                violations.push(
                    "exactly-once",
                    format!(
                        "participant {p}: bank {:?}, but the committed legs give {:?}",
                        participant.bank().balances(),
                        decided.balances()
                    ),
                );
            }
            total += participant.bank().total();
        }
        if total != 0 {
            violations.push(
                "conservation",
                format!("the balances of all participants sum to {total}"),
            );
        }
        let (coordinator, participant, client) = self.held_max;
        let (c_max, p_max, cl_max) = self.bounds();
        if coordinator > c_max || participant > p_max || client > cl_max {
            violations.push(
                "bounded-state",
                format!(
                    "held at most {coordinator} (coordinator), {participant} (participant), \
                     {client} (client) transactions; bounds {c_max}, {p_max}, {cl_max}"
                ),
            );
        }
        if let Some(c) = cluster.core(COORDINATOR).and_then(Node::as_coordinator) {
            if c.client_count() > self.clients.len() {
                violations.push(
                    "bounded-state",
                    format!(
                        "the coordinator keeps {} clients, there are {}",
                        c.client_count(),
                        self.clients.len()
                    ),
                );
            }
        }
    }

    fn counters(&self, _cluster: &Cluster<'_, Node>) -> BTreeMap<String, u64> {
        let mut counters: BTreeMap<String, u64> = [
            "transactions",
            "committed",
            "aborted",
            "retries",
            "retransmissions",
            "queries",
            "duplicates_suppressed",
            "outcomes_unreported",
            "client_crashes",
            "coordinator_crashes",
            "participant_crashes",
        ]
        .into_iter()
        .map(|k| (k.to_owned(), self.counters.get(k).copied().unwrap_or(0)))
        .collect();
        let committed = self
            .decided
            .values()
            .filter(|&&d| d == Decision::Commit)
            .count();
        counters.insert("transactions".to_owned(), self.submitted.len() as u64);
        counters.insert("committed".to_owned(), committed as u64);
        counters.insert(
            "aborted".to_owned(),
            (self.decided.len() - committed) as u64,
        );
        let (coordinator, participant, client) = self.held_max;
        counters.insert("coordinator_txns_held_max".to_owned(), coordinator as u64);
        counters.insert("participant_txns_held_max".to_owned(), participant as u64);
        counters.insert("client_pending_max".to_owned(), client as u64);
        counters
    }
}

#[cfg(test)]
mod tests;
