//! The ack-retry cores' contract where the model does not reach (issue 12 §4).
//!
//! The checker, the driver and the trace validator hold the cores to the model
//! inside its bounds: a standing clock, at most 4 messages, a window the
//! model's application never fills, well-formed logs. `cargo mutants` showed
//! what that leaves unchecked: the retransmission backoff, the window and seq
//! bounds, the receiver's retention and sender bound, the typed refusals of bad
//! input and of a log no core wrote, and the counters. Each test here kills
//! the surviving mutants named above it (see `conformance/mutants/results/`);
//! each asserts a behaviour the cores document, through their public API only.

use eo_impl::ack_retry::{
    DedupSnapshot, Msg, Receiver, ReceiverError, ReceiverEvent, ReceiverRecord, RecoverError,
    Sender, SenderError, SenderEvent, SenderRecord, AMOUNT_MAX, RETRY_INTERVAL_MAX,
    RETRY_INTERVAL_MIN, SENDERS_MAX, SEQ_MAX, WINDOW_MAX,
};
use eo_impl::bank::{Bank, Transfer, BALANCE_MAX};
use eo_impl::release::MemLog;
use eo_impl::{Core, Envelope, NodeId, Time};
use std::time::Duration;

const RECEIVER: NodeId = 0;
const SENDER: NodeId = 1;

/// What one `Ready` yields once carried out as the release contract says.
struct Out<R, M, E> {
    records: Vec<R>,
    messages: Vec<Envelope<M>>,
    events: Vec<E>,
}

fn poll<C: Core>(core: &mut C) -> Out<C::Record, C::Msg, C::Event> {
    let ready = core.poll_ready();
    let records = ready.records().to_vec();
    let mut log = MemLog::new();
    let release = match ready.persist(&mut log) {
        Ok(release) => release,
        Err(never) => match never {},
    };
    let released = release
        .open(log.sync())
        .unwrap_or_else(|r| panic!("{:?}", r.reason));
    Out {
        records,
        messages: released.messages,
        events: released.events,
    }
}

fn t(n: u64) -> Transfer {
    Transfer {
        from: 0,
        to: 1,
        amount: n as i64,
    }
}

fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

/// A sender that holds incarnation `inc`, its first outputs polled.
fn sender(inc: u64) -> Sender {
    let mut s = Sender::recover(
        SENDER,
        RECEIVER,
        Time::ZERO,
        7,
        [SenderRecord::Incarnation { incarnation: inc }],
    )
    .unwrap();
    let _ = poll(&mut s);
    s
}

