//! Scripts over a sender/receiver pair on virtual time.
//!
//! [`Pair`] is the smallest faithful driver: after every input it persists the
//! core's records to an in-memory log and only then queues its messages on a
//! link. Tests move messages by hand (deliver, drop, duplicate, reorder) and
//! "crash" a node by rebuilding it from its log.

use super::*;
use crate::bank::Transfer;
use crate::core::Envelope;
use crate::core::{Core, Time};
use crate::release::{Log, MemLog};
use std::collections::VecDeque;
use std::time::Duration;

const SENDER: NodeId = 1;
const RECEIVER: NodeId = 2;

struct Pair {
    now: Time,
    sender: Sender,
    receiver: Receiver,
    sender_log: MemLog<SenderRecord>,
    receiver_log: MemLog<ReceiverRecord>,
    to_receiver: VecDeque<Msg>,
    to_sender: VecDeque<Msg>,
    /// Ghost history: every application event and every delivery event released.
    applied: Vec<Seq>,
    delivered: Vec<Seq>,
    /// Sender processes started: each gets nonces of its own.
    boots: u64,
}

fn transfer(amount: i64) -> Transfer {
    Transfer {
        from: 10,
        to: 20,
        amount,
    }
}

impl Pair {
    /// A pair whose sender already holds incarnation 1: the handshake is done
    /// and its records are in both logs.
    fn new() -> Pair {
        let mut p = Pair::fresh();
        p.flush_sender();
        p.deliver_to_receiver();
        p.deliver_to_sender();
        assert_eq!(p.sender.incarnation(), Some(1));
        p
    }

    /// A pair before the handshake: the sender has not asked yet.
    fn fresh() -> Pair {
        Pair {
            now: Time::ZERO,
            sender: Sender::new(SENDER, RECEIVER, Time::ZERO, 0),
            receiver: Receiver::new(RECEIVER),
            sender_log: MemLog::new(),
            receiver_log: MemLog::new(),
            to_receiver: VecDeque::new(),
            to_sender: VecDeque::new(),
            applied: Vec::new(),
            delivered: Vec::new(),
            boots: 0,
        }
    }

    /// Persist, then send: the order every driver must keep, as the types of
    /// [`crate::release`] allow it (append, sync, open with the proof).
    fn flush_sender(&mut self) {
        let Ok(release) = self.sender.poll_ready().persist(&mut self.sender_log);
        let proof = self.sender_log.sync();
        let ready = release.open(proof).expect("the sync covers the release");
        for env in ready.messages {
            assert_eq!(env.to, RECEIVER);
            self.to_receiver.push_back(env.msg);
        }
        for event in ready.events {
            if let SenderEvent::Delivered { seq, .. } = event {
                self.delivered.push(seq);
            }
        }
    }

    fn flush_receiver(&mut self) {
        let Ok(release) = self.receiver.poll_ready().persist(&mut self.receiver_log);
        let proof = self.receiver_log.sync();
        let ready = release.open(proof).expect("the sync covers the release");
        for env in ready.messages {
            assert_eq!(env.to, SENDER);
            self.to_sender.push_back(env.msg);
        }
        for ReceiverEvent::Applied { seq, .. } in ready.events {
            self.applied.push(seq);
        }
    }

    fn submit(&mut self, amount: i64) -> Seq {
        let seq = self
            .sender
            .submit(self.now, transfer(amount))
            .expect("window has room");
        self.flush_sender();
        seq
    }

    /// Delivers the oldest message in flight to the receiver.
    fn deliver_to_receiver(&mut self) {
        let msg = self
            .to_receiver
            .pop_front()
            .expect("a message in flight to the receiver");
        self.receiver
            .handle_message(self.now, SENDER, msg)
            .expect("valid data");
        self.flush_receiver();
    }

    fn deliver_to_sender(&mut self) {
        let msg = self
            .to_sender
            .pop_front()
            .expect("an ack in flight to the sender");
        self.sender
            .handle_message(self.now, RECEIVER, msg)
            .expect("valid ack");
        self.flush_sender();
    }

    /// Delivers everything in flight, both ways, until the links are empty.
    fn deliver_all(&mut self) {
        while !self.to_receiver.is_empty() || !self.to_sender.is_empty() {
            while !self.to_receiver.is_empty() {
                self.deliver_to_receiver();
            }
            while !self.to_sender.is_empty() {
                self.deliver_to_sender();
            }
        }
    }

    /// Moves virtual time forward and fires the sender's timer if it is due.
    fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        if self.sender.poll_timeout().is_some_and(|t| t <= self.now) {
            self.sender.handle_timeout(self.now);
            self.flush_sender();
        }
    }

    fn crash_sender(&mut self) {
        self.boots += 1;
        let records = self.sender_log.records().to_vec();
        self.sender = Sender::recover(SENDER, RECEIVER, self.now, self.boots << 32, records)
            .expect("sender log recovers");
        self.flush_sender();
    }

    fn crash_receiver(&mut self) {
        self.receiver = Receiver::recover(RECEIVER, self.now, self.receiver_log.records().to_vec())
            .expect("receiver log recovers");
        self.flush_receiver();
    }

    /// How many `Applied` records the receiver's log holds.
    fn applied_records(&self) -> usize {
        let records = self.receiver_log.records();
        records
            .iter()
            .filter(|r| matches!(r, ReceiverRecord::Applied { .. }))
            .count()
    }

    fn balance(&self) -> i64 {
        self.receiver.bank().balance(20)
    }
}

