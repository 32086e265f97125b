//! Ack-retry traces checked against the ack-retry model (`eo_models::ack_retry`):
//! the model's own `Sender` and `Receiver` actors are stepped by the trace's
//! events, and every record, submission and message of the trace must be one
//! the model produces at that point.
//!
//! Model configuration: one model sender per traced sender (model ids `0..S` in
//! the order of the node ids), the receiver (model id `S`), the correct variant,
//! window `W` = in-flight `F` = [`MODEL_WINDOW`], each sender's `messages` = the
//! submissions it accepted in the trace, `disk_losses` = [`DISK_LOSSES_MAX`];
//! the network is the model's `unordered-dup` (any message sent may be
//! delivered, any number of times, or never), with the atomic log (a save is
//! durable in the step that makes it).

use super::diagnosis::{Diagnosis, Mismatch};
use super::trace::{Event, Line};
use super::{Outside, ValidateError};
use eo_impl::ack_retry::{Msg as ImplMsg, ReceiverRecord, SenderRecord};
use eo_impl::NodeId;
use eo_models::ack_retry::receiver::Receiver;
use eo_models::ack_retry::sender::Sender;
use eo_models::ack_retry::{
    Inc, Msg, Node, NodeState, NodeStorage, Timer, Variant, DISK_LOSSES_MAX, MESSAGES_MAX,
    SENDERS_MAX, WINDOW_MAX,
};
use serde_json::Value;
use stateright::actor::{Actor, Command, Id, Out};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The model's window and in-flight bound: the largest the model allows, which
/// with at most [`MESSAGES_MAX`] messages per sender never limits a trace.
pub const MODEL_WINDOW: u8 = WINDOW_MAX as u8;

/// What a message on the wire stands for in the model.
#[derive(Clone, Debug)]
enum Wire {
    Model(Msg),
    /// The first incarnation's request and grant: the model installs every
    /// sender with incarnation 0, so these are stutters.
    Install,
}

/// A record the model's step saves, or a stutter record of the installation.
#[derive(Clone, Debug)]
struct Expected {
    /// `submit`, `ack`, `adopt`, `expire`, `grant`, `apply`.
    kind: &'static str,
    /// The model storage after the save (`None`: an installation record).
    storage: Option<NodeStorage>,
    /// For `apply`: the impl's (from, seq) it must be.
    applies: Option<(NodeId, u64)>,
}

/// A message the model's step produced and the trace may send.
#[derive(Clone, Debug)]
struct Allowed {
    to: NodeId,
    wire: Wire,
    /// The number of records this life must have made durable first.
    needs: usize,
    /// For an installation grant: the request's nonce it answers.
    nonce: Option<u64>,
}

/// A record of this life not yet durable: (lsn, model storage or `None` for a
/// stutter record, an installation's adoption?, a `Granted` record's (sender, nonce)).
type Appended = (u64, Option<NodeStorage>, bool, Option<(NodeId, u64)>);

#[derive(Debug)]
struct View {
    id: Id,
    actor: Node,
    sender: bool,
    /// `None` while down.
    state: Option<NodeState>,
    life: Option<u64>,
    lives_seen: BTreeSet<u64>,
    /// A sender before it adopted its first incarnation.
    installing: bool,
    /// The installing sender's current request nonce (impl).
    nonce: Option<u64>,
    timers: BTreeSet<TimerKey>,
    expected: std::collections::VecDeque<Expected>,
    /// Records of this life not yet durable: (lsn, storage or None for a
    /// stutter record, adopt?, the (sender, nonce) of a `Granted` record).
    appended: Vec<Appended>,
    /// Receiver: per sender, the nonce of the request its last grant answered,
    /// as the implementation remembers it in this life (a request with that
    /// nonce is answered again without a record) and as its durable log has it.
    grant_nonces: BTreeMap<NodeId, u64>,
    durable_grant_nonces: BTreeMap<NodeId, u64>,
    /// Records the model's steps of this life have saved so far.
    saves: usize,
    durable_lsn: u64,
    durable_storage: Option<NodeStorage>,
    durable_installed: bool,
    allowed: Vec<Allowed>,
    disk_lost: bool,
    disk_losses: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Submit,
    Retry,
    DiskLoss,
}