fn data_seqs(out: &[Envelope<Msg>]) -> Vec<u64> {
    out.iter()
        .filter_map(|e| match e.msg {
            Msg::Data { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

// ---- Sender ----

/// Retransmission backoff: the first retransmission is due `RETRY_INTERVAL_MIN`
/// after the submission, not a microsecond earlier; each one doubles the
/// interval up to `RETRY_INTERVAL_MAX`; `poll_timeout` is the earliest deadline.
#[test]
fn retransmissions_back_off_from_the_minimum_to_the_maximum_interval() {
    let mut s = sender(3);
    s.submit(at(0), t(1)).unwrap();
    let _ = poll(&mut s);
    let mut now = Time::ZERO;
    let mut expected = RETRY_INTERVAL_MIN;
    let mut intervals = Vec::new();
    for _ in 0..6 {
        let due = s.poll_timeout().expect("a message waits for its ack");
        assert_eq!(due, now + expected, "the next retransmission's deadline");
        // Not due a microsecond before its deadline.
        s.handle_timeout(Time(due.0 - 1));
        assert!(poll(&mut s).messages.is_empty(), "retransmitted early");
        s.handle_timeout(due);
        assert_eq!(
            data_seqs(&poll(&mut s).messages),
            [1],
            "due at its deadline"
        );
        now = due;
        expected = (expected * 2).min(RETRY_INTERVAL_MAX);
        intervals.push(s.retry_interval(1).unwrap());
    }
    let ms: Vec<u128> = intervals.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [100, 200, 400, 800, 800, 800]);
    assert_eq!(s.stats().retransmitted, 6);
    assert_eq!(s.stats().submitted, 1);
}

/// The earliest of several deadlines, and a request for an incarnation is
/// retransmitted on its own backoff under the same nonce.
#[test]
fn the_timer_is_the_earliest_deadline_and_requests_are_retried() {
    let mut s = sender(3);
    s.submit(at(0), t(1)).unwrap();
    s.submit(at(30), t(2)).unwrap();
    let _ = poll(&mut s);
    assert_eq!(s.poll_timeout(), Some(at(50)));
    s.handle_timeout(at(50));
    assert_eq!(data_seqs(&poll(&mut s).messages), [1]);
    assert_eq!(s.poll_timeout(), Some(at(80)));

    let mut fresh = Sender::new(SENDER, RECEIVER, Time::ZERO, 41);
    let first = poll(&mut fresh).messages;
    assert_eq!(first[0].msg, Msg::NewIncarnation { nonce: 42 });
    assert_eq!(fresh.requesting(), Some(42));
    assert_eq!(fresh.poll_timeout(), Some(at(50)));
    fresh.handle_timeout(at(49));
    assert!(poll(&mut fresh).messages.is_empty());
    fresh.handle_timeout(at(50));
    let again = poll(&mut fresh).messages;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].msg, Msg::NewIncarnation { nonce: 42 });
    assert_eq!(again[0].to, RECEIVER);
    assert_eq!(fresh.stats().retransmitted, 1);
    assert_eq!(fresh.poll_timeout(), Some(at(150)));
}

/// The window holds `WINDOW_MAX` unacknowledged messages; the next submission is
/// refused with the oldest seq, and an ack of the oldest opens one slot.
#[test]
fn the_window_is_full_at_window_max_and_an_ack_opens_it() {
    let mut s = sender(3);
    for i in 1..=WINDOW_MAX {
        assert_eq!(s.submit(at(0), t(i)), Ok(i));
    }
    assert_eq!(
        s.submit(at(0), t(0)),
        Err(SenderError::WindowFull {
            in_flight: WINDOW_MAX as usize,
            oldest: 1
        })
    );
    assert_eq!(s.in_flight(), WINDOW_MAX as usize);
    let _ = poll(&mut s);
    // A selective ack of seq 2 does not move the window's base.
    s.handle_message(
        at(1),
        RECEIVER,
        Msg::Ack {
            incarnation: 3,
            hwm: 0,
            seq: 2,
        },
    )
    .unwrap();
    assert!(matches!(
        s.submit(at(1), t(0)),
        Err(SenderError::WindowFull { .. })
    ));
    s.handle_message(
        at(1),
        RECEIVER,
        Msg::Ack {
            incarnation: 3,
            hwm: 1,
            seq: 1,
        },
    )
    .unwrap();
    // Seqs 1 and 2 are acknowledged: the base is 3, two slots are open.
    assert_eq!(s.submit(at(1), t(0)), Ok(WINDOW_MAX + 1));
    assert_eq!(s.submit(at(1), t(0)), Ok(WINDOW_MAX + 2));
    assert_eq!(
        s.submit(at(1), t(0)),
        Err(SenderError::WindowFull {
            in_flight: WINDOW_MAX as usize,
            oldest: 3
        })
    );
}

/// Amounts are checked against `[0, AMOUNT_MAX]` at the sender and the receiver.
#[test]
fn amounts_outside_the_bound_are_refused_at_both_ends() {
    let mut s = sender(3);
    let over = Transfer {
        from: 0,
        to: 1,
        amount: AMOUNT_MAX + 1,
    };
    let under = Transfer {
        from: 0,
        to: 1,
        amount: -1,
    };
    let max = Transfer {
        from: 0,
        to: 1,
        amount: AMOUNT_MAX,
    };
    assert_eq!(
        s.submit(at(0), over),
        Err(SenderError::AmountOutOfRange(AMOUNT_MAX + 1))
    );
    assert_eq!(
        s.submit(at(0), under),
        Err(SenderError::AmountOutOfRange(-1))
    );
    assert_eq!(s.submit(at(0), max), Ok(1));

    let mut r = granted_receiver(3);
    let data = |seq, transfer| Msg::Data {
        incarnation: 3,
        seq,
        transfer,
    };
    assert_eq!(
        r.handle_message(at(0), SENDER, data(1, over)),
        Err(ReceiverError::AmountOutOfRange {
            from: SENDER,
            amount: AMOUNT_MAX + 1
        })
    );
    assert_eq!(
        r.handle_message(at(0), SENDER, data(1, under)),
        Err(ReceiverError::AmountOutOfRange {
            from: SENDER,
            amount: -1
        })
    );
    assert_eq!(r.handle_message(at(0), SENDER, data(1, max)), Ok(()));
    assert_eq!(r.stats().rejected, 2);
    assert_eq!(r.stats().applied, 1);
}

/// Without an incarnation a sender refuses submissions; a grant for another
/// nonce, a grant of incarnation 0 and a second grant are ignored; the grant for
/// its nonce is adopted, recorded and reported.
#[test]
fn a_sender_adopts_only_the_grant_for_its_own_request() {
    let mut s = Sender::new(SENDER, RECEIVER, Time::ZERO, 9);
    let _ = poll(&mut s);
    assert_eq!(s.submit(at(0), t(1)), Err(SenderError::NoIncarnation));
    for msg in [
        Msg::Granted {
            nonce: 9,
            incarnation: 4,
        },
        Msg::Granted {
            nonce: 10,
            incarnation: 0,
        },
    ] {
        s.handle_message(at(0), RECEIVER, msg).unwrap();
        assert_eq!(s.incarnation(), None, "{msg:?} adopted");
        assert!(poll(&mut s).records.is_empty());
    }
    s.handle_message(
        at(0),
        RECEIVER,
        Msg::Granted {
            nonce: 10,
            incarnation: 4,
        },
    )
    .unwrap();
    assert_eq!(s.incarnation(), Some(4));
    assert_eq!(s.requesting(), None);
    let out = poll(&mut s);
    assert_eq!(out.records, [SenderRecord::Incarnation { incarnation: 4 }]);
    assert_eq!(out.events, [SenderEvent::Started { incarnation: 4 }]);
    s.handle_message(
        at(0),
        RECEIVER,
        Msg::Granted {
            nonce: 10,
            incarnation: 5,
        },
    )
    .unwrap();
    assert_eq!(s.incarnation(), Some(4));
    assert!(poll(&mut s).is_empty_out());
    assert_eq!(s.poll_timeout(), None, "no request left to retry");
}

/// Messages a sender must refuse, each with its typed error.
#[test]
fn a_sender_refuses_what_only_a_receiver_may_get() {
    let mut s = sender(3);
    s.submit(at(0), t(1)).unwrap();
    assert_eq!(
        s.handle_message(
            at(0),
            5,
            Msg::Ack {
                incarnation: 3,
                hwm: 1,
                seq: 1
            }
        ),
        Err(SenderError::UnexpectedPeer {
            from: 5,
            expected: RECEIVER
        })
    );
    assert_eq!(
        s.handle_message(
            at(0),
            RECEIVER,
            Msg::Data {
                incarnation: 3,
                seq: 1,
                transfer: t(1)
            }
        ),
        Err(SenderError::UnexpectedData)
    );
    assert_eq!(
        s.handle_message(at(0), RECEIVER, Msg::NewIncarnation { nonce: 1 }),
        Err(SenderError::UnexpectedRequest)
    );
    for (hwm, seq) in [(2, 1), (0, 2), (0, 0)] {
        assert_eq!(
            s.handle_message(
                at(0),
                RECEIVER,
                Msg::Ack {
                    incarnation: 3,
                    hwm,
                    seq
                }
            ),
            Err(SenderError::AckBeyondSent {
                hwm,
                seq,
                highest: 1
            }),
        );
    }
    assert!(s.is_outstanding(1));
    // An ack of another incarnation is not about these seqs.
    s.handle_message(
        at(0),
        RECEIVER,
        Msg::Ack {
            incarnation: 2,
            hwm: 1,
            seq: 1,
        },
    )
    .unwrap();
    assert!(s.is_outstanding(1));
    assert_eq!(s.id(), SENDER);
}

/// Acks: cumulative up to `hwm` plus the selective `seq`; a record and
/// `Delivered` events only when something left the outbox.
#[test]
fn acks_remove_up_to_the_hwm_and_the_acked_seq() {
    let mut s = sender(3);
    for i in 1..=5 {
        s.submit(at(0), t(i)).unwrap();
    }
    let _ = poll(&mut s);
    s.handle_message(
        at(0),
        RECEIVER,
        Msg::Ack {
            incarnation: 3,
            hwm: 2,
            seq: 4,
        },
    )
    .unwrap();
    let out = poll(&mut s);
    assert_eq!(out.records, [SenderRecord::Acked { hwm: 2, seq: 4 }]);
    let delivered = |seq| SenderEvent::Delivered {
        incarnation: 3,
        seq,
    };
    assert_eq!(out.events, [delivered(1), delivered(2), delivered(4)]);
    assert_eq!(s.in_flight(), 2);
    assert!(!s.is_outstanding(1) && !s.is_outstanding(4) && s.is_outstanding(3));
    assert_eq!(s.stats().acked, 3);
    // The same ack again removes nothing and records nothing.
    s.handle_message(
        at(0),
        RECEIVER,
        Msg::Ack {
            incarnation: 3,
            hwm: 2,
            seq: 4,
        },
    )
    .unwrap();
    assert!(poll(&mut s).is_empty_out());
    assert_eq!(s.stats().acked, 3);
}

/// An expiry gives every unacknowledged message up as of unknown outcome,
/// records it, and asks for a new incarnation under the next nonce.
#[test]
fn an_expired_incarnation_is_given_up_and_a_new_one_requested() {
    let mut s = Sender::new(SENDER, RECEIVER, Time::ZERO, 20);
    let _ = poll(&mut s);
    s.handle_message(
        at(0),
        RECEIVER,
        Msg::Granted {
            nonce: 21,
            incarnation: 6,
        },
    )
    .unwrap();
    s.submit(at(0), t(1)).unwrap();
    s.submit(at(0), t(2)).unwrap();
    let _ = poll(&mut s);
    s.handle_message(at(1), RECEIVER, Msg::Expired { incarnation: 5 })
        .unwrap();
    assert!(poll(&mut s).is_empty_out(), "another life's expiry");
    s.handle_message(at(1), RECEIVER, Msg::Expired { incarnation: 6 })
        .unwrap();
    let out = poll(&mut s);
    assert_eq!(out.records, [SenderRecord::Expired { incarnation: 6 }]);
    let unknown = |seq, n| SenderEvent::OutcomeUnknown {
        incarnation: 6,
        seq,
        transfer: t(n),
    };
    assert_eq!(out.events, [unknown(1, 1), unknown(2, 2)]);
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].msg, Msg::NewIncarnation { nonce: 22 });
    assert_eq!(s.incarnation(), None);
    assert_eq!(s.next_seq(), 1);
    assert_eq!(s.in_flight(), 0);
    assert_eq!(s.stats().unknown, 2);
    // Its log recovers to the same state: no incarnation, asking for one.
    let log = [
        SenderRecord::Incarnation { incarnation: 6 },
        SenderRecord::Submitted {
            seq: 1,
            transfer: t(1),
        },
        SenderRecord::Expired { incarnation: 6 },
    ];
    let mut back = Sender::recover(SENDER, RECEIVER, at(2), 30, log).unwrap();
    assert_eq!(back.incarnation(), None);
    assert_eq!(back.next_seq(), 1);
    assert_eq!(back.requesting(), Some(31));
    assert_eq!(
        poll(&mut back).messages[0].msg,
        Msg::NewIncarnation { nonce: 31 }
    );
}