#[test]
fn a_message_is_applied_and_acknowledged() {
    let mut p = Pair::new();
    let seq = p.submit(5);
    assert_eq!(seq, 1);
    assert_eq!(
        &p.sender_log.records()[1..],
        [SenderRecord::Submitted {
            seq: 1,
            transfer: transfer(5)
        }]
    );
    p.deliver_to_receiver();
    assert_eq!(
        &p.receiver_log.records()[1..],
        [ReceiverRecord::Applied {
            incarnation: 1,
            from: SENDER,
            seq: 1,
            transfer: transfer(5)
        }]
    );
    assert_eq!(
        p.to_sender,
        [Msg::Ack {
            incarnation: 1,
            hwm: 1,
            seq: 1
        }]
    );
    p.deliver_to_sender();
    assert_eq!(p.delivered, [1]);
    assert_eq!(p.sender.in_flight(), 0);
    assert_eq!(p.sender.poll_timeout(), None, "nothing left to retransmit");
    assert_eq!(p.balance(), 5);
}

#[test]
fn duplicates_are_acknowledged_but_not_applied() {
    let mut p = Pair::new();
    p.submit(7);
    let copy = p.to_receiver[0];
    p.to_receiver.push_back(copy);
    p.to_receiver.push_back(copy);
    p.deliver_to_receiver();
    p.deliver_to_receiver();
    p.deliver_to_receiver();
    assert_eq!(p.applied, [1]);
    assert_eq!(p.applied_records(), 1, "a duplicate writes no record");
    assert_eq!(p.to_sender.len(), 3, "every copy is acknowledged");
    assert_eq!(p.receiver.stats().duplicates, 2);
    p.deliver_all();
    assert_eq!(p.delivered, [1]);
    assert_eq!(p.balance(), 7);
}

/// The benchmark-only at-least-once baseline (feature `bench-baseline`) is off
/// unless set, and when set it is exactly the bug dedup prevents: a duplicate is
/// applied again.
#[cfg(feature = "bench-baseline")]
#[test]
fn the_at_least_once_baseline_is_off_by_default_and_applies_duplicates_when_set() {
    use crate::runtime::node::{NodeConfig, RoleConfig};
    let config = NodeConfig::new(2, RoleConfig::Receiver, "unused".into());
    assert!(!config.at_least_once, "off unless a benchmark sets it");

    let mut p = Pair::new();
    p.receiver.set_at_least_once(true);
    p.submit(7);
    let copy = p.to_receiver[0];
    p.to_receiver.push_back(copy);
    p.deliver_to_receiver();
    p.deliver_to_receiver();
    assert_eq!(p.applied, [1, 1], "the duplicate is applied again");
    assert_eq!(p.receiver.stats().duplicates, 0);
    assert_eq!(p.balance(), 14);
}

#[test]
fn reordering_within_the_window_applies_each_once_and_advances_the_hwm() {
    let mut p = Pair::new();
    for amount in 1..=5 {
        p.submit(amount);
    }
    p.to_receiver.make_contiguous().reverse();
    p.deliver_to_receiver(); // seq 5 first
    assert_eq!(p.receiver.hwm(SENDER), 0);
    assert_eq!(
        p.to_sender.back(),
        Some(&Msg::Ack {
            incarnation: 1,
            hwm: 0,
            seq: 5
        })
    );
    p.deliver_to_receiver(); // 4
    p.deliver_to_receiver(); // 3
    p.deliver_to_receiver(); // 2
    assert_eq!(p.receiver.dedup_size(), (1, 4));
    p.deliver_to_receiver(); // 1 fills the gap
    assert_eq!(p.receiver.hwm(SENDER), 5);
    assert_eq!(p.receiver.dedup_size(), (1, 0));
    assert_eq!(p.applied, [5, 4, 3, 2, 1]);
    assert_eq!(p.balance(), 15);
}

#[test]
fn a_cumulative_ack_clears_everything_at_or_below_the_hwm() {
    let mut p = Pair::new();
    for amount in 1..=4 {
        p.submit(amount);
    }
    p.deliver_all_to_receiver_dropping_acks_but_last();
    assert_eq!(
        p.to_sender,
        [Msg::Ack {
            incarnation: 1,
            hwm: 4,
            seq: 4
        }]
    );
    p.deliver_to_sender();
    assert_eq!(p.delivered, [1, 2, 3, 4]);
    assert_eq!(
        p.sender_log.records().last(),
        Some(&SenderRecord::Acked { hwm: 4, seq: 4 })
    );
    assert_eq!(p.sender.in_flight(), 0);
}

impl Pair {
    fn deliver_all_to_receiver_dropping_acks_but_last(&mut self) {
        while !self.to_receiver.is_empty() {
            self.deliver_to_receiver();
        }
        let last = self.to_sender.pop_back().expect("an ack");
        self.to_sender.clear();
        self.to_sender.push_back(last);
    }
}

#[test]
fn an_exact_ack_above_a_gap_removes_only_that_message() {
    let mut p = Pair::new();
    p.submit(1);
    p.submit(2);
    p.to_receiver.pop_front(); // seq 1 is lost
    p.deliver_to_receiver();
    assert_eq!(
        p.to_sender,
        [Msg::Ack {
            incarnation: 1,
            hwm: 0,
            seq: 2
        }]
    );
    p.deliver_to_sender();
    assert_eq!(p.delivered, [2]);
    assert!(p.sender.is_outstanding(1) && !p.sender.is_outstanding(2));
    // Seq 1 is retransmitted when its backoff expires, then everything converges.
    p.advance(RETRY_INTERVAL_MIN);
    assert_eq!(
        p.to_receiver,
        [Msg::Data {
            incarnation: 1,
            seq: 1,
            transfer: transfer(1)
        }]
    );
    p.deliver_all();
    assert_eq!(p.delivered, [2, 1]);
    assert_eq!(p.balance(), 3);
}

