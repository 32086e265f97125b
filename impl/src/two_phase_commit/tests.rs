//! Scripts over a small in-memory cluster: one client, one coordinator and N
//! participants on virtual time. The cluster carries out every `Ready` the way a
//! driver must (persist, then send), and can drop, hold back, duplicate and
//! re-inject messages, and crash any node: a crashed node is rebuilt with
//! `recover` from exactly the records it persisted, optionally losing the last
//! `Ready` it had not yet carried out.

use super::*;
use crate::bank::Posting;
use crate::core::{Core, Envelope, Time};
use crate::release::{MemLog, Released};
use std::collections::{BTreeMap, VecDeque};

const CLIENT: NodeId = 1;
const COORDINATOR: NodeId = 10;
const P1: NodeId = 21;
const P2: NodeId = 22;
const P3: NodeId = 23;

/// Generous: every scenario settles in far fewer steps.
const STEPS_MAX: usize = 200_000;

#[derive(Clone, Debug)]
struct Packet {
    from: NodeId,
    to: NodeId,
    msg: Msg,
}

struct Slot {
    role: Role,
    /// `None` while crashed.
    node: Option<Node>,
    /// What the node's log holds: everything it persisted.
    log: MemLog<NodeRecord>,
}

type DropRule = Box<dyn FnMut(&Packet) -> bool>;

struct Cluster {
    now: Time,
    slots: BTreeMap<NodeId, Slot>,
    net: VecDeque<Packet>,
    /// Every packet ever sent (before any drop), for counting.
    sent: Vec<Packet>,
    /// Decides at send time whether a packet is lost.
    drop_rule: Option<DropRule>,
    events: Vec<(NodeId, Event)>,
    /// The participants of every submitted transaction.
    legs: BTreeMap<TxnId, Vec<NodeId>>,
}

impl Cluster {
    fn new(policies: &[(NodeId, VotePolicy)]) -> Cluster {
        let participants: Vec<NodeId> = policies.iter().map(|(p, _)| *p).collect();
        let mut c = Cluster {
            now: Time::ZERO,
            slots: BTreeMap::new(),
            net: VecDeque::new(),
            sent: Vec::new(),
            drop_rule: None,
            events: Vec::new(),
            legs: BTreeMap::new(),
        };
        c.add(
            CLIENT,
            Role::Client {
                coordinator: COORDINATOR,
            },
        );
        c.add(COORDINATOR, Role::Coordinator { participants });
        for (p, policy) in policies {
            c.add(
                *p,
                Role::Participant {
                    coordinator: COORDINATOR,
                    policy: policy.clone(),
                },
            );
        }
        c
    }

    /// Client, coordinator and `n` participants that always vote yes.
    fn yes(n: usize) -> Cluster {
        let ps: Vec<(NodeId, VotePolicy)> = [P1, P2, P3][..n]
            .iter()
            .map(|p| (*p, VotePolicy::Yes))
            .collect();
        Cluster::new(&ps)
    }

    fn add(&mut self, id: NodeId, role: Role) {
        let node = Node::new(id, &role);
        self.slots.insert(
            id,
            Slot {
                role,
                node: Some(node),
                log: MemLog::new(),
            },
        );
    }

    fn node(&mut self, id: NodeId) -> &mut Node {
        self.slots
            .get_mut(&id)
            .and_then(|s| s.node.as_mut())
            .expect("node is up")
    }

    fn client(&self) -> &Client {
        self.slots[&CLIENT]
            .node
            .as_ref()
            .and_then(Node::as_client)
            .expect("client is up")
    }

    fn coordinator(&self) -> &Coordinator {
        self.slots[&COORDINATOR]
            .node
            .as_ref()
            .and_then(Node::as_coordinator)
            .expect("coordinator is up")
    }

    fn participant(&self, id: NodeId) -> &Participant {
        self.slots[&id]
            .node
            .as_ref()
            .and_then(Node::as_participant)
            .expect("participant is up")
    }

    fn participants(&self) -> Vec<NodeId> {
        self.slots
            .iter()
            .filter(|(_, s)| matches!(s.role, Role::Participant { .. }))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Carries out the node's `Ready`: persist every record, then send.
    fn flush(&mut self, id: NodeId) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        if let Some(p) = node.as_participant() {
            p.assert_staged_index();
        }
        let log = &mut slot.log;
        let Ok(release) = node.poll_ready().persist(log);
        let proof = log.sync();
        let Released { messages, events } =
            release.open(proof).expect("the sync covers the release");
        for Envelope { to, msg } in messages {
            let packet = Packet { from: id, to, msg };
            self.sent.push(packet.clone());
            let lost = self.drop_rule.as_mut().is_some_and(|rule| rule(&packet));
            if !lost {
                self.net.push_back(packet);
            }
        }
        self.events.extend(events.into_iter().map(|e| (id, e)));
    }

    fn submit(&mut self, legs: Vec<Leg>) -> TxnId {
        let now = self.now;
        let participants = legs.iter().map(|l| l.participant).collect();
        let txn = self
            .node(CLIENT)
            .as_client_mut()
            .unwrap()
            .submit(now, legs)
            .expect("submit");
        self.legs.insert(txn, participants);
        self.flush(CLIENT);
        txn
    }

    fn transfer(&mut self, from: NodeId, to: NodeId, amount: i64) -> TxnId {
        self.submit(transfer_legs((from, 1), (to, 1), amount))
    }

    /// Hands a packet to its destination without carrying out the resulting
    /// `Ready` (see `crash`); dropped if the destination is down.
    fn feed(&mut self, p: Packet) {
        let now = self.now;
        if let Some(node) = self.slots.get_mut(&p.to).and_then(|s| s.node.as_mut()) {
            node.handle_message(now, p.from, p.msg.clone())
                .unwrap_or_else(|e| {
                    panic!("node {} rejected {:?} from {}: {e}", p.to, p.msg, p.from)
                });
        }
    }

    fn deliver(&mut self, p: Packet) {
        let to = p.to;
        self.feed(p);
        self.flush(to);
    }

    /// Delivers the oldest packet in flight, if any.
    fn step(&mut self) -> bool {
        match self.net.pop_front() {
            Some(p) => {
                self.deliver(p);
                true
            }
            None => false,
        }
    }

