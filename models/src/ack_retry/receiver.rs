//! The ack-retry **receiver**: applies each message once and acknowledges every
//! delivery, with bounded dedup state — as `impl/src/ack_retry/receiver.rs`.
//!
//! Per sender the receiver keeps a [`Dedup`]: a *high-water mark* `hwm` (every
//! seq `<= hwm` is applied) and the seqs applied out of order above it, all
//! within the *window* `(hwm + 1, hwm + W]`. Applying a message appends its id
//! to the durable ledger (the effect) and updates the dedup record, in ONE save:
//! the transactional approach. The acknowledgement `Ack { hwm, seq }` leaves with
//! that save and tells the sender both the seq and the high-water mark (every
//! seq at or below it is applied).
//!
//! A delivery already applied (`seq <= hwm` or in the window set) is a
//! duplicate: not applied again, but acknowledged again — its sender
//! retransmitted because an earlier acknowledgement was lost, and would retry
//! forever otherwise. A seq beyond `hwm + W` is refused without an answer, as the
//! implementation refuses it with `SeqBeyondWindow`: the sender will retransmit
//! it, and a correct sender (in flight `F <= W`) never sends one. The refusal is
//! recorded in the ghost flag [`ReceiverState::refused`], which only the
//! `within-window` property reads.
//!
//! **Incarnations.** A sender's seqs belong to an incarnation. A
//! `NewIncarnation { nonce }` is granted the next incarnation (incarnations only
//! grow, across all senders), saved before the `Granted` leaves; a repeated
//! request with the same nonce is answered with the same incarnation (the
//! implementation grants a fresh one each time and the sender adopts the first
//! that matches its nonce; answering alike keeps the model finite and changes
//! only the numbers). The dedup state belongs to the newest incarnation that
//! sent data: that incarnation's first message starts it afresh and fences the
//! older ones, whose data is answered `Expired` and never applied.
//!
//! Several bug variants change exactly one of these decisions; each is described
//! on [`Variant`].

use super::{Inc, Msg, MsgId, Node, NodeStorage, Seq, Seqs, Timer, Variant};
use stateright::actor::{model_timeout, Id, Out};
use std::fmt;

/// Which seqs of one incarnation of a sender are applied: every seq `<= hwm`,
/// and those in `above`. `above` never holds `hwm + 1` (it would have been
/// absorbed into the high-water mark) and, in the correct protocol, only seqs
/// in the window.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Dedup {
    pub inc: Inc,
    pub hwm: Seq,
    pub above: Seqs,
}

impl Dedup {
    pub fn contains(self, seq: Seq) -> bool {
        seq <= self.hwm || self.above.contains(seq)
    }

    /// Whether `seq` lies within the window `hwm + window`.
    pub fn in_window(self, seq: Seq, window: Seq) -> bool {
        u16::from(seq) <= u16::from(self.hwm) + u16::from(window)
    }

    /// Marks `seq` applied and advances the high-water mark over every seq
    /// applied without a gap.
    pub fn insert(&mut self, seq: Seq) {
        self.above.insert(seq);
        while self.above.contains(self.hwm + 1) {
            self.above.remove(self.hwm + 1);
            self.hwm += 1;
        }
    }

    /// The highest seq applied (0: none).
    pub fn highest(self) -> Seq {
        self.above.highest().unwrap_or(0).max(self.hwm)
    }
}

impl fmt::Debug for Dedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inc != 0 {
            write!(f, "inc {} ", self.inc)?;
        }
        if self.above.is_empty() {
            write!(f, "≤{}", self.hwm)
        } else {
            write!(f, "≤{}+{:?}", self.hwm, self.above)
        }
    }
}

/// What the receiver knows of one sender.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The last incarnation granted to the sender (0: the one it was installed with).
    pub granted: Inc,
    /// The nonce of the request `granted` answered, if any.
    pub nonce: Option<u8>,
    /// Dedup state of the newest incarnation that sent data.
    pub dedup: Dedup,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.granted != 0 {
            write!(f, "granted {} ", self.granted)?;
        }
        self.dedup.fmt(f)
    }
}

/// What the receiver keeps across crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverStorage {
    /// The effects applied, as message ids, sorted; a duplicate id is a double
    /// application.
    pub ledger: Vec<MsgId>,
    /// Per sender, its incarnation and the seqs already applied.
    pub senders: Vec<Entry>,
    /// The last incarnation granted to any sender.
    pub last_granted: Inc,
}

