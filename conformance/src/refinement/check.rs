//! The refinement check: the implementation's reachable graph walked breadth
//! first, each transition held to a model step, a compound step or a stutter.

use crate::abstraction::{diff_system, AbstractionError, Diff, FieldDiff, Fields};
use crate::refinement::describe::describe_state;
use eo_models::graph::fingerprint;
use eo_models::system::{Step, System, SystemAction, SystemState};
use stateright::actor::{Actor, ActorModelAction};
use stateright::Model;
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

/// The most implementation states (each with its history) a refinement check
/// visits before it stops with [`RefinementError::TooLarge`].
pub const STATES_MAX: usize = 2_000_000;

/// An abstraction from an implementation's system `M` to a model's system.
pub trait Abstraction<M: Model> {
    /// The model's actor.
    type Spec: Actor<State: Fields, Storage: Fields, Msg: Ord, Timer: Ord>;
    /// The model's configuration.
    type SpecCfg;
    /// History the abstraction needs and the implementation's state lacks
    /// (see the module docs); `Default` is its value in an initial state.
    type Ghost: Clone + Debug + Default + Eq + Hash;

    /// The model's system the implementation refines.
    fn spec(&self) -> &System<Self::Spec, Self::SpecCfg>;

    /// `A`: the model state of implementation state `state` with history `ghost`.
    fn state(
        &self,
        state: &M::State,
        ghost: &Self::Ghost,
    ) -> Result<SystemState<Self::Spec>, AbstractionError>;

    /// The history after the implementation's step `action` from `before`
    /// (abstracted as `abstract_before`) to `after`.
    fn ghost_after(
        &self,
        before: &M::State,
        action: &M::Action,
        after: &M::State,
        ghost: &Self::Ghost,
        abstract_before: &SystemState<Self::Spec>,
    ) -> Self::Ghost;

    /// The model action the implementation's `action` corresponds to, where
    /// one does: used only to pick the nearest model successor of a failing
    /// step, never to decide whether a step refines.
    fn action(
        &self,
        state: &M::State,
        action: &M::Action,
        ghost: &Self::Ghost,
    ) -> Option<SystemAction<Self::Spec>>;

    /// Whether the model steps `first` then `second` together make one
    /// compound step an implementation step may map to (none by default).
    fn follows(
        &self,
        _first: &SystemAction<Self::Spec>,
        _second: &SystemAction<Self::Spec>,
    ) -> bool {
        false
    }
}

/// Why a refinement check could not run to its end.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefinementError {
    /// The implementation's graph (with histories) outgrew [`STATES_MAX`].
    #[error("more than {max} implementation states: too large for a refinement check")]
    TooLarge { max: usize },
}

/// The counts of a check that found every transition refining.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Implementation states visited (a state reached with two histories
    /// counts twice).
    pub states: usize,
    /// Transitions checked.
    pub transitions: usize,
    /// Transitions that are one model step.
    pub steps: usize,
    /// Transitions that change nothing the model sees.
    pub stutters: usize,
    /// Transitions that are a model step and its allowed follow-up.
    pub compound: usize,
    /// Transitions that are a crash the model's system does not offer
    /// because its state is settled (see [`settled_crashes`]).
    pub settled_crashes: usize,
    /// Wall time of the whole check.
    pub elapsed_ms: u128,
}

/// The first transition that is neither a model step nor a stutter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The implementation's actions from an initial state up to and
    /// including the failing one.
    pub path: Vec<String>,
    /// The failing implementation action.
    pub action: String,
    /// The abstract (model) state before it, one line per part.
    pub before: Vec<String>,
    /// The model step whose successor is nearest to the abstract state after
    /// it (`None` when the model has no step from there, or the state after
    /// has no abstraction).
    pub nearest: Option<String>,
    /// Between that successor (expected) and the abstract state after
    /// (actual); or, with no successor, between the state before and after.
    pub diff: Diff,
    /// The abstraction's refusal, when the state after has no model
    /// counterpart at all.
    pub error: Option<AbstractionError>,
}