/// Seqs end at `SEQ_MAX`: a sender whose snapshot reached it refuses more.
#[test]
fn seqs_are_exhausted_beyond_seq_max() {
    let snap = |next_seq| SenderRecord::Snapshot {
        incarnation: Some(3),
        next_seq,
        outbox: vec![],
    };
    let mut s = Sender::recover(SENDER, RECEIVER, Time::ZERO, 1, [snap(SEQ_MAX)]).unwrap();
    assert_eq!(s.submit(at(0), t(1)), Ok(SEQ_MAX));
    let mut s = Sender::recover(SENDER, RECEIVER, Time::ZERO, 1, [snap(SEQ_MAX + 1)]).unwrap();
    assert_eq!(
        s.submit(at(0), t(1)),
        Err(SenderError::SeqsExhausted {
            next_seq: SEQ_MAX + 1
        })
    );
    assert!(matches!(
        Sender::recover(SENDER, RECEIVER, Time::ZERO, 1, [snap(SEQ_MAX + 2)]),
        Err(RecoverError::OutOfBounds { index: 0, .. })
    ));
}

/// A sender's snapshot carries its outbox and recovers to the same state, with
/// the outbox re-sent at once.
#[test]
fn a_sender_snapshot_round_trips() {
    let mut s = sender(3);
    for i in 1..=3 {
        s.submit(at(0), t(i)).unwrap();
    }
    s.handle_message(
        at(0),
        RECEIVER,
        Msg::Ack {
            incarnation: 3,
            hwm: 0,
            seq: 2,
        },
    )
    .unwrap();
    let _ = poll(&mut s);
    let snap = s.snapshot();
    assert_eq!(
        snap,
        SenderRecord::Snapshot {
            incarnation: Some(3),
            next_seq: 4,
            outbox: vec![(1, t(1)), (3, t(3))]
        }
    );
    let mut back = Sender::recover(SENDER, RECEIVER, at(5), 1, [snap]).unwrap();
    assert_eq!(back.protocol().outbox, s.protocol().outbox);
    assert_eq!(back.next_seq(), 4);
    assert_eq!(data_seqs(&poll(&mut back).messages), [1, 3]);
    assert_eq!(back.poll_timeout(), Some(at(55)));
}