    fn next_timer(&self) -> Option<Time> {
        self.slots
            .values()
            .filter_map(|s| s.node.as_ref().and_then(Node::poll_timeout))
            .min()
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        let due: Vec<NodeId> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.node
                    .as_ref()
                    .and_then(Node::poll_timeout)
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.node(id).handle_timeout(now);
            self.flush(id);
        }
    }

    /// Runs until nothing is in flight and no timer is armed.
    fn settle(&mut self) {
        for _ in 0..STEPS_MAX {
            if self.step() {
                continue;
            }
            match self.next_timer() {
                None => return,
                Some(t) => {
                    self.now = self.now.max(t);
                    self.fire_timers();
                }
            }
        }
        panic!("cluster did not settle in {STEPS_MAX} steps");
    }

    /// One hop: delivers what is in flight now (not what that sends), without
    /// firing timers.
    fn hop(&mut self) {
        for _ in 0..self.net.len() {
            self.step();
        }
    }

    fn hops(&mut self, n: usize) {
        for _ in 0..n {
            self.hop();
        }
    }

    /// Runs messages and timers until virtual time `until`.
    fn run_until(&mut self, until: Time) {
        for _ in 0..STEPS_MAX {
            if self.step() {
                continue;
            }
            match self.next_timer() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.fire_timers();
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("run_until did not finish in {STEPS_MAX} steps");
    }

    /// Advances time to `id`'s timer and fires it alone.
    fn fire(&mut self, id: NodeId) {
        let t = self.node(id).poll_timeout().expect("a timer is armed");
        self.now = self.now.max(t);
        let now = self.now;
        self.node(id).handle_timeout(now);
        self.flush(id);
    }

    /// Removes and returns the packets in flight that match.
    fn hold(&mut self, pred: impl Fn(&Packet) -> bool) -> Vec<Packet> {
        let (held, kept): (Vec<Packet>, Vec<Packet>) = self.net.drain(..).partition(|p| pred(p));
        self.net = kept.into();
        held
    }

    fn inject(&mut self, packets: impl IntoIterator<Item = Packet>) {
        self.net.extend(packets);
    }

    /// Crashes a node. Its last `Ready`, if not carried out yet (after `feed`), is
    /// lost with it; its log survives.
    fn crash(&mut self, id: NodeId) {
        self.slots.get_mut(&id).unwrap().node = None;
    }

    /// Rebuilds a crashed node from its log and carries out its first `Ready`.
    fn restart(&mut self, id: NodeId) {
        let now = self.now;
        let slot = self.slots.get_mut(&id).unwrap();
        assert!(slot.node.is_none(), "restart of a running node");
        slot.node =
            Some(Node::recover(id, &slot.role, now, slot.log.records().to_vec()).expect("recover"));
        self.flush(id);
    }

    /// Crash and restart at once.
    fn reboot(&mut self, id: NodeId) {
        self.crash(id);
        self.restart(id);
    }

    /// Replaces the node's log by its snapshot.
    fn compact(&mut self, id: NodeId) {
        let slot = self.slots.get_mut(&id).unwrap();
        let snapshot = slot.node.as_ref().expect("node is up").snapshot();
        slot.log.compact(snapshot);
    }

    /// The coordinator's log records.
    fn coordinator_log(&self) -> Vec<CoordinatorRecord> {
        self.slots[&COORDINATOR]
            .log
            .records()
            .iter()
            .map(|r| match r {
                NodeRecord::Coordinator(r) => r.clone(),
                other => panic!("not a coordinator record: {other:?}"),
            })
            .collect()
    }

    /// The `Decided` records for `txn` in the coordinator's log.
    fn coordinator_decided(&self, txn: TxnId) -> usize {
        self.coordinator_log()
            .iter()
            .filter(|r| matches!(r, CoordinatorRecord::Decided(d) if d.txn == txn))
            .count()
    }

    fn count_sent(&self, pred: impl Fn(&Packet) -> bool) -> usize {
        self.sent.iter().filter(|p| pred(p)).count()
    }

    fn outcomes(&self) -> Vec<(TxnId, Decision)> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Outcome { txn, decision } => Some((*txn, *decision)),
                _ => None,
            })
            .collect()
    }

    fn outcome(&self, txn: TxnId) -> Option<Decision> {
        let found: Vec<Decision> = self
            .outcomes()
            .into_iter()
            .filter(|(t, _)| *t == txn)
            .map(|(_, d)| d)
            .collect();
        assert!(
            found.len() <= 1,
            "{txn}: the client learned its outcome {} times",
            found.len()
        );
        found.first().copied()
    }

    fn balance(&self, p: NodeId) -> i64 {
        self.participant(p).bank().balance(1)
    }

    /// Money is conserved across the participants, and every committed
    /// transaction was applied at most once per participant.
    fn assert_conserved(&self) {
        let total: i128 = self
            .participants()
            .iter()
            .map(|p| self.participant(*p).bank().total())
            .sum();
        assert_eq!(total, 0, "money created or destroyed");
        let mut applied: BTreeMap<(NodeId, TxnId), usize> = BTreeMap::new();
        for (node, e) in &self.events {
            if let Event::Committed { txn, .. } = e {
                *applied.entry((*node, *txn)).or_default() += 1;
            }
        }
        for ((node, txn), n) in applied {
            assert_eq!(n, 1, "{txn} applied {n} times at {node}");
        }
    }

    /// Nothing is left prepared anywhere and every participant agrees with the client.
    fn assert_atomic(&self, txn: TxnId) {
        let decision = self.outcome(txn).expect("the client learned the outcome");
        for p in self.participants() {
            let part = self.participant(p);
            if !self.legs[&txn].contains(&p) {
                assert!(!self
                    .events
                    .iter()
                    .any(|(n, e)| *n == p
                        && matches!(e, Event::Committed { txn: t, .. } if *t == txn)));
                continue;
            }
            assert!(
                !part.prepared().contains(&txn),
                "{txn} still prepared at {p}"
            );
            let committed_here = self
                .events
                .iter()
                .any(|(n, e)| *n == p && matches!(e, Event::Committed { txn: t, .. } if *t == txn));
            assert_eq!(
                committed_here,
                decision == Decision::Commit,
                "{txn} at {p} disagrees with {decision:?}"
            );
        }
    }
}

fn is_prepare(p: &Packet) -> bool {
    matches!(p.msg, Msg::Prepare { .. })
}

fn is_vote(p: &Packet) -> bool {
    matches!(p.msg, Msg::Vote { .. })
}

fn is_decision(p: &Packet) -> bool {
    matches!(p.msg, Msg::Decision { .. })
}

fn is_outcome(p: &Packet) -> bool {
    matches!(p.msg, Msg::Outcome { .. })
}

fn is_abort_outcome(t: TxnId) -> impl Fn(&Packet) -> bool {
    move |p| {
        p.to == CLIENT
            && matches!(p.msg, Msg::Outcome { txn, decision: Decision::Abort } if txn == t)
    }
}

fn is_commit_to(to: NodeId) -> impl Fn(&Packet) -> bool {
    move |p| {
        p.to == to
            && matches!(
                p.msg,
                Msg::Decision {
                    decision: Decision::Commit,
                    ..
                }
            )
    }
}

#[test]
fn commit_path() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 30);
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Commit));
    assert_eq!((c.balance(P1), c.balance(P2)), (-30, 30));
    assert_eq!(c.coordinator().decision(t), Some(Decision::Commit));
    assert_eq!(c.count_sent(is_prepare), 2, "one Prepare per participant");
    assert!(c.client().pending().is_empty());
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn one_no_vote_aborts_everywhere() {
    let mut c = Cluster::new(&[
        (P1, VotePolicy::Yes),
        (P2, VotePolicy::Yes),
        (P3, VotePolicy::No),
    ]);
    let t = c.submit(vec![
        Leg {
            participant: P1,
            posting: Posting {
                account: 1,
                delta: -10,
            },
        },
        Leg {
            participant: P2,
            posting: Posting {
                account: 1,
                delta: 4,
            },
        },
        Leg {
            participant: P3,
            posting: Posting {
                account: 1,
                delta: 6,
            },
        },
    ]);
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Abort));
    for p in [P1, P2, P3] {
        assert_eq!(c.balance(p), 0);
        assert!(c.participant(p).prepared().is_empty());
    }
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn a_min_balance_policy_votes_no_on_an_overdraft() {
    let mut c = Cluster::new(&[(P1, VotePolicy::MinBalance(-50)), (P2, VotePolicy::Yes)]);
    let ok = c.transfer(P1, P2, 40);
    c.settle();
    let over = c.transfer(P1, P2, 20);
    c.settle();
    assert_eq!(c.outcome(ok), Some(Decision::Commit));
    assert_eq!(c.outcome(over), Some(Decision::Abort));
    assert_eq!((c.balance(P1), c.balance(P2)), (-40, 40));
    c.assert_conserved();
}

