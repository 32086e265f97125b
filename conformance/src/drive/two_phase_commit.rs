//! The two-phase-commit cores driven by the model (`eo_models::two_phase_commit`).
//!
//! | model step | implementation input |
//! |---|---|
//! | the client's start (submits its first transactions) | [`Client::submit`] of [`legs_of`] each |
//! | delivery of `Prepare` that leaves a vote to choose | the `Prepare` held back until the choice |
//! | a participant's vote choice `Yes(t)` / `No(t)` | the vote policy set to `Yes` / `No`, the held `Prepare` handled |
//! | other delivery / loss | [`Core::handle_message`] of / removal of a message whose abstraction is the model's |
//! | client `Retry`, coordinator `Votes` and `Resend`, participant `Query` timers | [`Core::handle_timeout`] once that role's longest interval has passed |
//! | crash / recovery | the core dropped / rebuilt with `recover` from its log |
//!
//! A recovered client re-sends its pending `Begin`s and a recovered
//! participant queries at once; the model's do so at their next timeout. The
//! driver holds those messages back until that timeout (a network may delay
//! any message) and loses those the model's timeout no longer sends (the
//! outcome learned, the transaction decided meanwhile).

use super::ack_retry::unabstracted;
use super::{DriveError, Twin};
use crate::abstraction::two_phase_commit::{self as abs, legs_of, Layout};
use crate::abstraction::{flight_view, Diff};
use eo_impl::core::{Core, NodeId, Ready, Time};
use eo_impl::release::MemLog;
use eo_impl::two_phase_commit::{
    Client, ClientRecord, Coordinator, CoordinatorRecord, Msg, Participant, ParticipantRecord,
    TxnView, VotePolicy, CLIENT_RETRY_INTERVAL_MAX, DECISION_RETRY_INTERVAL_MAX,
    QUERY_INTERVAL_MAX, VOTE_TIMEOUT,
};
use eo_models::system::{in_flight, LogMode, Step, System, SystemAction, SystemState};
use eo_models::two_phase_commit::{
    self as model, Node, NodeState, NodeStorage, TwoPhaseCfg, VoteChoice,
};
use stateright::actor::{ActorModelAction, Id};
use stateright::Model;

type Flight = Vec<(NodeId, NodeId, Msg)>;

/// The implementation's coordinator, participants and client, their logs and
/// network.
#[derive(Clone, Debug)]
pub struct TwoPhaseTwin {
    layout: Layout,
    coordinator: Option<Coordinator>,
    participants: Vec<Option<Participant>>,
    client: Option<Client>,
    clog: MemLog<CoordinatorRecord>,
    plogs: Vec<MemLog<ParticipantRecord>>,
    cllog: MemLog<ClientRecord>,
    flight: Flight,
    /// Per participant, `Prepare`s waiting for the model's vote choice.
    prepares: Vec<Vec<Msg>>,
    /// Per participant, the queries its recovery sent, held until its `Query` timeout.
    queries: Vec<Flight>,
    /// The Begins the client's recovery re-sent, held until its `Retry` timeout.
    begins: Flight,
    now: Time,
}

fn carry_out<R: Clone, E: std::fmt::Debug>(
    ready: Ready<R, Msg, E>,
    log: &mut MemLog<R>,
    from: NodeId,
    out: &mut Flight,
) {
    let Ok(release) = ready.persist(log);
    let proof = log.sync();
    if let Ok(released) = release.open(proof) {
        out.extend(released.messages.into_iter().map(|m| (from, m.to, m.msg)));
    }
}

fn refused(what: impl Into<String>, e: impl std::fmt::Display) -> DriveError {
    DriveError::Refused {
        what: what.into(),
        error: e.to_string(),
    }
}

