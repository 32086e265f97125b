//! The ack-retry **sender**: a durable outbox, retransmitted until acknowledged.
//!
//! On its first start the sender's application submits `messages` messages,
//! numbered `0..messages`. Submitting means one durable save of the outbox
//! (`SenderStorage`) — only then do the messages leave. A retransmission timer
//! re-sends everything still in the outbox; an acknowledgement removes its message
//! from the durable outbox, and the timer stops once the outbox is empty (which is
//! what lets a settled behaviour end, so `eventually-delivered` can be checked).
//! On recovery the outbox is read back from storage and retransmission resumes.

use super::{Msg, Node, NodeStorage, Seq, Seqs, Timer, Variant};
use stateright::actor::{model_timeout, Id, Out};

/// What the sender keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SenderStorage {
    /// Messages `0..submitted` were submitted by the application.
    pub submitted: Seq,
    /// Submitted messages not yet acknowledged.
    pub outbox: Seqs,
}

/// The sender's volatile state: what it is retransmitting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SenderState {
    pub submitted: Seq,
    pub outbox: Seqs,
}

#[derive(Clone, Debug)]
pub struct Sender {
    pub receiver: Id,
    pub messages: Seq,
    pub variant: Variant,
}

impl Sender {
    fn save(&self, o: &mut Out<Node>, state: &SenderState) {
        let outbox = if self.variant == Variant::VolatileOutbox {
            // The bug: only the fact of submission is durable, not what is unacknowledged.
            Seqs::EMPTY
        } else {
            state.outbox
        };
        o.save(NodeStorage::Sender(SenderStorage {
            submitted: state.submitted,
            outbox,
        }));
    }

    fn retransmits(&self) -> bool {
        self.variant != Variant::NoRetry
    }

    pub fn on_start(&self, storage: Option<&SenderStorage>, o: &mut Out<Node>) -> SenderState {
        let Some(storage) = storage else {
            let state = SenderState {
                submitted: self.messages,
                outbox: Seqs::first(self.messages),
            };
            if self.variant == Variant::SendBeforePersist {
                // The bug: the messages leave first; the submission becomes durable
                // only when the Persist timer fires, a separate step a crash can precede.
                o.set_timer(Timer::Persist, model_timeout());
            } else {
                self.save(o, &state);
                if self.retransmits() {
                    o.set_timer(Timer::Retry, model_timeout());
                }
            }
            for seq in state.outbox.iter() {
                o.send(self.receiver, Msg::Data(seq));
            }
            return state;
        };
        let state = SenderState {
            submitted: storage.submitted,
            outbox: storage.outbox,
        };
        if !state.outbox.is_empty() && self.retransmits() {
            o.set_timer(Timer::Retry, model_timeout());
        }
        state
    }

    pub fn on_msg(&self, state: &SenderState, msg: Msg, o: &mut Out<Node>) -> Option<SenderState> {
        let Msg::Ack(seq) = msg else { return None };
        if !state.outbox.contains(seq) {
            return None; // A duplicate acknowledgement.
        }
        let mut next = state.clone();
        next.outbox.remove(seq);
        self.save(o, &next);
        if next.outbox.is_empty() {
            o.cancel_timer(Timer::Retry);
        }
        Some(next)
    }

    pub fn on_timeout(&self, state: &SenderState, timer: Timer, o: &mut Out<Node>) {
        match timer {
            Timer::Retry => {
                for seq in state.outbox.iter() {
                    o.send(self.receiver, Msg::Data(seq));
                }
                if !state.outbox.is_empty() {
                    o.set_timer(Timer::Retry, model_timeout());
                }
            }
            Timer::Persist => {
                self.save(o, state);
                if !state.outbox.is_empty() {
                    o.set_timer(Timer::Retry, model_timeout());
                }
            }
            Timer::RecordDedup => {}
        }
    }
}
