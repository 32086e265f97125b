//! Ack-retry: the adapted cores' system (`eo check impl-ack-retry`,
//! [`crate::actors::ack_retry`]) refines the ack-retry model's system
//! (`eo_models::ack_retry`) of the same configuration, with the model's
//! receiver window `W` set to the sender's in-flight bound `F` (the smallest
//! the model allows; the cores' window is 64 and a correct sender never
//! leaves `F`).
//!
//! `A`, part by part (the adapter encodes application message `n` of sender
//! `s` as the transfer `s → RECEIVER_ACCOUNT` of amount `n`):
//!
//! | model | implementation |
//! |---|---|
//! | `SenderState.inc` | the core's incarnation: the installed one ↦ 0, a later grant ↦ its model incarnation in the [`Grants`] history |
//! | `SenderState.next`, `.outbox` | `Sender::next_seq`, the seqs of `Sender::outbox` (each checked to carry message `first + seq − 1`) |
//! | `Ghost.first`, `.losses` | the adapter's ghost: `handed + 2 − next`, its disk losses |
//! | `ReceiverState.ledger` | the messages of the `Applied` records in the receiver's log, sorted |
//! | `Entry.granted`, `.dedup` | `Receiver::dedup_snapshots`: `granted`, `incarnation`, `hwm`, `above`, incarnations through [`Grants`] |
//! | `Entry.nonce` | the model nonce of the request that the sender's last grant answered ([`Grants`]) |
//! | `ReceiverState.last_granted` | `Receiver::last_granted` through [`Grants`] (the installed ones ↦ 0) |
//! | `ReceiverState.refused` | the adapter's `refused` flag (`SeqBeyondWindow`) |
//! | storage | the state the core's `recover` rebuilds from the stored records, mapped as above; none stored, or the installed log (or a prefix of it) alone ↦ none |
//! | network | each message mapped — but a `Granted` for a request its sender holds an incarnation for (see below) — (`NewIncarnation { nonce }` ↦ nonce `/ NONCE_STRIDE`, the disk's number), copies beyond the model's bound absorbed, the network's kind and per-link order kept |
//! | timers | `Submit` ↦ `Submit`, `Deadline` ↦ `Retry`, `DiskLoss` ↦ `DiskLoss` |
//! | unsynced tails | each append mapped, an append equal to the value it follows dropped (as the model's system does); held sends mapped |
//! | crashes, disk losses, liveness | as they are |
//!
//! **History.** The cores' receiver grants a fresh incarnation to every
//! request, a retransmitted one included; the model's answers a repeated nonce
//! with the incarnation it granted (`eo_models::ack_retry::receiver`). So the
//! implementation's incarnation `k` is the model's incarnation the model
//! receiver granted for the same request: [`Grants`] records it when the
//! receiver grants `k`, read off the model's own successor for that delivery.
//!
//! Two grants for one request are two messages in the implementation and
//! one in the model (its copies of an envelope are bounded), so when the
//! sender adopts one, the other has no model counterpart. It can change
//! nothing: a sender ignores grants while it holds an incarnation, and gives
//! one up only with its disk (its next request has a new nonce) or to an
//! `Expired` of its own current incarnation, which only a newer life of it
//! can provoke. `A` leaves such a *spent* grant out of the network; should
//! it ever change something after all, that step would map to no model step
//! and fail the check.
//!
//! **Compound step.** A recovering sender's core re-sends its whole outbox in
//! the recovery step; the model's sender re-sends it at its next `Retry`
//! timeout. A recovery may therefore map to the model's recovery followed by
//! that sender's `Retry` ([`Abstraction::follows`]).

use crate::abstraction::ack_retry::{Layout, SEQ_ABSTRACT_MAX};
use crate::abstraction::{narrow, AbstractionError};
use crate::actors::ack_retry::{
    self as adapted, transfer, ImplAckRetry, ImplAckRetryCfg, ImplState, Wire, NONCE_STRIDE,
};
use crate::refinement::check::Abstraction;
use eo_impl::ack_retry::{Msg as ImplMsg, Receiver, ReceiverRecord, Sender, SenderRecord};
use eo_impl::core::{NodeId, Time};
use eo_models::ack_retry::receiver::{Dedup, Entry, ReceiverState, ReceiverStorage};
use eo_models::ack_retry::sender::{Ghost, SenderState, SenderStorage};
use eo_models::ack_retry::{self as model, AckRetry, AckRetryCfg, Inc, MsgId, Seqs, Variant};
use eo_models::system::{reshape, History, Step, SystemAction, SystemState, Tail};
use stateright::actor::{ActorModelAction, Envelope, Id, Network, RandomChoices, Timers};
use stateright::util::{HashableHashMap, HashableHashSet};
use stateright::Model;
use std::collections::{BTreeMap, VecDeque};