/// The twin of `cfg` in the model's initial state: the client has submitted
/// the transactions the model's client submits on start.
pub fn twin(cfg: &TwoPhaseCfg) -> Result<TwoPhaseTwin, DriveError> {
    if cfg.log != LogMode::Atomic {
        return Err(DriveError::NotDrivable {
            what: "a syncing log (--log sync)".into(),
        });
    }
    if cfg.variant != model::Variant::Correct {
        return Err(DriveError::NotDrivable {
            what: format!("the bug variant {:?}", cfg.variant),
        });
    }
    let layout = Layout::new(cfg.participants)?;
    let n = usize::from(cfg.participants);
    let mut t = TwoPhaseTwin {
        layout,
        coordinator: Some(Coordinator::new(
            Layout::COORDINATOR,
            layout.participant_ids(),
        )),
        participants: (0..cfg.participants)
            .map(|i| {
                Some(Participant::new(
                    layout.participant(i),
                    Layout::COORDINATOR,
                    VotePolicy::Yes,
                ))
            })
            .collect(),
        client: Some(Client::new(layout.client(), Layout::COORDINATOR)),
        clog: MemLog::new(),
        plogs: vec![MemLog::new(); n],
        cllog: MemLog::new(),
        flight: Vec::new(),
        prepares: vec![Vec::new(); n],
        queries: vec![Vec::new(); n],
        begins: Vec::new(),
        now: Time::ZERO,
    };
    for tx in 0..cfg.transactions.min(cfg.in_flight) {
        if let Some(c) = t.client.as_mut() {
            c.submit(t.now, legs_of(layout, tx))
                .map_err(|e| refused(format!("the submission of t{tx}"), e))?;
        }
    }
    t.poll();
    Ok(t)
}

impl TwoPhaseTwin {
    fn poll(&mut self) {
        if let Some(c) = self.coordinator.as_mut() {
            carry_out(c.poll_ready(), &mut self.clog, 0, &mut self.flight);
        }
        for i in 0..self.participants.len() {
            let id = self.layout.participant(i as u8);
            if let Some(p) = self.participants[i].as_mut() {
                carry_out(p.poll_ready(), &mut self.plogs[i], id, &mut self.flight);
            }
        }
        let id = self.layout.client();
        if let Some(c) = self.client.as_mut() {
            carry_out(c.poll_ready(), &mut self.cllog, id, &mut self.flight);
        }
    }

    fn take(&mut self, src: Id, dst: Id, msg: &model::Msg) -> Result<Msg, DriveError> {
        let (src, dst) = (usize::from(src) as NodeId, usize::from(dst) as NodeId);
        for at in 0..self.flight.len() {
            let (f, t, m) = &self.flight[at];
            if *f == src && *t == dst && abs::msg(self.layout, m)? == *msg {
                return Ok(self.flight.remove(at).2);
            }
        }
        Err(DriveError::NoSuchMessage {
            what: format!("{src} → {dst}: {msg:?}"),
        })
    }

    fn down(what: String) -> DriveError {
        DriveError::NotDrivable {
            what: format!("a step of {what} while it is down"),
        }
    }

    fn participant_mut(&mut self, i: usize) -> Result<&mut Participant, DriveError> {
        self.participants[i]
            .as_mut()
            .ok_or_else(|| Self::down(format!("participant {}", i + 1)))
    }

    /// Hands `m` to its destination; a refused message changes nothing (the
    /// model's actors ignore what they cannot use).
    fn hand(&mut self, from: NodeId, to: NodeId, m: Msg) -> Result<(), DriveError> {
        let now = self.now;
        if to == Layout::COORDINATOR {
            let c = self
                .coordinator
                .as_mut()
                .ok_or_else(|| Self::down("the coordinator".into()))?;
            let _ = c.handle_message(now, from, m);
        } else if to == self.layout.client() {
            let c = self
                .client
                .as_mut()
                .ok_or_else(|| Self::down("the client".into()))?;
            let _ = c.handle_message(now, from, m);
        } else {
            let i = usize::from(self.layout.participant_index(to)?);
            let _ = self.participant_mut(i)?.handle_message(now, from, m);
        }
        Ok(())
    }

    fn deliver(
        &mut self,
        system: &System<Node, TwoPhaseCfg>,
        before: &SystemState<Node>,
        action: &SystemAction<Node>,
        src: Id,
        dst: Id,
        msg: &model::Msg,
    ) -> Result<(), DriveError> {
        let m = self.take(src, dst, msg)?;
        let (from, to) = (usize::from(src) as NodeId, usize::from(dst) as NodeId);
        if let model::Msg::Prepare(t) = msg {
            // Does the model leave this vote to a choice? Then so does the driver.
            let after = system.next_state(before, action.clone());
            let chooses = after.is_some_and(|a| {
                a.random_choices[usize::from(dst)]
                    .map
                    .values()
                    .any(|c| c.contains(&VoteChoice::Yes(*t)))
            });
            if chooses {
                let i = usize::from(self.layout.participant_index(to)?);
                let held = &mut self.prepares[i];
                held.retain(|p| !matches!(p, Msg::Prepare { txn, .. } if self.layout.tx_id(*txn).ok() == Some(*t)));
                held.push(m);
                return Ok(());
            }
        }
        self.hand(from, to, m)
    }

