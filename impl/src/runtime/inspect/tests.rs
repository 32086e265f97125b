//! Each property of the checker, on hand-written logs: a clean run passes, and a
//! log with one planted fault fails with exactly that property named.

use super::*;
use crate::ack_retry::DedupSnapshot;
use crate::bank::Bank;
use crate::two_phase_commit::ClientSnapshot;
use crate::two_phase_commit::DecidedTxn;
use crate::two_phase_commit::PreparedTxn;

const RECEIVER: NodeId = 0;
const SENDER: NodeId = 1;

fn transfer(sender: NodeId, item: u64) -> Transfer {
    Transfer {
        from: sender,
        to: 100 + (item % 7) as u32,
        amount: (item * 10 + u64::from(sender)) as i64,
    }
}

fn workload(sender: NodeId, item: u64) -> Option<Transfer> {
    Some(transfer(sender, item))
}

fn submitted(inc: Incarnation, items: std::ops::RangeInclusive<u64>) -> Vec<SenderRecord> {
    let mut r = vec![SenderRecord::Incarnation { incarnation: inc }];
    r.extend(items.map(|seq| SenderRecord::Submitted {
        seq,
        transfer: transfer(SENDER, seq),
    }));
    r
}

fn applied(inc: Incarnation, seq: Seq) -> ReceiverRecord {
    ReceiverRecord::Applied {
        from: SENDER,
        incarnation: inc,
        seq,
        transfer: transfer(SENDER, seq),
    }
}

fn life(records: Vec<SenderRecord>, lost: bool) -> SenderLife {
    SenderLife {
        sender: SENDER,
        records,
        lost,
    }
}

fn check(rx: &[ReceiverRecord], lives: &[SenderLife], n: u64) -> Verdict {
    let messages = BTreeMap::from([(SENDER, n)]);
    check_ack_retry(RECEIVER, rx, lives, &messages, &workload)
}

/// One violated property, and only it.
fn only(verdict: &Verdict, property: &str) {
    assert!(verdict.has(property), "{property} not found: {verdict:?}");
    let others: Vec<_> = verdict
        .violations
        .iter()
        .filter(|v| v.property() != property && v.property() != "bank")
        .collect();
    assert!(others.is_empty(), "other violations: {others:?}");
}

fn clean_sender() -> Vec<SenderRecord> {
    let mut s = submitted(1, 1..=5);
    s.push(SenderRecord::Acked { hwm: 5, seq: 5 });
    s
}

fn clean_receiver() -> Vec<ReceiverRecord> {
    (1..=5).map(|seq| applied(1, seq)).collect()
}

#[test]
fn a_clean_ack_retry_run_passes_exactly() {
    let v = check(&clean_receiver(), &[life(clean_sender(), false)], 5);
    assert!(v.ok(), "{v:?}");
    assert!(v.bank_exact);
    assert_eq!((v.checked, v.unknown), (5, 0));
}

#[test]
fn a_message_applied_twice_is_named() {
    let mut rx = clean_receiver();
    rx.push(applied(1, 3));
    let v = check(&rx, &[life(clean_sender(), false)], 5);
    only(&v, "applied-twice");
    assert!(v.has("bank"), "the balances show it too");
}

#[test]
fn an_acknowledged_message_missing_is_lost() {
    let mut rx = clean_receiver();
    rx.remove(2);
    let v = check(&rx, &[life(clean_sender(), false)], 5);
    only(&v, "lost");
}

#[test]
fn a_message_nobody_submitted_is_named() {
    let mut rx = clean_receiver();
    rx.push(applied(1, 9));
    only(
        &check(&rx, &[life(clean_sender(), false)], 5),
        "never-submitted",
    );
    let mut rx = clean_receiver();
    rx[0] = ReceiverRecord::Applied {
        from: SENDER,
        incarnation: 1,
        seq: 1,
        transfer: transfer(SENDER, 2),
    };
    only(
        &check(&rx, &[life(clean_sender(), false)], 5),
        "never-submitted",
    );
}

/// A lost disk: life 1 (incarnation 1) had seqs 1..=3 acknowledged and 4
/// unacknowledged when its disk was lost; life 2 (incarnation 2) ran the workload.
fn wiped() -> (Vec<SenderLife>, Vec<ReceiverRecord>) {
    let mut old = submitted(1, 1..=4);
    old.push(SenderRecord::Acked { hwm: 3, seq: 3 });
    let mut new = submitted(2, 1..=5);
    new.push(SenderRecord::Acked { hwm: 5, seq: 5 });
    let mut rx: Vec<_> = (1..=3).map(|s| applied(1, s)).collect();
    rx.extend((1..=5).map(|s| applied(2, s)));
    (vec![life(old, true), life(new, false)], rx)
}