/// Every way a sender's log can be one no sender wrote is refused, with the
/// record's index.
#[test]
fn a_sender_refuses_a_log_no_sender_wrote() {
    use SenderRecord::*;
    let inc = Incarnation { incarnation: 3 };
    let sub = |seq| Submitted {
        seq,
        transfer: t(seq),
    };
    let snap = |incarnation, next_seq, outbox: Vec<(u64, Transfer)>| Snapshot {
        incarnation,
        next_seq,
        outbox,
    };
    let cases: Vec<(Vec<SenderRecord>, RecoverError)> = vec![
        (
            vec![inc.clone(), snap(Some(3), 1, vec![])],
            RecoverError::SnapshotNotFirst { index: 1 },
        ),
        (vec![snap(Some(3), 0, vec![])], oob(0)),
        (vec![snap(Some(0), 1, vec![])], oob(0)),
        (vec![snap(None, 2, vec![])], incarnation_err(0)),
        (vec![snap(None, 1, vec![(1, t(1))])], incarnation_err(0)),
        (vec![snap(Some(3), 3, vec![(0, t(1))])], oob(0)),
        (vec![snap(Some(3), 3, vec![(3, t(1))])], oob(0)),
        (
            vec![snap(Some(3), 100, vec![(100 - WINDOW_MAX - 1, t(1))])],
            oob(0),
        ),
        (
            vec![snap(
                Some(3),
                3,
                vec![(
                    1,
                    Transfer {
                        from: 0,
                        to: 1,
                        amount: -1,
                    },
                )],
            )],
            oob(0),
        ),
        (vec![snap(Some(3), 3, vec![(1, t(1)), (1, t(1))])], oob(0)),
        (
            vec![snap(
                Some(3),
                200,
                (1..=WINDOW_MAX + 1).map(|s| (100 + s, t(1))).collect(),
            )],
            oob(0),
        ),
        (vec![inc.clone(), inc.clone()], incarnation_err(1)),
        (vec![Incarnation { incarnation: 0 }], incarnation_err(0)),
        (vec![sub(1)], incarnation_err(0)),
        (
            vec![inc.clone(), sub(2)],
            RecoverError::SeqNotConsecutive {
                index: 1,
                seq: 2,
                expected: 1,
            },
        ),
        (
            vec![
                inc.clone(),
                Submitted {
                    seq: 1,
                    transfer: Transfer {
                        from: 0,
                        to: 1,
                        amount: AMOUNT_MAX + 1,
                    },
                },
            ],
            oob(1),
        ),
        (vec![Acked { hwm: 0, seq: 1 }], incarnation_err(0)),
        (
            vec![inc.clone(), sub(1), Acked { hwm: 1, seq: 2 }],
            RecoverError::AckBeyondSubmitted {
                index: 2,
                hwm: 1,
                seq: 2,
            },
        ),
        (
            vec![inc.clone(), sub(1), Acked { hwm: 2, seq: 1 }],
            RecoverError::AckBeyondSubmitted {
                index: 2,
                hwm: 2,
                seq: 1,
            },
        ),
        (
            vec![inc.clone(), sub(1), Acked { hwm: 0, seq: 0 }],
            RecoverError::AckBeyondSubmitted {
                index: 2,
                hwm: 0,
                seq: 0,
            },
        ),
        (
            vec![inc.clone(), Expired { incarnation: 4 }],
            incarnation_err(1),
        ),
    ];
    for (log, expected) in cases {
        let got = Sender::recover(SENDER, RECEIVER, Time::ZERO, 1, log.clone()).err();
        assert_eq!(
            got.as_ref().map(std::mem::discriminant),
            Some(std::mem::discriminant(&expected)),
            "{log:?}: {got:?}"
        );
        assert_eq!(
            index_of(got.as_ref().unwrap()),
            index_of(&expected),
            "{log:?}: {got:?}"
        );
        if !matches!(
            expected,
            RecoverError::OutOfBounds { .. } | RecoverError::Incarnation { .. }
        ) {
            assert_eq!(got, Some(expected), "{log:?}");
        }
    }
    // The window in a log of submissions: the 65th unacknowledged is refused.
    let mut log = vec![inc];
    log.extend((1..=WINDOW_MAX + 1).map(sub));
    assert_eq!(
        index_of(&Sender::recover(SENDER, RECEIVER, Time::ZERO, 1, log).unwrap_err()),
        WINDOW_MAX as usize + 1
    );
    // A full window of a snapshot, at its edge, is a log a sender wrote.
    let edge = snap(
        Some(3),
        100,
        (100 - WINDOW_MAX..100).map(|s| (s, t(1))).collect(),
    );
    let s = Sender::recover(SENDER, RECEIVER, Time::ZERO, 1, [edge]).unwrap();
    assert_eq!(s.in_flight(), WINDOW_MAX as usize);
    // A cumulative ack in a log removes what it covers.
    let log = [
        snap(Some(3), 1, vec![]),
        sub(1),
        sub(2),
        sub(3),
        Acked { hwm: 2, seq: 2 },
    ];
    let s = Sender::recover(SENDER, RECEIVER, Time::ZERO, 1, log).unwrap();
    assert_eq!(s.outbox().map(|(seq, _)| seq).collect::<Vec<_>>(), [3]);
}

