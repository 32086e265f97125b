//! The ack-retry cores driven by the model (`eo_models::ack_retry`).
//!
//! | model step | implementation input |
//! |---|---|
//! | sender's `Submit` timer | [`Sender::submit`] of the next message's [`transfer_of`] |
//! | sender's `Retry` timer | [`Core::handle_timeout`] once every backoff is due, and the re-sends a recovery held back |
//! | sender's `DiskLoss` timer | the log wiped, [`Sender::new`] with a fresh nonce |
//! | delivery / loss | [`Core::handle_message`] of / removal of a message whose abstraction is the model's |
//! | crash | the core dropped (its log keeps what was synced: all of it, atomic log) |
//! | recovery | [`Sender::recover`] / [`Receiver::recover`] from the log |
//!
//! After each input every live core's `Ready` is carried out in full
//! (persist, sync, open with the proof), its messages put in flight.
//!
//! A recovered sender re-sends its whole outbox at once; the model's sender
//! re-sends at its next `Retry` timeout. The driver holds those re-sends back
//! until that timeout (a network may delay any message), and loses those of
//! messages acknowledged meanwhile (a network may lose any message), which the
//! model's `Retry` no longer sends, so that the two networks stay comparable.

use super::{DriveError, Twin};
use crate::abstraction::ack_retry::{
    self as abs, transfer_of, Ghost, Layout, Nonces, ReceiverGhost,
};
use crate::abstraction::{flight_view, Diff};
use eo_impl::ack_retry::{
    Msg, Receiver, ReceiverError, ReceiverRecord, Sender, SenderRecord, RETRY_INTERVAL_MAX,
};
use eo_impl::core::{Core, NodeId, Ready, Time};
use eo_impl::release::{Log, MemLog};
use eo_models::ack_retry::{self as model, AckRetryCfg, MsgId, Node, NodeState, NodeStorage};
use eo_models::system::{in_flight, LogMode, Step, System, SystemAction, SystemState};
use stateright::actor::{ActorModelAction, Id};

/// A hook applied to every receiver the twin creates or recovers: a test's
/// fault knob (for example the at-least-once baseline of feature
/// `bench-baseline`). `None` for the real receiver.
pub type ReceiverHook = fn(&mut Receiver);

type Flight = Vec<(NodeId, NodeId, Msg)>;

/// The implementation's senders and receiver, their logs and network.
#[derive(Clone, Debug)]
pub struct AckRetryTwin {
    layout: Layout,
    senders: Vec<Option<Sender>>,
    receiver: Option<Receiver>,
    slogs: Vec<MemLog<SenderRecord>>,
    rlog: MemLog<ReceiverRecord>,
    ghosts: Vec<Ghost>,
    rghost: ReceiverGhost,
    nonces: Nonces,
    flight: Flight,
    /// Per sender, what its recovery re-sent, held until its `Retry` timeout.
    held: Vec<Flight>,
    now: Time,
    /// The next boot's nonce (the driver's, as a real driver's random one).
    boot: u64,
    hook: Option<ReceiverHook>,
}

/// The twin of `cfg` in the model's initial state: installed cores (see
/// [`Layout::install`]) and empty networks.
pub fn twin(cfg: &AckRetryCfg, hook: Option<ReceiverHook>) -> Result<AckRetryTwin, DriveError> {
    if cfg.log != LogMode::Atomic {
        return Err(DriveError::NotDrivable {
            what: "a syncing log (--log sync)".into(),
        });
    }
    let layout = Layout::new(cfg.senders);
    let (sender_logs, receiver_log) = layout.install();
    let mut t = AckRetryTwin {
        layout,
        senders: Vec::new(),
        receiver: None,
        slogs: Vec::new(),
        rlog: MemLog::new(),
        ghosts: vec![
            Ghost {
                first: 1,
                losses: 0
            };
            usize::from(cfg.senders)
        ],
        rghost: ReceiverGhost::installed(layout),
        nonces: Nonces::default(),
        flight: Vec::new(),
        held: vec![Vec::new(); usize::from(cfg.senders)],
        now: Time::ZERO,
        boot: 1 << 32,
        hook,
    };
    for (i, records) in sender_logs.into_iter().enumerate() {
        let mut log = MemLog::new();
        for r in &records {
            let _ = log.append(r);
        }
        log.sync();
        t.slogs.push(log);
        t.senders.push(None);
        t.recover_sender(i)?;
    }
    for r in &receiver_log {
        let _ = t.rlog.append(r);
    }
    t.rlog.sync();
    t.recover_receiver()?;
    t.poll();
    Ok(t)
}