/// What a refinement check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every transition refines.
    Refines(Summary),
    /// The first that does not, with the counts up to it.
    Fails(Summary, Box<Failure>),
}

impl Outcome {
    pub fn summary(&self) -> &Summary {
        match self {
            Outcome::Refines(s) | Outcome::Fails(s, _) => s,
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Refines(_) => None,
            Outcome::Fails(_, f) => Some(f),
        }
    }
}

/// One visited implementation state: where it was reached from.
struct Visit {
    parent: Option<usize>,
    action: String,
}

type SpecState<Ab, M> = SystemState<<Ab as Abstraction<M>>::Spec>;
type SpecAction<Ab, M> = SystemAction<<Ab as Abstraction<M>>::Spec>;
/// The model's successors of one abstract state, each with its action.
type Successors<Ab, M> = Vec<(SpecAction<Ab, M>, SpecState<Ab, M>)>;

/// Checks that `implementation` refines the model of `abstraction`: see the
/// module docs.
pub fn check<M, Ab>(implementation: &M, abstraction: &Ab) -> Result<Outcome, RefinementError>
where
    M: Model<State: Hash + Debug, Action: Clone + Debug>,
    Ab: Abstraction<M>,
{
    let start = Instant::now();
    let spec = abstraction.spec();
    let mut summary = Summary::default();
    let mut seen: HashMap<(u64, Ab::Ghost), ()> = HashMap::new();
    let mut visits: Vec<Visit> = Vec::new();
    let mut queue: VecDeque<(M::State, Ab::Ghost, usize)> = VecDeque::new();
    for init in implementation.init_states() {
        let ghost = Ab::Ghost::default();
        if seen
            .insert((fingerprint(&init), ghost.clone()), ())
            .is_none()
        {
            visits.push(Visit {
                parent: None,
                action: "initial state".into(),
            });
            queue.push_back((init, ghost, visits.len() - 1));
        }
    }
    // An initial state must abstract to an initial state of the model.
    let spec_inits = spec.init_states();
    for (init, ghost, at) in &queue {
        let fail = |diff: Diff, error: Option<AbstractionError>| {
            Box::new(Failure {
                path: vec!["initial state".into()],
                action: "initial state".into(),
                before: Vec::new(),
                nearest: Some("the model's initial state".into()),
                diff,
                error,
            })
        };
        let _ = at;
        match abstraction.state(init, ghost) {
            Err(e) => return Ok(Outcome::Fails(summary, fail(Diff::default(), Some(e)))),
            Ok(a) if spec_inits.contains(&a) => {}
            Ok(a) => {
                let diff = match spec_inits.first() {
                    Some(expected) => full_diff(spec, expected, &a),
                    None => Diff::default(),
                };
                return Ok(Outcome::Fails(summary, fail(diff, None)));
            }
        }
    }
    let mut actions = Vec::new();
    while let Some((state, ghost, at)) = queue.pop_front() {
        summary.states += 1;
        if !implementation.within_boundary(&state) {
            continue;
        }
        let before = match abstraction.state(&state, &ghost) {
            Ok(a) => a,
            Err(e) => {
                // Only reachable through a transition, which checked it.
                let failure = Failure {
                    path: path(&visits, at),
                    action: visits[at].action.clone(),
                    before: Vec::new(),
                    nearest: None,
                    diff: Diff::default(),
                    error: Some(e),
                };
                return Ok(Outcome::Fails(summary, Box::new(failure)));
            }
        };
        let mut successors: Option<Successors<Ab, M>> = None;
        actions.clear();
        implementation.actions(&state, &mut actions);
        for action in actions.drain(..) {
            let Some(next) = implementation.next_state(&state, action.clone()) else {
                continue;
            };
            summary.transitions += 1;
            let next_ghost = abstraction.ghost_after(&state, &action, &next, &ghost, &before);
            let verdict = match abstraction.state(&next, &next_ghost) {
                Err(e) => Err(Some(e)),
                Ok(after) if after == before => {
                    summary.stutters += 1;
                    Ok(())
                }
                Ok(after) => {
                    let succ = successors.get_or_insert_with(|| spec_successors(spec, &before));
                    if succ.iter().any(|(_, t)| *t == after) {
                        summary.steps += 1;
                        Ok(())
                    } else if compound(abstraction, spec, succ, &after) {
                        summary.compound += 1;
                        Ok(())
                    } else if settled_crashes(spec, &before).any(|t| t == after) {
                        summary.settled_crashes += 1;
                        Ok(())
                    } else {
                        let mapped = abstraction.action(&state, &action, &ghost);
                        let (nearest, diff) = nearest(spec, succ, mapped.as_ref(), &before, &after);
                        let failure = Failure {
                            path: [
                                path(&visits, at),
                                vec![implementation.format_action(&action)],
                            ]
                            .concat(),
                            action: implementation.format_action(&action),
                            before: describe_state(spec, &before),
                            nearest,
                            diff,
                            error: None,
                        };
                        summary.elapsed_ms = start.elapsed().as_millis();
                        return Ok(Outcome::Fails(summary, Box::new(failure)));
                    }
                }
            };
            if let Err(error) = verdict {
                let failure = Failure {
                    path: [
                        path(&visits, at),
                        vec![implementation.format_action(&action)],
                    ]
                    .concat(),
                    action: implementation.format_action(&action),
                    before: describe_state(spec, &before),
                    nearest: None,
                    diff: Diff::default(),
                    error,
                };
                summary.elapsed_ms = start.elapsed().as_millis();
                return Ok(Outcome::Fails(summary, Box::new(failure)));
            }
            let key = (fingerprint(&next), next_ghost);
            if seen.contains_key(&key) {
                continue;
            }
            if seen.len() >= STATES_MAX {
                return Err(RefinementError::TooLarge { max: STATES_MAX });
            }
            let next_ghost = key.1.clone();
            seen.insert(key, ());
            visits.push(Visit {
                parent: Some(at),
                action: implementation.format_action(&action),
            });
            queue.push_back((next, next_ghost, visits.len() - 1));
        }
    }
    summary.elapsed_ms = start.elapsed().as_millis();
    Ok(Outcome::Refines(summary))
}

