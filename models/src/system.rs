//! A system of actors under faults, as every model in this crate checks it.
//!
//! [`System`] wraps Stateright's [`ActorModel`] and changes three things:
//!
//! - **A total crash budget.** Stateright's `max_crashes` bounds how many actors
//!   are down *at the same time*; an actor may crash and recover forever. Here
//!   `crash_budget` bounds how many crashes happen in a whole behaviour, and the
//!   count lives in the state (the model's history), so `--crashes 1` means one
//!   crash.
//! - **Crashes only while there is work in flight.** A crash is offered only
//!   while some timer is armed or some message that can still change something
//!   is in flight (the state is not *settled*). A crash after everything has
//!   settled only replays finished work — a recovered actor restarts from its
//!   storage and at most re-sends what everyone already has — while offering it
//!   would make every state non-terminal, and Stateright evaluates `eventually`
//!   properties only at terminal states. With this rule a behaviour that has
//!   settled is terminal, crash or no crash, and liveness is checked on it.
//! - **Dead messages leave the network.** A model may name messages that can no
//!   longer change any actor ([`System::dead`]); they are removed as soon as
//!   they are dead, which merges states that differ only by them.
//! - **Bounded copies in flight.** Retransmission puts another copy of a message
//!   into the network each time a timer fires. A copy beyond `copies_max` (one by
//!   default) of an envelope already in flight is absorbed: it merges with the
//!   copy in flight. Nothing observable is lost — the sender can retransmit the
//!   same message again once the copy in flight has been delivered or lost, which
//!   yields the same deliveries in the same orders — and the state space stays
//!   finite.
//!
//! - **Exact fingerprints.** Stateright hashes each actor's armed timers and
//!   pending random choices as a bare run of element hashes, without how many
//!   there are, so two states that differ only in *which* actor holds a timer
//!   hash alike and the checker explores one of them. The [`History`] therefore
//!   keeps a [`Shape`] — per actor, how many timers and pending choices it
//!   holds — recomputed after every step (and by every symmetry
//!   `representative`), which makes the hashed stream decode uniquely.
//!
//! It also names the actors, so that counterexamples and the Explorer's sequence
//! diagrams read `sender 0 → receiver: Data(1)` rather than `Id(0) → Id(2)`.

use crate::catalog::ConfigError;
use crate::check::ProgressProperty;
use stateright::actor::{
    Actor, ActorModel, ActorModelAction, ActorModelState, Command, Envelope, Id, LossyNetwork,
    Network, Out, RandomChoices, Timers,
};
use stateright::{Model, Path, Property};
use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;

/// The most actors a [`System`] may have: the width of a [`Shape`].
pub const ACTORS_MAX: usize = 8;

/// Per actor, how many timers it has armed and how many random choices it has
/// pending, and how many distinct envelopes are in flight. Hashed with the
/// state (it is part of the [`History`]) so that the element hashes Stateright
/// writes for each actor's timers and choices are attributed to one actor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    /// Per actor: (timers armed, random choices pending).
    held: [(u8, u8); ACTORS_MAX],
    /// Distinct envelopes (or ordered channels) in the network.
    network: u16,
}

impl Shape {
    /// The shape of `state`.
    pub fn of<A: Actor>(state: &SystemState<A>) -> Shape {
        let mut held = [(0, 0); ACTORS_MAX];
        // A Timers set holds each value of the actor's closed Timer enum at most
        // once, and a choice map one entry per key: both stay far below u8::MAX.
        for (i, timers) in state.timers_set.iter().enumerate() {
            held[i].0 = u8::try_from(timers.iter().count()).unwrap_or(u8::MAX);
        }
        for (i, choices) in state.random_choices.iter().enumerate() {
            held[i].1 = u8::try_from(choices.map.len()).unwrap_or(u8::MAX);
        }
        let network = match &state.network {
            Network::UnorderedDuplicating(set, _) => set.len(),
            Network::UnorderedNonDuplicating(multiset) => multiset.len(),
            Network::Ordered(channels) => channels.len(),
        };
        Shape {
            held,
            network: u16::try_from(network).unwrap_or(u16::MAX),
        }
    }
}

/// How a step's save becomes durable (see [`System::log`] and docs/system.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogMode {
    /// A step's save is durable at once, and its sends leave at once.
    #[default]
    Atomic,
    /// A save is an append to the actor's pending tail, durable only once a
    /// `Sync` step syncs the tail; the step's sends wait for that sync. A crash
    /// keeps any prefix of the pending appends and drops the waiting sends.
    Sync,
}

impl LogMode {
    /// `atomic` or `sync`, as `--log` takes it.
    pub fn name(self) -> &'static str {
        match self {
            LogMode::Atomic => "atomic",
            LogMode::Sync => "sync",
        }
    }

    /// Reads `--log` (absent: `default`).
    pub fn parse(text: Option<&str>, default: LogMode) -> Result<LogMode, ConfigError> {
        match text {
            None => Ok(default),
            Some("atomic") => Ok(LogMode::Atomic),
            Some("sync") => Ok(LogMode::Sync),
            Some(other) => Err(ConfigError(format!(
                "--log {other} is not a log mode: it must be atomic or sync"
            ))),
        }
    }
}

/// Under [`LogMode::Sync`], what one actor has appended but not yet synced:
/// the storage snapshot after each append (storage in these models is one
/// whole value, so an append is the value it leaves), and the messages its
/// steps sent meanwhile, in order, held until the sync. Empty under
/// [`LogMode::Atomic`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tail<S, M> {
    pub appends: Vec<S>,
    pub held: Vec<(Id, M)>,
}

impl<S, M> Default for Tail<S, M> {
    fn default() -> Self {
        Tail {
            appends: Vec::new(),
            held: Vec::new(),
        }
    }
}

impl<S, M> Tail<S, M> {
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty() && self.held.is_empty()
    }
}