fn carry_out<R: Clone, E: std::fmt::Debug>(
    ready: Ready<R, Msg, E>,
    log: &mut MemLog<R>,
    from: NodeId,
    out: &mut Flight,
) {
    let Ok(release) = ready.persist(log);
    let proof = log.sync();
    // A proof of the sync just made covers the release: it cannot refuse.
    if let Ok(released) = release.open(proof) {
        out.extend(released.messages.into_iter().map(|m| (from, m.to, m.msg)));
    }
}

impl AckRetryTwin {
    fn next_boot(&mut self) -> u64 {
        self.boot += 1 << 16;
        self.boot
    }

    fn recover_sender(&mut self, i: usize) -> Result<(), DriveError> {
        let nonce = self.next_boot();
        let records = self.slogs[i].records().to_vec();
        let sender = Sender::recover(
            i as NodeId,
            self.layout.receiver(),
            self.now,
            nonce,
            records,
        )
        .map_err(|e| DriveError::Refused {
            what: format!("sender {i}'s recovery"),
            error: e.to_string(),
        })?;
        self.senders[i] = Some(sender);
        self.note_request(i);
        // What the recovery re-sends waits for the model's Retry timeout.
        let mut resent = Vec::new();
        if let Some(s) = self.senders[i].as_mut() {
            carry_out(s.poll_ready(), &mut self.slogs[i], i as NodeId, &mut resent);
        }
        self.held[i] = resent;
        Ok(())
    }

    fn recover_receiver(&mut self) -> Result<(), DriveError> {
        let mut receiver = Receiver::recover(
            self.layout.receiver(),
            self.now,
            self.rlog.records().to_vec(),
        )
        .map_err(|e| DriveError::Refused {
            what: "the receiver's recovery".into(),
            error: e.to_string(),
        })?;
        if let Some(hook) = self.hook {
            hook(&mut receiver);
        }
        self.receiver = Some(receiver);
        self.rghost.refused = false;
        Ok(())
    }

    /// A sender asking for an incarnation asks under the model's nonce: its
    /// disk losses so far.
    fn note_request(&mut self, i: usize) {
        if let Some(nonce) = self.senders[i].as_ref().and_then(Sender::requesting) {
            self.nonces.insert(i as u8, nonce, self.ghosts[i].losses);
        }
    }

    fn poll(&mut self) {
        for i in 0..self.senders.len() {
            if let Some(s) = self.senders[i].as_mut() {
                carry_out(
                    s.poll_ready(),
                    &mut self.slogs[i],
                    i as NodeId,
                    &mut self.flight,
                );
            }
        }
        let from = self.layout.receiver();
        if let Some(r) = self.receiver.as_mut() {
            carry_out(r.poll_ready(), &mut self.rlog, from, &mut self.flight);
        }
    }

    fn abstract_msg(&self, from: NodeId, to: NodeId, m: &Msg) -> Result<model::Msg, DriveError> {
        Ok(abs::msg(self.layout, &self.nonces, from, to, m)?)
    }

    /// Removes the first message in flight from `src` to `dst` whose
    /// abstraction is `msg`.
    fn take(&mut self, src: Id, dst: Id, msg: &model::Msg) -> Result<Msg, DriveError> {
        let (src, dst) = (usize::from(src) as NodeId, usize::from(dst) as NodeId);
        for at in 0..self.flight.len() {
            let (f, t, m) = &self.flight[at];
            if *f == src && *t == dst && self.abstract_msg(*f, *t, m)? == *msg {
                return Ok(self.flight.remove(at).2);
            }
        }
        Err(DriveError::NoSuchMessage {
            what: format!("{src} → {dst}: {msg:?}"),
        })
    }

    fn sender_mut(&mut self, i: usize) -> Result<&mut Sender, DriveError> {
        self.senders[i].as_mut().ok_or(DriveError::NotDrivable {
            what: format!("a step of sender {i} while it is down"),
        })
    }