#[test]
fn client_retry_is_deduplicated() {
    let mut c = Cluster::yes(2);
    // Hold back the votes: the client's retry finds the transaction in progress.
    let t = c.transfer(P1, P2, 5);
    c.hops(2);
    let votes = c.hold(is_vote);
    assert_eq!(votes.len(), 2);
    c.fire(CLIENT);
    assert_eq!(
        c.count_sent(|p| matches!(p.msg, Msg::Begin { .. })),
        2,
        "the client retried"
    );
    c.hop();
    assert_eq!(
        c.count_sent(is_prepare),
        2,
        "a retry in progress does not restart the transaction"
    );
    c.inject(votes);
    // Lose the first outcome: the client retries and gets the same answer.
    c.drop_rule = Some(Box::new(is_outcome));
    c.hop();
    assert_eq!(c.coordinator().decision(t), Some(Decision::Commit));
    assert_eq!(c.outcome(t), None);
    c.drop_rule = None;
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Commit));
    assert_eq!(c.count_sent(is_prepare), 2, "no second Prepare round");
    assert_eq!(c.count_sent(is_decision), 2, "no second decision round");
    assert_eq!(
        c.count_sent(is_outcome),
        2,
        "the retry was answered from the log"
    );
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn duplicate_commit_is_applied_once() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 7);
    c.hops(3); // Begin, Prepares, votes: the Commits are in flight
    let commits: Vec<Packet> = c
        .sent
        .iter()
        .filter(|p| is_commit_to(P1)(p))
        .cloned()
        .collect();
    assert_eq!(commits.len(), 1);
    c.settle();
    let acks_before = c.count_sent(|p| p.from == P1 && matches!(p.msg, Msg::Ack { .. }));
    c.inject(commits.iter().cloned().chain(commits.iter().cloned()));
    c.settle();
    assert_eq!(c.balance(P1), -7, "applied once");
    let acks_after = c.count_sent(|p| p.from == P1 && matches!(p.msg, Msg::Ack { .. }));
    assert_eq!(
        acks_after,
        acks_before + 2,
        "every duplicate is acknowledged"
    );
    // Even after a crash, the log replays the commit once.
    c.reboot(P1);
    c.inject(commits);
    c.settle();
    assert_eq!(c.balance(P1), -7);
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn coordinator_crash_after_logging_commit_resends_it() {
    let mut c = Cluster::yes(2);
    c.drop_rule = Some(Box::new(|p| is_decision(p) || is_outcome(p)));
    let t = c.transfer(P1, P2, 12);
    c.hops(3);
    assert_eq!(
        c.coordinator().decision(t),
        Some(Decision::Commit),
        "decided and logged"
    );
    assert_eq!(c.participant(P1).prepared(), vec![t]);
    c.crash(COORDINATOR);
    c.drop_rule = None;
    c.restart(COORDINATOR);
    assert_eq!(
        c.coordinator().decision(t),
        Some(Decision::Commit),
        "recovered from the log"
    );
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Commit));
    assert_eq!((c.balance(P1), c.balance(P2)), (-12, 12));
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn coordinator_crash_before_deciding_is_a_presumed_abort() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 9);
    c.hops(2);
    let votes = c.hold(is_vote);
    assert_eq!(c.participant(P1).prepared(), vec![t]);
    assert_eq!(c.participant(P2).prepared(), vec![t]);
    c.reboot(COORDINATOR);
    assert_eq!(
        c.coordinator().decision(t),
        Some(Decision::Abort),
        "recovery logged the presumed abort"
    );
    // Lose the Aborts recovery sent, so the participants must ask.
    c.hold(|p| is_decision(p) || is_outcome(p));
    // The old votes arrive at the new incarnation: ignored, not counted.
    c.inject(votes);
    c.hop();
    assert_eq!(c.coordinator().decision(t), Some(Decision::Abort));
    // A prepared participant queries; the answer comes from the log.
    let decided = c.coordinator_decided(t);
    c.fire(P1);
    assert_eq!(
        c.count_sent(|p| p.from == P1 && matches!(p.msg, Msg::Query { .. })),
        1
    );
    c.hop();
    assert_eq!(c.coordinator_decided(t), decided, "nothing logged again");
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Abort));
    let begins = |p: &Packet| matches!(p.msg, Msg::Begin { .. });
    assert_eq!(c.count_sent(begins), 2, "the client retried once");
    assert_eq!(
        c.count_sent(is_abort_outcome(t)),
        2,
        "recovery's, lost; the retry's"
    );
    // A late retry of the same id is answered from the log, never restarted.
    let prepares = c.count_sent(is_prepare);
    let legs = transfer_legs((P1, 1), (P2, 1), 9);
    c.inject([Packet {
        from: CLIENT,
        to: COORDINATOR,
        msg: Msg::Begin {
            txn: Txn { id: t, legs },
            low: t.seq,
        },
    }]);
    c.settle();
    assert_eq!(c.count_sent(is_prepare), prepares);
    assert_eq!(c.count_sent(is_abort_outcome(t)), 3);
    c.assert_atomic(t);
    c.assert_conserved();
}

/// What recovery must do for a transaction that was started (its `Started`
/// record durable, its Prepares sent) and never decided: log Abort, send it to
/// every participant, and answer the client's retry with Abort from the log,
/// never with a second Prepare round.
fn assert_recovery_aborts_the_started(c: &mut Cluster, t: TxnId, votes: Vec<Packet>) {
    let log_before = c.coordinator_log().len();
    let sent_before = c.sent.len();
    c.restart(COORDINATOR);
    assert_eq!(c.coordinator().decision(t), Some(Decision::Abort));
    let logged = &c.coordinator_log()[log_before..];
    assert_eq!(
        logged,
        [CoordinatorRecord::Decided(DecidedTxn {
            txn: t,
            participants: vec![P1, P2],
            decision: Decision::Abort,
        })],
        "recovery logged Abort, and nothing else"
    );
    for p in [P1, P2] {
        let aborts = c.sent[sent_before..]
            .iter()
            .filter(|q| {
                q.to == p
                    && matches!(q.msg, Msg::Decision { txn, decision: Decision::Abort } if txn == t)
            })
            .count();
        assert_eq!(aborts, 1, "recovery sent Abort to {p}");
    }
    // Lose the outcome recovery sent: the client hears only through its retry.
    assert_eq!(c.hold(is_outcome).len(), 1);
    // The votes of the old round arrive late: the decision stands.
    c.inject(votes);
    c.hop();
    c.fire(CLIENT);
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Abort));
    assert!(
        c.count_sent(|p| matches!(p.msg, Msg::Begin { .. })) >= 2,
        "the client retried"
    );
    assert_eq!(
        c.count_sent(is_abort_outcome(t)),
        2,
        "the retry was answered from the log"
    );
    assert_eq!(c.count_sent(is_prepare), 2, "never a second Prepare round");
    assert_eq!((c.balance(P1), c.balance(P2)), (0, 0));
    c.assert_atomic(t);
    c.assert_conserved();
}