/// The history every [`System`] keeps: how many crashes and disk losses have
/// happened so far, the state's [`Shape`], and each actor's unsynced [`Tail`].
/// All of it is hashed with the state; the tails' vectors hash their lengths,
/// so the fingerprint stays exact.
///
/// Every step clones the history with the state, so it is kept cheap: under
/// [`LogMode::Atomic`] no actor ever has a tail and `tails` stays an empty
/// vector, which clones and drops without touching the allocator (a vector of
/// one empty tail per actor cost an allocation and a free per step, and
/// hashing a length per actor).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct History<S, M> {
    pub crashes: u8,
    /// Disk losses so far (see [`System::disk_loss_budget`]); not counted in
    /// `crashes`.
    pub disk_losses: u8,
    pub shape: Shape,
    /// Under [`LogMode::Sync`], per actor (one entry each once the system
    /// starts), its unsynced tail; under [`LogMode::Atomic`], empty.
    pub tails: Vec<Tail<S, M>>,
}

impl<S, M> Default for History<S, M> {
    fn default() -> Self {
        History {
            crashes: 0,
            disk_losses: 0,
            shape: Shape::default(),
            tails: Vec::new(),
        }
    }
}

/// The history of a system of `A` actors.
pub type SystemHistory<A> = History<<A as Actor>::Storage, <A as Actor>::Msg>;

/// The state of a [`System`]: Stateright's actor-system state with a crash count,
/// its shape and the actors' unsynced tails.
pub type SystemState<A> = ActorModelState<A, SystemHistory<A>>;

/// Recomputes the shape of `state` after its timers, choices or network changed
/// (every step does it; a symmetry `representative` must do it too).
pub fn reshape<A: Actor>(state: &mut SystemState<A>) {
    state.history.shape = Shape::of(state);
}

/// A step of a [`System`]: one of Stateright's actor-system actions, or a
/// fault only a [`System`] injects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step<M, T, R> {
    /// A delivery, loss, timeout, crash, recovery or random choice.
    Actor(ActorModelAction<M, T, R>),
    /// The actor crashes and its storage is cleared: it later recovers through
    /// `on_start` with no storage, as if on a new disk. Under
    /// [`LogMode::Sync`] its unsynced tail and held sends go too.
    LoseDisk(Id),
    /// [`LogMode::Sync`]: the actor's pending appends become durable and the
    /// sends held behind them leave, in order.
    Sync(Id),
    /// [`LogMode::Sync`]: the actor crashes with `pending` unsynced appends,
    /// of which the first `kept` reached the disk; its held sends are dropped.
    /// (With nothing pending a crash is `Step::Actor(Crash)`.)
    CrashUnsynced { actor: Id, kept: u8, pending: u8 },
}

/// Whether an actor's pending random choice can no longer change anything
/// (see [`System::dead_choice`]).
pub type DeadChoice<A, C> = fn(&C, &SystemState<A>, Id, &[<A as Actor>::Random]) -> bool;

/// An action of a [`System`].
pub type SystemAction<A> = Step<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random>;

/// How one save becomes records of a syncing log (see [`System::records`]).
pub type Records<A, C> = fn(
    &C,
    Id,
    Option<&<A as Actor>::Storage>,
    &<A as Actor>::Storage,
) -> Vec<<A as Actor>::Storage>;

/// A system of named actors with a total crash budget. See the module docs.
#[derive(Clone)]
pub struct System<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    /// The actors, their network and configuration, without Stateright's own
    /// crash actions (those come from [`System`]).
    pub actors: ActorModel<A, C, SystemHistory<A>>,
    /// Display names, one per actor, in id order.
    pub names: Vec<String>,
    /// How many crashes a behaviour may contain in total.
    pub crash_budget: u8,
    /// Whether an actor may crash at all.
    pub may_crash: Vec<bool>,
    /// How many disk losses a behaviour may contain in total (none by
    /// default). A disk loss is a crash that also clears the actor's storage;
    /// it is offered under the same rule as a crash (only while the state is
    /// not settled) and counted apart from crashes, in
    /// [`History::disk_losses`].
    pub disk_loss_budget: u8,
    /// Whether an actor may lose its disk (no actor by default).
    pub may_lose_disk: Vec<bool>,
    /// How a save becomes durable ([`LogMode::Atomic`] by default).
    pub log: LogMode,
    /// Under [`LogMode::Sync`], per actor: its sends leave at once instead of
    /// waiting for the sync of what its step appended (a bug variant's flag:
    /// "acknowledge before the sync"). All false by default.
    pub releases_before_sync: Vec<bool>,
    /// Under [`LogMode::Sync`]: the records one save of actor `id` appends,
    /// given the storage it replaces (durable or pending) and the new one.
    /// By default one record, the new value; a model may split a save into
    /// several records (the last must be the new value), each of which a
    /// crash may keep or lose with the ones after it.
    pub records: Records<A, C>,
    /// Whether an actor recovers after a crash. An actor that never recovers
    /// models a permanent failure (for example 2PC's blocking coordinator).
    pub recovers: Vec<bool>,
    /// The most copies of one envelope in flight at once; more are absorbed.
    pub copies_max: usize,
    /// An extra boundary a model may set (for example on the ledger length).
    pub within: fn(&C, &SystemState<A>) -> bool,
    /// Offer a crash only where it matters: not where crashing and recovering at
    /// once would give back the very same state (the actor's volatile state is
    /// what recovery rebuilds from its storage, and recovery re-arms the same
    /// timers and re-sends nothing new). Such a crash can only delay the
    /// actor's deliveries — which the network can do anyway — and spend the crash
    /// budget, so every behaviour it starts is matched by one without it. Off by
    /// default.
    pub skip_undone_crashes: bool,
    /// Whether a message in flight is dead: delivering it can change no actor's
    /// state and send nothing that is not itself dead, now or in any later
    /// state. A dead message is removed from the network as soon as it is dead
    /// (see `discard_dead`). The model vouches for each rule: it must
    /// hold in every reachable state and stay true once true. None by default.
    pub dead: fn(&C, &SystemState<A>, Id, Id, &A::Msg) -> bool,
    /// Whether a pending random choice of an actor is dead: selecting any of
    /// its options changes nothing and sends nothing, now or in any later
    /// state of the same incarnation (a crash clears choices anyway). A dead
    /// choice is removed as soon as it is dead (see `discard_dead_choices`):
    /// its only effect would be to remove itself. The model vouches for each
    /// rule as for [`System::dead`]. None by default.
    pub dead_choice: DeadChoice<A, C>,
    /// On a duplicating network, forget which message was delivered last.
    /// Stateright keeps it in the network so that a delivery that changes no
    /// actor still yields a new state; here such a delivery yields no state at
    /// all (an unordered network's no-op delivery is no step), so the field
    /// only tells apart states that differ in nothing else. Off by default
    /// (the ack-retry counts on `unordered-dup` keep it).
    pub forgets_last_delivery: bool,
    /// Keep dead messages in flight and dead choices pending instead of
    /// removing them (still counting them as settled traffic, and a crash
    /// that only clears dead choices as undone). Only for the tests that
    /// check that removing them loses nothing a property can see.
    pub keep_dead: bool,
    pub properties: Vec<Property<System<A, C>>>,
    /// The `progress` properties (checked on the state graph, see
    /// [`crate::graph`]).
    pub progress: Vec<ProgressProperty<System<A, C>>>,
}