/// One grant after installation: the implementation's incarnation, the
/// sender it went to, and the model's incarnation and nonce for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    pub incarnation: u64,
    pub sender: u8,
    pub inc: Inc,
    pub nonce: u8,
}

/// The history `A` needs: every grant after installation (the latest grant
/// of an incarnation number replaces an earlier one a crash undid).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Grants(pub Vec<Grant>);

impl Grants {
    fn find(&self, incarnation: u64) -> Option<&Grant> {
        self.0.iter().find(|g| g.incarnation == incarnation)
    }
}

/// The ack-retry abstraction for one adapter configuration.
pub struct AckRetryRefinement {
    layout: Layout,
    copies_max: usize,
    spec: AckRetry,
}

/// The model configuration an adapter configuration refines: the same
/// numbers, network and log, the correct variant, and window `W = F`.
pub fn spec_cfg(cfg: &ImplAckRetryCfg) -> AckRetryCfg {
    AckRetryCfg {
        senders: cfg.senders,
        messages: cfg.messages,
        window: cfg.in_flight,
        in_flight: cfg.in_flight,
        crashes: cfg.crashes,
        disk_losses: cfg.disk_losses,
        network: cfg.network,
        variant: Variant::Correct,
        log: cfg.log,
    }
}

impl AckRetryRefinement {
    pub fn new(cfg: &ImplAckRetryCfg) -> AckRetryRefinement {
        let spec = spec_cfg(cfg).into_model();
        AckRetryRefinement {
            layout: Layout::new(cfg.senders),
            copies_max: spec.copies_max,
            spec,
        }
    }

    /// The model's incarnation for `sender`'s implementation incarnation.
    fn inc(&self, sender: u8, incarnation: u64, grants: &Grants) -> Result<Inc, AbstractionError> {
        if incarnation == self.layout.installed_incarnation(sender) {
            return Ok(0);
        }
        grants
            .find(incarnation)
            .filter(|g| g.sender == sender)
            .map(|g| g.inc)
            .ok_or(AbstractionError::ForeignIncarnation {
                sender: NodeId::from(sender),
                incarnation,
            })
    }

    fn sender(&self, id: Id) -> Result<u8, AbstractionError> {
        self.layout.sender_index(usize::from(id) as NodeId)
    }

    fn sender_state(
        &self,
        sender: u8,
        core: &Sender,
        handed: u8,
        losses: u8,
        grants: &Grants,
    ) -> Result<SenderState, AbstractionError> {
        let inc = core
            .incarnation()
            .map(|k| self.inc(sender, k, grants))
            .transpose()?;
        let next = narrow("next seq", core.next_seq(), Seqs::CAPACITY)?;
        let first = (u16::from(handed) + 2)
            .checked_sub(u16::from(next))
            .ok_or_else(|| AbstractionError::GhostMismatch {
                what: "messages handed over against the next seq",
                ghost: format!("{handed} handed over"),
                actual: format!("next seq {next}"),
            })?;
        let first = narrow(
            "first message of the incarnation",
            u64::from(first),
            u8::MAX,
        )?;
        let mut outbox = Seqs::EMPTY;
        for (seq, t) in core.outbox() {
            let seq = narrow("outbox seq", seq, SEQ_ABSTRACT_MAX)?;
            let msg = u16::from(first) + u16::from(seq) - 1;
            let expected = transfer(NodeId::from(sender), u8::try_from(msg).unwrap_or(u8::MAX));
            if t != expected {
                return Err(AbstractionError::GhostMismatch {
                    what: "the message an outbox seq carries",
                    ghost: format!("{expected:?}"),
                    actual: format!("{t:?}"),
                });
            }
            outbox.insert(seq);
        }
        Ok(SenderState {
            inc,
            next,
            outbox,
            ghost: Ghost { first, losses },
        })
    }