/// The regression: a coordinator used to keep a preparing transaction in memory
/// only, so after a crash a client retry of the same id ran a second round.
#[test]
fn a_coordinator_crash_after_prepare_aborts_at_recovery_and_answers_the_retry() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 9);
    c.hops(2); // Begin (Started, Prepares), Prepares: the yes votes are in flight
    let votes = c.hold(is_vote);
    assert_eq!(votes.len(), 2);
    assert_eq!(
        c.coordinator_log(),
        [CoordinatorRecord::Started(StartedTxn {
            txn: t,
            participants: vec![P1, P2],
        })],
        "started before Prepare, nothing else"
    );
    c.crash(COORDINATOR);
    assert_recovery_aborts_the_started(&mut c, t, votes);
}

#[test]
fn recovery_from_a_snapshot_holding_a_started_transaction_aborts_it() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 9);
    c.hops(2);
    let votes = c.hold(is_vote);
    c.compact(COORDINATOR);
    assert_eq!(
        c.coordinator_log(),
        [CoordinatorRecord::Snapshot(CoordinatorSnapshot {
            floors: [(CLIENT, 0)].into(),
            decided: Vec::new(),
            started: vec![StartedTxn {
                txn: t,
                participants: vec![P1, P2],
            }],
        })]
    );
    c.crash(COORDINATOR);
    assert_recovery_aborts_the_started(&mut c, t, votes);
}

#[test]
fn a_coordinator_losing_its_unsynced_started_record_runs_the_retry_as_the_first_round() {
    // The crash comes before the Ready of the Begin is carried out: the Started
    // record and the Prepares are lost together, so nobody heard of the
    // transaction and the client's retry starts it as if for the first time.
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 9);
    let begin = c.hold(|p| p.to == COORDINATOR).remove(0);
    c.feed(begin);
    c.crash(COORDINATOR);
    c.restart(COORDINATOR);
    assert!(c.coordinator_log().is_empty());
    assert_eq!(c.coordinator().decision(t), None);
    c.fire(CLIENT);
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Commit));
    assert_eq!(c.count_sent(is_prepare), 2, "one round");
    assert_eq!((c.balance(P1), c.balance(P2)), (-9, 9));
    c.assert_atomic(t);
    c.assert_conserved();
}

/// A query for an id at or above the floor that the coordinator does not hold
/// cannot follow from a log it wrote; if it comes anyway (the log was lost), the
/// abort is presumed durably, so the id can never commit later.
#[test]
fn a_query_for_an_id_the_log_does_not_hold_is_a_durable_presumed_abort() {
    let txn = TxnId {
        client: CLIENT,
        seq: 0,
    };
    let mut coordinator = Coordinator::new(COORDINATOR, [P1, P2]);
    let query = Msg::Query {
        txn,
        participants: vec![P1, P2],
    };
    coordinator.handle_message(Time::ZERO, P1, query).unwrap();
    let ready = coordinator.poll_ready().settle();
    assert_eq!(
        ready.records,
        [CoordinatorRecord::Decided(DecidedTxn {
            txn,
            participants: vec![P1, P2],
            decision: Decision::Abort,
        })]
    );
    let begin = Msg::Begin {
        txn: Txn {
            id: txn,
            legs: transfer_legs((P1, 1), (P2, 1), 1),
        },
        low: 0,
    };
    coordinator
        .handle_message(Time::ZERO, CLIENT, begin)
        .unwrap();
    let ready = coordinator.poll_ready().settle();
    assert!(ready.records.is_empty());
    assert_eq!(
        ready.messages,
        [Envelope {
            to: CLIENT,
            msg: Msg::Outcome {
                txn,
                decision: Decision::Abort
            }
        }],
        "answered from the log, no Prepare"
    );
}

#[test]
fn coordinator_losing_its_unsynced_decision_presumes_abort() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 9);
    c.hops(2);
    let mut votes = c.hold(is_vote);
    c.deliver(votes.remove(0));
    // The last vote makes the coordinator decide Commit, but it crashes before
    // the Ready (the Decided record and the Commits) is carried out.
    c.feed(votes.remove(0));
    c.crash(COORDINATOR);
    c.restart(COORDINATOR);
    c.fire(P1);
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Abort));
    assert_eq!((c.balance(P1), c.balance(P2)), (0, 0));
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn coordinator_vote_timeout_aborts_unilaterally() {
    let mut c = Cluster::yes(2);
    c.drop_rule = Some(Box::new(|p| p.from == P2 && is_vote(p)));
    let t = c.transfer(P1, P2, 3);
    c.run_until(Time::ZERO + VOTE_TIMEOUT);
    assert_eq!(c.coordinator().decision(t), Some(Decision::Abort));
    c.drop_rule = None;
    c.settle();
    assert_eq!(c.outcome(t), Some(Decision::Abort));
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn participant_crash_after_yes_recovers_prepared_and_applies() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 25);
    c.hops(3); // Begin, Prepares, votes: the Commits are in flight
    let commit = c.hold(is_commit_to(P1));
    assert_eq!(commit.len(), 1);
    c.crash(P1);
    c.settle_until_quiet_except(P1);
    c.restart(P1);
    assert_eq!(c.participant(P1).prepared(), vec![t], "recovered prepared");
    c.settle();
    assert_eq!((c.balance(P1), c.balance(P2)), (-25, 25));
    // The original Commit arrives late: acknowledged, not applied again.
    c.inject(commit);
    c.settle();
    assert_eq!(c.balance(P1), -25);
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn participant_losing_its_unsynced_prepare_never_voted() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 25);
    c.hop();
    let prepare = c.hold(|p| p.to == P1 && is_prepare(p)).remove(0);
    c.feed(prepare);
    c.crash(P1); // the Prepared record and the yes vote are lost together
    c.restart(P1);
    assert!(c.participant(P1).prepared().is_empty());
    c.settle();
    // The coordinator re-sent Prepare; the restarted participant voted again.
    assert_eq!(c.outcome(t), Some(Decision::Commit));
    assert_eq!((c.balance(P1), c.balance(P2)), (-25, 25));
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn late_messages_of_a_finished_transaction_do_not_touch_a_later_one() {
    let mut c = Cluster::yes(2);
    let t1 = c.transfer(P1, P2, 10);
    c.settle();
    let old: Vec<Packet> = c.sent.clone();
    let t2 = c.transfer(P2, P1, 4);
    c.hops(2);
    // Everything from t1 arrives again in the middle of t2.
    c.inject(old.iter().cloned());
    c.settle();
    assert_eq!(c.outcome(t1), Some(Decision::Commit));
    assert_eq!(c.outcome(t2), Some(Decision::Commit));
    assert_eq!((c.balance(P1), c.balance(P2)), (-6, 6));
    // And again once t1 is below every floor (more transactions raised them).
    for _ in 0..3 {
        c.transfer(P1, P2, 1);
        c.settle();
    }
    assert!(c.coordinator().floor(CLIENT) > t1.seq);
    assert!(c.participant(P1).floor(CLIENT) > t1.seq);
    c.inject(old);
    c.settle();
    assert_eq!((c.balance(P1), c.balance(P2)), (-9, 9));
    c.assert_atomic(t1);
    c.assert_atomic(t2);
    c.assert_conserved();
}