/// Every successor of `state` in the model's system, with its action.
fn spec_successors<A, C>(
    spec: &System<A, C>,
    state: &SystemState<A>,
) -> Vec<(SystemAction<A>, SystemState<A>)>
where
    A: Actor<Msg: Ord, Timer: Ord>,
{
    let mut actions = Vec::new();
    spec.actions(state, &mut actions);
    actions
        .into_iter()
        .filter_map(|a| spec.next_state(state, a.clone()).map(|t| (a, t)))
        .collect()
}

/// The crashes the model's system leaves out of a settled state, each
/// computed by its own `next_state`. A `System` offers a crash only while
/// work is in flight: a crash after everything settled only replays finished
/// work, and leaving it out keeps settled states terminal for the model's
/// liveness checks. The implementation's system offers it where a message the
/// abstraction leaves out (a spent grant) is still in flight; the crash is a
/// step of the model's semantics all the same, within its crash budget.
pub fn settled_crashes<'a, A, C>(
    spec: &'a System<A, C>,
    state: &'a SystemState<A>,
) -> impl Iterator<Item = SystemState<A>> + 'a
where
    A: Actor<Msg: Ord, Timer: Ord>,
{
    let open = spec.is_settled(state) && state.history.crashes < spec.crash_budget;
    (0..state.crashed.len())
        .filter(move |i| open && !state.crashed[*i] && spec.may_crash[*i])
        .filter_map(move |i| {
            spec.next_state(
                state,
                Step::Actor(ActorModelAction::Crash(stateright::actor::Id::from(i))),
            )
        })
}