    fn sender_storage(
        &self,
        sender: u8,
        records: &[SenderRecord],
        ghost: adapted::Ghost,
        grants: &Grants,
    ) -> Result<SenderStorage, AbstractionError> {
        let (id, receiver) = (NodeId::from(sender), self.layout.receiver());
        let core = if records.is_empty() {
            Sender::new(id, receiver, Time::ZERO, 0)
        } else {
            Sender::recover(id, receiver, Time::ZERO, 0, records.iter().cloned())
                .map_err(|e| AbstractionError::Recover(e.to_string()))?
        };
        let s = self.sender_state(sender, &core, ghost.handed, ghost.losses, grants)?;
        Ok(SenderStorage {
            inc: s.inc,
            next: s.next,
            outbox: s.outbox,
            ghost: s.ghost,
        })
    }

    fn ledger(&self, records: &[ReceiverRecord]) -> Result<Vec<MsgId>, AbstractionError> {
        let mut ledger = Vec::new();
        for r in records {
            if let ReceiverRecord::Applied {
                from, transfer: t, ..
            } = r
            {
                let sender = self.layout.sender_index(*from)?;
                let msg = narrow("applied message", t.amount.max(0) as u64, u8::MAX)?;
                if *t != transfer(*from, msg) || msg == 0 {
                    return Err(AbstractionError::ForeignPayload {
                        what: format!("{t:?} applied for sender {sender}"),
                    });
                }
                ledger.push(MsgId { sender, msg });
            }
        }
        ledger.sort_unstable();
        Ok(ledger)
    }

    fn entries(
        &self,
        core: &Receiver,
        grants: &Grants,
    ) -> Result<(Vec<Entry>, Inc), AbstractionError> {
        let snapshots = core.dedup_snapshots();
        let mut senders = Vec::with_capacity(usize::from(self.layout.senders));
        for s in 0..self.layout.senders {
            let Some(d) = snapshots.iter().find(|d| d.sender == NodeId::from(s)) else {
                return Err(AbstractionError::NotModelled {
                    what: format!("sender {s} is not tracked (retired, or never installed)"),
                });
            };
            if d.floor != self.layout.installed_incarnation(s) {
                return Err(AbstractionError::NotModelled {
                    what: format!("sender {s}'s entry starts at incarnation {}", d.floor),
                });
            }
            let inc = match d.incarnation {
                0 => 0,
                k => self.inc(s, k, grants)?,
            };
            let mut above = Seqs::EMPTY;
            for &q in &d.above {
                above.insert(narrow(
                    "seq applied above the high-water mark",
                    q,
                    SEQ_ABSTRACT_MAX,
                )?);
            }
            senders.push(Entry {
                granted: self.inc(s, d.granted, grants)?,
                nonce: grants.find(d.granted).map(|g| g.nonce),
                dedup: Dedup {
                    inc,
                    hwm: narrow("high-water mark", d.hwm, SEQ_ABSTRACT_MAX)?,
                    above,
                },
            });
        }
        if let Some(extra) = snapshots
            .iter()
            .find(|d| d.sender >= self.layout.receiver())
        {
            return Err(AbstractionError::UnknownNode {
                node: extra.sender,
                expected: "a sender",
            });
        }
        let last = core.last_granted();
        let last_granted = if last == u64::from(self.layout.senders) {
            0
        } else {
            grants
                .find(last)
                .map(|g| g.inc)
                .ok_or(AbstractionError::NotModelled {
                    what: format!("last granted incarnation {last} has no recorded grant"),
                })?
        };
        Ok((senders, last_granted))
    }

    fn receiver_storage(
        &self,
        records: &[ReceiverRecord],
        grants: &Grants,
    ) -> Result<ReceiverStorage, AbstractionError> {
        let core = Receiver::recover(self.layout.receiver(), Time::ZERO, records.iter().cloned())
            .map_err(|e| AbstractionError::Recover(e.to_string()))?;
        let (senders, last_granted) = self.entries(&core, grants)?;
        Ok(ReceiverStorage {
            ledger: self.ledger(records)?,
            senders,
            last_granted,
        })
    }