impl<A, C> System<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    /// Wraps `actors`; every actor may crash and recovers, copies are bounded by
    /// two, and there are no properties yet.
    pub fn new(
        actors: ActorModel<A, C, SystemHistory<A>>,
        names: Vec<String>,
        crash_budget: u8,
    ) -> Self {
        assert_eq!(actors.actors.len(), names.len(), "one name per actor");
        assert!(names.len() <= ACTORS_MAX, "at most {ACTORS_MAX} actors");
        assert_eq!(
            actors.max_crashes, 0,
            "System injects crashes itself; leave ActorModel::max_crashes at zero"
        );
        let n = names.len();
        System {
            actors,
            names,
            crash_budget,
            may_crash: vec![true; n],
            disk_loss_budget: 0,
            may_lose_disk: vec![false; n],
            log: LogMode::Atomic,
            releases_before_sync: vec![false; n],
            records: |_, _, _, saved| vec![saved.clone()],
            recovers: vec![true; n],
            copies_max: 1,
            within: |_, _| true,
            skip_undone_crashes: false,
            dead: |_, _, _, _, _| false,
            dead_choice: |_, _, _, _| false,
            forgets_last_delivery: false,
            keep_dead: false,
            properties: Vec::new(),
            progress: Vec::new(),
        }
    }

    /// Adds a named property. Property names are unique.
    pub fn property(
        mut self,
        expectation: stateright::Expectation,
        name: &'static str,
        condition: fn(&System<A, C>, &SystemState<A>) -> bool,
    ) -> Self {
        assert!(
            self.properties.iter().all(|p| p.name != name),
            "duplicate property {name}"
        );
        self.properties.push(Property {
            expectation,
            name,
            condition,
        });
        self
    }

    /// Adds a `progress` property: from every reachable state, a state
    /// satisfying `goal` is reachable. Property names are unique.
    pub fn progress(
        mut self,
        name: &'static str,
        goal: fn(&System<A, C>, &SystemState<A>) -> bool,
    ) -> Self {
        assert!(
            self.properties.iter().all(|p| p.name != name)
                && self.progress.iter().all(|p| p.name != name),
            "duplicate property {name}"
        );
        self.progress.push(ProgressProperty { name, goal });
        self
    }

    /// The display name of an actor.
    pub fn name(&self, id: Id) -> &str {
        self.names
            .get(usize::from(id))
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// Whether a message in flight is dead: addressed to an actor that is down
    /// for good (it can only be lost), or dead by the model's rules.
    fn is_dead(&self, state: &SystemState<A>, src: Id, dst: Id, msg: &A::Msg) -> bool {
        let to = usize::from(dst);
        (state.crashed[to] && !self.recovers[to])
            || (self.dead)(&self.actors.cfg, state, src, dst, msg)
    }

    /// True when no timer is armed and every message in flight, if any, is
    /// dead: nothing can happen any more but the loss of dead messages.
    /// Under [`LogMode::Sync`] an unsynced tail is work too: a state with one
    /// is not settled (a sync or a crash is still to come).
    pub fn is_settled(&self, state: &SystemState<A>) -> bool {
        state.history.tails.iter().all(Tail::is_empty)
            && state.timers_set.iter().all(|t| t.iter().next().is_none())
            && in_flight(&state.network).all(|(src, dst, msg)| self.is_dead(state, src, dst, msg))
    }

    /// True when the state is settled and every crashed actor is one that never
    /// recovers: no work is left, not even a recovery that would resume some.
    /// The goal of a `progress` property starts from this.
    pub fn is_at_rest(&self, state: &SystemState<A>) -> bool {
        self.is_settled(state)
            && state
                .crashed
                .iter()
                .zip(&self.recovers)
                .all(|(crashed, recovers)| !crashed || !recovers)
    }

    /// Absorbs copies beyond `copies_max`: a retransmission identical to a copy
    /// already in flight merges with it.
    fn absorb_copies(&self, network: &mut Network<A::Msg>) {
        match network {
            // A set: a copy sent again is the same element already.
            Network::UnorderedDuplicating(..) => {}
            Network::UnorderedNonDuplicating(multiset) => {
                for n in multiset.values_mut() {
                    *n = (*n).min(self.copies_max);
                }
            }
            Network::Ordered(channels) => {
                for queue in channels.values_mut() {
                    let mut counts: Vec<(A::Msg, usize)> = Vec::new();
                    queue.retain(|m| match counts.iter_mut().find(|(seen, _)| seen == m) {
                        Some((_, n)) => {
                            *n += 1;
                            *n <= self.copies_max
                        }
                        None => {
                            counts.push((m.clone(), 1));
                            true
                        }
                    });
                }
            }
        }
    }

    /// Removes dead messages (see [`System::dead`]) from the network. Whatever a
    /// dead message does — be delivered, be lost, wait — leaves every actor as
    /// it is, so a state with it and the same state without it have the same
    /// futures up to dead messages. Removing it merges them and takes away
    /// nothing a property can see: properties read actors, never the network.
    /// A state whose only traffic is dead is settled, and like a quiescent one it
    /// is offered no crash (see the module docs) and can be terminal.
    fn discard_dead(&self, state: &mut SystemState<A>) {
        let dead: Vec<(Id, Id, A::Msg)> = in_flight(&state.network)
            .filter(|(src, dst, msg)| self.is_dead(state, *src, *dst, msg))
            .map(|(src, dst, msg)| (src, dst, msg.clone()))
            .collect();
        if dead.is_empty() {
            return;
        }
        let is_dead = |src: Id, dst: Id, msg: &A::Msg| {
            dead.iter()
                .any(|(s, d, m)| *s == src && *d == dst && m == msg)
        };
        match &mut state.network {
            Network::UnorderedDuplicating(set, _) => {
                set.retain(|e| !is_dead(e.src, e.dst, &e.msg));
            }
            Network::UnorderedNonDuplicating(multiset) => {
                multiset.retain(|e, _| !is_dead(e.src, e.dst, &e.msg));
            }
            Network::Ordered(channels) => {
                for ((src, dst), queue) in channels.iter_mut() {
                    queue.retain(|m| !is_dead(*src, *dst, m));
                }
                channels.retain(|_, queue| !queue.is_empty());
            }
        }
    }

    /// Removes dead random choices (see [`System::dead_choice`]). Selecting one
    /// would change no actor and send nothing: its only effect is to remove
    /// itself, so the state with it and the state without it have the same
    /// futures up to that removal. Properties read actors, never choices.
    fn discard_dead_choices(&self, state: &mut SystemState<A>) {
        for index in 0..state.random_choices.len() {
            let id = Id::from(index);
            let dead: Vec<String> = state.random_choices[index]
                .map
                .iter()
                .filter(|(_, options)| (self.dead_choice)(&self.actors.cfg, state, id, options))
                .map(|(key, _)| key.clone())
                .collect();
            for key in dead {
                state.random_choices[index].remove(&key);
            }
        }
    }

    /// Actor `index`'s pending choices less the dead ones.
    fn live_choices(&self, state: &SystemState<A>, index: usize) -> RandomChoices<A::Random> {
        let mut choices = state.random_choices[index].clone();
        let id = Id::from(index);
        choices
            .map
            .retain(|_, options| !(self.dead_choice)(&self.actors.cfg, state, id, options));
        choices
    }

    /// With `skip_undone_crashes`: whether crashing actor `index` and recovering
    /// it at once leaves `state` unchanged (see the field's docs). It replays
    /// what Stateright's crash and recovery do to the one actor — timers and
    /// pending random choices cleared, then `on_start` from its storage — without
    /// cloning the whole system state, since this runs for every actor of every
    /// state visited.
    fn crash_is_undone(&self, state: &SystemState<A>, index: usize) -> bool
    where
        A::State: PartialEq,
        A::Storage: PartialEq,
    {
        if !self.skip_undone_crashes {
            return false;
        }
        let id = Id::from(index);
        let storage = &state.actor_storages[index];
        let mut out = Out::new();
        let restarted = self.actors.actors[index].on_start(id, storage, &mut out);
        if restarted != *state.actor_states[index] {
            return false;
        }
        let mut timers = Timers::new();
        let mut choices = RandomChoices::default();
        let mut saved = storage.clone();
        let mut sends = Vec::new();
        for command in out {
            match command {
                Command::SetTimer(timer, _) => {
                    timers.set(timer);
                }
                Command::CancelTimer(timer) => {
                    timers.cancel(&timer);
                }
                Command::ChooseRandom(key, random) if random.is_empty() => {
                    choices.remove(&key);
                }
                Command::ChooseRandom(key, random) => choices.insert(key, random),
                // Under a syncing log a save is an append: the state changes.
                Command::Save(_) if self.log == LogMode::Sync => return false,
                Command::Save(s) => saved = Some(s),
                Command::Send(dst, msg) => sends.push((dst, msg)),
            }
        }
        if timers != state.timers_set[index]
            || choices != self.live_choices(state, index)
            || saved != *storage
        {
            return false;
        }
        // A send changes nothing if it is absorbed — as many copies of the
        // envelope are in flight as may be (one, for a set) — or dead.
        let full = match state.network {
            Network::UnorderedDuplicating(..) => 1,
            _ => self.copies_max,
        };
        sends.iter().all(|(dst, msg)| {
            let copies = in_flight(&state.network)
                .filter(|(s, d, m)| *s == id && d == dst && *m == msg)
                .count();
            copies >= full || self.is_dead(state, id, *dst, msg)
        })
    }

    /// Under [`LogMode::Sync`]: the actor a step runs and the commands it
    /// issues, computed again (actors are deterministic) so that its saves and
    /// sends can be held; `None` for a step that runs no actor code.
    fn rerun(
        &self,
        last: &SystemState<A>,
        action: &ActorModelAction<A::Msg, A::Timer, A::Random>,
    ) -> Option<(Id, Out<A>)> {
        let mut out = Out::new();
        let id = match action {
            ActorModelAction::Deliver { src, dst, msg } => {
                let i = usize::from(*dst);
                let mut state = Cow::Borrowed(&*last.actor_states[i]);
                self.actors.actors[i].on_msg(*dst, &mut state, *src, msg.clone(), &mut out);
                *dst
            }
            ActorModelAction::Timeout(id, timer) => {
                let i = usize::from(*id);
                let mut state = Cow::Borrowed(&*last.actor_states[i]);
                self.actors.actors[i].on_timeout(*id, &mut state, timer, &mut out);
                *id
            }
            ActorModelAction::SelectRandom { actor, random, .. } => {
                let i = usize::from(*actor);
                let mut state = Cow::Borrowed(&*last.actor_states[i]);
                self.actors.actors[i].on_random(*actor, &mut state, random, &mut out);
                *actor
            }
            ActorModelAction::Recover(id) => {
                let i = usize::from(*id);
                let _ = self.actors.actors[i].on_start(*id, &last.actor_storages[i], &mut out);
                *id
            }
            ActorModelAction::Drop(_) | ActorModelAction::Crash(_) => return None,
        };
        Some((id, out))
    }

    /// Under [`LogMode::Sync`]: turns what Stateright applied at once into
    /// what a syncing log does. The step's saves become appends to the actor's
    /// tail (its durable storage stays as it was), and its sends are taken
    /// back out of the network and held while anything is pending — unless
    /// the actor releases before the sync.
    fn log_step(&self, last: &SystemState<A>, next: &mut SystemState<A>, id: Id, out: Out<A>) {
        let i = usize::from(id);
        let mut saves = Vec::new();
        let mut sends = Vec::new();
        for command in out {
            match command {
                Command::Save(saved) => saves.push(saved),
                Command::Send(dst, msg) => sends.push((dst, msg)),
                _ => {}
            }
        }
        if !saves.is_empty() {
            next.actor_storages[i] = last.actor_storages[i].clone();
            for saved in saves {
                let before = next.history.tails[i]
                    .appends
                    .last()
                    .or(last.actor_storages[i].as_ref())
                    .cloned();
                // A record equal to the value it follows changes nothing a
                // crash could keep or lose: it is not appended (this also
                // keeps the tail finite when a step saves what it had).
                let mut current = before;
                for record in (self.records)(&self.actors.cfg, id, current.as_ref(), &saved) {
                    if current.as_ref() != Some(&record) {
                        next.history.tails[i].appends.push(record.clone());
                        current = Some(record);
                    }
                }
            }
        }
        if self.releases_before_sync[i] || next.history.tails[i].appends.is_empty() {
            return;
        }
        for (dst, msg) in sends.iter().rev() {
            unsend(&mut next.network, &last.network, id, *dst, msg);
        }
        // Held copies are bounded like copies in flight: a send identical to
        // `copies_max` already held is absorbed (the sync would put them into
        // the network, where the extra copy would be absorbed anyway).
        let held = &mut next.history.tails[i].held;
        for send in sends {
            if held.iter().filter(|h| **h == send).count() < self.copies_max {
                held.push(send);
            }
        }
    }

    /// Stateright's own actions of `state` (deliveries, losses, timeouts,
    /// recoveries, random choices), in Stateright's order, appended to
    /// `actions` as [`Step::Actor`] — without the recoveries of actors that
    /// never recover.
    ///
    /// The same list as `ActorModel::actions` (a test holds them equal), written
    /// into the caller's vector: calling Stateright's needs a vector of its own
    /// actions for every state visited, and allocating it (about 40 bytes an
    /// action, beyond the allocator's small-object cache) and converting it cost
    /// about a tenth of a two-phase-commit check. `ActorModel::max_crashes` is
    /// zero (see [`System::new`]), so it offers no crash.
    fn actor_actions(&self, state: &SystemState<A>, actions: &mut Vec<SystemAction<A>>) {
        let start = actions.len();
        let lossy = self.actors.lossy_network == LossyNetwork::Yes;
        let ordered = matches!(self.actors.init_network, Network::Ordered(_));
        let actors = self.actors.actors.len();
        let mut prev_channel = None; // Only the head of a channel is delivered.
        for env in state.network.iter_deliverable() {
            if lossy {
                actions.push(Step::Actor(ActorModelAction::Drop(env.to_cloned_msg())));
            }
            if usize::from(env.dst) < actors {
                if ordered {
                    let channel = (env.src, env.dst);
                    if prev_channel == Some(channel) {
                        continue;
                    }
                    prev_channel = Some(channel);
                }
                actions.push(Step::Actor(ActorModelAction::Deliver {
                    src: env.src,
                    dst: env.dst,
                    msg: env.msg.clone(),
                }));
            }
        }
        for (index, timers) in state.timers_set.iter().enumerate() {
            for timer in timers.iter() {
                actions.push(Step::Actor(ActorModelAction::Timeout(
                    Id::from(index),
                    timer.clone(),
                )));
            }
        }
        for (index, crashed) in state.crashed.iter().enumerate() {
            if *crashed && self.recovers[index] {
                actions.push(Step::Actor(ActorModelAction::Recover(Id::from(index))));
            }
        }
        for (index, choices) in state.random_choices.iter().enumerate() {
            for (key, choice) in choices.map.iter() {
                for random in choice {
                    actions.push(Step::Actor(ActorModelAction::SelectRandom {
                        actor: Id::from(index),
                        key: key.clone(),
                        random: random.clone(),
                    }));
                }
            }
        }
        // Stateright sorts its actions (the order of its hashed sets is not
        // stable); distinct actions never compare equal, so the order is
        // exactly Stateright's.
        actions[start..].sort_unstable_by(|a, b| match (a, b) {
            (Step::Actor(a), Step::Actor(b)) => stateright_order(a, b),
            _ => std::cmp::Ordering::Equal,
        });
    }

    /// One readable line for an action, e.g. `sender 0 → receiver: Data(1)`.
    pub fn describe(&self, action: &SystemAction<A>) -> String {
        let action = match action {
            Step::Actor(action) => action,
            Step::LoseDisk(id) => return format!("{} crashes and loses its disk", self.name(*id)),
            Step::Sync(id) => return format!("{} syncs its log", self.name(*id)),
            Step::CrashUnsynced {
                actor,
                kept,
                pending,
            } => {
                return format!(
                    "{} crashes, keeping {kept} of {pending} unsynced appends",
                    self.name(*actor)
                )
            }
        };
        match action {
            ActorModelAction::Deliver { src, dst, msg } => {
                format!("{} → {}: {:?}", self.name(*src), self.name(*dst), msg)
            }
            ActorModelAction::Drop(env) => format!(
                "network loses {} → {}: {:?}",
                self.name(env.src),
                self.name(env.dst),
                env.msg
            ),
            ActorModelAction::Timeout(id, timer) => {
                format!("{}: {:?} timer fires", self.name(*id), timer)
            }
            ActorModelAction::Crash(id) => format!("{} crashes", self.name(*id)),
            ActorModelAction::Recover(id) => format!("{} recovers", self.name(*id)),
            ActorModelAction::SelectRandom { actor, random, .. } => {
                format!("{} chooses {:?}", self.name(*actor), random)
            }
        }
    }
}