#[test]
fn a_lost_disk_with_its_unacknowledged_message_not_applied_passes() {
    let (lives, rx) = wiped();
    let v = check(&rx, &lives, 5);
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.unknown, 1);
}

#[test]
fn a_fenced_zombie_applied_after_the_new_incarnation_is_named() {
    let (lives, mut rx) = wiped();
    rx.push(applied(1, 4));
    only(&check(&rx, &lives, 5), "zombie-applied");
}

#[test]
fn a_compacted_receiver_is_still_checked_by_its_balances() {
    // Snapshot after seqs 1..=3, then 4 and 5: clean.
    let mut bank = Bank::new();
    for seq in 1..=3 {
        bank.apply_transfer(&transfer(SENDER, seq)).unwrap();
    }
    let snapshot = |bank: Bank| ReceiverRecord::Snapshot {
        bank,
        last_granted: 1,
        senders: vec![DedupSnapshot {
            sender: SENDER,
            floor: 1,
            granted: 1,
            nonce: 1,
            incarnation: 1,
            hwm: 3,
            above: vec![],
        }],
    };
    let rx = vec![snapshot(bank.clone()), applied(1, 4), applied(1, 5)];
    let v = check(&rx, &[life(clean_sender(), false)], 5);
    assert!(v.ok(), "{v:?}");
    // Seq 2 applied twice before the snapshot: only the balances show it.
    bank.apply_transfer(&transfer(SENDER, 2)).unwrap();
    let rx = vec![snapshot(bank), applied(1, 4), applied(1, 5)];
    only(&check(&rx, &[life(clean_sender(), false)], 5), "bank");
    // Seq 3 applied again after the snapshot covered it.
    let rx = vec![snapshot(Bank::new()), applied(1, 3)];
    assert!(check(&rx, &[life(clean_sender(), false)], 5).has("applied-twice"));
}

#[test]
fn an_unfinished_workload_is_incomplete() {
    let mut s = submitted(1, 1..=5);
    s.push(SenderRecord::Acked { hwm: 4, seq: 4 });
    let rx: Vec<_> = (1..=4).map(|seq| applied(1, seq)).collect();
    only(&check(&rx, &[life(s, false)], 5), "incomplete");
    only(
        &check(&clean_receiver(), &[life(clean_sender(), false)], 6),
        "incomplete",
    );
}

// --- two-phase commit -------------------------------------------------------

const CLIENT: NodeId = 7;
const P1: NodeId = 1;
const P2: NodeId = 2;

fn txn(seq: u64) -> Txn {
    let amount = 5 + seq as i64;
    Txn {
        id: TxnId {
            client: CLIENT,
            seq,
        },
        legs: vec![
            Leg {
                participant: P1,
                posting: Posting {
                    account: 1,
                    delta: -amount,
                },
            },
            Leg {
                participant: P2,
                posting: Posting {
                    account: 2,
                    delta: amount,
                },
            },
        ],
    }
}

fn id(seq: u64) -> TxnId {
    txn(seq).id
}

fn posting(seq: u64, p: NodeId) -> Posting {
    txn(seq)
        .legs
        .into_iter()
        .find(|l| l.participant == p)
        .unwrap()
        .posting
}

fn decision(seq: u64) -> Decision {
    if seq == 2 {
        Decision::Abort
    } else {
        Decision::Commit
    }
}

const TXNS: u64 = 4;

struct Run2pc {
    coordinator: Vec<CoordinatorRecord>,
    participants: Vec<(NodeId, Vec<ParticipantRecord>)>,
    clients: Vec<(NodeId, Vec<ClientRecord>)>,
}

/// Transactions 0..4, all committed but 2.
fn clean_2pc() -> Run2pc {
    let coordinator = (0..TXNS)
        .map(|seq| {
            CoordinatorRecord::Decided(DecidedTxn {
                txn: id(seq),
                participants: vec![P1, P2],
                decision: decision(seq),
            })
        })
        .collect();
    let participant = |p: NodeId| {
        let mut r = Vec::new();
        for seq in 0..TXNS {
            r.push(ParticipantRecord::Prepared(PreparedTxn {
                txn: id(seq),
                posting: posting(seq, p),
                participants: vec![P1, P2],
            }));
            r.push(match decision(seq) {
                Decision::Commit => ParticipantRecord::Committed {
                    txn: id(seq),
                    posting: posting(seq, p),
                },
                Decision::Abort => ParticipantRecord::Aborted { txn: id(seq) },
            });
        }
        (p, r)
    };
    let mut client = Vec::new();
    for seq in 0..TXNS {
        client.push(ClientRecord::Submitted(txn(seq)));
        client.push(ClientRecord::Learned {
            txn: id(seq),
            decision: decision(seq),
        });
    }
    Run2pc {
        coordinator,
        participants: vec![participant(P1), participant(P2)],
        clients: vec![(CLIENT, client)],
    }
}

