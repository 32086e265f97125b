//! A system of actors under faults, as every model in this crate checks it.
//!
//! [`System`] wraps Stateright's [`ActorModel`] and changes three things:
//!
//! - **A total crash budget.** Stateright's `max_crashes` bounds how many actors
//!   are down *at the same time*; an actor may crash and recover forever. Here
//!   `crash_budget` bounds how many crashes happen in a whole behaviour, and the
//!   count lives in the state (the model's history), so `--crashes 1` means one
//!   crash.
//! - **Crashes only while there is work in flight.** A crash is offered only when
//!   some message is in the network or some timer is armed. A crash of a quiescent
//!   system loses nothing that recovery does not restore (every actor restarts
//!   from its storage and has nothing to resend), while offering it would make
//!   every state non-terminal — and Stateright evaluates `eventually` properties
//!   only at terminal states. With this rule a behaviour that has settled is
//!   terminal, crash or no crash, and liveness is checked on it.
//! - **Bounded copies in flight.** Retransmission puts another copy of a message
//!   into the network each time a timer fires. A copy beyond `copies_max` (one by
//!   default) of an envelope already in flight is absorbed: it merges with the
//!   copy in flight. Nothing observable is lost — the sender can retransmit the
//!   same message again once the copy in flight has been delivered or lost, which
//!   yields the same deliveries in the same orders — and the state space stays
//!   finite.
//!
//! It also names the actors, so that counterexamples and the Explorer's sequence
//! diagrams read `sender 0 → receiver: Data(1)` rather than `Id(0) → Id(2)`.

use stateright::actor::{Actor, ActorModel, ActorModelAction, ActorModelState, Id, Network};
use stateright::{Model, Path, Property};
use std::fmt::Debug;
use std::hash::Hash;

/// The history every [`System`] keeps: how many crashes have happened so far.
pub type Crashes = u8;

/// The state of a [`System`]: Stateright's actor-system state with a crash count.
pub type SystemState<A> = ActorModelState<A, Crashes>;

/// An action of a [`System`].
pub type SystemAction<A> =
    ActorModelAction<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random>;

/// A system of named actors with a total crash budget. See the module docs.
pub struct System<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    /// The actors, their network and configuration, without Stateright's own
    /// crash actions (those come from [`System`]).
    pub actors: ActorModel<A, C, Crashes>,
    /// Display names, one per actor, in id order.
    pub names: Vec<String>,
    /// How many crashes a behaviour may contain in total.
    pub crash_budget: u8,
    /// Whether an actor may crash at all.
    pub may_crash: Vec<bool>,
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
    pub properties: Vec<Property<System<A, C>>>,
}

impl<A, C> System<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    /// Wraps `actors`; every actor may crash and recovers, copies are bounded by
    /// two, and there are no properties yet.
    pub fn new(actors: ActorModel<A, C, Crashes>, names: Vec<String>, crash_budget: u8) -> Self {
        assert_eq!(actors.actors.len(), names.len(), "one name per actor");
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
            recovers: vec![true; n],
            copies_max: 1,
            within: |_, _| true,
            skip_undone_crashes: false,
            properties: Vec::new(),
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

    /// The display name of an actor.
    pub fn name(&self, id: Id) -> &str {
        self.names
            .get(usize::from(id))
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// True when no message is in flight and no timer is armed.
    pub fn is_quiescent(state: &SystemState<A>) -> bool {
        state.network.len() == 0 && state.timers_set.iter().all(|t| t.iter().next().is_none())
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

    /// With `skip_undone_crashes`: whether crashing actor `index` and recovering
    /// it at once leaves `state` unchanged (see the field's docs).
    fn crash_is_undone(&self, state: &SystemState<A>, index: usize) -> bool {
        if !self.skip_undone_crashes {
            return false;
        }
        let id = Id::from(index);
        let Some(crashed) = self.actors.next_state(state, ActorModelAction::Crash(id)) else {
            return false;
        };
        let Some(mut recovered) = self
            .actors
            .next_state(&crashed, ActorModelAction::Recover(id))
        else {
            return false;
        };
        self.absorb_copies(&mut recovered.network);
        recovered == *state
    }

    /// One readable line for an action, e.g. `sender 0 → receiver: Data(1)`.
    pub fn describe(&self, action: &SystemAction<A>) -> String {
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
        self.actors.init_states()
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        self.actors.actions(state, actions);
        actions.retain(|a| match a {
            ActorModelAction::Recover(id) => self.recovers[usize::from(*id)],
            _ => true,
        });
        if state.history < self.crash_budget && !Self::is_quiescent(state) {
            for (index, crashed) in state.crashed.iter().enumerate() {
                if !crashed && self.may_crash[index] && !self.crash_is_undone(state, index) {
                    actions.push(ActorModelAction::Crash(Id::from(index)));
                }
            }
        }
    }

    fn next_state(&self, last: &Self::State, action: Self::Action) -> Option<Self::State> {
        let is_crash = matches!(action, ActorModelAction::Crash(_));
        let mut next = self.actors.next_state(last, action)?;
        if is_crash {
            next.history += 1;
        }
        self.absorb_copies(&mut next.network);
        Some(next)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        self.describe(action)
    }

    fn format_step(&self, last: &Self::State, action: Self::Action) -> Option<String>
    where
        Self::State: Debug,
    {
        self.actors.format_step(last, action)
    }

    fn as_svg(&self, path: Path<Self::State, Self::Action>) -> Option<String> {
        self.actors.as_svg(path)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.properties.clone()
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        (self.within)(&self.actors.cfg, state)
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