#[test]
fn state_stays_bounded_over_many_transactions() {
    let mut c = Cluster::yes(3);
    let ps = [P1, P2, P3];
    let mut submitted = Vec::new();
    for i in 0..2_000usize {
        // A few in flight at once, in varying directions.
        let (from, to) = (ps[i % 3], ps[(i / 3 + 1 + i) % 3]);
        if from != to {
            submitted.push(c.transfer(from, to, 1 + (i as i64 % 7)));
        }
        if i % 4 == 3 {
            c.settle();
        }
        if i % 500 == 499 {
            for id in [CLIENT, COORDINATOR, P1, P2, P3] {
                c.compact(id);
                c.reboot(id);
            }
        }
        let window = CLIENT_PENDING_TXNS_MAX as usize;
        assert!(
            c.coordinator().txn_count() <= window,
            "coordinator holds {}",
            c.coordinator().txn_count()
        );
        for p in ps {
            assert!(
                c.participant(p).txn_count() <= window,
                "participant holds {}",
                c.participant(p).txn_count()
            );
        }
        for id in [CLIENT, COORDINATOR, P1, P2, P3] {
            assert!(
                c.slots[&id].log.records().len() <= 4 * 500 * 3,
                "log of {id} grows without compaction only"
            );
        }
    }
    c.settle();
    for t in submitted {
        assert_eq!(c.outcome(t), Some(Decision::Commit));
    }
    assert!(c.coordinator().txn_count() <= 8);
    c.assert_conserved();
}

#[test]
fn snapshots_round_trip() {
    let mut c = Cluster::yes(2);
    let t = c.transfer(P1, P2, 6);
    c.hops(3); // prepared, decided, Commits in flight
    for id in [CLIENT, COORDINATOR, P1, P2] {
        c.compact(id);
        c.reboot(id);
    }
    c.settle();
    assert_eq!((c.balance(P1), c.balance(P2)), (-6, 6));
    c.assert_atomic(t);
    c.assert_conserved();
}

#[test]
fn protocol_errors_are_typed() {
    let txn = TxnId {
        client: CLIENT,
        seq: 0,
    };
    let mut coordinator = Coordinator::new(COORDINATOR, [P1, P2]);
    let vote = Msg::Vote {
        txn,
        vote: Vote::Yes,
    };
    assert_eq!(
        coordinator.handle_message(Time::ZERO, P3, vote),
        Err(Error::UnexpectedMessage {
            from: P3,
            kind: "vote"
        })
    );
    let begin = Msg::Begin {
        txn: Txn {
            id: txn,
            legs: transfer_legs((P1, 1), (P3, 1), 1),
        },
        low: 0,
    };
    assert!(matches!(
        coordinator.handle_message(Time::ZERO, CLIENT, begin),
        Err(Error::InvalidTxn { .. })
    ));
    let begin = Msg::Begin {
        txn: Txn {
            id: txn,
            legs: transfer_legs((P1, 1), (P2, 1), 1),
        },
        low: 0,
    };
    coordinator
        .handle_message(Time::ZERO, CLIENT, begin)
        .unwrap();
    let ack = Msg::Ack {
        txn,
        held: Some(Decision::Commit),
    };
    assert_eq!(
        coordinator.handle_message(Time::ZERO, P1, ack),
        Err(Error::AckBeforeDecision { txn, from: P1 })
    );

    let mut participant = Participant::new(P1, COORDINATOR, VotePolicy::Yes);
    let commit = Msg::Decision {
        txn,
        decision: Decision::Commit,
    };
    assert_eq!(
        participant.handle_message(Time::ZERO, COORDINATOR, commit.clone()),
        Err(Error::CommitNeverPrepared { txn })
    );
    assert!(matches!(
        participant.handle_message(Time::ZERO, P2, commit),
        Err(Error::UnexpectedMessage { .. })
    ));

    let mut client = Client::new(CLIENT, COORDINATOR);
    let outcome = Msg::Outcome {
        txn,
        decision: Decision::Commit,
    };
    assert_eq!(
        client.handle_message(Time::ZERO, COORDINATOR, outcome),
        Err(Error::OutcomeForUnknown { txn })
    );
}

#[test]
fn malformed_logs_are_typed_errors() {
    let txn = TxnId {
        client: CLIENT,
        seq: 0,
    };
    let posting = Posting {
        account: 1,
        delta: 5,
    };
    let committed = ParticipantRecord::Committed { txn, posting };
    assert!(matches!(
        Participant::recover(P1, COORDINATOR, VotePolicy::Yes, Time::ZERO, [committed]),
        Err(Error::CorruptLog { index: 0, .. })
    ));
    let prepared = ParticipantRecord::Prepared(PreparedTxn {
        txn,
        posting,
        participants: vec![P1, P2],
    });
    let twice = [
        prepared.clone(),
        ParticipantRecord::Committed { txn, posting },
        ParticipantRecord::Committed { txn, posting },
    ];
    assert!(matches!(
        Participant::recover(P1, COORDINATOR, VotePolicy::Yes, Time::ZERO, twice),
        Err(Error::CorruptLog { index: 2, .. })
    ));
    let late_snapshot = [
        prepared,
        ParticipantRecord::Snapshot(ParticipantSnapshot::default()),
    ];
    assert_eq!(
        Participant::recover(P1, COORDINATOR, VotePolicy::Yes, Time::ZERO, late_snapshot).err(),
        Some(Error::SnapshotNotFirst { index: 1 })
    );
    let decided = |decision| {
        CoordinatorRecord::Decided(DecidedTxn {
            txn,
            participants: vec![P1, P2],
            decision,
        })
    };
    assert!(matches!(
        Coordinator::recover(
            COORDINATOR,
            [P1, P2],
            Time::ZERO,
            [decided(Decision::Commit), decided(Decision::Abort)]
        ),
        Err(Error::CorruptLog { index: 1, .. })
    ));
    let role = Role::Client {
        coordinator: COORDINATOR,
    };
    assert_eq!(
        Node::recover(
            CLIENT,
            &role,
            Time::ZERO,
            vec![NodeRecord::Coordinator(decided(Decision::Commit))]
        )
        .err(),
        Some(Error::WrongRole { index: 0 })
    );
    let gap = ClientRecord::Submitted(Txn {
        id: TxnId {
            client: CLIENT,
            seq: 3,
        },
        legs: transfer_legs((P1, 1), (P2, 1), 1),
    });
    assert!(matches!(
        Client::recover(CLIENT, COORDINATOR, Time::ZERO, [gap]),
        Err(Error::CorruptLog { .. })
    ));
}