/// The receiver's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverState {
    pub ledger: Vec<MsgId>,
    pub senders: Vec<Entry>,
    pub last_granted: Inc,
    /// Work between the two steps of a split variant (`non-atomic-apply`,
    /// `ack-before-persist`), in arrival order; always empty in the correct
    /// protocol.
    pub pending: Vec<MsgId>,
    /// The incarnation and seq of each `pending` message.
    pub pending_seqs: Vec<(Inc, Seq)>,
    /// Ghost, read only by `within-window`: a data message beyond the window was
    /// refused since the receiver last started.
    pub refused: bool,
}

#[derive(Clone, Debug)]
pub struct Receiver {
    pub senders: u8,
    /// `W`: the receiver applies a seq only within `hwm + W`.
    pub window: Seq,
    pub variant: Variant,
}

fn insert_sorted(v: &mut Vec<MsgId>, id: MsgId) {
    let at = v.partition_point(|x| *x <= id);
    v.insert(at, id);
}

/// What the receiver does with a data message.
enum Verdict {
    /// Of a fenced incarnation: answered `Expired`, never applied.
    Expired,
    Duplicate,
    /// Beyond the window: refused, unanswered.
    Refused,
    Apply,
}

impl Receiver {
    fn save(&self, o: &mut Out<Node>, state: &ReceiverState) {
        let senders = state
            .senders
            .iter()
            .map(|e| {
                let d = e.dedup;
                let dedup = match self.variant {
                    // The bug: the dedup record is not saved; only the ledger is.
                    Variant::VolatileDedup => Dedup {
                        inc: d.inc,
                        ..Dedup::default()
                    },
                    // The bug: only the high-water mark is saved, not the window above it.
                    Variant::VolatileWindow => Dedup {
                        above: Seqs::EMPTY,
                        ..d
                    },
                    // The bug: one number is saved, the highest seq applied, as if
                    // every seq below it were applied.
                    Variant::HwmPastGap => Dedup {
                        hwm: d.highest(),
                        above: Seqs::EMPTY,
                        ..d
                    },
                    _ => d,
                };
                Entry { dedup, ..*e }
            })
            .collect();
        o.save(NodeStorage::Receiver(ReceiverStorage {
            ledger: state.ledger.clone(),
            senders,
            last_granted: state.last_granted,
        }));
    }

    fn verdict(&self, entry: &Entry, inc: Inc, seq: Seq) -> Verdict {
        let dedup = entry.dedup;
        let fenced = match self.variant {
            // The bug: only the current incarnation counts as "not new".
            Variant::StaleEpochAccepted => false,
            _ => inc < dedup.inc,
        };
        if fenced {
            return Verdict::Expired;
        }
        if inc != dedup.inc {
            // A newer incarnation starts afresh (in `stale-epoch-accepted`, an
            // older one too).
            return if Dedup::default().in_window(seq, self.window) {
                Verdict::Apply
            } else {
                Verdict::Refused
            };
        }
        let duplicate = match self.variant {
            Variant::NoDedup => false,
            // The bug: anything at or below the highest applied number counts as
            // seen, so a message overtaken by a later one is dropped — and acked.
            Variant::HighWaterMarkDedup => seq <= dedup.highest(),
            _ => dedup.contains(seq),
        };
        if duplicate {
            Verdict::Duplicate
        } else if dedup.in_window(seq, self.window) {
            Verdict::Apply
        } else {
            Verdict::Refused
        }
    }

    /// Records `seq` of `inc` as applied in `dedup`, as this variant does.
    fn record(&self, dedup: &mut Dedup, inc: Inc, seq: Seq) {
        if inc != dedup.inc {
            *dedup = Dedup {
                inc,
                ..Dedup::default()
            };
        }
        if self.variant == Variant::HighWaterMarkDedup {
            dedup.hwm = dedup.highest().max(seq);
            dedup.above = Seqs::EMPTY;
        } else {
            dedup.insert(seq);
        }
    }

    pub fn on_start(&self, storage: Option<&ReceiverStorage>) -> ReceiverState {
        match storage {
            Some(s) => ReceiverState {
                ledger: s.ledger.clone(),
                senders: s.senders.clone(),
                last_granted: s.last_granted,
                pending: Vec::new(),
                pending_seqs: Vec::new(),
                refused: false,
            },
            None => ReceiverState {
                ledger: Vec::new(),
                senders: vec![Entry::default(); usize::from(self.senders)],
                last_granted: 0,
                pending: Vec::new(),
                pending_seqs: Vec::new(),
                refused: false,
            },
        }
    }