    fn node_state(
        &self,
        index: usize,
        state: &adapted::NodeState,
        grants: &Grants,
    ) -> Result<model::NodeState, AbstractionError> {
        Ok(match state {
            adapted::NodeState::Sender { core, ghost, .. } => {
                let s = self.sender(Id::from(index))?;
                model::NodeState::Sender(self.sender_state(
                    s,
                    core,
                    ghost.handed,
                    ghost.losses,
                    grants,
                )?)
            }
            adapted::NodeState::Receiver { core, log, refused } => {
                let (senders, last_granted) = self.entries(core, grants)?;
                model::NodeState::Receiver(ReceiverState {
                    ledger: self.ledger(log)?,
                    senders,
                    last_granted,
                    pending: Vec::new(),
                    pending_seqs: Vec::new(),
                    refused: *refused,
                })
            }
            adapted::NodeState::Failed { error } => {
                return Err(AbstractionError::NotModelled {
                    what: format!("actor {index} failed to recover: {error}"),
                })
            }
        })
    }

    /// Whether `storage` is the log an actor is installed with, or a prefix
    /// of it (what the adapter's first save appends before its own records,
    /// under a syncing log), with nothing of the application's: what the
    /// model keeps as no storage at all.
    fn installed(&self, index: usize, storage: &adapted::NodeStorage) -> bool {
        let (senders, receiver) = self.layout.install();
        match storage {
            adapted::NodeStorage::Sender { records, ghost } => {
                *ghost == adapted::Ghost::default()
                    && senders
                        .get(index)
                        .is_some_and(|installed| installed.starts_with(records))
            }
            adapted::NodeStorage::Receiver { records } => receiver.starts_with(records),
        }
    }

    /// The model's storage for a stored value: none for the installed log
    /// (see [`Self::installed`]).
    fn stored(
        &self,
        index: usize,
        storage: &adapted::NodeStorage,
        grants: &Grants,
    ) -> Result<Option<model::NodeStorage>, AbstractionError> {
        if self.installed(index, storage) {
            return Ok(None);
        }
        self.node_storage(index, storage, grants).map(Some)
    }

    fn node_storage(
        &self,
        index: usize,
        storage: &adapted::NodeStorage,
        grants: &Grants,
    ) -> Result<model::NodeStorage, AbstractionError> {
        Ok(match storage {
            adapted::NodeStorage::Sender { records, ghost } => {
                let s = self.sender(Id::from(index))?;
                model::NodeStorage::Sender(self.sender_storage(s, records, *ghost, grants)?)
            }
            adapted::NodeStorage::Receiver { records } => {
                model::NodeStorage::Receiver(self.receiver_storage(records, grants)?)
            }
        })
    }

    /// The model's message for `msg` from `src` to `dst`.
    pub fn msg(
        &self,
        src: Id,
        dst: Id,
        msg: &Wire,
        grants: &Grants,
    ) -> Result<model::Msg, AbstractionError> {
        let seq = |what, q| narrow(what, q, SEQ_ABSTRACT_MAX);
        let nonce = |n: u64| narrow("nonce's disk number", n / NONCE_STRIDE, u8::MAX);
        Ok(match msg.0 {
            ImplMsg::Data {
                incarnation,
                seq: q,
                transfer: t,
            } => {
                let s = self.sender(src)?;
                let m = narrow("data message", t.amount.max(0) as u64, u8::MAX)?;
                if t != transfer(NodeId::from(s), m) {
                    return Err(AbstractionError::ForeignPayload {
                        what: format!("data from sender {s} carries {t:?}"),
                    });
                }
                model::Msg::Data {
                    inc: self.inc(s, incarnation, grants)?,
                    seq: seq("data seq", q)?,
                    msg: m,
                }
            }
            ImplMsg::Ack {
                incarnation,
                hwm,
                seq: q,
            } => {
                let s = self.sender(dst)?;
                model::Msg::Ack {
                    inc: self.inc(s, incarnation, grants)?,
                    hwm: seq("ack hwm", hwm)?,
                    seq: seq("ack seq", q)?,
                }
            }
            ImplMsg::NewIncarnation { nonce: n } => {
                self.sender(src)?;
                model::Msg::NewIncarnation { nonce: nonce(n)? }
            }
            ImplMsg::Granted {
                nonce: n,
                incarnation,
            } => {
                let s = self.sender(dst)?;
                model::Msg::Granted {
                    nonce: nonce(n)?,
                    inc: self.inc(s, incarnation, grants)?,
                }
            }
            ImplMsg::Expired { incarnation } => {
                let s = self.sender(dst)?;
                model::Msg::Expired {
                    inc: self.inc(s, incarnation, grants)?,
                }
            }
        })
    }