fn check_2pc(run: &Run2pc) -> Verdict {
    let n = BTreeMap::from([(CLIENT, TXNS)]);
    check_two_phase_commit(
        &run.coordinator,
        &run.participants,
        &run.clients,
        &n,
        &|_, seq| Some(txn(seq)),
    )
}

#[test]
fn a_clean_two_phase_commit_run_passes_exactly() {
    let v = check_2pc(&clean_2pc());
    assert!(v.ok(), "{v:?}");
    assert!(v.bank_exact);
    assert_eq!(v.checked, TXNS);
}

#[test]
fn committed_here_aborted_there_breaks_atomicity() {
    let mut run = clean_2pc();
    // P2 aborts transaction 1 instead of committing it.
    let records = &mut run.participants[1].1;
    let at = records
        .iter()
        .position(|r| matches!(r, ParticipantRecord::Committed { txn, .. } if *txn == id(1)))
        .unwrap();
    records[at] = ParticipantRecord::Aborted { txn: id(1) };
    let v = check_2pc(&run);
    assert!(v.has("atomicity"), "{v:?}");
    assert!(v.has("money-conserved"));
}

#[test]
fn a_committed_transaction_without_trace_at_a_participant_breaks_atomicity() {
    let mut run = clean_2pc();
    run.participants[1]
        .1
        .retain(|r| !matches!(r, ParticipantRecord::Prepared(t) if t.txn == id(3)));
    run.participants[1]
        .1
        .retain(|r| !matches!(r, ParticipantRecord::Committed { txn, .. } if *txn == id(3)));
    assert!(check_2pc(&run).has("atomicity"));
}

#[test]
fn a_prepared_participant_with_a_commit_decision_is_in_doubt_not_wrong() {
    let mut run = clean_2pc();
    run.participants[1]
        .1
        .retain(|r| !matches!(r, ParticipantRecord::Committed { txn, .. } if *txn == id(3)));
    let v = check_2pc(&run);
    assert!(v.ok(), "{v:?}");
}

#[test]
fn a_transaction_committed_twice_at_a_participant_is_named() {
    let mut run = clean_2pc();
    run.participants[0].1.push(ParticipantRecord::Committed {
        txn: id(0),
        posting: posting(0, P1),
    });
    let v = check_2pc(&run);
    assert!(v.has("applied-twice"), "{v:?}");
    assert!(v.has("money-conserved"));
}

#[test]
fn logs_that_disagree_on_a_decision_are_named() {
    let mut run = clean_2pc();
    run.clients[0].1.push(ClientRecord::Learned {
        txn: id(2),
        decision: Decision::Commit,
    });
    assert!(check_2pc(&run).has("decision-conflict"));
}

#[test]
fn a_tampered_participant_bank_is_named() {
    let mut run = clean_2pc();
    let mut bank = Bank::new();
    bank.post(&Posting {
        account: 9,
        delta: 1,
    })
    .unwrap();
    let snapshot = crate::two_phase_commit::ParticipantSnapshot {
        bank,
        ..Default::default()
    };
    run.participants[0]
        .1
        .insert(0, ParticipantRecord::Snapshot(snapshot));
    let v = check_2pc(&run);
    assert!(v.has("bank"), "{v:?}");
    assert!(v.has("money-conserved"));
}

#[test]
fn a_client_that_did_not_learn_everything_is_incomplete() {
    let mut run = clean_2pc();
    run.clients[0].1.pop();
    assert!(check_2pc(&run).has("incomplete"));
    // A client snapshot that says everything below 4 is learned is complete.
    let mut run = clean_2pc();
    run.clients[0].1 = vec![ClientRecord::Snapshot(ClientSnapshot {
        next_seq: TXNS,
        pending: vec![],
    })];
    let v = check_2pc(&run);
    assert!(!v.has("incomplete"), "{v:?}");
    assert!(!v.bank_exact || v.ok());
}