fn oob(index: usize) -> RecoverError {
    RecoverError::OutOfBounds { index, what: "" }
}

fn incarnation_err(index: usize) -> RecoverError {
    RecoverError::Incarnation { index, what: "" }
}

fn index_of(e: &RecoverError) -> usize {
    match *e {
        RecoverError::SnapshotNotFirst { index }
        | RecoverError::SeqNotConsecutive { index, .. }
        | RecoverError::AckBeyondSubmitted { index, .. }
        | RecoverError::Incarnation { index, .. }
        | RecoverError::AppliedTwice { index, .. }
        | RecoverError::OutOfBounds { index, .. } => index,
    }
}

trait EmptyOut {
    fn is_empty_out(&self) -> bool;
}

impl<R, M, E> EmptyOut for Out<R, M, E> {
    fn is_empty_out(&self) -> bool {
        self.records.is_empty() && self.messages.is_empty() && self.events.is_empty()
    }
}

// ---- Receiver ----

/// The nonce of the request a recovered grant answered (any value: no test here
/// retransmits that request).
const NONCE: u64 = 7;

/// A receiver that granted incarnation `inc` to `SENDER` (its log recovered).
fn granted_receiver(inc: u64) -> Receiver {
    Receiver::recover(
        RECEIVER,
        Time::ZERO,
        [ReceiverRecord::Granted {
            sender: SENDER,
            incarnation: inc,
            nonce: NONCE,
        }],
    )
    .unwrap()
}

fn data(inc: u64, seq: u64) -> Msg {
    Msg::Data {
        incarnation: inc,
        seq,
        transfer: t(seq),
    }
}

/// Out-of-order data: seqs above the hwm are remembered until the gap closes;
/// each ack carries the hwm at that point; a copy is acknowledged, not applied.
#[test]
fn out_of_order_seqs_raise_the_hwm_when_the_gap_closes() {
    let mut r = granted_receiver(3);
    let mut acks = Vec::new();
    for seq in [3, 2, 5, 1, 2] {
        r.handle_message(at(0), SENDER, data(3, seq)).unwrap();
        let out = poll(&mut r);
        acks.push(out.messages[0].msg);
        assert_eq!(out.messages[0].to, SENDER);
    }
    let ack = |hwm, seq| Msg::Ack {
        incarnation: 3,
        hwm,
        seq,
    };
    assert_eq!(
        acks,
        [ack(0, 3), ack(0, 2), ack(0, 5), ack(3, 1), ack(3, 2)]
    );
    assert_eq!(r.hwm(SENDER), 3);
    assert_eq!(r.dedup_size(), (1, 1));
    assert_eq!(r.applied(SENDER, 3, 5), Some(true));
    assert_eq!(r.applied(SENDER, 3, 4), Some(false));
    assert_eq!(r.applied(SENDER, 2, 1), None, "never granted here");
    assert_eq!(r.applied(SENDER, 4, 1), None, "not granted yet");
    assert_eq!(r.applied(9, 3, 1), None);
    assert_eq!(r.stats().applied, 4);
    assert_eq!(r.stats().duplicates, 1);
    assert_eq!(r.bank().balance(1), 1 + 2 + 3 + 5);
    assert_eq!(r.granted(SENDER), Some(3));
    assert_eq!(r.granted(9), None);
    assert_eq!(r.id(), RECEIVER);
}

/// The window: seq `hwm + WINDOW_MAX` is applied, one more is refused; seq 0 is
/// refused; so is an incarnation never granted to the sender.
#[test]
fn the_receiver_refuses_seqs_beyond_the_window_and_unknown_incarnations() {
    let mut r = granted_receiver(3);
    assert_eq!(
        r.handle_message(at(0), SENDER, data(3, WINDOW_MAX + 1)),
        Err(ReceiverError::SeqBeyondWindow {
            from: SENDER,
            seq: WINDOW_MAX + 1,
            hwm: 0
        })
    );
    assert_eq!(r.handle_message(at(0), SENDER, data(3, WINDOW_MAX)), Ok(()));
    assert_eq!(
        r.handle_message(at(0), SENDER, data(3, 0)),
        Err(ReceiverError::SeqZero { from: SENDER })
    );
    assert_eq!(
        r.handle_message(at(0), SENDER, data(4, 1)),
        Err(ReceiverError::UnknownIncarnation {
            from: SENDER,
            incarnation: 4,
            granted: 3
        })
    );
    assert_eq!(
        r.handle_message(
            at(0),
            SENDER,
            Msg::Ack {
                incarnation: 3,
                hwm: 0,
                seq: 1
            }
        ),
        Err(ReceiverError::UnexpectedAck { from: SENDER })
    );
    for msg in [
        Msg::Granted {
            nonce: 1,
            incarnation: 3,
        },
        Msg::Expired { incarnation: 3 },
    ] {
        assert_eq!(
            r.handle_message(at(0), SENDER, msg),
            Err(ReceiverError::UnexpectedGrant { from: SENDER })
        );
    }
    assert_eq!(r.stats().rejected, 6);
    assert_eq!(r.stats().applied, 1);
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(
        poll(&mut r).records.len(),
        1,
        "only the application is recorded"
    );
    r.handle_timeout(at(5));
    assert!(poll(&mut r).is_empty_out());
}