    fn network(
        &self,
        network: &Network<Wire>,
        grants: &Grants,
        spent: &dyn Fn(Id, &model::Msg) -> bool,
    ) -> Result<Network<model::Msg>, AbstractionError> {
        let envelope = |e: &Envelope<Wire>| -> Result<Envelope<model::Msg>, AbstractionError> {
            Ok(Envelope {
                src: e.src,
                dst: e.dst,
                msg: self.msg(e.src, e.dst, &e.msg, grants)?,
            })
        };
        Ok(match network {
            Network::UnorderedDuplicating(set, last) => {
                let mut out = HashableHashSet::default();
                for e in set.iter() {
                    let e = envelope(e)?;
                    if !spent(e.dst, &e.msg) {
                        out.insert(e);
                    }
                }
                Network::UnorderedDuplicating(out, last.as_ref().map(envelope).transpose()?)
            }
            Network::UnorderedNonDuplicating(multiset) => {
                let mut out: HashableHashMap<Envelope<model::Msg>, usize> =
                    HashableHashMap::default();
                for (e, n) in multiset.iter() {
                    let e = envelope(e)?;
                    if !spent(e.dst, &e.msg) {
                        *out.entry(e).or_insert(0) += *n;
                    }
                }
                for n in out.values_mut() {
                    *n = (*n).min(self.copies_max);
                }
                Network::UnorderedNonDuplicating(out)
            }
            Network::Ordered(channels) => {
                let mut out: BTreeMap<(Id, Id), VecDeque<model::Msg>> = BTreeMap::new();
                for ((src, dst), queue) in channels {
                    let mut mapped: VecDeque<model::Msg> = VecDeque::new();
                    for m in queue {
                        let m = self.msg(*src, *dst, m, grants)?;
                        if !spent(*dst, &m)
                            && mapped.iter().filter(|x| **x == m).count() < self.copies_max
                        {
                            mapped.push_back(m);
                        }
                    }
                    if !mapped.is_empty() {
                        out.insert((*src, *dst), mapped);
                    }
                }
                Network::Ordered(out)
            }
        })
    }

    fn timer(t: &adapted::Timer) -> model::Timer {
        match t {
            adapted::Timer::Submit => model::Timer::Submit,
            adapted::Timer::Deadline => model::Timer::Retry,
            adapted::Timer::DiskLoss => model::Timer::DiskLoss,
        }
    }

    fn tail(
        &self,
        index: usize,
        tail: &Tail<adapted::NodeStorage, Wire>,
        durable: Option<&model::NodeStorage>,
        grants: &Grants,
    ) -> Result<Tail<model::NodeStorage, model::Msg>, AbstractionError> {
        let mut appends: Vec<model::NodeStorage> = Vec::new();
        for a in &tail.appends {
            let a = self.stored(index, a, grants)?;
            let current = appends.last().or(durable);
            match a {
                Some(a) if current != Some(&a) => appends.push(a),
                Some(_) => {}
                None if current.is_none() => {}
                None => {
                    return Err(AbstractionError::NotModelled {
                        what: format!("actor {index} appends its installed log again"),
                    })
                }
            }
        }
        let src = Id::from(index);
        let mut held: Vec<(Id, model::Msg)> = Vec::new();
        for (dst, m) in &tail.held {
            let send = (*dst, self.msg(src, *dst, m, grants)?);
            if held.iter().filter(|h| **h == send).count() < self.copies_max {
                held.push(send);
            }
        }
        Ok(Tail { appends, held })
    }
}

impl Abstraction<ImplAckRetry> for AckRetryRefinement {
    type Spec = model::Node;
    type SpecCfg = AckRetryCfg;
    type Ghost = Grants;

    fn spec(&self) -> &AckRetry {
        &self.spec
    }