    fn choose(&mut self, actor: Id, choice: VoteChoice) -> Result<(), DriveError> {
        let i = usize::from(
            self.layout
                .participant_index(usize::from(actor) as NodeId)?,
        );
        let (t, policy) = match choice {
            VoteChoice::Yes(t) => (t, VotePolicy::Yes),
            VoteChoice::No(t) => (t, VotePolicy::No),
        };
        let layout = self.layout;
        let is_t =
            |p: &Msg| matches!(p, Msg::Prepare { txn, .. } if layout.tx_id(*txn).ok() == Some(t));
        let at = self.prepares[i]
            .iter()
            .position(is_t)
            .ok_or(DriveError::NoSuchMessage {
                what: format!(
                    "a Prepare({t:?}) waiting for the vote at participant {}",
                    i + 1
                ),
            })?;
        let prepare = self.prepares[i].remove(at);
        self.participant_mut(i)?.set_vote_policy(policy);
        let to = self.layout.participant(i as u8);
        self.hand(Layout::COORDINATOR, to, prepare)
    }

    fn timeout(&mut self, id: Id, timer: model::Timer) -> Result<(), DriveError> {
        let node = usize::from(id) as NodeId;
        match timer {
            model::Timer::Retry => {
                self.now = self.now + CLIENT_RETRY_INTERVAL_MAX;
                let now = self.now;
                let c = self
                    .client
                    .as_mut()
                    .ok_or_else(|| Self::down("the client".into()))?;
                c.handle_timeout(now);
                let pending = c.pending();
                let held = std::mem::take(&mut self.begins);
                self.flight.extend(held.into_iter().filter(
                    |(_, _, m)| matches!(m, Msg::Begin { txn, .. } if pending.contains(&txn.id)),
                ));
            }
            model::Timer::Votes | model::Timer::Resend => {
                let wait = if timer == model::Timer::Votes {
                    VOTE_TIMEOUT
                } else {
                    DECISION_RETRY_INTERVAL_MAX
                };
                self.now = self.now + wait;
                let now = self.now;
                self.coordinator
                    .as_mut()
                    .ok_or_else(|| Self::down("the coordinator".into()))?
                    .handle_timeout(now);
            }
            model::Timer::Query => {
                let i = usize::from(self.layout.participant_index(node)?);
                self.now = self.now + QUERY_INTERVAL_MAX;
                let now = self.now;
                let p = self.participant_mut(i)?;
                p.handle_timeout(now);
                let prepared: Vec<_> = p
                    .txn_views()
                    .into_iter()
                    .filter(|(_, v)| *v == TxnView::Prepared)
                    .map(|(t, _)| t)
                    .collect();
                let held = std::mem::take(&mut self.queries[i]);
                self.flight.extend(held.into_iter().filter(
                    |(_, _, m)| matches!(m, Msg::Query { txn, .. } if prepared.contains(txn)),
                ));
            }
            model::Timer::Log | model::Timer::Persist => {
                return Err(DriveError::NotDrivable {
                    what: format!("a bug variant's {timer:?} timer"),
                })
            }
        }
        Ok(())
    }

    fn crash(&mut self, id: Id) -> Result<(), DriveError> {
        let node = usize::from(id) as NodeId;
        if node == Layout::COORDINATOR {
            self.coordinator = None;
            self.clog.crash();
        } else if node == self.layout.client() {
            self.client = None;
            self.cllog.crash();
            self.begins.clear();
        } else {
            let i = usize::from(self.layout.participant_index(node)?);
            self.participants[i] = None;
            self.plogs[i].crash();
            self.prepares[i].clear();
            self.queries[i].clear();
        }
        Ok(())
    }