/// Whether `after` is a model step from `successors` followed by a step the
/// abstraction allows to follow it.
fn compound<M, Ab>(
    abstraction: &Ab,
    spec: &System<Ab::Spec, Ab::SpecCfg>,
    successors: &Successors<Ab, M>,
    after: &SpecState<Ab, M>,
) -> bool
where
    M: Model,
    Ab: Abstraction<M>,
{
    let mut actions = Vec::new();
    for (first, mid) in successors {
        actions.clear();
        spec.actions(mid, &mut actions);
        for second in actions.drain(..) {
            if abstraction.follows(first, &second)
                && spec.next_state(mid, second).as_ref() == Some(after)
            {
                return true;
            }
        }
    }
    false
}

/// The model successor nearest to `after`: among those by the model action
/// the implementation's corresponds to (or a crash of the same actor), else
/// among all, the one with the fewest differing fields.
fn nearest<A, C>(
    spec: &System<A, C>,
    successors: &[(SystemAction<A>, SystemState<A>)],
    mapped: Option<&SystemAction<A>>,
    before: &SystemState<A>,
    after: &SystemState<A>,
) -> (Option<String>, Diff)
where
    A: Actor<State: Fields, Storage: Fields, Msg: Ord, Timer: Ord>,
{
    let same = |a: &SystemAction<A>| match (mapped, a) {
        (Some(m), a) if m == a => true,
        (
            Some(Step::CrashUnsynced { actor: x, .. }),
            Step::CrashUnsynced { actor: y, .. } | Step::Actor(ActorModelAction::Crash(y)),
        ) => x == y,
        _ => false,
    };
    let pool: Vec<&(SystemAction<A>, SystemState<A>)> = {
        let same_kind: Vec<_> = successors.iter().filter(|(a, _)| same(a)).collect();
        if same_kind.is_empty() {
            successors.iter().collect()
        } else {
            same_kind
        }
    };
    let best = pool
        .into_iter()
        .map(|(a, t)| (a, full_diff(spec, t, after)))
        .min_by_key(|(_, d)| d.0.len());
    match best {
        Some((a, d)) => (Some(spec.describe(a)), d),
        None => (None, full_diff(spec, before, after)),
    }
}

/// [`diff_system`], and the parts it leaves out that a refinement compares:
/// each actor's armed timers and its unsynced tail.
pub fn full_diff<A, C>(
    spec: &System<A, C>,
    expected: &SystemState<A>,
    actual: &SystemState<A>,
) -> Diff
where
    A: Actor<State: Fields, Storage: Fields, Msg: Ord, Timer: Ord>,
{
    let mut diff = diff_system(spec, expected, actual);
    for (i, name) in spec.names.iter().enumerate() {
        let timers = |s: &SystemState<A>| {
            let mut t: Vec<String> = s
                .timers_set
                .get(i)
                .map(|t| t.iter().map(|x| format!("{x:?}")).collect())
                .unwrap_or_default();
            t.sort();
            t
        };
        diff.check(format!("{name}.timers"), &timers(expected), &timers(actual));
        let tail = |s: &SystemState<A>| {
            s.history
                .tails
                .get(i)
                .map(|t| format!("{:?} held {:?}", t.appends, t.held))
        };
        diff.check(format!("{name}.unsynced"), &tail(expected), &tail(actual));
    }
    if diff.is_empty() && expected != actual {
        diff.0.push(FieldDiff {
            field: "state".into(),
            expected: format!("{expected:?}"),
            actual: format!("{actual:?}"),
        });
    }
    diff
}

fn path(visits: &[Visit], mut at: usize) -> Vec<String> {
    let mut steps = Vec::new();
    while let Some(parent) = visits[at].parent {
        steps.push(visits[at].action.clone());
        at = parent;
    }
    steps.reverse();
    steps
}