/// Coordinator logs a live coordinator could not have written, around the
/// `Started` record and the bounds, are typed errors; a log at the bounds
/// recovers, and every started transaction in it is aborted.
#[test]
fn coordinator_logs_it_could_not_have_written_are_typed_errors() {
    let txn = |client, seq| TxnId { client, seq };
    let started = |client, seq| {
        CoordinatorRecord::Started(StartedTxn {
            txn: txn(client, seq),
            participants: vec![P1, P2],
        })
    };
    let recover = |records: Vec<CoordinatorRecord>| {
        Coordinator::recover(COORDINATOR, [P1, P2], Time::ZERO, records)
    };
    let corrupt = |records, at| match recover(records) {
        Err(Error::CorruptLog { index, .. }) => assert_eq!(index, at),
        other => panic!("{other:?}"),
    };
    corrupt(vec![started(CLIENT, 0), started(CLIENT, 0)], 1);
    corrupt(
        vec![
            started(CLIENT, 0),
            CoordinatorRecord::Floor {
                client: CLIENT,
                floor: 1,
            },
        ],
        1,
    );
    corrupt(
        vec![
            started(CLIENT, 0),
            CoordinatorRecord::Decided(DecidedTxn {
                txn: txn(CLIENT, 0),
                participants: vec![P1, P2, P3],
                decision: Decision::Abort,
            }),
        ],
        1,
    );
    let below_floor = CoordinatorRecord::Snapshot(CoordinatorSnapshot {
        floors: [(CLIENT, 5)].into(),
        decided: Vec::new(),
        started: vec![StartedTxn {
            txn: txn(CLIENT, 4),
            participants: vec![P1, P2],
        }],
    });
    corrupt(vec![below_floor], 0);

    // At the bounds: every client a full window of started transactions.
    let clients = COORDINATOR_CLIENTS_MAX as NodeId;
    let full: Vec<CoordinatorRecord> = (1000..1000 + clients)
        .flat_map(|client| (0..CLIENT_PENDING_TXNS_MAX).map(move |seq| started(client, seq)))
        .collect();
    assert_eq!(full.len(), COORDINATOR_TXNS_MAX);
    let mut coordinator = recover(full.clone()).expect("a log at the bounds recovers");
    assert_eq!(coordinator.txn_count(), COORDINATOR_TXNS_MAX);
    let ready = coordinator.poll_ready().settle();
    assert_eq!(ready.records.len(), COORDINATOR_TXNS_MAX, "all aborted");
    assert!(ready.records.iter().all(|r| matches!(
        r,
        CoordinatorRecord::Decided(DecidedTxn {
            decision: Decision::Abort,
            ..
        })
    )));
    // One more transaction, or one more client, than a live coordinator holds.
    let mut over = full.clone();
    over.push(started(1000, CLIENT_PENDING_TXNS_MAX));
    assert_eq!(
        recover(over).err(),
        Some(Error::LogBeyondBound {
            index: COORDINATOR_TXNS_MAX,
            txn: txn(1000, CLIENT_PENDING_TXNS_MAX),
            bound: "COORDINATOR_TXNS_MAX",
        })
    );
    let mut over = full[..1].to_vec();
    over.extend((0..clients).map(|client| started(2000 + client, 0)));
    assert_eq!(
        recover(over).err(),
        Some(Error::LogBeyondBound {
            index: COORDINATOR_CLIENTS_MAX,
            txn: txn(2000 + clients - 1, 0),
            bound: "COORDINATOR_CLIENTS_MAX",
        })
    );
    let too_many_floors = CoordinatorRecord::Snapshot(CoordinatorSnapshot {
        floors: (0..=clients).map(|client| (client, 0)).collect(),
        ..Default::default()
    });
    assert!(matches!(
        recover(vec![too_many_floors]),
        Err(Error::LogBeyondBound {
            index: 0,
            bound: "COORDINATOR_CLIENTS_MAX",
            ..
        })
    ));
}

#[test]
fn the_client_window_is_bounded() {
    let mut client = Client::new(CLIENT, COORDINATOR);
    for _ in 0..CLIENT_PENDING_TXNS_MAX {
        client
            .submit(Time::ZERO, transfer_legs((P1, 1), (P2, 1), 1))
            .unwrap();
    }
    assert_eq!(
        client.submit(Time::ZERO, transfer_legs((P1, 1), (P2, 1), 1)),
        Err(SubmitError::WindowFull {
            low: 0,
            pending: CLIENT_PENDING_TXNS_MAX as usize
        })
    );
    assert!(matches!(
        client.submit(Time::ZERO, transfer_legs((P1, 1), (P1, 2), 1)),
        Err(SubmitError::Invalid(_))
    ));
}

#[test]
#[should_panic(expected = "time went backwards")]
fn time_going_backwards_is_caller_misuse() {
    let mut client = Client::new(CLIENT, COORDINATOR);
    client.handle_timeout(Time::from_millis(5));
    client.handle_timeout(Time::from_millis(4));
}

/// Random drops, duplicates, reordering, compactions and crashes (some losing the
/// Ready of an input not yet carried out); then every node restarts, the network
/// heals and every transaction must finish atomically with money conserved. Any
/// protocol error a node returns fails the test. `TPC_SEEDS=n` runs more seeds.
#[test]
fn random_faults_keep_atomicity_and_money() {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    if std::env::var("TPC_DEBUG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .without_time()
            .with_test_writer()
            .try_init();
    }
    let seeds: u64 = std::env::var("TPC_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let (mut committed, mut aborted) = (0, 0);
    /// Names the failing seed (rerun it with `TPC_DEBUG=1` for a trace).
    struct SeedOnPanic(u64);
    impl Drop for SeedOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!("seed={}", self.0);
            }
        }
    }
    for seed in 0..seeds {
        let _guard = SeedOnPanic(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = Cluster::new(&[
            (P1, VotePolicy::MinBalance(-60)),
            (P2, VotePolicy::Yes),
            (P3, VotePolicy::Yes),
        ]);
        let ids = [CLIENT, COORDINATOR, P1, P2, P3];
        let ps = [P1, P2, P3];
        let mut txns = Vec::new();
        for _ in 0..400 {
            match rng.random_range(0..100) {
                0..=9 if c.slots[&CLIENT].node.is_some() => {
                    let (a, b) = (ps[rng.random_range(0..3)], ps[rng.random_range(0..3)]);
                    let client = c.node(CLIENT).as_client_mut().unwrap();
                    if a != b && (client.pending().len() as u64) < CLIENT_PENDING_TXNS_MAX {
                        txns.push(c.transfer(a, b, rng.random_range(1..30)));
                    }
                }
                10..=14 => {
                    // Crash a node, sometimes in the middle of an input.
                    let id = ids[rng.random_range(0..ids.len())];
                    if c.slots[&id].node.is_some() {
                        if let Some(i) = c.net.iter().position(|p| p.to == id) {
                            let p = c.net.remove(i).unwrap();
                            c.feed(p);
                        }
                        c.crash(id);
                    }
                }
                15..=24 => {
                    for id in ids {
                        if c.slots[&id].node.is_none() {
                            c.restart(id);
                        }
                    }
                }
                25..=29 if !c.net.is_empty() => {
                    let i = rng.random_range(0..c.net.len());
                    c.net.remove(i);
                }
                30..=34 if !c.net.is_empty() => {
                    let i = rng.random_range(0..c.net.len());
                    let p = c.net[i].clone();
                    c.net.push_back(p);
                }
                35..=44 if !c.net.is_empty() => {
                    let i = rng.random_range(0..c.net.len());
                    let p = c.net.remove(i).unwrap();
                    c.deliver(p);
                }
                45..=54 => {
                    let t = c.now + std::time::Duration::from_millis(rng.random_range(1..300));
                    c.now = t;
                    c.fire_timers();
                }
                55..=57 => {
                    let id = ids[rng.random_range(0..ids.len())];
                    if c.slots[&id].node.is_some() {
                        c.compact(id);
                    }
                }
                _ => {
                    c.step();
                }
            }
        }
        for id in ids {
            if c.slots[&id].node.is_none() {
                c.restart(id);
            }
        }
        c.settle();
        for t in &txns {
            c.assert_atomic(*t);
            match c.outcome(*t) {
                Some(Decision::Commit) => committed += 1,
                _ => aborted += 1,
            }
        }
        c.assert_conserved();
        assert!(c.client().pending().is_empty(), "seed={seed}");
    }
    // Both outcomes happen, so the faults neither block nor trivialise the run.
    assert!(
        committed > 0 && aborted > 0,
        "committed={committed} aborted={aborted}"
    );
}

impl Cluster {
    /// Runs everything except deliveries to `down` (a crashed node), without
    /// waiting for its timers: used while a node is down.
    fn settle_until_quiet_except(&mut self, down: NodeId) {
        assert!(self.slots[&down].node.is_none());
        let until = self.now + QUERY_INTERVAL_MAX;
        self.run_until(until);
    }
}

