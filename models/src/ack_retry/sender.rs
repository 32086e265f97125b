//! The ack-retry **sender**: a durable outbox with a bounded in-flight window,
//! retransmitted until acknowledged, under an incarnation granted by the
//! receiver — as `impl/src/ack_retry/sender.rs`.
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
//! acknowledgement `Ack { inc, hwm, seq }` of the sender's own incarnation
//! removes `seq` and every seq `<= hwm` from the durable outbox, and the timer
//! stops once the outbox is empty (which is what lets a settled behaviour end,
//! so `eventually-delivered` can be checked). On recovery the outbox is read
//! back from storage, retransmission resumes and the application resumes
//! submitting.
//!
//! **Disk loss.** With a disk-loss budget, a sender with work left may lose its
//! disk (the `DiskLoss` step): it restarts with an empty disk — no incarnation,
//! no outbox, seq 1 next — and asks the receiver for a new incarnation
//! (`NewIncarnation { nonce }`, retransmitted until a `Granted` with the same
//! nonce arrives), which it saves before it submits again. The nonce stands
//! for the implementation's fresh random nonce per boot: the model uses the
//! boot's number, which no earlier boot used. The old outbox — messages
//! accepted but not acknowledged — is gone: copies of them in flight are
//! applied at most once (before the new incarnation fences the old one) or
//! refused (after it). The application's own count of messages it handed over
//! survives the disk (it is the application's, in [`Ghost`]); the protocol
//! never reads it.

use super::{Inc, Msg, Node, NodeStorage, Seq, Seqs, Timer, Variant};
use stateright::actor::{model_timeout, Id, Out};

/// What the properties need and the protocol never reads: the application's
/// side, which a lost disk does not take with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ghost {
    /// The application number of this incarnation's seq 1: seq `s` carries
    /// message `first + s - 1`.
    pub first: u8,
    /// Disk losses so far.
    pub losses: u8,
}

/// What the sender keeps across crashes (a disk loss keeps only the ghost).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SenderStorage {
    /// The incarnation the seqs belong to; `None` while asking for one.
    pub inc: Option<Inc>,
    /// The seq the next submission gets: `1..next` were submitted.
    pub next: Seq,
    /// Submitted messages not yet acknowledged.
    pub outbox: Seqs,
    pub ghost: Ghost,
}

/// The sender's volatile state: what it has submitted and is retransmitting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SenderState {
    pub inc: Option<Inc>,
    pub next: Seq,
    pub outbox: Seqs,
    pub ghost: Ghost,
}

impl SenderState {
    /// The oldest unacknowledged seq, or the next seq if nothing is in flight.
    fn base(&self) -> Seq {
        self.outbox.lowest().unwrap_or(self.next)
    }

    /// The application number of `seq` in this incarnation.
    pub fn msg(&self, seq: Seq) -> u8 {
        self.ghost.first + seq - 1
    }

    /// How many messages the application has handed over, in every incarnation.
    pub fn handed_over(&self) -> u8 {
        self.ghost.first + self.next - 2
    }