    fn state(
        &self,
        s: &ImplState,
        grants: &Grants,
    ) -> Result<SystemState<model::Node>, AbstractionError> {
        let n = s.actor_states.len();
        let mut actor_states = Vec::with_capacity(n);
        let mut actor_storages = Vec::with_capacity(n);
        for i in 0..n {
            actor_states.push(std::sync::Arc::new(self.node_state(
                i,
                &s.actor_states[i],
                grants,
            )?));
            actor_storages.push(match &s.actor_storages[i] {
                Some(st) => self.stored(i, st, grants)?,
                None => None,
            });
        }
        let timers_set = s
            .timers_set
            .iter()
            .map(|t| {
                let mut m = Timers::new();
                for x in t.iter() {
                    m.set(Self::timer(x));
                }
                m
            })
            .collect();
        let mut tails = Vec::with_capacity(s.history.tails.len());
        for (i, t) in s.history.tails.iter().enumerate() {
            tails.push(self.tail(i, t, actor_storages[i].as_ref(), grants)?);
        }
        // A grant for a request its sender has had answered: see `spent`.
        let holds = |dst: Id, nonce: u8| {
            let i = usize::from(dst);
            let sender = if s.crashed.get(i).copied().unwrap_or(false) {
                match actor_storages.get(i) {
                    Some(Some(model::NodeStorage::Sender(st))) => Some((st.inc, st.ghost)),
                    Some(None) => Some((
                        Some(0),
                        Ghost {
                            first: 1,
                            losses: 0,
                        },
                    )),
                    _ => None,
                }
            } else {
                match actor_states.get(i).map(|a| &**a) {
                    Some(model::NodeState::Sender(st)) => Some((st.inc, st.ghost)),
                    _ => None,
                }
            };
            sender.is_some_and(|(inc, ghost)| inc.is_some() && ghost.losses == nonce)
        };
        let spent = |dst: Id, m: &model::Msg| match m {
            model::Msg::Granted { nonce, .. } => holds(dst, *nonce),
            _ => false,
        };
        let network = self.network(&s.network, grants, &spent)?;
        let mut a = SystemState::<model::Node> {
            actor_states,
            network,
            timers_set,
            random_choices: vec![RandomChoices::default(); n],
            crashed: s.crashed.clone(),
            history: History {
                crashes: s.history.crashes,
                disk_losses: s.history.disk_losses,
                shape: Default::default(),
                tails,
            },
            actor_storages,
        };
        reshape(&mut a);
        Ok(a)
    }

    fn ghost_after(
        &self,
        before: &ImplState,
        action: &SystemAction<adapted::Node>,
        after: &ImplState,
        grants: &Grants,
        abstract_before: &SystemState<model::Node>,
    ) -> Grants {
        let Step::Actor(ActorModelAction::Deliver { src, dst, msg }) = action else {
            return grants.clone();
        };
        let ImplMsg::NewIncarnation { nonce } = msg.0 else {
            return grants.clone();
        };
        let last = |s: &ImplState| match s.actor_states.get(usize::from(*dst)).map(|a| &**a) {
            Some(adapted::NodeState::Receiver { core, .. }) => Some(core.last_granted()),
            _ => None,
        };
        let (Some(k), true) = (last(after), last(after) != last(before)) else {
            return grants.clone();
        };
        let Ok(sender) = self.sender(*src) else {
            return grants.clone();
        };
        let Ok(m) = self.msg(*src, *dst, msg, grants) else {
            return grants.clone();
        };
        // The model's incarnation for this request: the model's own answer.
        let deliver = Step::Actor(ActorModelAction::Deliver {
            src: *src,
            dst: *dst,
            msg: m,
        });
        let granted = self
            .spec
            .next_state(abstract_before, deliver)
            .and_then(|t| match &*t.actor_states[usize::from(*dst)] {
                model::NodeState::Receiver(r) => r.senders.get(usize::from(sender)).copied(),
                model::NodeState::Sender(_) => None,
            });
        let mut next = grants.clone();
        next.0.retain(|g| g.incarnation != k);
        if let Some(entry) = granted {
            next.0.push(Grant {
                incarnation: k,
                sender,
                inc: entry.granted,
                nonce: narrow("nonce's disk number", nonce / NONCE_STRIDE, u8::MAX)
                    .unwrap_or(u8::MAX),
            });
        }
        next
    }