/// Data of a sender without an entry, or of a fenced incarnation, is answered
/// `Expired` and not applied; data of a newer granted incarnation fences the older.
#[test]
fn fenced_and_unknown_senders_are_answered_expired() {
    let mut r = Receiver::new(RECEIVER);
    r.handle_message(at(0), 2, data(1, 1)).unwrap();
    let out = poll(&mut r);
    assert_eq!(
        out.messages,
        [Envelope {
            to: 2,
            msg: Msg::Expired { incarnation: 1 }
        }]
    );
    assert!(out.records.is_empty());
    r.handle_message(at(0), SENDER, Msg::NewIncarnation { nonce: 5 })
        .unwrap();
    r.handle_message(at(0), SENDER, Msg::NewIncarnation { nonce: 6 })
        .unwrap();
    let out = poll(&mut r);
    assert_eq!(
        out.messages.iter().map(|e| e.msg).collect::<Vec<_>>(),
        [
            Msg::Granted {
                nonce: 5,
                incarnation: 1
            },
            Msg::Granted {
                nonce: 6,
                incarnation: 2
            }
        ]
    );
    assert_eq!(r.last_granted(), 2);
    assert_eq!(r.stats().granted, 2);
    r.handle_message(at(0), SENDER, data(1, 1)).unwrap();
    r.handle_message(at(0), SENDER, data(2, 1)).unwrap();
    r.handle_message(at(0), SENDER, data(1, 2)).unwrap();
    let out = poll(&mut r);
    assert_eq!(out.messages[2].msg, Msg::Expired { incarnation: 1 });
    assert_eq!(
        out.events,
        [
            ReceiverEvent::Applied {
                from: SENDER,
                incarnation: 1,
                seq: 1,
                transfer: t(1)
            },
            ReceiverEvent::Applied {
                from: SENDER,
                incarnation: 2,
                seq: 1,
                transfer: t(1)
            },
        ]
    );
    assert_eq!(r.stats().expired, 2);
    assert_eq!(r.applied(SENDER, 1, 1), None, "fenced");
}

/// `SENDERS_MAX` senders are tracked; one more is refused until an idle one is
/// retired after the retention (strictly longer than it), with a record.
#[test]
fn the_sender_bound_and_the_retention() {
    let retention = Duration::from_secs(10);
    let mut r = Receiver::with_retention(RECEIVER, retention);
    for s in 1..=SENDERS_MAX as NodeId {
        r.handle_message(at(0), s, Msg::NewIncarnation { nonce: 1 })
            .unwrap();
    }
    let extra = SENDERS_MAX as NodeId + 1;
    assert_eq!(
        r.handle_message(at(0), extra, Msg::NewIncarnation { nonce: 1 }),
        Err(ReceiverError::TooManySenders { from: extra })
    );
    // Sender 1 stays active; at exactly the retention nobody is idle.
    r.handle_message(at(5_000), 1, data(1, 1)).unwrap();
    let _ = poll(&mut r);
    r.handle_message(at(10_000), extra, Msg::NewIncarnation { nonce: 1 })
        .unwrap_err();
    assert!(poll(&mut r).records.is_empty());
    r.handle_message(at(10_001), extra, Msg::NewIncarnation { nonce: 1 })
        .unwrap();
    let out = poll(&mut r);
    let retired: Vec<_> = (2..=SENDERS_MAX as NodeId)
        .map(|sender| ReceiverRecord::Retired { sender })
        .collect();
    assert_eq!(&out.records[..retired.len()], &retired[..]);
    assert_eq!(out.records.len(), retired.len() + 1);
    assert_eq!(r.stats().retired, retired.len() as u64);
    assert_eq!(r.dedup_size().0, 2);
    // A retired sender's data is answered Expired.
    r.handle_message(at(10_001), 2, data(2, 1)).unwrap();
    assert_eq!(
        poll(&mut r).messages[0].msg,
        Msg::Expired { incarnation: 2 }
    );
    // A grant counts as activity: after it, sender 1 (active at 5 s) is retired at 15.001 s
    // but `extra` (granted at 10.001 s) is not.
    r.handle_message(at(15_001), extra, data(r.granted(extra).unwrap(), 1))
        .unwrap();
    let out = poll(&mut r);
    assert_eq!(out.records[0], ReceiverRecord::Retired { sender: 1 });
    // A recovered receiver counts every sender as active at the recovery time.
    let log = [ReceiverRecord::Granted {
        sender: 3,
        incarnation: 1,
        nonce: NONCE,
    }];
    let mut back =
        Receiver::recover_with_retention(RECEIVER, at(50_000), retention, log.clone()).unwrap();
    back.handle_message(at(60_000), 4, Msg::NewIncarnation { nonce: 1 })
        .unwrap();
    assert_eq!(
        poll(&mut back).records,
        [ReceiverRecord::Granted {
            sender: 4,
            incarnation: 2,
            nonce: 1,
        }]
    );
    let mut back = Receiver::recover(RECEIVER, at(50_000), log).unwrap();
    back.handle_message(at(50_000 + 10_000_000), 4, Msg::NewIncarnation { nonce: 1 })
        .unwrap();
    assert_eq!(
        poll(&mut back).records.len(),
        1,
        "the default retention is a day"
    );
}

/// Incarnations end at `u64::MAX`: the next request is refused.
#[test]
fn incarnations_are_exhausted_at_the_last_one() {
    let snap = ReceiverRecord::Snapshot {
        bank: Bank::new(),
        last_granted: u64::MAX,
        senders: vec![],
    };
    let mut r = Receiver::recover(RECEIVER, Time::ZERO, [snap]).unwrap();
    assert_eq!(
        r.handle_message(at(0), SENDER, Msg::NewIncarnation { nonce: 1 }),
        Err(ReceiverError::IncarnationsExhausted {
            from: SENDER,
            last_granted: u64::MAX
        })
    );
}