#[test]
fn retransmission_backs_off_exponentially_up_to_the_cap() {
    let mut p = Pair::new();
    p.submit(1);
    p.to_receiver.clear(); // the first copy is lost; so is every retransmission
    let mut gaps = Vec::new();
    let mut last = p.now;
    while gaps.len() < 8 {
        let deadline = p
            .sender
            .poll_timeout()
            .expect("a retransmission is pending");
        p.advance(deadline.saturating_since(p.now));
        assert_eq!(p.to_receiver.len(), 1, "one retransmission per expiry");
        p.to_receiver.clear();
        gaps.push(p.now.saturating_since(last).as_millis() as u64);
        last = p.now;
    }
    assert_eq!(gaps, [50, 100, 200, 400, 800, 800, 800, 800]);
    assert_eq!(p.sender.stats().retransmitted, 8);
    assert_eq!(p.sender.retry_interval(1), Some(RETRY_INTERVAL_MAX));
    // An early timeout is harmless.
    p.sender.handle_timeout(p.now);
    assert!(p.sender.poll_ready().is_empty());
}

#[test]
fn the_window_applies_backpressure_and_reopens_on_ack() {
    let mut p = Pair::new();
    for _ in 0..WINDOW_MAX {
        p.submit(1);
    }
    let full = p.sender.submit(p.now, transfer(1));
    assert_eq!(
        full,
        Err(SenderError::WindowFull {
            in_flight: WINDOW_MAX as usize,
            oldest: 1
        })
    );
    assert!(
        p.sender.poll_ready().is_empty(),
        "a refused submission leaves no trace"
    );
    // Acknowledging seq 2 alone does not move the window's base (seq 1)...
    p.to_receiver.pop_front();
    p.deliver_to_receiver();
    p.deliver_to_sender();
    assert!(matches!(
        p.sender.submit(p.now, transfer(1)),
        Err(SenderError::WindowFull { .. })
    ));
    // ...acknowledging seq 1 does.
    p.advance(RETRY_INTERVAL_MIN);
    p.deliver_all();
    assert_eq!(p.submit(1), WINDOW_MAX + 1);
}

#[test]
fn receiver_crash_between_persisting_and_acking_redelivery_is_acked_not_applied() {
    let mut p = Pair::new();
    p.submit(9);
    p.deliver_to_receiver();
    // The Applied record is durable but the ack never left: the receiver crashes.
    p.to_sender.clear();
    p.crash_receiver();
    assert!(p.receiver.applied(SENDER, 1, 1) == Some(true));
    // The sender's retransmission is a redelivery: acknowledged, not applied.
    p.advance(RETRY_INTERVAL_MIN);
    p.deliver_to_receiver();
    assert_eq!(
        p.to_sender,
        [Msg::Ack {
            incarnation: 1,
            hwm: 1,
            seq: 1
        }]
    );
    assert_eq!(p.applied_records(), 1);
    p.deliver_all();
    assert_eq!(p.applied, [1]);
    assert_eq!(p.delivered, [1]);
    assert_eq!(p.balance(), 9);
}

#[test]
fn receiver_crash_before_persisting_forgets_and_reapplies_once() {
    let mut p = Pair::new();
    p.submit(4);
    let msg = p.to_receiver.pop_front().unwrap();
    p.receiver.handle_message(p.now, SENDER, msg).unwrap();
    // Crash before the driver polled: the record never reached the log, and no ack left.
    p.crash_receiver();
    assert!(p.receiver.applied(SENDER, 1, 1) != Some(true));
    p.advance(RETRY_INTERVAL_MIN);
    p.deliver_all();
    assert_eq!(p.balance(), 4, "applied once in the durable history");
    assert_eq!(p.applied_records(), 1);
}

#[test]
fn sender_crash_recovers_the_outbox_and_resends() {
    let mut p = Pair::new();
    p.submit(1);
    p.submit(2);
    p.submit(3);
    p.deliver_to_receiver(); // seq 1 applied
    p.deliver_to_sender(); // and acked
    p.to_receiver.clear(); // 2 and 3 are lost in flight
    p.crash_sender();
    assert_eq!(p.sender.next_seq(), 4, "seqs are never reused");
    assert_eq!(
        p.to_receiver.len(),
        2,
        "the recovered outbox is re-sent at once"
    );
    p.deliver_all();
    assert_eq!(p.applied, [1, 2, 3]);
    assert_eq!(p.balance(), 6);
    assert_eq!(p.submit(4), 4);
}

#[test]
fn sender_crash_after_an_unpersisted_ack_resends_and_the_receiver_dedups() {
    let mut p = Pair::new();
    p.submit(1);
    p.deliver_to_receiver();
    let ack = p.to_sender.pop_front().unwrap();
    p.sender.handle_message(p.now, RECEIVER, ack).unwrap();
    // The Acked record was never persisted.
    p.crash_sender();
    assert!(p.sender.is_outstanding(1));
    p.deliver_all();
    assert_eq!(p.applied, [1]);
    assert_eq!(p.receiver.stats().duplicates, 1);
    assert_eq!(p.balance(), 1);
}

#[test]
fn snapshots_compact_the_log_without_changing_the_state() {
    let mut p = Pair::new();
    for amount in 1..=10 {
        p.submit(amount);
    }
    p.to_receiver.swap(0, 9);
    for _ in 0..6 {
        p.deliver_to_receiver();
    }
    p.deliver_all_to_receiver_dropping_acks_but_last();
    p.sender_log.compact(p.sender.snapshot());
    p.receiver_log.compact(p.receiver.snapshot());
    p.crash_sender();
    p.crash_receiver();
    assert_eq!(p.receiver.bank().balance(20), 55);
    p.advance(RETRY_INTERVAL_MIN);
    p.deliver_all();
    assert_eq!(p.sender.in_flight(), 0);
    assert_eq!(p.balance(), 55);
    assert_eq!(p.submit(1), 11);
}

