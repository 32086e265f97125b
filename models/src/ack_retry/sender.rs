//! The ack-retry **sender**: a durable outbox with a bounded in-flight window,
//! retransmitted until acknowledged — as `impl/src/ack_retry/sender.rs`.
//!
//! The sender's application submits `messages` messages, one per `Submit` step,
//! interleaved with everything else (deliveries, acknowledgements, crashes). A
//! submission gets the next seq (the first is 1), and is one durable save of
//! the outbox (`SenderStorage`) — only then does the message leave. The sender
//! keeps at most `F` messages in flight: it admits seq `s` only while
//! `s < base + F`, where `base` is the oldest unacknowledged seq (or the next seq
//! if the outbox is empty). The application meets this backpressure as the
//! implementation's `WindowFull`: its `Submit` timer is armed only while the
//! window has room and messages remain, and re-armed when an acknowledgement
//! frees a slot.
//!
//! A retransmission timer re-sends everything still in the outbox. An
//! acknowledgement `Ack { hwm, seq }` removes `seq` and every seq `<= hwm` from
//! the durable outbox, and the timer stops once the outbox is empty (which is
//! what lets a settled behaviour end, so `eventually-delivered` can be checked).
//! On recovery the outbox is read back from storage, retransmission resumes and
//! the application resumes submitting.

use super::{Msg, Node, NodeStorage, Seq, Seqs, Timer, Variant};
use stateright::actor::{model_timeout, Id, Out};

/// What the sender keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SenderStorage {
    /// The seq the next submission gets: `1..next` were submitted.
    pub next: Seq,
    /// Submitted messages not yet acknowledged.
    pub outbox: Seqs,
}

/// The sender's volatile state: what it has submitted and is retransmitting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SenderState {
    pub next: Seq,
    pub outbox: Seqs,
}

impl SenderState {
    /// The oldest unacknowledged seq, or the next seq if nothing is in flight.
    fn base(&self) -> Seq {
        self.outbox.lowest().unwrap_or(self.next)
    }
}

#[derive(Clone, Debug)]
pub struct Sender {
    pub receiver: Id,
    /// How many messages the application submits.
    pub messages: Seq,
    /// `F`: the most messages in flight (from the oldest unacknowledged seq).
    pub in_flight: Seq,
    pub variant: Variant,
}

impl Sender {
    fn save(&self, o: &mut Out<Node>, state: &SenderState) {
        let outbox = if self.variant == Variant::VolatileOutbox {
            // The bug: only the next seq is durable, not what is unacknowledged.
            Seqs::EMPTY
        } else {
            state.outbox
        };
        o.save(NodeStorage::Sender(SenderStorage {
            next: state.next,
            outbox,
        }));
    }

    fn retransmits(&self) -> bool {
        self.variant != Variant::NoRetry
    }

    /// Whether the application has a message left and the window has room for it.
    fn may_submit(&self, state: &SenderState) -> bool {
        state.next <= self.messages && state.next - state.base() < self.in_flight
    }

    /// Arms the timers `state` calls for: `Retry` while the outbox holds
    /// anything, `Submit` while a submission would be admitted.
    fn arm(&self, state: &SenderState, o: &mut Out<Node>) {
        if !state.outbox.is_empty() && self.retransmits() {
            o.set_timer(Timer::Retry, model_timeout());
        }
        if self.may_submit(state) {
            o.set_timer(Timer::Submit, model_timeout());
        }
    }

    pub fn on_start(&self, storage: Option<&SenderStorage>, o: &mut Out<Node>) -> SenderState {
        let state = match storage {
            Some(st) => SenderState {
                next: st.next,
                outbox: st.outbox,
            },
            None => SenderState {
                next: 1,
                outbox: Seqs::EMPTY,
            },
        };
        self.arm(&state, o);
        state
    }

    pub fn on_msg(&self, state: &SenderState, msg: Msg, o: &mut Out<Node>) -> Option<SenderState> {
        let Msg::Ack { hwm, seq } = msg else {
            return None;
        };
        let mut next = state.clone();
        for acked in state.outbox.iter().filter(|s| *s <= hwm || *s == seq) {
            next.outbox.remove(acked);
        }
        if next.outbox == state.outbox {
            return None; // A duplicate acknowledgement.
        }
        self.save(o, &next);
        if next.outbox.is_empty() {
            o.cancel_timer(Timer::Retry);
        }
        if self.may_submit(&next) {
            o.set_timer(Timer::Submit, model_timeout());
        }
        Some(next)
    }

    pub fn on_timeout(
        &self,
        state: &SenderState,
        timer: Timer,
        o: &mut Out<Node>,
    ) -> Option<SenderState> {
        match timer {
            Timer::Submit => {
                if !self.may_submit(state) {
                    return None;
                }
                let mut next = state.clone();
                let seq = next.next;
                next.next += 1;
                next.outbox.insert(seq);
                if self.variant == Variant::SendBeforePersist {
                    // The bug: the message leaves first; the submission becomes
                    // durable only when the Persist timer fires, a separate step a
                    // crash can precede.
                    o.send(self.receiver, Msg::Data(seq));
                    o.set_timer(Timer::Persist, model_timeout());
                    return Some(next);
                }
                self.save(o, &next);
                o.send(self.receiver, Msg::Data(seq));
                self.arm(&next, o);
                Some(next)
            }
            Timer::Retry => {
                for seq in state.outbox.iter() {
                    o.send(self.receiver, Msg::Data(seq));
                }
                if !state.outbox.is_empty() {
                    o.set_timer(Timer::Retry, model_timeout());
                }
                None
            }
            Timer::Persist => {
                self.save(o, state);
                self.arm(state, o);
                None
            }
            Timer::RecordDedup => None,
        }
    }
}