#[test]
fn every_step_is_traced_from_the_documented_set() {
    let steps: Vec<(String, String)> = crate::trace_capture::capture(TRACE_TARGET, || {
        let mut c = Cluster::yes(2);
        c.transfer(P1, P2, 1);
        c.settle();
        c.reboot(COORDINATOR);
        c.settle();
    })
    .into_iter()
    .map(|mut e| {
        (
            e.remove("role").unwrap_or_default(),
            e.remove("step").unwrap_or_default(),
        )
    })
    .collect();
    for (role, step) in &steps {
        assert!(
            ["client", "coordinator", "participant"].contains(&role.as_str()),
            "role {role}"
        );
        assert!(
            step::ALL.contains(&step.as_str()),
            "step {step} is not in step::ALL"
        );
    }
    let seen = |role: &str, s: &str| steps.iter().any(|(r, st)| r == role && st == s);
    for (role, s) in [
        ("client", step::BEGIN),
        ("coordinator", step::PREPARE),
        ("participant", step::VOTE),
        ("coordinator", step::VOTE),
        ("coordinator", step::DECIDE),
        ("participant", step::COMMIT),
        ("coordinator", step::ACK),
        ("client", step::OUTCOME),
        ("coordinator", step::RECOVER),
    ] {
        assert!(seen(role, s), "no {role} {s} event");
    }
}

/// More transactions than [`COORDINATOR_TXNS_MAX`], each acknowledged by every
/// participant, and no compaction: the live cores hold one transaction each, and
/// so must the cores recovered from their (uncompacted) logs.
#[test]
fn recovery_from_a_long_uncompacted_log_rebuilds_the_bounded_state() {
    let mut c = Cluster::yes(2);
    let n = COORDINATOR_TXNS_MAX as u64 + 104;
    for _ in 0..n {
        c.transfer(P1, P2, 1);
        c.settle();
    }
    let floor = c.coordinator().floor(CLIENT);
    let held = c.coordinator().txn_count();
    assert_eq!((held, floor), (1, n - 1), "live coordinator");
    let live: Vec<(usize, u64)> = [P1, P2]
        .iter()
        .map(|p| {
            (
                c.participant(*p).txn_count(),
                c.participant(*p).floor(CLIENT),
            )
        })
        .collect();
    for id in [COORDINATOR, P1, P2] {
        c.reboot(id);
    }
    assert_eq!(
        (c.coordinator().txn_count(), c.coordinator().floor(CLIENT)),
        (held, floor),
        "recovered coordinator"
    );
    for (p, live) in [P1, P2].iter().zip(live) {
        let part = c.participant(*p);
        assert_eq!(
            (part.txn_count(), part.floor(CLIENT)),
            live,
            "recovered {p}"
        );
    }
    c.settle();
    assert_eq!((c.balance(P1), c.balance(P2)), (-(n as i64), n as i64));
    c.assert_conserved();
}

/// A peer-chosen amount of `i64::MAX`, prepared and committed twice, used to
/// overflow the bank and panic the participant. It is now refused at Prepare with
/// a typed error, before anything is staged.
#[test]
fn an_unbounded_posting_is_refused_with_a_typed_error_not_a_panic() {
    let mut participant = Participant::new(P1, COORDINATOR, VotePolicy::Yes);
    for seq in 0..2 {
        let txn = TxnId {
            client: CLIENT,
            seq,
        };
        let prepare = Msg::Prepare {
            txn,
            posting: Posting {
                account: 1,
                delta: i64::MAX,
            },
            participants: vec![P1, P2],
            floor: 0,
        };
        let prepared = participant.handle_message(Time::ZERO, COORDINATOR, prepare);
        assert!(
            matches!(prepared, Err(Error::InvalidTxn { .. })),
            "{prepared:?}"
        );
        let _ = participant.poll_ready();
        let commit = Msg::Decision {
            txn,
            decision: Decision::Commit,
        };
        assert_eq!(
            participant.handle_message(Time::ZERO, COORDINATOR, commit),
            Err(Error::CommitNeverPrepared { txn })
        );
    }
    assert_eq!(participant.bank().balance(1), 0);
}

/// Money is conserved by construction: the postings of a transaction must sum to
/// zero, at the client and again at the coordinator; `transfer_legs` of
/// `i64::MIN` does not overflow either.
#[test]
fn transactions_that_create_money_are_rejected_at_client_and_coordinator() {
    let credit = |participant, delta| Leg {
        participant,
        posting: Posting { account: 1, delta },
    };
    let mut client = Client::new(CLIENT, COORDINATOR);
    for legs in [
        vec![credit(P1, 5), credit(P2, 5)],
        vec![credit(P1, i64::MAX), credit(P2, 1)],
        vec![credit(P1, i64::MAX), credit(P2, -i64::MAX)],
        transfer_legs((P1, 1), (P2, 1), i64::MIN),
    ] {
        assert!(
            matches!(
                client.submit(Time::ZERO, legs.clone()),
                Err(SubmitError::Invalid(_))
            ),
            "client accepted {legs:?}"
        );
        let mut coordinator = Coordinator::new(COORDINATOR, [P1, P2]);
        let txn = TxnId {
            client: CLIENT,
            seq: 0,
        };
        let begin = Msg::Begin {
            txn: Txn { id: txn, legs },
            low: 0,
        };
        let answer = coordinator.handle_message(Time::ZERO, CLIENT, begin);
        assert!(
            matches!(answer, Err(Error::InvalidTxn { .. })),
            "coordinator: {answer:?}"
        );
        assert!(coordinator.poll_ready().is_empty());
    }
    assert_eq!(client.next_seq(), 0, "nothing was recorded");
}