    pub fn on_msg(
        &self,
        state: &ReceiverState,
        src: Id,
        msg: Msg,
        o: &mut Out<Node>,
    ) -> Option<ReceiverState> {
        let sender = u8::try_from(usize::from(src))
            .ok()
            .filter(|s| *s < self.senders)?;
        let index = usize::from(sender);
        match msg {
            Msg::Data { inc, seq, msg } => self.on_data(state, src, inc, seq, msg, o),
            Msg::NewIncarnation { nonce } => {
                let entry = state.senders[index];
                if entry.nonce == Some(nonce) {
                    // A repeated request: the same answer.
                    o.send(
                        src,
                        Msg::Granted {
                            nonce,
                            inc: entry.granted,
                        },
                    );
                    return None;
                }
                let mut next = state.clone();
                next.last_granted += 1;
                next.senders[index].granted = next.last_granted;
                next.senders[index].nonce = Some(nonce);
                self.save(o, &next);
                o.send(
                    src,
                    Msg::Granted {
                        nonce,
                        inc: next.last_granted,
                    },
                );
                Some(next)
            }
            _ => None,
        }
    }

    fn on_data(
        &self,
        state: &ReceiverState,
        src: Id,
        inc: Inc,
        seq: Seq,
        msg: u8,
        o: &mut Out<Node>,
    ) -> Option<ReceiverState> {
        let sender = u8::try_from(usize::from(src)).ok()?;
        let index = usize::from(sender);
        let id = MsgId { sender, msg };
        let entry = state.senders[index];
        let hwm = entry.dedup.hwm;
        if state.pending.contains(&id) {
            // Mid-way through a split apply: `ack-before-persist` has acked it
            // already and acks again; `non-atomic-apply` acks when it finishes.
            if self.variant == Variant::AckBeforePersist {
                o.send(src, Msg::Ack { inc, hwm, seq });
            }
            return None;
        }
        match self.verdict(&entry, inc, seq) {
            Verdict::Expired => {
                o.send(src, Msg::Expired { inc });
                None
            }
            Verdict::Duplicate => {
                // The `no-reack` bug: a duplicate is dropped unacknowledged.
                if self.variant != Variant::NoReack {
                    o.send(src, Msg::Ack { inc, hwm, seq });
                }
                None
            }
            Verdict::Refused => {
                // Refused, unanswered: the sender retransmits it later.
                if state.refused {
                    return None;
                }
                let mut next = state.clone();
                next.refused = true;
                Some(next)
            }
            Verdict::Apply => {
                let mut next = state.clone();
                match self.variant {
                    Variant::NonAtomicApply => {
                        // The bug: the effect is saved now, the dedup record in a
                        // later step.
                        insert_sorted(&mut next.ledger, id);
                        self.save(o, &next);
                        next.pending.push(id);
                        next.pending_seqs.push((inc, seq));
                        o.set_timer(Timer::RecordDedup, model_timeout());
                    }
                    Variant::AckBeforePersist => {
                        // The bug: the ack leaves now, the effect is saved in a
                        // later step.
                        o.send(src, Msg::Ack { inc, hwm, seq });
                        next.pending.push(id);
                        next.pending_seqs.push((inc, seq));
                        o.set_timer(Timer::Persist, model_timeout());
                    }
                    _ => {
                        insert_sorted(&mut next.ledger, id);
                        self.record(&mut next.senders[index].dedup, inc, seq);
                        self.save(o, &next);
                        let hwm = next.senders[index].dedup.hwm;
                        o.send(src, Msg::Ack { inc, hwm, seq });
                    }
                }
                Some(next)
            }
        }
    }

    pub fn on_timeout(
        &self,
        state: &ReceiverState,
        timer: Timer,
        o: &mut Out<Node>,
    ) -> Option<ReceiverState> {
        if state.pending.is_empty() {
            return None;
        }
        let mut next = state.clone();
        let pending = std::mem::take(&mut next.pending);
        let seqs = std::mem::take(&mut next.pending_seqs);
        match timer {
            Timer::RecordDedup => {
                for (id, (inc, seq)) in pending.iter().zip(&seqs) {
                    self.record(&mut next.senders[usize::from(id.sender)].dedup, *inc, *seq);
                }
                self.save(o, &next);
                for (id, (inc, seq)) in pending.iter().zip(&seqs) {
                    let hwm = next.senders[usize::from(id.sender)].dedup.hwm;
                    o.send(
                        Id::from(usize::from(id.sender)),
                        Msg::Ack {
                            inc: *inc,
                            hwm,
                            seq: *seq,
                        },
                    );
                }
            }
            Timer::Persist => {
                for (id, (inc, seq)) in pending.iter().zip(&seqs) {
                    insert_sorted(&mut next.ledger, *id);
                    self.record(&mut next.senders[usize::from(id.sender)].dedup, *inc, *seq);
                }
                self.save(o, &next);
            }
            _ => return None,
        }
        Some(next)
    }
}