    fn deliver(&mut self, src: Id, dst: Id, msg: &model::Msg) -> Result<(), DriveError> {
        let m = self.take(src, dst, msg)?;
        let from = usize::from(src) as NodeId;
        let to = usize::from(dst);
        let now = self.now;
        if to == usize::from(self.layout.senders) {
            let receiver = self.receiver.as_mut().ok_or(DriveError::NotDrivable {
                what: "a delivery to the receiver while it is down".into(),
            })?;
            let granted_before = receiver.last_granted();
            let result = receiver.handle_message(now, from, m);
            if let Err(ReceiverError::SeqBeyondWindow { .. }) = result {
                self.rghost.refused = true;
            }
            if let (Msg::NewIncarnation { nonce }, Some(r)) = (m, self.receiver.as_ref()) {
                if r.last_granted() > granted_before {
                    let s = self.layout.sender_index(from)?;
                    self.rghost.nonces[usize::from(s)] = Some(self.nonces.model(s, nonce)?);
                }
            }
        } else {
            let ghost = self.ghosts[to];
            let sender = self.sender_mut(to)?;
            let before = (sender.incarnation(), sender.next_seq());
            // A refused message (an ack for seqs never sent) changes nothing.
            let _ = sender.handle_message(now, from, m);
            if let (Some(_), None) = (before.0, sender.incarnation()) {
                // Expired: the application's next message starts the next
                // incarnation's seq 1.
                let first = u16::from(ghost.first) + before.1 as u16 - 1;
                self.ghosts[to].first = u8::try_from(first).unwrap_or(u8::MAX);
                self.note_request(to);
            }
        }
        Ok(())
    }

    fn timeout(&mut self, id: Id, timer: model::Timer) -> Result<(), DriveError> {
        let i = usize::from(id);
        match timer {
            model::Timer::Submit => {
                let ghost = self.ghosts[i];
                let now = self.now;
                let sender = self.sender_mut(i)?;
                let msg = u16::from(ghost.first) + sender.next_seq() as u16 - 1;
                let id = MsgId {
                    sender: i as u8,
                    msg: u8::try_from(msg).unwrap_or(u8::MAX),
                };
                sender
                    .submit(now, transfer_of(id))
                    .map_err(|e| DriveError::Refused {
                        what: format!("the submission of {id:?}"),
                        error: e.to_string(),
                    })?;
            }
            model::Timer::Retry => {
                // Every backoff is at most RETRY_INTERVAL_MAX: all are due.
                self.now = self.now + RETRY_INTERVAL_MAX;
                let now = self.now;
                let sender = self.sender_mut(i)?;
                sender.handle_timeout(now);
                // A held re-send of a message acknowledged meanwhile is one
                // the model's Retry no longer sends: the network loses it.
                let held = std::mem::take(&mut self.held[i]);
                let sender = self.sender_mut(i)?;
                let live: Flight = held
                    .into_iter()
                    .filter(|(_, _, m)| match m {
                        Msg::Data { seq, .. } => sender.is_outstanding(*seq),
                        _ => true,
                    })
                    .collect();
                self.flight.extend(live);
            }
            model::Timer::DiskLoss => {
                let ghost = self.ghosts[i];
                let next = self.sender_mut(i)?.next_seq();
                self.slogs[i].wipe();
                let handed_over = u16::from(ghost.first) + next as u16 - 2;
                self.ghosts[i] = Ghost {
                    first: u8::try_from(handed_over + 1).unwrap_or(u8::MAX),
                    losses: ghost.losses + 1,
                };
                let nonce = self.next_boot();
                self.senders[i] = Some(Sender::new(
                    i as NodeId,
                    self.layout.receiver(),
                    self.now,
                    nonce,
                ));
                self.held[i].clear();
                self.note_request(i);
            }
            model::Timer::Persist | model::Timer::RecordDedup => {
                return Err(DriveError::NotDrivable {
                    what: format!("a bug variant's {timer:?} timer"),
                })
            }
        }
        Ok(())
    }

    fn is_receiver(&self, id: Id) -> bool {
        usize::from(id) == usize::from(self.layout.senders)
    }
}

/// Records that `name`'s implementation state has no model state, beside the
/// model's.
pub(crate) fn unabstracted<T: std::fmt::Debug>(
    diff: &mut Diff,
    name: &str,
    expected: &T,
    error: &crate::abstraction::AbstractionError,
) {
    diff.0.push(crate::abstraction::FieldDiff {
        field: name.to_owned(),
        expected: format!("{expected:?}"),
        actual: format!("no model state: {error}"),
    });
}