fn timer_key(timer: &Timer) -> Option<TimerKey> {
    match timer {
        Timer::Submit => Some(TimerKey::Submit),
        Timer::Retry => Some(TimerKey::Retry),
        Timer::DiskLoss => Some(TimerKey::DiskLoss),
        _ => None,
    }
}

/// Figures of a valid trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub events: usize,
    pub nodes: usize,
    pub model_steps: usize,
    pub stutters: usize,
    /// Model steps the trace does not show (a timer), inferred from what follows.
    pub hidden: usize,
    pub crashes: usize,
    pub disk_losses: usize,
}

pub struct Checker<'a> {
    names: &'a [String],
    views: BTreeMap<NodeId, View>,
    ids: BTreeMap<usize, NodeId>,
    network: HashMap<(NodeId, NodeId, String), Wire>,
    incs: BTreeMap<(NodeId, u64), Inc>,
    nonces: BTreeMap<(NodeId, u64), u8>,
    pub stats: Stats,
    /// Set when the last failed step was outside the model's bounds rather
    /// than a mismatch.
    pub outside: Option<Outside>,
}

fn impl_msg(value: &Value) -> Option<ImplMsg> {
    serde_json::from_value(value.clone()).ok()
}

/// A record as the runtime writes it, or wrapped in the simulator's `Left`/`Right`.
fn unwrap_either(value: &Value) -> &Value {
    value
        .get("Left")
        .or_else(|| value.get("Right"))
        .unwrap_or(value)
}

/// Whether the traces are of the ack-retry protocol: some message or record
/// names one of its kinds.
pub fn is_ack_retry(lines: &[Line]) -> bool {
    lines.iter().any(|l| match &l.event {
        Event::Send { msg, .. } | Event::Recv { msg, .. } => impl_msg(msg).is_some(),
        Event::Append { records, .. } => records.iter().any(|r| {
            let r = unwrap_either(r);
            serde_json::from_value::<SenderRecord>(r.clone()).is_ok()
                || serde_json::from_value::<ReceiverRecord>(r.clone()).is_ok()
        }),
        _ => false,
    })
}

fn record_kind(value: &Value) -> Option<(&'static str, Option<(NodeId, u64)>)> {
    let value = unwrap_either(value);
    if let Ok(r) = serde_json::from_value::<SenderRecord>(value.clone()) {
        return Some(match r {
            SenderRecord::Incarnation { .. } => ("adopt", None),
            SenderRecord::Submitted { .. } => ("submit", None),
            SenderRecord::Acked { .. } => ("ack", None),
            SenderRecord::Expired { .. } => ("expire", None),
            SenderRecord::Snapshot { .. } => ("snapshot", None),
        });
    }
    if let Ok(r) = serde_json::from_value::<ReceiverRecord>(value.clone()) {
        return Some(match r {
            ReceiverRecord::Granted { .. } => ("grant", None),
            ReceiverRecord::Applied { from, seq, .. } => ("apply", Some((from, seq))),
            ReceiverRecord::Retired { .. } => ("retire", None),
            ReceiverRecord::Snapshot { .. } => ("snapshot", None),
        });
    }
    None
}