    fn storage(&self) -> SenderStorage {
        SenderStorage {
            inc: self.inc,
            next: self.next,
            outbox: self.outbox,
            ghost: self.ghost,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Sender {
    pub receiver: Id,
    /// How many messages the application submits.
    pub messages: Seq,
    /// `F`: the most messages in flight (from the oldest unacknowledged seq).
    pub in_flight: Seq,
    /// How many times this sender may lose its disk.
    pub disk_losses: u8,
    pub variant: Variant,
}

impl Sender {
    fn save(&self, o: &mut Out<Node>, state: &SenderState) {
        let mut stored = state.storage();
        if self.variant == Variant::VolatileOutbox {
            // The bug: only the next seq is durable, not what is unacknowledged.
            stored.outbox = Seqs::EMPTY;
        }
        o.save(NodeStorage::Sender(stored));
    }

    fn retransmits(&self) -> bool {
        self.variant != Variant::NoRetry
    }

    /// Whether the application has a message left and the window has room for it.
    fn may_submit(&self, state: &SenderState) -> bool {
        state.inc.is_some()
            && state.handed_over() < self.messages
            && state.next - state.base() < self.in_flight
    }

    /// Whether the sender has work left: something to retransmit, to submit or
    /// to ask for. A disk loss is offered only then (as a crash is offered only
    /// while the system is not settled).
    fn has_work(&self, state: &SenderState) -> bool {
        !state.outbox.is_empty() || state.inc.is_none() || self.may_submit(state)
    }

    /// Arms the timers `state` calls for: `Retry` while the outbox holds
    /// anything or an incarnation is being asked for, `Submit` while a
    /// submission would be admitted, `DiskLoss` while the budget allows and
    /// there is work left.
    fn arm(&self, state: &SenderState, o: &mut Out<Node>) {
        if (!state.outbox.is_empty() || state.inc.is_none()) && self.retransmits() {
            o.set_timer(Timer::Retry, model_timeout());
        } else {
            o.cancel_timer(Timer::Retry);
        }
        if self.may_submit(state) {
            o.set_timer(Timer::Submit, model_timeout());
        } else {
            o.cancel_timer(Timer::Submit);
        }
        if state.ghost.losses < self.disk_losses && self.has_work(state) {
            o.set_timer(Timer::DiskLoss, model_timeout());
        } else {
            o.cancel_timer(Timer::DiskLoss);
        }
    }

    fn request(&self, state: &SenderState, o: &mut Out<Node>) {
        o.send(
            self.receiver,
            Msg::NewIncarnation {
                nonce: state.ghost.losses,
            },
        );
    }

    fn send_data(&self, state: &SenderState, seq: Seq, o: &mut Out<Node>) {
        if let Some(inc) = state.inc {
            let msg = state.msg(seq);
            o.send(self.receiver, Msg::Data { inc, seq, msg });
        }
    }

    pub fn on_start(&self, storage: Option<&SenderStorage>, o: &mut Out<Node>) -> SenderState {
        let state = match storage {
            Some(st) => SenderState {
                inc: st.inc,
                next: st.next,
                outbox: st.outbox,
                ghost: st.ghost,
            },
            None => SenderState {
                inc: Some(0),
                next: 1,
                outbox: Seqs::EMPTY,
                ghost: Ghost {
                    first: 1,
                    losses: 0,
                },
            },
        };
        if state.inc.is_none() {
            self.request(&state, o);
        }
        self.arm(&state, o);
        state
    }

    pub fn on_msg(&self, state: &SenderState, msg: Msg, o: &mut Out<Node>) -> Option<SenderState> {
        match msg {
            Msg::Ack { inc, hwm, seq } if state.inc == Some(inc) => {
                let mut next = state.clone();
                for acked in state.outbox.iter().filter(|s| *s <= hwm || *s == seq) {
                    next.outbox.remove(acked);
                }
                if next.outbox == state.outbox {
                    return None; // A duplicate acknowledgement.
                }
                self.save(o, &next);
                self.arm(&next, o);
                Some(next)
            }
            Msg::Granted { nonce, inc } if state.inc.is_none() && nonce == state.ghost.losses => {
                // The incarnation is durable before the first message of it leaves.
                let mut next = state.clone();
                next.inc = Some(inc);
                self.save(o, &next);
                self.arm(&next, o);
                Some(next)
            }
            Msg::Expired { inc } if state.inc == Some(inc) => {
                // Fenced: every unacknowledged message has an unknown outcome;
                // seqs restart under the next incarnation.
                let mut next = state.clone();
                next.ghost.first = next.handed_over() + 1;
                next.inc = None;
                next.next = 1;
                next.outbox = Seqs::EMPTY;
                self.save(o, &next);
                self.request(&next, o);
                self.arm(&next, o);
                Some(next)
            }
            // An acknowledgement, grant or expiry for an earlier life, or a grant
            // already adopted: not about our seqs.
            _ => None,
        }
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
                    self.send_data(&next, seq, o);
                    o.set_timer(Timer::Persist, model_timeout());
                    return Some(next);
                }
                self.save(o, &next);
                self.send_data(&next, seq, o);
                self.arm(&next, o);
                Some(next)
            }
            Timer::Retry => {
                if state.inc.is_none() {
                    self.request(state, o);
                } else {
                    for seq in state.outbox.iter() {
                        self.send_data(state, seq, o);
                    }
                }
                self.arm(state, o);
                None
            }
            Timer::DiskLoss => Some(self.lose_disk(state, o)),
            Timer::Persist => {
                self.save(o, state);
                self.arm(state, o);
                None
            }
            Timer::RecordDedup => None,
        }
    }

    /// The fault: the disk is gone, and the sender restarts on an empty one.
    /// Only the application's ghost count survives. It then asks for a new
    /// incarnation — or, in `no-epoch`, goes on under its old identity at seq 1.
    fn lose_disk(&self, state: &SenderState, o: &mut Out<Node>) -> SenderState {
        let ghost = Ghost {
            first: state.handed_over() + 1,
            losses: state.ghost.losses + 1,
        };
        let next = SenderState {
            // The bug of `no-epoch`: the identity it was installed with.
            inc: (self.variant == Variant::NoEpoch).then_some(0),
            next: 1,
            outbox: Seqs::EMPTY,
            ghost,
        };
        o.cancel_timer(Timer::Submit);
        o.cancel_timer(Timer::Persist);
        o.save(NodeStorage::Sender(next.storage()));
        if next.inc.is_none() {
            self.request(&next, o);
        }
        self.arm(&next, o);
        next
    }
}