/// A transfer that would take a balance beyond the bank's bound is refused
/// and not recorded; the one that reaches the bound exactly is applied.
#[test]
fn a_balance_beyond_the_bound_is_refused() {
    let near = |amount| {
        let mut bank = Bank::new();
        bank.apply_transfer(&Transfer {
            from: 0,
            to: 1,
            amount,
        })
        .unwrap();
        bank
    };
    let snap = |bank| ReceiverRecord::Snapshot {
        bank,
        last_granted: 3,
        senders: vec![dedup(3, 3, 0, 0, vec![])],
    };
    let mut r = Receiver::recover(RECEIVER, Time::ZERO, [snap(near(BALANCE_MAX - 10))]).unwrap();
    let send = |seq, amount| Msg::Data {
        incarnation: 3,
        seq,
        transfer: Transfer {
            from: 0,
            to: 1,
            amount,
        },
    };
    assert_eq!(
        r.handle_message(at(0), SENDER, send(1, 11)),
        Err(ReceiverError::BalanceOutOfRange {
            from: SENDER,
            seq: 1
        })
    );
    assert!(poll(&mut r).is_empty_out());
    assert_eq!(r.applied(SENDER, 3, 1), Some(false));
    assert_eq!(r.handle_message(at(0), SENDER, send(1, 10)), Ok(()));
    assert_eq!(r.bank().balance(1), BALANCE_MAX);
    assert_eq!(poll(&mut r).records.len(), 1);
    // Replaying an application beyond the bound is refused.
    let log = [
        snap(near(BALANCE_MAX)),
        ReceiverRecord::Applied {
            from: SENDER,
            incarnation: 3,
            seq: 1,
            transfer: t(1),
        },
    ];
    assert!(matches!(
        Receiver::recover(RECEIVER, Time::ZERO, log),
        Err(RecoverError::OutOfBounds { index: 1, .. })
    ));
}