impl<'a> Checker<'a> {
    /// Classifies the nodes (a node that sends or records data is a sender, the
    /// one that applies is the receiver) and checks the model's bounds.
    pub fn new(lines: &[Line], names: &'a [String]) -> Result<Checker<'a>, ValidateError> {
        let mut senders: BTreeSet<NodeId> = BTreeSet::new();
        let mut receivers: BTreeSet<NodeId> = BTreeSet::new();
        let mut accepted: BTreeMap<NodeId, u64> = BTreeMap::new();
        let mut nodes: BTreeSet<NodeId> = BTreeSet::new();
        for l in lines {
            nodes.insert(l.node);
            match &l.event {
                Event::Send { msg, .. } => match impl_msg(msg) {
                    Some(ImplMsg::Data { .. } | ImplMsg::NewIncarnation { .. }) => {
                        senders.insert(l.node);
                    }
                    Some(_) => {
                        receivers.insert(l.node);
                    }
                    None => {}
                },
                Event::Submit { accepted: Some(_) } => {
                    senders.insert(l.node);
                    *accepted.entry(l.node).or_default() += 1;
                }
                Event::Submit { accepted: None } => {
                    senders.insert(l.node);
                }
                _ => {}
            }
        }
        let roles_of = |n: &NodeId| senders.contains(n) as u8 + receivers.contains(n) as u8;
        if let Some(n) = nodes.iter().find(|n| roles_of(n) == 2) {
            return Err(ValidateError::Roles(format!(
                "node {n} acts as both a sender and a receiver"
            )));
        }
        // A node that never sent anything: a receiver if there is none yet.
        let silent: Vec<NodeId> = nodes.iter().copied().filter(|n| roles_of(n) == 0).collect();
        for n in &silent {
            {
                if receivers.is_empty() {
                    receivers.insert(*n);
                } else {
                    senders.insert(*n);
                }
            }
        }
        if receivers.len() != 1 {
            return Err(ValidateError::Roles(format!(
                "expected one receiver, found nodes {receivers:?} acting as receivers"
            )));
        }
        let receiver = *receivers.iter().next().expect("one receiver");
        if senders.len() > SENDERS_MAX as usize {
            return Err(ValidateError::Outside(Outside {
                bound: "senders",
                limit: u64::from(SENDERS_MAX),
                found: senders.len() as u64,
            }));
        }
        if let Some((_, n)) = accepted.iter().find(|(_, n)| **n > u64::from(MESSAGES_MAX)) {
            return Err(ValidateError::Outside(Outside {
                bound: "messages per sender",
                limit: u64::from(MESSAGES_MAX),
                found: *n,
            }));
        }
        let s = senders.len() as u8;
        let mut views = BTreeMap::new();
        let mut ids = BTreeMap::new();
        let receiver_id = Id::from(usize::from(s));
        for (i, n) in senders.iter().enumerate() {
            let actor = Node::Sender(Sender {
                receiver: receiver_id,
                messages: u8::try_from(accepted.get(n).copied().unwrap_or(0)).unwrap_or(u8::MAX),
                in_flight: MODEL_WINDOW,
                disk_losses: DISK_LOSSES_MAX as u8,
                variant: Variant::Correct,
            });
            views.insert(*n, View::new(Id::from(i), actor, true));
            ids.insert(i, *n);
        }
        let actor = Node::Receiver(Receiver {
            senders: s,
            window: MODEL_WINDOW,
            variant: Variant::Correct,
        });
        views.insert(receiver, View::new(receiver_id, actor, false));
        ids.insert(usize::from(s), receiver);
        Ok(Checker {
            names,
            views,
            ids,
            network: HashMap::new(),
            incs: BTreeMap::new(),
            nonces: BTreeMap::new(),
            outside: None,
            stats: Stats {
                nodes: nodes.len(),
                ..Stats::default()
            },
        })
    }

    /// Every node's model state, one line each.
    fn states(&self) -> Vec<String> {
        self.views
            .iter()
            .map(|(n, v)| {
                let role = if v.sender { "sender" } else { "receiver" };
                let state = match &v.state {
                    Some(s) => format!("{s:?}"),
                    None => "down".to_owned(),
                };
                format!(
                    "node {n} ({role}, model id {}): {state}; durable lsn {}; records expected {:?}{}",
                    usize::from(v.id),
                    v.durable_lsn,
                    v.expected.iter().map(|e| e.kind).collect::<Vec<_>>(),
                    if v.installing { "; installing" } else { "" }
                )
            })
            .collect()
    }

    /// The model actions allowed at node `node` (and deliveries to it).
    fn allowed(&self, node: NodeId) -> Vec<String> {
        let mut out = Vec::new();
        let Some(v) = self.views.get(&node) else {
            return out;
        };
        for e in &v.expected {
            out.push(format!("node {node}: append a `{}` record", e.kind));
        }
        for a in &v.allowed {
            out.push(format!(
                "node {node}: send {:?} to node {} (once {} record(s) of this life are durable)",
                a.wire, a.to, a.needs
            ));
        }
        for t in &v.timers {
            out.push(format!("node {node}: timer {t:?}"));
        }
        for (from, to, msg) in self.network.keys() {
            if *to == node {
                out.push(format!("node {node}: receive from node {from} {msg}"));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn fail(&self, index: usize, line: &Line, mismatch: Mismatch, detail: String) -> Diagnosis {
        Diagnosis {
            mismatch,
            detail,
            file: self.names[line.file].clone(),
            line: line.line,
            index: index + 1,
            event: line.raw.clone(),
            states: self.states(),
            allowed: self.allowed(line.node),
        }
    }

    /// Carries out the model's outputs of one step at `node`.
    fn absorb(&mut self, node: NodeId, out: Out<Node>) {
        let mut sends = Vec::new();
        let v = self.views.get_mut(&node).expect("a known node");
        for command in out.into_iter() {
            match command {
                Command::Save(storage) => {
                    v.saves += 1;
                    v.expected.push_back(Expected {
                        kind: "save",
                        storage: Some(storage),
                        applies: None,
                    });
                }
                Command::Send(to, msg) => sends.push((to, msg)),
                Command::SetTimer(t, _) => {
                    if let Some(k) = timer_key(&t) {
                        v.timers.insert(k);
                    }
                }
                Command::CancelTimer(t) => {
                    if let Some(k) = timer_key(&t) {
                        v.timers.remove(&k);
                    }
                }
                _ => {}
            }
        }
        let needs = v.saves;
        for (to, msg) in sends {
            let to = self.ids[&usize::from(to)];
            let v = self.views.get_mut(&node).expect("a known node");
            // The first step that produced a message is the one it waits for:
            // the model's network may deliver it at any later point.
            let known = v
                .allowed
                .iter()
                .any(|a| a.to == to && matches!(a.wire, Wire::Model(m) if m == msg));
            if !known {
                v.allowed.push(Allowed {
                    to,
                    wire: Wire::Model(msg),
                    needs,
                    nonce: None,
                });
            }
        }
    }

    /// Names the kind of the model's save from the states before and after.
    fn label_saves(&mut self, node: NodeId, kind: &'static str, applies: Option<(NodeId, u64)>) {
        let v = self.views.get_mut(&node).expect("a known node");
        for e in v.expected.iter_mut().filter(|e| e.kind == "save") {
            e.kind = kind;
            e.applies = applies;
        }
    }

    /// Checks one event; `Err` is the diagnosis of the first mismatch.
    pub fn step(&mut self, index: usize, line: &Line) -> Result<(), Box<Diagnosis>> {
        let node = line.node;
        let fail = |c: &Checker, m: Mismatch, d: String| Err(Box::new(c.fail(index, line, m, d)));
        // A line of an earlier life after a later life started: a zombie.
        {
            let v = &self.views[&node];
            if let Some(life) = v.life {
                if line.life != life && v.lives_seen.contains(&line.life) {
                    return fail(
                        self,
                        Mismatch::ZombieLife,
                        format!("a line of life {} after life {life} started", line.life),
                    );
                }
            }
        }
        match &line.event {
            Event::Start { lsn } => self.start(node, line.life, *lsn, index, line)?,
            Event::Stop => {
                let v = self.views.get_mut(&node).expect("a known node");
                v.state = None;
            }
            Event::Outcome => {}
            _ if self.views[&node].state.is_none() => {
                return fail(
                    self,
                    Mismatch::EventWhileDown,
                    format!("`{}` while the node is down", line.event.name()),
                )
            }
            Event::Submit { accepted: None } => {}
            Event::Submit {
                accepted: Some(seq),
            } => {
                let armed = self.views[&node].timers.contains(&TimerKey::Submit);
                let next = match &self.views[&node].state {
                    Some(NodeState::Sender(s)) => u64::from(s.next),
                    _ => 0,
                };
                if !armed || next != *seq {
                    return fail(
                        self,
                        Mismatch::UnexpectedSubmit,
                        format!(
                            "the sender accepted seq {seq}; the model {}",
                            if armed {
                                format!("would give seq {next}")
                            } else {
                                "does not submit here (no incarnation, window full or all messages submitted)".to_owned()
                            }
                        ),
                    );
                }
                self.timeout(node, Timer::Submit);
                self.label_saves(node, "submit", None);
            }
            Event::Timeout => {
                let v = &self.views[&node];
                if v.sender && v.timers.contains(&TimerKey::Retry) {
                    self.timeout(node, Timer::Retry);
                } else {
                    self.stats.stutters += 1;
                }
            }
            Event::Recv { peer, msg } => self.recv(node, *peer, msg, index, line)?,
            Event::Append { lsn, records } => self.append(node, *lsn, records, index, line)?,
            Event::Durable { lsn } | Event::Compact { lsn } => {
                let v = self.views.get_mut(&node).expect("a known node");
                let compact = matches!(line.event, Event::Compact { .. });
                for (at, storage, adopt, grant) in &v.appended {
                    if *at <= *lsn || compact {
                        if let Some(s) = storage {
                            v.durable_storage = Some(s.clone());
                        }
                        v.durable_installed |= *adopt;
                        if let Some((sender, nonce)) = grant {
                            v.durable_grant_nonces.insert(*sender, *nonce);
                        }
                    }
                }
                v.appended.retain(|(at, ..)| *at > *lsn && !compact);
                v.durable_lsn = v.durable_lsn.max(*lsn);
            }
            Event::Send { peer, msg } => self.send(node, *peer, msg, index, line)?,
            Event::DiskLost => {
                let v = self.views.get_mut(&node).expect("a known node");
                if v.sender && v.installing && v.durable_storage.is_none() && !v.durable_installed {
                    // Nothing durable yet: losing the disk is a crash, and the
                    // next start is a first start again.
                    v.state = None;
                    v.life = None;
                    self.stats.crashes += 1;
                    return Ok(());
                }
                if !v.sender || !v.timers.contains(&TimerKey::DiskLoss) {
                    let budget_left = v.disk_losses < DISK_LOSSES_MAX;
                    self.outside = Some(if budget_left {
                        Outside {
                            bound: "disk losses of a sender with no work left (the model loses a disk only while its sender has something to send, submit or ask for)",
                            limit: 0,
                            found: 1,
                        }
                    } else {
                        Outside {
                            bound: "disk losses per sender",
                            limit: u64::from(DISK_LOSSES_MAX),
                            found: u64::from(v.disk_losses + 1),
                        }
                    });
                    return Err(Box::new(self.fail(
                        index,
                        line,
                        Mismatch::EventWhileDown,
                        "a disk loss the model does not offer here (it loses only a sender's disk, while the sender has work left and its budget allows)".to_owned(),
                    )));
                }
                self.views.get_mut(&node).expect("known").disk_losses += 1;
                self.stats.disk_losses += 1;
                self.timeout(node, Timer::DiskLoss);
                let v = self.views.get_mut(&node).expect("a known node");
                // The model's loss is one durable save; the node is then down
                // until its next start on the empty disk.
                let storage = v.expected.drain(..).filter_map(|e| e.storage).next_back();
                v.durable_storage = storage;
                v.durable_lsn = 0;
                v.appended.clear();
                v.allowed.clear();
                v.state = None;
                v.disk_lost = true;
                v.saves = 0;
            }
        }
        Ok(())
    }

    fn timeout(&mut self, node: NodeId, timer: Timer) {
        let v = self.views.get_mut(&node).expect("a known node");
        let Some(state) = v.state.clone() else { return };
        let mut cow = Cow::Owned(state);
        let mut out = Out::new();
        v.actor.on_timeout(v.id, &mut cow, &timer, &mut out);
        v.state = Some(cow.into_owned());
        self.stats.model_steps += 1;
        self.absorb(node, out);
    }

    fn start(
        &mut self,
        node: NodeId,
        life: u64,
        lsn: u64,
        index: usize,
        line: &Line,
    ) -> Result<(), Box<Diagnosis>> {
        let v = self.views.get_mut(&node).expect("a known node");
        let first = v.life.is_none();
        if !first && v.state.is_some() {
            self.stats.crashes += 1; // a crash the trace cannot show
        }
        if v.disk_lost {
            v.disk_lost = false;
        } else if lsn < v.durable_lsn {
            let durable = v.durable_lsn;
            return Err(Box::new(self.fail(
                index,
                line,
                Mismatch::DurableRecordLost,
                format!("recovered up to lsn {lsn}, but lsn {durable} was durable"),
            )));
        }
        // What the restart recovered: the durable state and every record
        // appended up to `lsn` (a torn tail may have kept some).
        for (at, storage, adopt, grant) in &v.appended {
            if *at <= lsn {
                if let Some(s) = storage {
                    v.durable_storage = Some(s.clone());
                }
                v.durable_installed |= *adopt;
                if let Some((sender, nonce)) = grant {
                    v.durable_grant_nonces.insert(*sender, *nonce);
                }
            }
        }
        v.appended.clear();
        v.grant_nonces = v.durable_grant_nonces.clone();
        v.durable_lsn = lsn;
        v.expected.clear();
        v.allowed.clear();
        v.timers.clear();
        v.saves = 0;
        v.nonce = None;
        if let Some(old) = v.life {
            v.lives_seen.insert(old);
        }
        v.life = Some(life);
        v.installing =
            v.sender && !v.durable_installed && v.durable_storage.is_none() && v.disk_losses == 0;
        let mut out = Out::new();
        let state = v.actor.on_start(v.id, &v.durable_storage, &mut out);
        v.state = Some(state);
        self.stats.model_steps += 1;
        self.absorb(node, out);
        Ok(())
    }

    fn recv(
        &mut self,
        node: NodeId,
        peer: NodeId,
        msg: &Value,
        index: usize,
        line: &Line,
    ) -> Result<(), Box<Diagnosis>> {
        let key = (peer, node, msg.to_string());
        let Some(wire) = self.network.get(&key).cloned() else {
            return Err(Box::new(self.fail(
                index,
                line,
                Mismatch::ReceivedUnsent,
                format!("node {peer} never sent this message to node {node}"),
            )));
        };
        match wire {
            Wire::Install => {
                self.stats.stutters += 1;
                let v = self.views.get_mut(&node).expect("a known node");
                match impl_msg(msg) {
                    Some(ImplMsg::NewIncarnation { nonce }) if !v.sender => {
                        // The receiver grants a first incarnation: one record,
                        // one answer; a retransmitted request (the nonce its
                        // last grant answered) gets the same grant, no record.
                        if v.grant_nonces.get(&peer) != Some(&nonce) {
                            v.saves += 1;
                            v.expected.push_back(Expected {
                                kind: "grant",
                                storage: None,
                                applies: None,
                            });
                        }
                        let needs = v.saves;
                        v.allowed.push(Allowed {
                            to: peer,
                            wire: Wire::Install,
                            needs,
                            nonce: Some(nonce),
                        });
                    }
                    Some(ImplMsg::Granted { nonce, .. })
                        if v.sender && v.installing && v.nonce == Some(nonce) =>
                    {
                        v.saves += 1;
                        v.expected.push_back(Expected {
                            kind: "adopt",
                            storage: None,
                            applies: None,
                        });
                        v.installing = false;
                    }
                    _ => {}
                }
            }
            Wire::Model(model_msg) => {
                let v = self.views.get_mut(&node).expect("a known node");
                let before = v.state.clone();
                let mut cow = Cow::Owned(before.clone().expect("up"));
                let mut out = Out::new();
                let src = self.views[&peer].id;
                let v = self.views.get_mut(&node).expect("a known node");
                v.actor.on_msg(v.id, &mut cow, src, model_msg, &mut out);
                v.state = Some(cow.into_owned());
                self.stats.model_steps += 1;
                self.absorb(node, out);
                let (kind, applies) = match model_msg {
                    Msg::Data { seq, .. } => ("apply", Some((peer, u64::from(seq)))),
                    Msg::Ack { .. } => ("ack", None),
                    Msg::NewIncarnation { .. } => ("grant", None),
                    Msg::Granted { .. } => ("adopt", None),
                    Msg::Expired { .. } => ("expire", None),
                };
                let saved = self.views[&node].expected.iter().any(|e| e.kind == "save");
                let fresh = match impl_msg(msg) {
                    Some(ImplMsg::NewIncarnation { nonce }) => {
                        self.views[&node].grant_nonces.get(&peer) != Some(&nonce)
                    }
                    _ => false,
                };
                if !saved && fresh && matches!(model_msg, Msg::NewIncarnation { .. }) {
                    // A request the model takes for a repeat (a restarted sender
                    // asks again under the model's nonce of its disk's life) but
                    // the implementation does not (each boot has its own nonce):
                    // the model answers with the same incarnation and saves
                    // nothing, the implementation grants a fresh one with a record.
                    let v = self.views.get_mut(&node).expect("a known node");
                    v.saves += 1;
                    v.expected.push_back(Expected {
                        kind: "grant",
                        storage: None,
                        applies: None,
                    });
                    let needs = v.saves;
                    for a in v.allowed.iter_mut() {
                        if a.to == peer && matches!(a.wire, Wire::Model(Msg::Granted { .. })) {
                            a.needs = a.needs.max(needs);
                        }
                    }
                }
                self.label_saves(node, kind, applies);
            }
        }
        Ok(())
    }

    fn append(
        &mut self,
        node: NodeId,
        lsn: u64,
        records: &[Value],
        index: usize,
        line: &Line,
    ) -> Result<(), Box<Diagnosis>> {
        let count = records.len() as u64;
        for (k, record) in records.iter().enumerate() {
            let at = lsn + 1 + k as u64 - count;
            let Some((kind, applies)) = record_kind(record) else {
                return Err(Box::new(self.fail(
                    index,
                    line,
                    Mismatch::UnexpectedRecord,
                    format!("record {record} is not an ack-retry record"),
                )));
            };
            let v = self.views.get_mut(&node).expect("a known node");
            let matches = v.expected.front().is_some_and(|e| {
                e.kind == kind
                    && (e.applies.is_none() || applies.is_none() || {
                        let (from, seq) = applies.expect("some");
                        e.applies == Some((from, seq))
                    })
            });
            if !matches {
                let expected = v.expected.front().map(|e| e.kind);
                return Err(Box::new(self.fail(
                    index,
                    line,
                    Mismatch::UnexpectedRecord,
                    match expected {
                        Some(e) => format!(
                            "a `{kind}` record {record}; the model saves a `{e}` record here"
                        ),
                        None => format!("a `{kind}` record {record}; the model saves nothing here"),
                    },
                )));
            }
            let e = v.expected.pop_front().expect("matched");
            let adopt = e.kind == "adopt" && e.storage.is_none();
            let grant = match serde_json::from_value(unwrap_either(record).clone()) {
                Ok(ReceiverRecord::Granted { sender, nonce, .. }) => Some((sender, nonce)),
                _ => None,
            };
            if let Some((sender, nonce)) = grant {
                v.grant_nonces.insert(sender, nonce);
            }
            v.appended.push((at, e.storage, adopt, grant));
        }
        Ok(())
    }

    /// Whether the impl message is the model message under the incarnation and
    /// nonce correspondences, extending them where the message introduces one.
    fn matches(&mut self, from: NodeId, to: NodeId, msg: &ImplMsg, model: &Msg) -> bool {
        let (sender, _) = if self.views[&from].sender {
            (from, to)
        } else {
            (to, from)
        };
        let inc_is = |incs: &BTreeMap<(NodeId, u64), Inc>, i: u64, m: Inc| {
            incs.get(&(sender, i)) == Some(&m)
        };
        match (*msg, *model) {
            (
                ImplMsg::Data {
                    incarnation, seq, ..
                },
                Msg::Data { inc, seq: s, .. },
            ) => u64::from(s) == seq && inc_is(&self.incs, incarnation, inc),
            (
                ImplMsg::Ack {
                    incarnation,
                    hwm,
                    seq,
                },
                Msg::Ack {
                    inc,
                    hwm: h,
                    seq: s,
                },
            ) => u64::from(s) == seq && u64::from(h) == hwm && inc_is(&self.incs, incarnation, inc),
            (ImplMsg::Expired { incarnation }, Msg::Expired { inc }) => {
                inc_is(&self.incs, incarnation, inc)
            }
            (ImplMsg::NewIncarnation { nonce }, Msg::NewIncarnation { nonce: m }) => {
                match self.nonces.get(&(sender, nonce)) {
                    Some(known) => *known == m,
                    None => {
                        self.nonces.insert((sender, nonce), m);
                        true
                    }
                }
            }
            (ImplMsg::Granted { nonce, incarnation }, Msg::Granted { nonce: m, inc }) => {
                if self.nonces.get(&(sender, nonce)) != Some(&m) {
                    return false;
                }
                match self.incs.get(&(sender, incarnation)) {
                    Some(known) => *known == inc,
                    None => {
                        self.incs.insert((sender, incarnation), inc);
                        true
                    }
                }
            }
            _ => false,
        }
    }

    /// The first message the model allows `node` to send that is `msg`.
    fn find_allowed(&mut self, node: NodeId, peer: NodeId, msg: &ImplMsg) -> Option<usize> {
        for (i, a) in self.views[&node].allowed.clone().iter().enumerate() {
            if a.to != peer {
                continue;
            }
            let ok = match (&a.wire, msg) {
                (Wire::Install, ImplMsg::Granted { incarnation, nonce }) => {
                    a.nonce == Some(*nonce)
                        && *self.incs.entry((peer, *incarnation)).or_insert(0) == 0
                }
                (Wire::Install, _) => false,
                (Wire::Model(m), _) => self.matches(node, peer, msg, m),
            };
            if ok {
                return Some(i);
            }
        }
        None
    }

    fn send(
        &mut self,
        node: NodeId,
        peer: NodeId,
        msg_value: &Value,
        index: usize,
        line: &Line,
    ) -> Result<(), Box<Diagnosis>> {
        let Some(msg) = impl_msg(msg_value) else {
            return Err(Box::new(self.fail(
                index,
                line,
                Mismatch::UnexpectedSend,
                "not an ack-retry message".to_owned(),
            )));
        };
        if !self.views.contains_key(&peer) {
            return Err(Box::new(self.fail(
                index,
                line,
                Mismatch::UnexpectedSend,
                format!("a message to node {peer}, which has no trace"),
            )));
        }
        let key = (node, peer, msg_value.to_string());
        // The installation's request and grant.
        {
            let v = self.views.get_mut(&node).expect("a known node");
            if let ImplMsg::NewIncarnation { nonce } = msg {
                if v.installing {
                    v.nonce = Some(nonce);
                    self.network.insert(key, Wire::Install);
                    self.stats.stutters += 1;
                    return Ok(());
                }
            }
        }
        let mut found = self.find_allowed(node, peer, &msg);
        if found.is_none() && self.views[&node].timers.contains(&TimerKey::Retry) {
            // A hidden step: the model's retransmission timer (a recovered
            // sender re-sends its outbox at once, without a `timeout` line).
            self.timeout(node, Timer::Retry);
            self.stats.hidden += 1;
            found = self.find_allowed(node, peer, &msg);
        }
        let Some(i) = found else {
            return Err(Box::new(self.fail(
                index,
                line,
                Mismatch::UnexpectedSend,
                format!("the model does not send {msg:?} to node {peer} here"),
            )));
        };
        let v = &self.views[&node];
        let a = v.allowed[i].clone();
        // The records this life saved up to the step that produced the message
        // must all be appended and durable.
        let appended_now = v.saves - v.expected.len();
        let durable_now = appended_now.saturating_sub(v.appended.len());
        let durable = durable_now >= a.needs;
        if !durable {
            return Err(Box::new(self.fail(
                index,
                line,
                Mismatch::SendBeforeDurable,
                format!(
                    "{msg:?} released before the record of the step that produced it was durable (durable lsn {})",
                    v.durable_lsn
                ),
            )));
        }
        // The message stays allowed: a retransmission sends it again.
        self.network.insert(key, a.wire);
        Ok(())
    }
}

impl View {
    fn new(id: Id, actor: Node, sender: bool) -> View {
        View {
            id,
            actor,
            sender,
            state: None,
            life: None,
            lives_seen: BTreeSet::new(),
            installing: false,
            nonce: None,
            timers: BTreeSet::new(),
            expected: Default::default(),
            appended: Vec::new(),
            grant_nonces: BTreeMap::new(),
            durable_grant_nonces: BTreeMap::new(),
            saves: 0,
            durable_lsn: 0,
            durable_storage: None,
            durable_installed: false,
            allowed: Vec::new(),
            disk_lost: false,
            disk_losses: 0,
        }
    }
}