    fn recover(&mut self, id: Id) -> Result<(), DriveError> {
        let node = usize::from(id) as NodeId;
        let now = self.now;
        if node == Layout::COORDINATOR {
            let records = self.clog.records().to_vec();
            let c = Coordinator::recover(node, self.layout.participant_ids(), now, records)
                .map_err(|e| refused("the coordinator's recovery", e))?;
            self.coordinator = Some(c);
        } else if node == self.layout.client() {
            let records = self.cllog.records().to_vec();
            let mut c = Client::recover(node, Layout::COORDINATOR, now, records)
                .map_err(|e| refused("the client's recovery", e))?;
            let mut held = Vec::new();
            carry_out(c.poll_ready(), &mut self.cllog, node, &mut held);
            self.begins = held;
            self.client = Some(c);
        } else {
            let i = usize::from(self.layout.participant_index(node)?);
            let records = self.plogs[i].records().to_vec();
            let mut p =
                Participant::recover(node, Layout::COORDINATOR, VotePolicy::Yes, now, records)
                    .map_err(|e| refused(format!("participant {}'s recovery", i + 1), e))?;
            let mut held = Vec::new();
            carry_out(p.poll_ready(), &mut self.plogs[i], node, &mut held);
            self.queries[i] = held;
            self.participants[i] = Some(p);
        }
        Ok(())
    }
}

impl Twin<Node, TwoPhaseCfg> for TwoPhaseTwin {
    fn step(
        &mut self,
        system: &System<Node, TwoPhaseCfg>,
        before: &SystemState<Node>,
        action: &SystemAction<Node>,
    ) -> Result<(), DriveError> {
        let Step::Actor(a) = action else {
            return Err(DriveError::NotDrivable {
                what: format!("{action:?}"),
            });
        };
        match a {
            ActorModelAction::Deliver { src, dst, msg } => {
                self.deliver(system, before, action, *src, *dst, msg)?
            }
            ActorModelAction::Drop(env) => {
                self.take(env.src, env.dst, &env.msg)?;
            }
            ActorModelAction::Timeout(id, timer) => self.timeout(*id, *timer)?,
            ActorModelAction::Crash(id) => self.crash(*id)?,
            ActorModelAction::Recover(id) => self.recover(*id)?,
            ActorModelAction::SelectRandom { actor, random, .. } => self.choose(*actor, *random)?,
        }
        self.poll();
        Ok(())
    }

    fn compare(
        &mut self,
        system: &System<Node, TwoPhaseCfg>,
        state: &SystemState<Node>,
    ) -> Result<Diff, DriveError> {
        let l = self.layout;
        let mut diff = Diff::default();
        for (i, name) in system.names.iter().enumerate() {
            let node = i as NodeId;
            type Parts = (
                Option<Result<NodeState, crate::abstraction::AbstractionError>>,
                Result<Option<NodeStorage>, crate::abstraction::AbstractionError>,
            );
            let (actual, stored): Parts = if node == Layout::COORDINATOR {
                let records = self.clog.records();
                (
                    self.coordinator
                        .as_ref()
                        .map(|c| abs::coordinator_state(l, c, records).map(NodeState::Coordinator)),
                    abs::coordinator_storage(l, records)
                        .map(|s| s.map(|s| NodeStorage::Coordinator(s.into()))),
                )
            } else if node == l.client() {
                let records = self.cllog.records();
                (
                    self.client
                        .as_ref()
                        .map(|c| abs::client_state(l, c, records).map(NodeState::Client)),
                    abs::client_storage(l, records)
                        .map(|s| s.map(|s| NodeStorage::Client(s.into()))),
                )
            } else {
                let p = l.participant_index(node)?;
                let records = self.plogs[usize::from(p)].records();
                let core = self.participants[usize::from(p)].as_ref();
                let stored = abs::participant_storage(l, p, records);
                (
                    core.map(|c| {
                        abs::participant_state(l, p, c, records).map(NodeState::Participant)
                    }),
                    stored.map(|s| s.map(|s| NodeStorage::Participant(s.into()))),
                )
            };
            let up = actual.is_some();
            if up == state.crashed[i] {
                diff.check(format!("{name}.crashed"), &state.crashed[i], &!up);
                continue;
            }
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
        let mut abstracted = Vec::with_capacity(self.flight.len());
        for (f, t, m) in &self.flight {
            abstracted.push((
                Id::from(*f as usize),
                Id::from(*t as usize),
                abs::msg(l, m)?,
            ));
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