impl<A, C> Model for System<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    type State = SystemState<A>;
    type Action = SystemAction<A>;

    fn init_states(&self) -> Vec<Self::State> {
        let mut states = self.actors.init_states();
        for s in &mut states {
            // Under a syncing log, what the actors saved on start is pending.
            if self.log == LogMode::Sync {
                s.history.tails = vec![Tail::default(); self.names.len()];
                // The state before any actor started: nothing stored, the
                // initial network.
                let blank = ActorModelState {
                    actor_storages: vec![None; self.names.len()],
                    network: self.actors.init_network.clone(),
                    ..s.clone()
                };
                for i in 0..self.names.len() {
                    let id = Id::from(i);
                    let mut out = Out::new();
                    let _ = self.actors.actors[i].on_start(id, &None, &mut out);
                    self.log_step(&blank, s, id, out);
                }
            }
            reshape(s);
        }
        states
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        self.actor_actions(state, actions);
        if self.is_settled(state) {
            return;
        }
        if state.history.crashes < self.crash_budget {
            for (index, crashed) in state.crashed.iter().enumerate() {
                if *crashed || !self.may_crash[index] {
                    continue;
                }
                let pending = state
                    .history
                    .tails
                    .get(index)
                    .map_or(0, |tail| tail.appends.len());
                if pending > 0 {
                    // One successor per prefix of the pending appends kept.
                    let pending = u8::try_from(pending).unwrap_or(u8::MAX);
                    for kept in 0..=pending {
                        actions.push(Step::CrashUnsynced {
                            actor: Id::from(index),
                            kept,
                            pending,
                        });
                    }
                } else if !self.crash_is_undone(state, index) {
                    actions.push(Step::Actor(ActorModelAction::Crash(Id::from(index))));
                }
            }
        }
        if state.history.disk_losses < self.disk_loss_budget {
            for (index, crashed) in state.crashed.iter().enumerate() {
                // An actor with nothing stored loses nothing but its volatile
                // state: that is a crash, offered as one.
                if !crashed && self.may_lose_disk[index] && state.actor_storages[index].is_some() {
                    actions.push(Step::LoseDisk(Id::from(index)));
                }
            }
        }
        for (index, tail) in state.history.tails.iter().enumerate() {
            if !tail.is_empty() {
                actions.push(Step::Sync(Id::from(index)));
            }
        }
    }

    fn next_state(&self, last: &Self::State, action: Self::Action) -> Option<Self::State> {
        let mut next = match action {
            Step::Actor(action) => {
                let is_crash = matches!(action, ActorModelAction::Crash(_));
                let step = match self.log {
                    LogMode::Atomic => None,
                    LogMode::Sync => self.rerun(last, &action),
                };
                let mut next = self.actors.next_state(last, action)?;
                if is_crash {
                    next.history.crashes += 1;
                }
                if let Some((id, out)) = step {
                    self.log_step(last, &mut next, id, out);
                }
                next
            }
            Step::LoseDisk(id) => {
                let mut next = self.actors.next_state(last, ActorModelAction::Crash(id))?;
                next.actor_storages[usize::from(id)] = None;
                if let Some(tail) = next.history.tails.get_mut(usize::from(id)) {
                    *tail = Tail::default();
                }
                next.history.disk_losses += 1;
                next
            }
            Step::Sync(id) => {
                let mut next = last.clone();
                let tail = std::mem::take(&mut next.history.tails[usize::from(id)]);
                if let Some(synced) = tail.appends.last() {
                    next.actor_storages[usize::from(id)] = Some(synced.clone());
                }
                for (dst, msg) in tail.held {
                    send(&mut next.network, id, dst, msg);
                }
                next
            }
            Step::CrashUnsynced { actor, kept, .. } => {
                let mut next = self
                    .actors
                    .next_state(last, ActorModelAction::Crash(actor))?;
                next.history.crashes += 1;
                let tail = std::mem::take(&mut next.history.tails[usize::from(actor)]);
                if let Some(durable) = usize::from(kept)
                    .checked_sub(1)
                    .and_then(|k| tail.appends.get(k))
                {
                    next.actor_storages[usize::from(actor)] = Some(durable.clone());
                }
                next
            }
        };
        self.absorb_copies(&mut next.network);
        if !self.keep_dead {
            self.discard_dead(&mut next);
            self.discard_dead_choices(&mut next);
        }
        if self.forgets_last_delivery {
            if let Network::UnorderedDuplicating(_, last) = &mut next.network {
                *last = None;
            }
        }
        reshape(&mut next);
        Some(next)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        self.describe(action)
    }

    /// What the Explorer shows for a step (unless "Complete State?" is
    /// ticked): the step, then every actor whose state, storage or liveness it
    /// changed, by name and in one line each, then the messages in flight —
    /// without Stateright's bookkeeping (timers, random choices).
    fn format_step(&self, last: &Self::State, action: Self::Action) -> Option<String>
    where
        Self::State: Debug,
    {
        let described = self.describe(&action);
        let next = self.next_state(last, action)?;
        let mut lines = vec![format!("step: {described}")];
        for (i, name) in self.names.iter().enumerate() {
            let state_changed = last.actor_states[i] != next.actor_states[i];
            let storage_changed = last.actor_storages[i] != next.actor_storages[i];
            if next.crashed[i] != last.crashed[i] || state_changed || storage_changed {
                if next.crashed[i] && storage_changed && next.actor_storages[i].is_none() {
                    lines.push(format!("{name}: down, its disk lost"));
                } else if next.crashed[i] {
                    lines.push(format!("{name}: down"));
                } else {
                    lines.push(format!("{name}: {:?}", next.actor_states[i]));
                }
                if storage_changed {
                    lines.push(format!("{name} saved: {:?}", next.actor_storages[i]));
                }
            }
        }
        let flight: Vec<String> = in_flight(&next.network)
            .map(|(src, dst, msg)| format!("{} → {}: {msg:?}", self.name(src), self.name(dst)))
            .collect();
        lines.push(if flight.is_empty() {
            "in flight: nothing".to_owned()
        } else {
            format!("in flight: {}", flight.join(", "))
        });
        lines.push(format!("crashes so far: {}", next.history.crashes));
        if self.disk_loss_budget > 0 {
            lines.push(format!("disk losses so far: {}", next.history.disk_losses));
        }
        Some(lines.join("\n"))
    }

    /// None: Stateright's own diagram replays actions through its
    /// `ActorModel`, which knows neither a [`System`]'s faults nor its merged
    /// states; `eo explore` and `eo check --svg` draw the named diagram instead.
    fn as_svg(&self, _: Path<Self::State, Self::Action>) -> Option<String> {
        None
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.properties.clone()
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        (self.within)(&self.actors.cfg, state)
    }
}