impl Twin<Node, AckRetryCfg> for AckRetryTwin {
    fn step(
        &mut self,
        _system: &System<Node, AckRetryCfg>,
        _before: &SystemState<Node>,
        action: &SystemAction<Node>,
    ) -> Result<(), DriveError> {
        let Step::Actor(action) = action else {
            return Err(DriveError::NotDrivable {
                what: format!("{action:?}"),
            });
        };
        match action {
            ActorModelAction::Deliver { src, dst, msg } => self.deliver(*src, *dst, msg)?,
            ActorModelAction::Drop(env) => {
                self.take(env.src, env.dst, &env.msg)?;
            }
            ActorModelAction::Timeout(id, timer) => self.timeout(*id, *timer)?,
            ActorModelAction::Crash(id) => {
                if self.is_receiver(*id) {
                    self.receiver = None;
                    self.rlog.crash();
                } else {
                    let i = usize::from(*id);
                    self.senders[i] = None;
                    self.slogs[i].crash();
                    self.held[i].clear();
                }
            }
            ActorModelAction::Recover(id) => {
                if self.is_receiver(*id) {
                    self.recover_receiver()?;
                } else {
                    self.recover_sender(usize::from(*id))?;
                }
            }
            ActorModelAction::SelectRandom { .. } => {
                return Err(DriveError::NotDrivable {
                    what: "a random choice (ack-retry has none)".into(),
                })
            }
        }
        self.poll();
        Ok(())
    }

    fn compare(
        &mut self,
        system: &System<Node, AckRetryCfg>,
        state: &SystemState<Node>,
    ) -> Result<Diff, DriveError> {
        let l = self.layout;
        let mut diff = Diff::default();
        let receiver_index = usize::from(l.senders);
        for (i, name) in system.names.iter().enumerate() {
            let up = if i == receiver_index {
                self.receiver.is_some()
            } else {
                self.senders[i].is_some()
            };
            if up == state.crashed[i] {
                diff.check(format!("{name}.crashed"), &state.crashed[i], &!up);
                continue;
            }
            // A part without a model state is a difference too, shown as
            // the reason, so that the other fields still diagnose.
            let (actual, stored) = if i == receiver_index {
                let state = self
                    .receiver
                    .as_ref()
                    .map(|r| abs::receiver_state(l, r, &self.rghost).map(NodeState::Receiver));
                let stored = abs::receiver_storage(l, self.rlog.records(), &self.rghost)
                    .map(|s| s.map(NodeStorage::Receiver));
                (state, stored)
            } else {
                let s = i as u8;
                let state = self.senders[i]
                    .as_ref()
                    .map(|c| abs::sender_state(l, s, c, self.ghosts[i]).map(NodeState::Sender));
                let stored = abs::sender_storage(l, s, self.slogs[i].records(), self.ghosts[i])
                    .map(|s| s.map(NodeStorage::Sender));
                (state, stored)
            };
            match actual {
                Some(Ok(actual)) if actual != *state.actor_states[i] => {
                    diff.nest(name, &*state.actor_states[i], &actual);
                }
                Some(Err(e)) => unabstracted(&mut diff, name, &*state.actor_states[i], &e),
                _ => {}
            }
            match stored {
                Ok(stored) if stored != state.actor_storages[i] => {
                    diff.nest(
                        &format!("{name} storage"),
                        &state.actor_storages[i],
                        &stored,
                    );
                }
                Ok(_) => {}
                Err(e) => unabstracted(
                    &mut diff,
                    &format!("{name} storage"),
                    &state.actor_storages[i],
                    &e,
                ),
            }
        }
        // The networks, as the model holds them.
        let mut abstracted = Vec::with_capacity(self.flight.len());
        for (f, t, m) in &self.flight {
            let m = self.abstract_msg(*f, *t, m)?;
            abstracted.push((Id::from(*f as usize), Id::from(*t as usize), m));
        }
        let view = flight_view(system, state, abstracted.iter().cloned());
        let mut expected: Vec<_> = in_flight(&state.network)
            .map(|(s, d, m)| (s, d, *m))
            .collect();
        expected.sort();
        if view != expected {
            let show = |v: &[(Id, Id, model::Msg)]| -> Vec<String> {
                v.iter()
                    .map(|(s, d, m)| format!("{} → {}: {m:?}", system.name(*s), system.name(*d)))
                    .collect()
            };
            diff.check("in flight".into(), &show(&expected), &show(&view));
        }
        // Tidy the twin's network as the model's: keep the messages the view keeps.
        let mut budget = view;
        let mut kept = Vec::with_capacity(budget.len());
        for (envelope, a) in self.flight.drain(..).zip(abstracted) {
            if let Some(at) = budget.iter().position(|b| *b == a) {
                budget.swap_remove(at);
                kept.push(envelope);
            }
        }
        self.flight = kept;
        Ok(diff)
    }
}