    fn action(
        &self,
        _: &ImplState,
        action: &SystemAction<adapted::Node>,
        grants: &Grants,
    ) -> Option<SystemAction<model::Node>> {
        Some(match action {
            Step::Actor(a) => Step::Actor(match a {
                ActorModelAction::Deliver { src, dst, msg } => ActorModelAction::Deliver {
                    src: *src,
                    dst: *dst,
                    msg: self.msg(*src, *dst, msg, grants).ok()?,
                },
                ActorModelAction::Drop(e) => ActorModelAction::Drop(Envelope {
                    src: e.src,
                    dst: e.dst,
                    msg: self.msg(e.src, e.dst, &e.msg, grants).ok()?,
                }),
                ActorModelAction::Timeout(id, t) => ActorModelAction::Timeout(*id, Self::timer(t)),
                ActorModelAction::Crash(id) => ActorModelAction::Crash(*id),
                ActorModelAction::Recover(id) => ActorModelAction::Recover(*id),
                ActorModelAction::SelectRandom { .. } => return None,
            }),
            Step::LoseDisk(id) => Step::LoseDisk(*id),
            Step::Sync(id) => Step::Sync(*id),
            Step::CrashUnsynced {
                actor,
                kept,
                pending,
            } => Step::CrashUnsynced {
                actor: *actor,
                kept: *kept,
                pending: *pending,
            },
        })
    }

    fn follows(
        &self,
        first: &SystemAction<model::Node>,
        second: &SystemAction<model::Node>,
    ) -> bool {
        matches!(
            (first, second),
            (
                Step::Actor(ActorModelAction::Recover(a)),
                Step::Actor(ActorModelAction::Timeout(b, model::Timer::Retry)),
            ) if a == b
        )
    }
}

/// Checks that `eo check impl-ack-retry`'s system for `cfg` refines the model.
pub fn check(
    cfg: &ImplAckRetryCfg,
) -> Result<crate::refinement::Outcome, crate::refinement::RefinementError> {
    check_model(&cfg.clone().into_model(), cfg)
}

/// Checks that `implementation` (an adapted system for `cfg`, perhaps with a
/// fault planted) refines the model of `cfg`.
pub fn check_model<M>(
    implementation: &M,
    cfg: &ImplAckRetryCfg,
) -> Result<crate::refinement::Outcome, crate::refinement::RefinementError>
where
    M: Model<State = ImplState, Action = SystemAction<adapted::Node>>,
{
    crate::refinement::check::check(implementation, &Wrapped(AckRetryRefinement::new(cfg)))
}

/// [`AckRetryRefinement`] for any model with the adapted system's states and
/// actions (the checked system, or a test's wrapper planting a fault).
struct Wrapped(AckRetryRefinement);

impl<M> Abstraction<M> for Wrapped
where
    M: Model<State = ImplState, Action = SystemAction<adapted::Node>>,
{
    type Spec = model::Node;
    type SpecCfg = AckRetryCfg;
    type Ghost = Grants;

    fn spec(&self) -> &AckRetry {
        &self.0.spec
    }
    fn state(
        &self,
        s: &ImplState,
        g: &Grants,
    ) -> Result<SystemState<model::Node>, AbstractionError> {
        <AckRetryRefinement as Abstraction<ImplAckRetry>>::state(&self.0, s, g)
    }
    fn ghost_after(
        &self,
        b: &ImplState,
        a: &SystemAction<adapted::Node>,
        n: &ImplState,
        g: &Grants,
        ab: &SystemState<model::Node>,
    ) -> Grants {
        <AckRetryRefinement as Abstraction<ImplAckRetry>>::ghost_after(&self.0, b, a, n, g, ab)
    }
    fn action(
        &self,
        s: &ImplState,
        a: &SystemAction<adapted::Node>,
        g: &Grants,
    ) -> Option<SystemAction<model::Node>> {
        <AckRetryRefinement as Abstraction<ImplAckRetry>>::action(&self.0, s, a, g)
    }
    fn follows(&self, a: &SystemAction<model::Node>, b: &SystemAction<model::Node>) -> bool {
        <AckRetryRefinement as Abstraction<ImplAckRetry>>::follows(&self.0, a, b)
    }
}