/// The order `ActorModel::actions` sorts its actions in: by kind (loss,
/// delivery, timeout, crash, recovery, random choice), then by their fields.
fn stateright_order<M: Ord, T: Ord, R: Ord>(
    a: &ActorModelAction<M, T, R>,
    b: &ActorModelAction<M, T, R>,
) -> std::cmp::Ordering {
    use ActorModelAction::*;
    let kind = |action: &ActorModelAction<M, T, R>| match action {
        Drop(_) => 0,
        Deliver { .. } => 1,
        Timeout(_, _) => 2,
        Crash(_) => 3,
        Recover(_) => 4,
        SelectRandom { .. } => 5,
    };
    kind(a).cmp(&kind(b)).then_with(|| match (a, b) {
        (
            Deliver {
                src: s1,
                dst: d1,
                msg: m1,
            },
            Deliver {
                src: s2,
                dst: d2,
                msg: m2,
            },
        ) => s1.cmp(s2).then_with(|| d1.cmp(d2)).then_with(|| m1.cmp(m2)),
        (Drop(e1), Drop(e2)) => e1.cmp(e2),
        (Timeout(id1, t1), Timeout(id2, t2)) => id1.cmp(id2).then_with(|| t1.cmp(t2)),
        (Crash(id1), Crash(id2)) => id1.cmp(id2),
        (Recover(id1), Recover(id2)) => id1.cmp(id2),
        (
            SelectRandom {
                actor: a1,
                key: k1,
                random: r1,
            },
            SelectRandom {
                actor: a2,
                key: k2,
                random: r2,
            },
        ) => a1.cmp(a2).then_with(|| k1.cmp(k2)).then_with(|| r1.cmp(r2)),
        _ => std::cmp::Ordering::Equal,
    })
}