#[test]
fn dedup_state_stays_bounded_over_a_long_lossy_run() {
    let mut p = Pair::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64; // xorshift: reproducible, no dependency
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let total = 20_000u64;
    let mut submitted = 0u64;
    let mut max_above = 0;
    while submitted < total || p.sender.in_flight() > 0 {
        while submitted < total && p.sender.submit(p.now, transfer(1)).is_ok() {
            p.flush_sender();
            submitted += 1;
        }
        // Shuffle, lose a quarter, duplicate some.
        let mut batch: Vec<Msg> = p.to_receiver.drain(..).collect();
        for i in (1..batch.len()).rev() {
            batch.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        for msg in batch {
            match next() % 8 {
                0 | 1 => {}
                2 => p.to_receiver.extend([msg, msg]),
                _ => p.to_receiver.push_back(msg),
            }
        }
        while !p.to_receiver.is_empty() {
            p.deliver_to_receiver();
            max_above = max_above.max(p.receiver.dedup_size().1);
        }
        p.to_sender.retain(|_| next() % 4 != 0);
        while !p.to_sender.is_empty() {
            p.deliver_to_sender();
        }
        p.advance(RETRY_INTERVAL_MAX);
    }
    assert_eq!(p.receiver.hwm(SENDER), total);
    assert_eq!(p.balance(), total as i64);
    assert_eq!(p.applied.len() as u64, total);
    assert!(max_above > 0, "the run did reorder");
    assert!(max_above <= DEDUP_ABOVE_MAX);
    assert_eq!(p.receiver.dedup_size(), (1, 0));
}

/// A receiver that granted incarnations 1, 2, … to `senders`, in order.
fn receiver_granting(senders: &[NodeId]) -> Receiver {
    let mut r = Receiver::new(RECEIVER);
    for &sender in senders {
        r.handle_message(Time::ZERO, sender, Msg::NewIncarnation { nonce: 1 })
            .unwrap();
    }
    let _ = r.poll_ready().settle();
    r
}

#[test]
fn a_seq_beyond_the_window_is_rejected_not_applied_not_acked() {
    let mut r = receiver_granting(&[SENDER]);
    let far = Msg::Data {
        incarnation: 1,
        seq: WINDOW_MAX + 1,
        transfer: transfer(1),
    };
    let err = r.handle_message(Time::ZERO, SENDER, far).unwrap_err();
    assert_eq!(
        err,
        ReceiverError::SeqBeyondWindow {
            from: SENDER,
            seq: WINDOW_MAX + 1,
            hwm: 0
        }
    );
    assert!(r.poll_ready().is_empty());
    assert_eq!(r.dedup_size(), (1, 0), "a rejected message changes nothing");
    let edge = Msg::Data {
        incarnation: 1,
        seq: WINDOW_MAX,
        transfer: transfer(1),
    };
    r.handle_message(Time::ZERO, SENDER, edge).unwrap();
    assert_eq!(r.poll_ready().records().len(), 1);
}

#[test]
fn the_number_of_senders_is_bounded() {
    let senders: Vec<NodeId> = (100..100 + SENDERS_MAX as NodeId).collect();
    let mut r = receiver_granting(&senders);
    let err = r
        .handle_message(Time::ZERO, 999, Msg::NewIncarnation { nonce: 1 })
        .unwrap_err();
    assert_eq!(err, ReceiverError::TooManySenders { from: 999 });
    assert!(r.poll_ready().is_empty(), "refused: no grant, no record");
    // A known sender is still served.
    let data = Msg::Data {
        incarnation: 1,
        seq: 1,
        transfer: transfer(1),
    };
    r.handle_message(Time::ZERO, 100, data).unwrap();
    assert_eq!(r.poll_ready().settle().records.len(), 1);
}

#[test]
fn peers_that_misbehave_get_typed_errors() {
    let mut s = Sender::new(SENDER, RECEIVER, Time::ZERO, 0);
    let grant = Msg::Granted {
        nonce: 1,
        incarnation: 1,
    };
    s.handle_message(Time::ZERO, RECEIVER, grant).unwrap();
    assert_eq!(
        s.handle_message(
            Time::ZERO,
            RECEIVER,
            Msg::Ack {
                incarnation: 1,
                hwm: 0,
                seq: 1
            }
        ),
        Err(SenderError::AckBeyondSent {
            hwm: 0,
            seq: 1,
            highest: 0
        })
    );
    assert_eq!(
        s.handle_message(
            Time::ZERO,
            77,
            Msg::Ack {
                incarnation: 1,
                hwm: 0,
                seq: 1
            }
        ),
        Err(SenderError::UnexpectedPeer {
            from: 77,
            expected: RECEIVER
        })
    );
    assert_eq!(
        s.submit(Time::ZERO, transfer(-1)),
        Err(SenderError::AmountOutOfRange(-1))
    );
    let mut r = receiver_granting(&[SENDER]);
    assert_eq!(
        r.handle_message(
            Time::ZERO,
            SENDER,
            Msg::Data {
                incarnation: 1,
                seq: 0,
                transfer: transfer(1)
            }
        ),
        Err(ReceiverError::SeqZero { from: SENDER })
    );
    assert_eq!(
        r.handle_message(
            Time::ZERO,
            SENDER,
            Msg::Ack {
                incarnation: 1,
                hwm: 1,
                seq: 1
            }
        ),
        Err(ReceiverError::UnexpectedAck { from: SENDER })
    );
}

#[test]
fn recovery_rejects_logs_the_core_could_not_have_written() {
    let t = transfer(1);
    let gap = [
        SenderRecord::Incarnation { incarnation: 1 },
        SenderRecord::Submitted {
            seq: 1,
            transfer: t,
        },
        SenderRecord::Submitted {
            seq: 3,
            transfer: t,
        },
    ];
    assert_eq!(
        Sender::recover(SENDER, RECEIVER, Time::ZERO, 0, gap).unwrap_err(),
        RecoverError::SeqNotConsecutive {
            index: 2,
            seq: 3,
            expected: 2
        }
    );
    let late = [
        SenderRecord::Incarnation { incarnation: 1 },
        SenderRecord::Submitted {
            seq: 1,
            transfer: t,
        },
        SenderRecord::Snapshot {
            incarnation: Some(1),
            next_seq: 2,
            outbox: vec![],
        },
    ];
    assert_eq!(
        Sender::recover(SENDER, RECEIVER, Time::ZERO, 0, late).unwrap_err(),
        RecoverError::SnapshotNotFirst { index: 2 }
    );
    let grant = ReceiverRecord::Granted {
        sender: SENDER,
        incarnation: 1,
        nonce: 1,
    };
    let twice = [
        grant.clone(),
        ReceiverRecord::Applied {
            incarnation: 1,
            from: SENDER,
            seq: 1,
            transfer: t,
        },
        ReceiverRecord::Applied {
            incarnation: 1,
            from: SENDER,
            seq: 1,
            transfer: t,
        },
    ];
    assert_eq!(
        Receiver::recover(RECEIVER, Time::ZERO, twice).unwrap_err(),
        RecoverError::AppliedTwice {
            index: 2,
            from: SENDER,
            seq: 1
        }
    );
    let far = [
        grant,
        ReceiverRecord::Applied {
            incarnation: 1,
            from: SENDER,
            seq: WINDOW_MAX + 1,
            transfer: t,
        },
    ];
    assert!(matches!(
        Receiver::recover(RECEIVER, Time::ZERO, far),
        Err(RecoverError::OutOfBounds { .. })
    ));
}

#[test]
#[should_panic(expected = "time went backwards")]
fn time_going_backwards_is_caller_misuse() {
    let mut s = Sender::new(SENDER, RECEIVER, Time::ZERO, 0);
    s.handle_timeout(Time::from_millis(10));
    s.handle_timeout(Time::from_millis(9));
}

#[test]
fn every_step_emits_one_systematic_trace_event() {
    let events = crate::trace_capture::capture(TRACE_TARGET, || {
        let mut p = Pair::new();
        p.submit(1);
        p.submit(2);
        let copy = p.to_receiver[0];
        p.to_receiver.push_back(copy);
        p.deliver_to_receiver(); // apply 1
        p.to_receiver.pop_front(); // lose 2
        p.deliver_to_receiver(); // duplicate 1
        p.deliver_all(); // acked (twice)
        p.advance(RETRY_INTERVAL_MIN); // retransmit 2
        p.deliver_all();
        p.sender_log.compact(p.sender.snapshot());
        p.crash_sender();
        let _ = p.receiver.handle_message(
            p.now,
            SENDER,
            Msg::Data {
                incarnation: 1,
                seq: 0,
                transfer: transfer(1),
            },
        );
    });
    let steps: Vec<&str> = events.iter().map(|e| e["step"].as_str()).collect();
    assert_eq!(
        steps,
        [
            "request",
            "grant",
            "start",
            "submit",
            "submit",
            "apply",
            "duplicate",
            "acked",
            "acked",
            "retransmit",
            "apply",
            "acked",
            "snapshot",
            "recover",
            "reject"
        ]
    );
    for event in &events {
        assert!(step::ALL.contains(&event["step"].as_str()), "{event:?}");
        for field in ["node", "role", "step", "persisted", "sent"] {
            assert!(event.contains_key(field), "{field} missing in {event:?}");
        }
    }
    let apply = events.iter().find(|e| e["step"] == "apply").unwrap();
    assert_eq!(
        (
            apply["seq"].as_str(),
            apply["persisted"].as_str(),
            apply["sent"].as_str()
        ),
        ("1", "applied", "ack")
    );
}

/// A bank read back from a log with a balance near `i64::MAX` used to be accepted,
/// and the next transfer to it panicked on overflow. Balances are bounded by
/// `BALANCE_MAX`: such a snapshot is a typed recovery error, and a transfer that
/// would cross the bound is rejected (not applied, not acknowledged) with a typed
/// error instead of panicking.
#[test]
fn a_transfer_beyond_the_balance_bound_is_rejected_not_a_panic() {
    use crate::bank::Bank;
    use std::collections::BTreeMap;
    let bank_with = |balance: i64| -> Bank {
        let balances: BTreeMap<u32, i64> = [(20, balance)].into();
        postcard::from_bytes(&postcard::to_allocvec(&balances).unwrap()).unwrap()
    };
    let snapshot = |balance| ReceiverRecord::Snapshot {
        last_granted: 1,
        bank: bank_with(balance),
        senders: vec![DedupSnapshot {
            sender: SENDER,
            floor: 1,
            nonce: 1,
            granted: 1,
            incarnation: 0,
            hwm: 0,
            above: Vec::new(),
        }],
    };
    let data = Msg::Data {
        incarnation: 1,
        seq: 1,
        transfer: transfer(10),
    };
    match Receiver::recover(RECEIVER, Time::ZERO, [snapshot(i64::MAX - 5)]) {
        Err(e) => assert!(matches!(e, RecoverError::OutOfBounds { .. }), "{e:?}"),
        Ok(mut r) => {
            // Before the fix: recovery accepted it and this panicked.
            let _ = r.handle_message(Time::ZERO, SENDER, data);
            panic!("recovered a bank beyond the balance bound");
        }
    }
    let near = crate::bank::BALANCE_MAX - 5;
    let mut r = Receiver::recover(RECEIVER, Time::ZERO, [snapshot(near)]).unwrap();
    assert!(matches!(
        r.handle_message(Time::ZERO, SENDER, data),
        Err(ReceiverError::BalanceOutOfRange {
            from: SENDER,
            seq: 1
        })
    ));
    assert!(r.poll_ready().is_empty(), "not applied, not acknowledged");
    assert_eq!(r.bank().balance(20), near);
    assert!(r.applied(SENDER, 1, 1) != Some(true));
}

impl Pair {
    /// The sender's disk is gone: a new process with an empty log.
    fn lose_sender_disk(&mut self) {
        self.boots += 1;
        self.sender_log.wipe();
        self.sender = Sender::new(SENDER, RECEIVER, self.now, self.boots << 32);
        self.flush_sender();
    }

    /// Runs the incarnation handshake of a sender that just asked for one.
    fn handshake(&mut self) -> Incarnation {
        self.deliver_all();
        self.sender.incarnation().expect("granted")
    }
}

/// Finding 2: a sender that lost its disk used to restart at seq 1 under the same
/// identity, and the receiver acknowledged its new messages as duplicates without
/// applying them. Now it asks for a new incarnation first, and its messages are
/// applied.
#[test]
fn a_sender_that_loses_its_disk_starts_a_new_incarnation_and_nothing_is_lost() {
    let mut p = Pair::new();
    p.submit(1);
    p.submit(2);
    p.deliver_all();
    assert_eq!(p.balance(), 3);
    p.lose_sender_disk();
    assert_eq!(
        p.sender.submit(p.now, transfer(4)),
        Err(SenderError::NoIncarnation),
        "no data before the grant"
    );
    assert_eq!(p.handshake(), 2);
    assert_eq!(p.submit(4), 1, "seqs restart under the new incarnation");
    p.deliver_all();
    assert_eq!(p.balance(), 7, "applied, not mistaken for the old seq 1");
    assert_eq!(p.receiver.applied(SENDER, 2, 1), Some(true));
    assert_eq!(p.receiver.applied(SENDER, 1, 1), None, "old life fenced");
}

/// What the fix prevents, shown by restoring the old identity onto the new disk
/// (the planted `RestoreIdentity` bug): the new seq 1 is acknowledged as a
/// duplicate of the old seq 1 and never applied.
#[test]
fn restoring_the_old_identity_after_a_disk_loss_loses_the_message() {
    let mut p = Pair::new();
    p.submit(1);
    p.deliver_all();
    p.sender_log.wipe();
    let Ok(_) = p
        .sender_log
        .append(&SenderRecord::Incarnation { incarnation: 1 });
    let _ = p.sender_log.sync();
    p.crash_sender();
    assert_eq!(p.submit(4), 1);
    p.deliver_all();
    assert_eq!(p.delivered.last(), Some(&1), "reported delivered");
    assert_eq!(p.balance(), 1, "but never applied: lost");
}

/// A duplicated grant meant for an earlier life does not reach a later one: the
/// nonce of the request tells them apart.
#[test]
fn a_stale_grant_for_an_earlier_life_is_ignored() {
    let mut p = Pair::fresh();
    p.flush_sender();
    p.deliver_to_receiver(); // grant 1 for the first life's request
    let stale = p.to_sender[0];
    p.deliver_to_sender();
    p.lose_sender_disk();
    p.sender.handle_message(p.now, RECEIVER, stale).unwrap();
    assert_eq!(p.sender.incarnation(), None, "the old grant is not adopted");
    assert_eq!(p.handshake(), 2);
}

/// Data of an older incarnation that arrives after the newer one sent data is
/// fenced: answered `Expired`, not applied.
#[test]
fn an_older_incarnation_is_fenced_once_the_newer_one_sent_data() {
    let mut p = Pair::new();
    p.submit(5);
    let old_copy = p.to_receiver[0];
    p.deliver_all();
    p.lose_sender_disk();
    p.handshake();
    p.submit(6);
    p.deliver_all();
    p.receiver.handle_message(p.now, SENDER, old_copy).unwrap();
    p.flush_receiver();
    assert_eq!(p.to_sender, [Msg::Expired { incarnation: 1 }]);
    assert_eq!(p.receiver.stats().expired, 1);
    p.deliver_all(); // the new life ignores an expiry that is not its own
    assert_eq!(p.sender.incarnation(), Some(2));
    assert_eq!(p.balance(), 11);
}

/// Finding 3: the receiver refused a 17th sender forever. Now senders idle beyond
/// the retention are retired and a new sender is served.
#[test]
fn a_new_sender_is_served_once_idle_senders_are_retired() {
    let retention = Duration::from_secs(60);
    let mut r = Receiver::with_retention(RECEIVER, retention);
    for sender in 100..100 + SENDERS_MAX as NodeId {
        let request = Msg::NewIncarnation { nonce: 1 };
        r.handle_message(Time::ZERO, sender, request).unwrap();
    }
    let _ = r.poll_ready().settle();
    let request = Msg::NewIncarnation { nonce: 1 };
    let later = Time::ZERO + retention;
    assert_eq!(
        r.handle_message(later, 999, request),
        Err(ReceiverError::TooManySenders { from: 999 }),
        "not idle beyond the retention yet"
    );
    let much_later = later + Duration::from_millis(1);
    r.handle_message(much_later, 999, request).unwrap();
    let settled = r.poll_ready().settle();
    let retired = settled
        .records
        .iter()
        .filter(|r| matches!(r, ReceiverRecord::Retired { .. }))
        .count();
    assert_eq!(retired, SENDERS_MAX);
    assert!(matches!(
        settled.messages[..],
        [Envelope {
            to: 999,
            msg: Msg::Granted { .. }
        }]
    ));
    assert_eq!(r.dedup_size(), (1, 0));
}

/// The hazard of retiring too early: a sender idle beyond the retention that then
/// retransmits an old message is refused (`Expired`), not applied a second time;
/// its application learns that the outcome is unknown, and it carries on under a
/// new incarnation.
#[test]
fn a_sender_idle_beyond_the_retention_is_refused_not_applied_twice() {
    let retention = Duration::from_secs(60);
    let mut p = Pair::fresh();
    p.receiver = Receiver::with_retention(RECEIVER, retention);
    p.flush_sender();
    p.handshake();
    p.submit(8);
    p.deliver_to_receiver(); // applied; the ack is lost
    p.to_sender.clear();
    assert_eq!(p.balance(), 8);
    // Silence for longer than the retention (a partition), then the retransmission.
    p.now = p.now + retention + Duration::from_secs(1);
    p.sender.handle_timeout(p.now);
    p.flush_sender();
    p.deliver_to_receiver();
    assert_eq!(p.balance(), 8, "not applied a second time");
    assert_eq!(p.to_sender, [Msg::Expired { incarnation: 1 }]);
    p.deliver_to_sender();
    assert!(p
        .sender_log
        .records()
        .contains(&SenderRecord::Expired { incarnation: 1 }));
    assert_eq!(
        p.sender.incarnation(),
        None,
        "the old incarnation is given up"
    );
    assert_eq!(p.handshake(), 2);
    assert_eq!(p.submit(3), 1);
    p.deliver_all();
    assert_eq!(p.balance(), 11);
}

/// Finding 7, decided as at-least-once events with an id: recovery re-emits the
/// deliveries recorded since the last compaction, so a crash between the sync and
/// the release cannot lose one; an application deduplicating by
/// `(incarnation, seq)` sees each delivery exactly once.
#[test]
fn deliveries_are_reported_at_least_once_and_deduplicate_by_id() {
    let mut p = Pair::new();
    p.submit(1);
    p.submit(2);
    p.deliver_to_receiver();
    p.deliver_to_receiver();
    // The sender takes both acks; its Acked records become durable, but the
    // process dies before it hands the Delivered events to the application.
    for _ in 0..2 {
        let ack = p.to_sender.pop_front().unwrap();
        p.sender.handle_message(p.now, RECEIVER, ack).unwrap();
        let Ok(release) = p.sender.poll_ready().persist(&mut p.sender_log);
        let _ = p.sender_log.sync();
        drop(release); // crash after sync, before the release
    }
    assert!(p.delivered.is_empty());
    p.crash_sender();
    assert_eq!(p.delivered, [1, 2], "reported at recovery");
    p.crash_sender();
    assert_eq!(p.delivered, [1, 2, 1, 2], "again at the next recovery");
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<Seq> = p
        .delivered
        .iter()
        .copied()
        .filter(|&s| seen.insert((1, s)))
        .collect();
    assert_eq!(unique, [1, 2], "once each by (incarnation, seq)");
    // A snapshot ends the re-emission of what it covers.
    p.sender_log.compact(p.sender.snapshot());
    p.crash_sender();
    assert_eq!(p.delivered.len(), 4);
}

/// Review finding: a receiver snapshot with a valid checksum but a high-water mark
/// near `u64::MAX` made recovery compute `hwm + 1` and `hwm + WINDOW_MAX` (a panic
/// with overflow checks, a wrap without). A hwm beyond `SEQ_MAX` is now a typed
/// recovery error; at `SEQ_MAX` it recovers, and a seq beyond `SEQ_MAX` from the
/// peer is rejected with a typed error.
#[test]
fn a_snapshot_hwm_near_u64_max_is_a_recover_error_not_an_overflow() {
    let snapshot = |hwm: Seq| ReceiverRecord::Snapshot {
        last_granted: 1,
        bank: crate::bank::Bank::default(),
        senders: vec![DedupSnapshot {
            sender: SENDER,
            floor: 1,
            nonce: 1,
            granted: 1,
            incarnation: 1,
            hwm,
            above: Vec::new(),
        }],
    };
    for hwm in [u64::MAX, u64::MAX - 1, SEQ_MAX + 1] {
        let result = std::panic::catch_unwind(|| {
            Receiver::recover(RECEIVER, Time::ZERO, [snapshot(hwm)]).map(|_| ())
        });
        match result {
            Ok(Err(RecoverError::OutOfBounds { index: 0, what })) => {
                assert_eq!(what, "snapshot hwm beyond SEQ_MAX");
            }
            Ok(other) => panic!("hwm {hwm}: recovered as {other:?}"),
            Err(_) => panic!("hwm {hwm}: recovery panicked"),
        }
    }
    let mut r = Receiver::recover(RECEIVER, Time::ZERO, [snapshot(SEQ_MAX)]).unwrap();
    assert_eq!(r.hwm(SENDER), SEQ_MAX);
    let data = |seq| Msg::Data {
        incarnation: 1,
        seq,
        transfer: transfer(1),
    };
    for seq in [SEQ_MAX + 1, u64::MAX] {
        assert!(matches!(
            r.handle_message(Time::ZERO, SENDER, data(seq)),
            Err(ReceiverError::SeqBeyondWindow { .. })
        ));
    }
    assert_eq!(r.hwm(SENDER), SEQ_MAX, "nothing applied beyond SEQ_MAX");
}

/// A receiver whose log granted incarnation `u64::MAX` refuses a further request
/// with a typed error instead of computing `last_granted + 1`.
#[test]
fn a_receiver_that_granted_the_last_incarnation_refuses_more() {
    let snapshot = ReceiverRecord::Snapshot {
        last_granted: u64::MAX,
        bank: crate::bank::Bank::default(),
        senders: Vec::new(),
    };
    let mut r = Receiver::recover(RECEIVER, Time::ZERO, [snapshot]).unwrap();
    let request = Msg::NewIncarnation { nonce: 7 };
    let result = std::panic::catch_unwind(move || {
        let outcome = r.handle_message(Time::ZERO, SENDER, request);
        (outcome, r.poll_ready().is_empty())
    });
    let (outcome, nothing_out) = result.expect("no overflow panic");
    assert_eq!(
        outcome,
        Err(ReceiverError::IncarnationsExhausted {
            from: SENDER,
            last_granted: u64::MAX,
        })
    );
    assert!(nothing_out, "not granted, not answered");
}

/// A sender snapshot whose next seq is beyond `SEQ_MAX + 1` is a typed recovery
/// error; at `SEQ_MAX + 1` it recovers and `submit` refuses with a typed error
/// instead of computing `next_seq + 1` past the bound.
#[test]
fn a_sender_beyond_the_last_seq_is_a_typed_error_not_an_overflow() {
    let snapshot = |next_seq| SenderRecord::Snapshot {
        incarnation: Some(1),
        next_seq,
        outbox: Vec::new(),
    };
    for next_seq in [u64::MAX, SEQ_MAX + 2] {
        let result = Sender::recover(SENDER, RECEIVER, Time::ZERO, 0, [snapshot(next_seq)]);
        assert!(
            matches!(result, Err(RecoverError::OutOfBounds { index: 0, .. })),
            "next_seq {next_seq}: {result:?}"
        );
    }
    let records = [snapshot(SEQ_MAX + 1)];
    let mut s = Sender::recover(SENDER, RECEIVER, Time::ZERO, 0, records).unwrap();
    assert_eq!(
        s.submit(Time::ZERO, transfer(1)),
        Err(SenderError::SeqsExhausted {
            next_seq: SEQ_MAX + 1
        })
    );
    let records = [snapshot(SEQ_MAX)];
    let mut s = Sender::recover(SENDER, RECEIVER, Time::ZERO, 0, records).unwrap();
    assert_eq!(s.submit(Time::ZERO, transfer(1)), Ok(SEQ_MAX));
}

/// Regression (issue 12 §3): a sender retrying its handshake over a lossy link
/// made the receiver grant — and log — a fresh incarnation for every
/// retransmission of one request, so its durable state grew without bound. A
/// request whose nonce the sender's last grant answered gets that grant again,
/// with no record, also after the receiver restarts from its log.
#[test]
fn a_retransmitted_request_gets_the_same_grant_and_no_record() {
    const RETRANSMISSIONS: usize = 1_000;
    let request = Msg::NewIncarnation { nonce: 7 };
    let mut r = Receiver::new(RECEIVER);
    let mut log: Vec<ReceiverRecord> = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..RETRANSMISSIONS {
        r.handle_message(Time::ZERO, SENDER, request).unwrap();
        let settled = r.poll_ready().settle();
        log.extend(settled.records);
        answers.extend(settled.messages.iter().map(|e| e.msg));
    }
    assert_eq!(log.len(), 1, "one record for one request, not one per copy");
    assert_eq!(
        log,
        vec![ReceiverRecord::Granted {
            sender: SENDER,
            incarnation: 1,
            nonce: 7
        }],
        "one record for one request, however often it is retransmitted"
    );
    assert_eq!(answers.len(), RETRANSMISSIONS, "every copy is answered");
    let grant = Msg::Granted {
        nonce: 7,
        incarnation: 1,
    };
    assert!(answers.iter().all(|m| *m == grant), "{answers:?}");
    assert_eq!(r.last_granted(), 1);
    assert_eq!(r.stats().regranted, RETRANSMISSIONS as u64 - 1);

    // The grant survives a restart: its record carries the nonce.
    let mut r = Receiver::recover(RECEIVER, Time::ZERO, log.clone()).unwrap();
    r.handle_message(Time::ZERO, SENDER, request).unwrap();
    let settled = r.poll_ready().settle();
    assert!(settled.records.is_empty());
    assert_eq!(
        settled.messages.iter().map(|e| e.msg).collect::<Vec<_>>(),
        [grant]
    );

    // A new request (a new boot's nonce) is a new grant, and replaces the
    // remembered nonce: the older request, if it arrives late, is granted afresh.
    r.handle_message(Time::ZERO, SENDER, Msg::NewIncarnation { nonce: 8 })
        .unwrap();
    assert_eq!(r.poll_ready().records().len(), 1);
    r.handle_message(Time::ZERO, SENDER, request).unwrap();
    assert_eq!(
        r.poll_ready().records().len(),
        1,
        "a forgotten nonce is granted afresh"
    );
    assert_eq!(r.last_granted(), 3);
    // And the snapshot carries the remembered nonce across compaction.
    let snapshot = r.snapshot();
    let mut r = Receiver::recover(RECEIVER, Time::ZERO, [snapshot]).unwrap();
    r.handle_message(Time::ZERO, SENDER, request).unwrap();
    let settled = r.poll_ready().settle();
    assert!(settled.records.is_empty());
    assert_eq!(
        settled.messages.iter().map(|e| e.msg).collect::<Vec<_>>(),
        [Msg::Granted {
            nonce: 7,
            incarnation: 3
        }]
    );
}