/// A participant votes no on a posting that could take a balance beyond
/// `BALANCE_MAX` once every staged posting commits, whatever its policy: so a
/// Commit can never overflow the bank.
#[test]
fn a_participant_votes_no_when_staged_postings_could_cross_the_balance_bound() {
    use crate::bank::{Bank, BALANCE_MAX};
    let balances: BTreeMap<u32, i64> = [(1, BALANCE_MAX - POSTING_DELTA_MAX)].into();
    let bank: Bank = postcard::from_bytes(&postcard::to_allocvec(&balances).unwrap()).unwrap();
    let snapshot = ParticipantRecord::Snapshot(ParticipantSnapshot {
        bank,
        ..Default::default()
    });
    let mut p =
        Participant::recover(P1, COORDINATOR, VotePolicy::Yes, Time::ZERO, [snapshot]).unwrap();
    let mut vote = |seq, delta| {
        let txn = TxnId {
            client: CLIENT,
            seq,
        };
        let prepare = Msg::Prepare {
            txn,
            posting: Posting { account: 1, delta },
            participants: vec![P1, P2],
            floor: 0,
        };
        p.handle_message(Time::ZERO, COORDINATOR, prepare).unwrap();
        let ready = p.poll_ready().settle();
        match &ready.messages[..] {
            [Envelope {
                msg: Msg::Vote { vote, .. },
                ..
            }] => *vote,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(vote(0, POSTING_DELTA_MAX / 2), Vote::Yes);
    assert_eq!(
        vote(1, POSTING_DELTA_MAX),
        Vote::No,
        "counting the staged credit"
    );
    assert_eq!(
        vote(2, POSTING_DELTA_MAX / 2),
        Vote::Yes,
        "exactly at the bound"
    );
    assert_eq!(vote(3, -POSTING_DELTA_MAX), Vote::Yes, "debits are fine");
    for seq in [0, 2] {
        let txn = TxnId {
            client: CLIENT,
            seq,
        };
        let commit = Msg::Decision {
            txn,
            decision: Decision::Commit,
        };
        p.handle_message(Time::ZERO, COORDINATOR, commit).unwrap();
    }
    assert_eq!(p.bank().balance(1), BALANCE_MAX);
}

/// Every client may leave its last window of transactions as tombstones and go
/// idle (nothing reports a higher `low`). The coordinator's table holds all of
/// them and still serves a new transaction: idle clients cannot fill it.
#[test]
fn idle_clients_cannot_fill_the_coordinator() {
    let mut coordinator = Coordinator::new(COORDINATOR, [P1, P2]);
    let now = Time::ZERO;
    let run = |coordinator: &mut Coordinator, client: NodeId, seq: u64, low: u64| {
        let txn = TxnId { client, seq };
        let begin = Msg::Begin {
            txn: Txn {
                id: txn,
                legs: transfer_legs((P1, 1), (P2, 1), 1),
            },
            low,
        };
        coordinator.handle_message(now, client, begin).unwrap();
        let prepares = coordinator
            .poll_ready()
            .settle()
            .messages
            .iter()
            .filter(|e| matches!(e.msg, Msg::Prepare { .. }))
            .count();
        assert_eq!(prepares, 2, "{txn} was not served");
        for p in [P1, P2] {
            let vote = Msg::Vote {
                txn,
                vote: Vote::Yes,
            };
            coordinator.handle_message(now, p, vote).unwrap();
        }
        for p in [P1, P2] {
            let ack = Msg::Ack {
                txn,
                held: Some(Decision::Commit),
            };
            coordinator.handle_message(now, p, ack).unwrap();
        }
        let _ = coordinator.poll_ready();
    };
    let clients = COORDINATOR_CLIENTS_MAX as NodeId;
    for client in 1000..1000 + clients {
        for seq in 0..CLIENT_PENDING_TXNS_MAX {
            run(&mut coordinator, client, seq, 0);
        }
    }
    assert_eq!(
        coordinator.txn_count(),
        COORDINATOR_CLIENTS_MAX * CLIENT_PENDING_TXNS_MAX as usize
    );
    // One client comes back: its new `low` lets the floor pass its tombstones.
    let (client, seq) = (1000, CLIENT_PENDING_TXNS_MAX);
    run(&mut coordinator, client, seq, seq);
    assert_eq!(coordinator.floor(client), seq);
    assert_eq!(coordinator.txn_count(), COORDINATOR_TXNS_MAX - 63);
}

/// Finding 6: a coordinator at its bound dropped a Begin with only a trace event,
/// and the client retried forever without the application learning why. Now it
/// answers `Busy`, and the client reports it as a typed event and backs off.
#[test]
fn a_coordinator_at_its_bound_answers_busy_and_the_client_backs_off() {
    // A coordinator tracking COORDINATOR_CLIENTS_MAX clients.
    let full: Vec<CoordinatorRecord> = (1000..1000 + COORDINATOR_CLIENTS_MAX as NodeId)
        .map(|client| {
            CoordinatorRecord::Started(StartedTxn {
                txn: TxnId { client, seq: 0 },
                participants: vec![P1, P2],
            })
        })
        .collect();
    let mut coordinator =
        Coordinator::recover(COORDINATOR, [P1, P2], Time::ZERO, full).expect("recovers");
    let _ = coordinator.poll_ready().settle();
    let mut client = Client::new(CLIENT, COORDINATOR);
    let id = client
        .submit(Time::ZERO, transfer_legs((P1, 1), (P2, 1), 5))
        .unwrap();
    let begin = client.poll_ready().settle().messages.remove(0).msg;
    coordinator
        .handle_message(Time::ZERO, CLIENT, begin)
        .unwrap();
    let busy = coordinator.poll_ready().settle();
    assert!(busy.records.is_empty(), "nothing started, nothing recorded");
    let [Envelope { to: CLIENT, msg }] = &busy.messages[..] else {
        panic!("expected one answer to the client: {:?}", busy.messages);
    };
    assert_eq!(
        *msg,
        Msg::Busy {
            txn: id,
            reason: Busy::Clients
        }
    );
    let retry_before = client.poll_timeout().unwrap();
    let now = Time::from_millis(10);
    client
        .handle_message(now, COORDINATOR, msg.clone())
        .unwrap();
    let settled = client.poll_ready().settle();
    assert_eq!(
        settled.events,
        [Event::Busy {
            txn: id,
            reason: Busy::Clients,
            retry_in: CLIENT_RETRY_INTERVAL_MIN * 2,
        }]
    );
    let retry_after = client.poll_timeout().unwrap();
    assert!(
        retry_after > retry_before,
        "{retry_after} <= {retry_before}"
    );
    assert_eq!(retry_after, now + CLIENT_RETRY_INTERVAL_MIN * 2);
}

/// Finding 8c: a participant's vote scanned every held transaction to sum what
/// was staged on the account, so a burst of n prepares cost O(n²). Votes now look
/// up a per-account index kept in step with the held transactions: the work per
/// vote is constant (counted, not timed), and the index always equals a scan.
#[test]
fn a_vote_costs_constant_work_however_many_transactions_are_held() {
    let mut p = Participant::new(P1, COORDINATOR, VotePolicy::MinBalance(-1_000_000));
    let clients = 64;
    let per_client = CLIENT_PENDING_TXNS_MAX;
    let accounts = 8;
    let mut n = 0u64;
    for client in 0..clients {
        for seq in 0..per_client {
            let txn = TxnId { client, seq };
            let delta = if n % 2 == 0 { 5 } else { -3 };
            let prepare = Msg::Prepare {
                txn,
                posting: Posting {
                    account: (n % accounts) as u32,
                    delta,
                },
                participants: vec![P1, P2],
                floor: 0,
            };
            p.handle_message(Time::ZERO, COORDINATOR, prepare).unwrap();
            n += 1;
        }
    }
    let _ = p.poll_ready().settle();
    assert_eq!(p.txn_count() as u64, n, "every prepare is held");
    // fits() and the MinBalance policy look up the index once each.
    assert!(
        p.vote_work() <= 2 * n,
        "{} index lookups for {n} votes",
        p.vote_work()
    );
    // Decide some, forget others below a floor: the index follows the scan.
    for client in 0..clients {
        for seq in (0..per_client).step_by(3) {
            let decision = if seq % 2 == 0 {
                Decision::Commit
            } else {
                Decision::Abort
            };
            let txn = TxnId { client, seq };
            let msg = Msg::Decision { txn, decision };
            p.handle_message(Time::ZERO, COORDINATOR, msg).unwrap();
        }
    }
    // A duplicate Prepare raising client 0's floor: what is below is forgotten.
    let reprepare = Msg::Prepare {
        txn: TxnId { client: 0, seq: 40 },
        posting: Posting {
            account: 0,
            delta: 5,
        },
        participants: vec![P1, P2],
        floor: 20,
    };
    p.handle_message(Time::ZERO, COORDINATOR, reprepare)
        .unwrap();
    let _ = p.poll_ready().settle();
    for account in 0..accounts as u32 {
        assert_eq!(
            p.staged_by_index(account),
            p.staged_by_scan(account),
            "account {account}"
        );
    }
}