/// Puts a message into the network (Stateright's own `Network::send` is
/// private to it): what a [`Step::Sync`] does with each held send.
fn send<M: Eq + Hash + Clone>(network: &mut Network<M>, src: Id, dst: Id, msg: M) {
    match network {
        Network::UnorderedDuplicating(set, _) => {
            set.insert(Envelope { src, dst, msg });
        }
        Network::UnorderedNonDuplicating(multiset) => {
            *multiset.entry(Envelope { src, dst, msg }).or_insert(0) += 1;
        }
        Network::Ordered(channels) => channels.entry((src, dst)).or_default().push_back(msg),
    }
}

/// Takes back a send a step just made (its latest copy): the message is held
/// instead. `before` is the network before the step: in a duplicating network
/// (a set) a message that was already in flight stays.
fn unsend<M: Eq + Hash + Clone>(
    network: &mut Network<M>,
    before: &Network<M>,
    src: Id,
    dst: Id,
    msg: &M,
) {
    let envelope = Envelope {
        src,
        dst,
        msg: msg.clone(),
    };
    match network {
        Network::UnorderedDuplicating(set, _) => {
            let was_in_flight = match before {
                Network::UnorderedDuplicating(old, _) => old.contains(&envelope),
                _ => false,
            };
            if !was_in_flight {
                set.remove(&envelope);
            }
        }
        Network::UnorderedNonDuplicating(multiset) => {
            if let Some(n) = multiset.get_mut(&envelope) {
                *n -= 1;
                if *n == 0 {
                    multiset.remove(&envelope);
                }
            }
        }
        Network::Ordered(channels) => {
            if let Some(queue) = channels.get_mut(&(src, dst)) {
                if let Some(at) = queue.iter().rposition(|m| m == msg) {
                    queue.remove(at);
                }
                if queue.is_empty() {
                    channels.remove(&(src, dst));
                }
            }
        }
    }
}