/// A receiver's snapshot carries bank, grants and dedup state, and recovers to
/// the same protocol state.
#[test]
fn a_receiver_snapshot_round_trips() {
    let mut r = granted_receiver(3);
    for seq in [1, 2, 4] {
        r.handle_message(at(0), SENDER, data(3, seq)).unwrap();
    }
    let _ = poll(&mut r);
    let snap = r.snapshot();
    match &snap {
        ReceiverRecord::Snapshot {
            last_granted,
            senders,
            ..
        } => {
            assert_eq!(*last_granted, 3);
            assert_eq!(
                senders,
                &[DedupSnapshot {
                    sender: SENDER,
                    floor: 3,
                    granted: 3,
                    nonce: NONCE,
                    incarnation: 3,
                    hwm: 2,
                    above: vec![4]
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    let back = Receiver::recover(RECEIVER, at(1), [snap]).unwrap();
    assert_eq!(back.protocol(), r.protocol());
}

fn dedup(floor: u64, granted: u64, incarnation: u64, hwm: u64, above: Vec<u64>) -> DedupSnapshot {
    DedupSnapshot {
        sender: SENDER,
        floor,
        granted,
        nonce: NONCE,
        incarnation,
        hwm,
        above,
    }
}

/// Every way a receiver's log can be one no receiver wrote is refused, with
/// the record's index.
#[test]
fn a_receiver_refuses_a_log_no_receiver_wrote() {
    use ReceiverRecord::*;
    let snap = |last_granted, senders: Vec<DedupSnapshot>| Snapshot {
        bank: Bank::new(),
        last_granted,
        senders,
    };
    let grant = |sender, incarnation| Granted {
        sender,
        incarnation,
        nonce: NONCE,
    };
    let applied = |incarnation, seq, amount| Applied {
        from: SENDER,
        incarnation,
        seq,
        transfer: Transfer {
            from: 0,
            to: 1,
            amount,
        },
    };
    let many: Vec<DedupSnapshot> = (1..=SENDERS_MAX as NodeId + 1)
        .map(|s| DedupSnapshot {
            sender: s,
            ..dedup(1, 1, 0, 0, vec![])
        })
        .collect();
    let cases: Vec<(Vec<ReceiverRecord>, RecoverError)> = vec![
        (
            vec![grant(1, 1), snap(1, vec![])],
            RecoverError::SnapshotNotFirst { index: 1 },
        ),
        (vec![snap(20, many)], oob(0)),
        (
            vec![snap(5, vec![dedup(1, 5, 5, SEQ_MAX + 1, vec![])])],
            oob(0),
        ),
        (vec![snap(5, vec![dedup(1, 5, 5, 2, vec![3])])], oob(0)),
        (
            vec![snap(5, vec![dedup(1, 5, 5, 2, vec![2 + WINDOW_MAX + 1])])],
            oob(0),
        ),
        (vec![snap(5, vec![dedup(1, 5, 5, 2, vec![5, 5])])], oob(0)),
        (
            vec![snap(5, vec![dedup(0, 5, 5, 0, vec![])])],
            incarnation_err(0),
        ),
        (
            vec![snap(5, vec![dedup(4, 3, 0, 0, vec![])])],
            incarnation_err(0),
        ),
        (
            vec![snap(5, vec![dedup(1, 6, 0, 0, vec![])])],
            incarnation_err(0),
        ),
        (
            vec![snap(5, vec![dedup(2, 5, 1, 0, vec![])])],
            incarnation_err(0),
        ),
        (
            vec![snap(9, vec![dedup(2, 5, 6, 0, vec![])])],
            incarnation_err(0),
        ),
        (
            vec![snap(5, vec![dedup(1, 5, 0, 1, vec![])])],
            incarnation_err(0),
        ),
        (
            vec![snap(5, vec![dedup(1, 5, 0, 0, vec![3])])],
            incarnation_err(0),
        ),
        (
            vec![snap(
                5,
                vec![dedup(1, 5, 0, 0, vec![]), dedup(1, 5, 0, 0, vec![])],
            )],
            oob(0),
        ),
        (vec![grant(1, 2), grant(2, 2)], incarnation_err(1)),
        (vec![grant(1, 2), grant(2, 1)], incarnation_err(1)),
        (vec![Retired { sender: 1 }], oob(0)),
        (vec![grant(SENDER, 1), applied(1, 1, -1)], oob(1)),
        (vec![applied(1, 1, 1)], incarnation_err(0)),
        (vec![grant(SENDER, 1), applied(2, 1, 1)], incarnation_err(1)),
        (
            vec![
                grant(SENDER, 1),
                grant(SENDER, 2),
                applied(2, 1, 1),
                applied(1, 2, 1),
            ],
            incarnation_err(3),
        ),
        (
            vec![grant(SENDER, 1), applied(1, 1, 1), applied(1, 1, 1)],
            RecoverError::AppliedTwice {
                index: 2,
                from: SENDER,
                seq: 1,
            },
        ),
        (
            vec![grant(SENDER, 1), applied(1, 0, 1)],
            RecoverError::AppliedTwice {
                index: 1,
                from: SENDER,
                seq: 0,
            },
        ),
        (
            vec![grant(SENDER, 1), applied(1, WINDOW_MAX + 1, 1)],
            oob(1),
        ),
    ];
    for (log, expected) in cases {
        let got = Receiver::recover(RECEIVER, Time::ZERO, log.clone()).err();
        assert_eq!(
            got.as_ref().map(std::mem::discriminant),
            Some(std::mem::discriminant(&expected)),
            "{log:?}: {got:?}"
        );
        assert_eq!(
            index_of(got.as_ref().unwrap()),
            index_of(&expected),
            "{log:?}: {got:?}"
        );
        if !matches!(
            expected,
            RecoverError::OutOfBounds { .. } | RecoverError::Incarnation { .. }
        ) {
            assert_eq!(got, Some(expected), "{log:?}");
        }
    }
    // Logs a receiver did write: the window's edge, a newer incarnation's data,
    // a retirement, a bound-full table of grants, a well-formed snapshot.
    let ok: Vec<Vec<ReceiverRecord>> = vec![
        vec![
            grant(SENDER, 1),
            applied(1, WINDOW_MAX, 1),
            applied(1, 1, 1),
        ],
        vec![
            grant(SENDER, 1),
            applied(1, 1, 1),
            grant(SENDER, 2),
            applied(2, 1, 1),
        ],
        vec![
            grant(SENDER, 1),
            Retired { sender: SENDER },
            grant(SENDER, 2),
        ],
        (1..=SENDERS_MAX as NodeId)
            .map(|s| grant(s, u64::from(s)))
            .collect(),
        vec![snap(
            5,
            vec![
                dedup(1, 5, 5, 2, vec![4, 2 + WINDOW_MAX]),
                DedupSnapshot {
                    sender: 2,
                    ..dedup(4, 4, 0, 0, vec![])
                },
            ],
        )],
    ];
    for log in ok {
        Receiver::recover(RECEIVER, Time::ZERO, log.clone())
            .unwrap_or_else(|e| panic!("{log:?}: {e}"));
    }
    let full: Vec<ReceiverRecord> = (1..=SENDERS_MAX as NodeId + 1)
        .map(|s| grant(s, u64::from(s)))
        .collect();
    assert!(matches!(
        Receiver::recover(RECEIVER, Time::ZERO, full),
        Err(RecoverError::OutOfBounds { index, .. }) if index == SENDERS_MAX
    ));
    // Replayed applications rebuild the bank and the dedup state.
    let log = vec![grant(SENDER, 1), applied(1, 2, 7), applied(1, 1, 5)];
    let r = Receiver::recover(RECEIVER, Time::ZERO, log).unwrap();
    assert_eq!(r.bank().balance(1), 12);
    assert_eq!(r.hwm(SENDER), 2);
    assert_eq!(r.last_granted(), 1);
}

/// A receiver whose hwm reached `SEQ_MAX` (its last seq) wrote that snapshot:
/// it recovers. (Kills `s.hwm > SEQ_MAX` → `>=` at `receiver.rs:246`, a mutant
/// outside the sample run so far.)
#[test]
fn a_snapshot_at_the_last_seq_recovers() {
    let snap = ReceiverRecord::Snapshot {
        bank: Bank::new(),
        last_granted: 5,
        senders: vec![dedup(1, 5, 5, SEQ_MAX, vec![])],
    };
    let r = Receiver::recover(RECEIVER, Time::ZERO, [snap]).unwrap();
    assert_eq!(r.hwm(SENDER), SEQ_MAX);
    assert_eq!(r.applied(SENDER, 5, SEQ_MAX), Some(true));
    let beyond = ReceiverRecord::Snapshot {
        bank: Bank::new(),
        last_granted: 5,
        senders: vec![dedup(1, 5, 5, SEQ_MAX + 1, vec![])],
    };
    assert!(matches!(
        Receiver::recover(RECEIVER, Time::ZERO, [beyond]),
        Err(RecoverError::OutOfBounds { index: 0, .. })
    ));
}

/// A receiver that tracks `SENDERS_MAX` senders wrote that snapshot: it
/// recovers; one sender more is refused. (Kills `senders.len() > SENDERS_MAX`
/// → `>=` in `Receiver::replay`.)
#[test]
fn a_snapshot_of_senders_max_senders_recovers() {
    let senders = |n: NodeId| -> Vec<DedupSnapshot> {
        (1..=n)
            .map(|s| DedupSnapshot {
                sender: s,
                ..dedup(1, 1, 0, 0, vec![])
            })
            .collect()
    };
    let snap = |n| ReceiverRecord::Snapshot {
        bank: Bank::new(),
        last_granted: 1,
        senders: senders(n),
    };
    let r = Receiver::recover(RECEIVER, Time::ZERO, [snap(SENDERS_MAX as NodeId)]).unwrap();
    assert_eq!(r.dedup_size(), (SENDERS_MAX, 0));
    assert!(matches!(
        Receiver::recover(RECEIVER, Time::ZERO, [snap(SENDERS_MAX as NodeId + 1)]),
        Err(RecoverError::OutOfBounds { index: 0, .. })
    ));
}