/// Every message in flight, with its source and destination: a copy of an
/// envelope in flight `n` times is listed `n` times. (Stateright 0.31's own
/// `Network::iter_all` never ends on an ordered network holding two messages in
/// one channel, so this walks the network itself.)
pub fn in_flight<M: Eq + Hash>(
    network: &Network<M>,
) -> Box<dyn Iterator<Item = (Id, Id, &M)> + '_> {
    match network {
        Network::UnorderedDuplicating(set, _) => {
            Box::new(set.iter().map(|e| (e.src, e.dst, &e.msg)))
        }
        Network::UnorderedNonDuplicating(multiset) => Box::new(
            multiset
                .iter()
                .flat_map(|(e, n)| std::iter::repeat_n((e.src, e.dst, &e.msg), *n)),
        ),
        Network::Ordered(channels) => Box::new(
            channels
                .iter()
                .flat_map(|((src, dst), queue)| queue.iter().map(move |m| (*src, *dst, m))),
        ),
    }
}

/// Where an actor's durable facts are read from in a property: its storage if it
/// has saved any, else nothing.
pub fn storage<A: Actor>(state: &SystemState<A>, index: usize) -> Option<&A::Storage> {
    state.actor_storages.get(index).and_then(Option::as_ref)
}

/// The actor's volatile state, or `None` while it is crashed.
pub fn live_state<A: Actor>(state: &SystemState<A>, index: usize) -> Option<&A::State>
where
    A::State: Hash,
{
    if state.crashed[index] {
        None
    } else {
        state.actor_states.get(index).map(|s| &**s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{fingerprint, Graph};
    use stateright::actor::model_timeout;
    use stateright::Checker;
    use std::borrow::Cow;

    /// An actor that arms one timer on start and does nothing when it fires.
    #[derive(Clone)]
    struct Ticker;

    impl Actor for Ticker {
        type Msg = ();
        type Timer = ();
        type State = ();
        type Storage = ();
        type Random = ();

        fn on_start(&self, _: Id, _: &Option<()>, o: &mut Out<Self>) {
            o.set_timer((), model_timeout());
        }

        fn on_timeout(&self, _: Id, _: &mut Cow<()>, _: &(), _: &mut Out<Self>) {}
    }

    fn tickers() -> System<Ticker, ()> {
        let actors = ActorModel::new((), History::default()).actors([Ticker, Ticker]);
        // Stateright's checker stops once every property is decided: with
        // none it would stop at once.
        System::new(actors, vec!["a".into(), "b".into()], 0).property(
            stateright::Expectation::Always,
            "true",
            |_, _| true,
        )
    }

    /// Both timers armed, one of them fired (two states: which one), none:
    /// four states. Without the shape the two middle states hash alike —
    /// Stateright writes a bare run of element hashes per actor — and a checker
    /// would count three.
    #[test]
    fn states_differing_only_in_who_holds_a_timer_are_two_states() {
        let model = tickers();
        assert_eq!(crate::walk::count(&model), 4);
        let graph = Graph::build(&model, None, |_, _| {}, &mut |_| {}).unwrap();
        assert_eq!(graph.len(), 4);
        let checker = tickers().checker().spawn_bfs().join();
        assert_eq!(checker.unique_state_count(), 4);

        let init = model.init_states().pop().unwrap();
        let fire = |who: usize| {
            model
                .next_state(
                    &init,
                    Step::Actor(ActorModelAction::Timeout(Id::from(who), ())),
                )
                .unwrap()
        };
        let (a_fired, b_fired) = (fire(0), fire(1));
        assert!(a_fired != b_fired);
        assert_ne!(fingerprint(&a_fired), fingerprint(&b_fired));
        // What the shape adds is exactly what tells them apart.
        let unshaped = |s: &SystemState<Ticker>| {
            let mut s = s.clone();
            s.history.shape = Shape::default();
            fingerprint(&s)
        };
        assert_eq!(unshaped(&a_fired), unshaped(&b_fired));
    }

    /// `actor_actions` lists exactly Stateright's `ActorModel::actions`, in
    /// the same order (the order counterexample paths are rebuilt from), less
    /// the recoveries of actors that never recover: on every reachable state of
    /// small configurations with each kind of network, random choices (2PC's
    /// votes) and an actor that never recovers.
    #[test]
    fn actor_actions_are_stateright_s_in_its_order() {
        fn same<A, C>(model: &System<A, C>) -> usize
        where
            A: Actor,
            A::Msg: Ord,
            A::Timer: Ord,
            SystemState<A>: Eq,
        {
            let mut compared = 0;
            crate::walk::walk(model, |s, _| {
                let mut ours = Vec::new();
                model.actor_actions(s, &mut ours);
                let mut theirs = Vec::new();
                model.actors.actions(s, &mut theirs);
                let theirs: Vec<_> = theirs
                    .into_iter()
                    .filter(|a| match a {
                        ActorModelAction::Recover(id) => model.recovers[usize::from(*id)],
                        _ => true,
                    })
                    .map(Step::Actor)
                    .collect();
                assert_eq!(ours, theirs);
                compared += 1;
            });
            compared
        }
        use crate::ack_retry::{AckRetryCfg, NetworkKind};
        use crate::two_phase_commit::TwoPhaseCfg;
        for network in [
            NetworkKind::Unordered,
            NetworkKind::UnorderedDup,
            NetworkKind::Ordered,
        ] {
            let cfg = AckRetryCfg {
                messages: 2,
                network,
                ..AckRetryCfg::default()
            };
            assert!(same(&cfg.into_model()) > 100);
        }
        for coordinator_never_recovers in [false, true] {
            let cfg = TwoPhaseCfg {
                participants: 2,
                coordinator_never_recovers,
                ..TwoPhaseCfg::default()
            };
            assert!(same(&cfg.into_model()) > 100);
        }
    }

    /// Counts to two, saving each count; after a disk loss it restarts from
    /// nothing and counts again.
    #[derive(Clone)]
    struct Counter;

    impl Actor for Counter {
        type Msg = ();
        type Timer = ();
        type State = u8;
        type Storage = u8;
        type Random = ();

        fn on_start(&self, _: Id, storage: &Option<u8>, o: &mut Out<Self>) -> u8 {
            let count = storage.unwrap_or(0);
            if count < 2 {
                o.set_timer((), model_timeout());
            }
            count
        }

        fn on_timeout(&self, _: Id, count: &mut Cow<u8>, _: &(), o: &mut Out<Self>) {
            let next = **count + 1;
            *count.to_mut() = next;
            o.save(next);
            if next < 2 {
                o.set_timer((), model_timeout());
            }
        }
    }

    fn counter(disk_losses: u8) -> System<Counter, ()> {
        let actors = ActorModel::new((), History::default()).actors([Counter]);
        let mut system = System::new(actors, vec!["counter".into()], 0).property(
            stateright::Expectation::Always,
            "true",
            |_, _| true,
        );
        system.disk_loss_budget = disk_losses;
        system.may_lose_disk = vec![true];
        system
    }

    /// A disk loss is offered once something is stored and the counter is
    /// still counting, spends the budget, and the counter restarts from
    /// nothing: its storage is gone, not merely its volatile state.
    #[test]
    fn a_disk_loss_clears_storage_and_is_counted() {
        let model = counter(1);
        let mut offered_with = Vec::new();
        let mut restarted_empty = false;
        let n = crate::walk::walk(&model, |s, step| {
            if let Some((action, next)) = step {
                match action {
                    Step::LoseDisk(id) => {
                        assert_eq!(model.describe(action), "counter crashes and loses its disk");
                        assert!(next.crashed[usize::from(*id)]);
                        assert_eq!(next.actor_storages[0], None);
                        assert_eq!(next.history.disk_losses, s.history.disk_losses + 1);
                        assert_eq!(next.history.crashes, s.history.crashes);
                        offered_with.push(s.actor_storages[0]);
                    }
                    Step::Actor(ActorModelAction::Recover(_)) => {
                        restarted_empty |= *next.actor_states[0] == 0;
                    }
                    _ => {}
                }
            }
        });
        // Stored 1 with the timer armed: the only state where a loss is
        // offered (nothing stored at start; settled at 2).
        assert_eq!(offered_with, vec![Some(1)]);
        assert!(restarted_empty);
        // 0, 1, 2 without a loss; down, restarted 0, 1, 2 after one.
        assert_eq!(n, 7);
        assert_eq!(crate::walk::count(&counter(0)), 3);
        let checker = counter(1).checker().spawn_bfs().join();
        assert_eq!(checker.unique_state_count(), 7);
    }
}
