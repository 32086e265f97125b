//! From the model to the implementation: model behaviours replayed against the
//! cores.
//!
//! A [`Twin`] holds the implementation's cores of one protocol, their logs and
//! the messages between them, and carries out one model step at a time: a
//! submission, a delivery, a loss, a timeout, a crash, a recovery. After every
//! step the cores' abstraction ([`crate::abstraction`]) is compared with the
//! model's state; the first difference is reported as a [`Mismatch`] with the
//! path that led to it and a field-by-field [`Diff`].
//!
//! [`explore`] enumerates the model's behaviours three ways, each from the
//! initial state:
//!
//! 1. **breadth-first over the state graph**: every reachable model state is
//!    reached by one shortest path, with the implementation driven along it
//!    (a state is driven once: this is what reaches every state);
//! 2. **every path up to depth `k`**, without merging states: the
//!    implementation meets each model state by every route of that length;
//! 3. **seeded random walks**, each to a terminal state or a length bound.
//!
//! The [`DriveReport`] gives the fraction of the model's reachable states the
//! implementation was driven through (the count is the model's own, from its
//! state graph), and the kinds of model action never exercised.

pub mod ack_retry;
pub mod two_phase_commit;

use crate::abstraction::{AbstractionError, Diff};
use eo_models::graph::fingerprint;
use eo_models::system::{Step, System, SystemAction, SystemState};
use stateright::actor::{Actor, ActorModelAction};
use stateright::Model;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;

/// A configuration to drive: a model configuration of one protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Config {
    AckRetry(eo_models::ack_retry::AckRetryCfg),
    TwoPhaseCommit(eo_models::two_phase_commit::TwoPhaseCfg),
}

/// Drives the implementation through the behaviours of `config`'s model as
/// `options` say: [`explore`] with the protocol's [`Twin`]. Fails only if the
/// twin cannot be built (a syncing log, a bug variant, a layout the
/// abstraction does not cover).
pub fn run(config: &Config, options: &Options) -> Result<DriveReport, DriveError> {
    Ok(match config {
        Config::AckRetry(cfg) => {
            let twin = ack_retry::twin(cfg, None)?;
            explore(&cfg.clone().into_model(), twin, options)
        }
        Config::TwoPhaseCommit(cfg) => {
            let twin = two_phase_commit::twin(cfg)?;
            explore(&cfg.clone().into_model(), twin, options)
        }
    })
}

/// Why the implementation could not be driven through a model step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriveError {
    /// The implementation's state, records or messages have no model
    /// counterpart.
    #[error(transparent)]
    Abstraction(#[from] AbstractionError),
    /// The model delivers or loses a message the implementation has not sent.
    #[error("the implementation has no message {what} in flight")]
    NoSuchMessage { what: String },
    /// The implementation refused an input the model accepts.
    #[error("the implementation refused {what}: {error}")]
    Refused { what: String, error: String },
    /// A kind of model step this driver does not carry out.
    #[error("not drivable: {what}")]
    NotDrivable { what: String },
}

/// The implementation's cores of one protocol, driven by the model.
pub trait Twin<A, C>: Clone
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    /// Carries out the model's `action`, taken in `before`, on the cores.
    fn step(
        &mut self,
        system: &System<A, C>,
        before: &SystemState<A>,
        action: &SystemAction<A>,
    ) -> Result<(), DriveError>;

    /// The cores' abstract state against the model's `state`, field by field
    /// (empty when they agree). May tidy the twin's network as the model's
    /// does (absorbed copies, dead messages).
    fn compare(
        &mut self,
        system: &System<A, C>,
        state: &SystemState<A>,
    ) -> Result<Diff, DriveError>;
}

/// How much of the model's behaviour to drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Drive every reachable state, breadth-first.
    pub bfs: bool,
    /// Every path up to this many steps (0: none).
    pub depth: usize,
    /// Random walks (0: none) of at most `walk_steps_max` steps each.
    pub walks: usize,
    pub walk_steps_max: usize,
    pub seed: u64,
    /// Stop at this many states in the breadth-first phase and the depth
    /// phase each (a bound on time and memory).
    pub states_max: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bfs: true,
            depth: 8,
            walks: 200,
            walk_steps_max: 200,
            seed: 1,
            states_max: 2_000_000,
        }
    }
}

/// The first model step the implementation did not follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The steps from the initial state, described as the model describes
    /// them; the last is the one that failed.
    pub path: Vec<String>,
    /// What went wrong: a field-by-field difference, or why the step could
    /// not be driven.
    pub diff: Diff,
    pub error: Option<DriveError>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mismatch after {} steps:", self.path.len())?;
        for (i, step) in self.path.iter().enumerate() {
            writeln!(f, "  {:>3}. {step}", i + 1)?;
        }
        match &self.error {
            Some(e) => write!(f, "the step could not be driven: {e}"),
            None => write!(
                f,
                "expected (model) vs actual (implementation):\n{}",
                self.diff
            ),
        }
    }
}

/// What [`explore`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveReport {
    /// The model's reachable states (within its boundary).
    pub reachable: usize,
    /// Of those, the states the implementation was driven through and agreed in.
    pub covered: usize,
    /// Steps driven and compared, over all phases.
    pub steps: u64,
    /// Paths of the depth phase and random walks completed.
    pub paths: u64,
    /// The kinds of action the model offers in some reachable state.
    pub kinds: BTreeSet<String>,
    /// Kinds offered but never driven.
    pub unexercised: BTreeSet<String>,
    /// Steps that did not agree (all phases), and the first of them (by phase,
    /// then shortest).
    pub mismatches: u64,
    pub first_mismatch: Option<Mismatch>,
}

impl DriveReport {
    /// `covered / reachable`.
    pub fn coverage(&self) -> f64 {
        if self.reachable == 0 {
            return 0.0;
        }
        self.covered as f64 / self.reachable as f64
    }
}

impl fmt::Display for DriveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "driven through {} of {} reachable states ({:.1}%), {} steps, {} paths and walks",
            self.covered,
            self.reachable,
            100.0 * self.coverage(),
            self.steps,
            self.paths
        )?;
        writeln!(
            f,
            "action kinds: {} offered, never exercised: {}",
            self.kinds.len(),
            if self.unexercised.is_empty() {
                "none".to_owned()
            } else {
                self.unexercised
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )?;
        match &self.first_mismatch {
            None => write!(f, "no mismatch"),
            Some(m) => write!(f, "{} mismatching steps; the first:\n{m}", self.mismatches),
        }
    }
}

/// The kind of a model action: `deliver Data`, `timeout Retry`, `crash
/// sender`, `choose Yes` …, with actors named by role.
pub fn kind<A, C>(system: &System<A, C>, action: &SystemAction<A>) -> String
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    let role = |id| {
        system
            .name(id)
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ')
            .to_owned()
    };
    let head = |debug: String| {
        debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    match action {
        Step::Actor(ActorModelAction::Deliver { dst, msg, .. }) => {
            format!("deliver {} to {}", head(format!("{msg:?}")), role(*dst))
        }
        Step::Actor(ActorModelAction::Drop(env)) => {
            format!(
                "lose {} to {}",
                head(format!("{:?}", env.msg)),
                role(env.dst)
            )
        }
        Step::Actor(ActorModelAction::Timeout(id, timer)) => {
            format!("{} timeout {}", role(*id), head(format!("{timer:?}")))
        }
        Step::Actor(ActorModelAction::Crash(id)) => format!("crash {}", role(*id)),
        Step::Actor(ActorModelAction::Recover(id)) => format!("recover {}", role(*id)),
        Step::Actor(ActorModelAction::SelectRandom { actor, random, .. }) => {
            format!("{} chooses {}", role(*actor), head(format!("{random:?}")))
        }
        Step::LoseDisk(id) => format!("lose disk {}", role(*id)),
        Step::Sync(id) => format!("sync {}", role(*id)),
        Step::CrashUnsynced { actor, .. } => format!("crash unsynced {}", role(*actor)),
    }
}

fn successors<A, C>(
    system: &System<A, C>,
    state: &SystemState<A>,
) -> Vec<(SystemAction<A>, SystemState<A>)>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    A::State: Hash + Eq,
    A::Storage: Hash + Eq,
{
    let mut actions = Vec::new();
    system.actions(state, &mut actions);
    actions
        .into_iter()
        .filter_map(|a| {
            let next = system.next_state(state, a.clone())?;
            system.within_boundary(&next).then_some((a, next))
        })
        .collect()
}

/// The model's reachable states (within its boundary) and the kinds of action
/// offered in them, by a breadth-first walk of the model alone.
pub fn reachable<A, C>(system: &System<A, C>) -> (usize, BTreeSet<String>)
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    A::State: Hash + Eq,
    A::Storage: Hash + Eq,
{
    let mut seen = HashSet::new();
    let mut kinds = BTreeSet::new();
    let mut queue: VecDeque<SystemState<A>> = system.init_states().into();
    for s in &queue {
        seen.insert(fingerprint(s));
    }
    while let Some(state) = queue.pop_front() {
        for (action, next) in successors(system, &state) {
            kinds.insert(kind(system, &action));
            if seen.insert(fingerprint(&next)) {
                queue.push_back(next);
            }
        }
    }
    (seen.len(), kinds)
}

/// Everything the phases share: what was covered and exercised, the first
/// mismatch.
struct Tally {
    covered: HashSet<u64>,
    exercised: BTreeSet<String>,
    steps: u64,
    paths: u64,
    mismatches: u64,
    first: Option<Mismatch>,
}

impl Tally {
    /// Drives `twin` through `action` (from `before` to `next`) and compares;
    /// true if they agree.
    fn drive<A, C, T>(
        &mut self,
        system: &System<A, C>,
        twin: &mut T,
        before: &SystemState<A>,
        action: &SystemAction<A>,
        next: &SystemState<A>,
        path: impl FnOnce() -> Vec<String>,
    ) -> bool
    where
        A: Actor,
        A::Msg: Ord,
        A::Timer: Ord,
        A::State: Hash + Eq,
        A::Storage: Hash + Eq,
        T: Twin<A, C>,
    {
        self.steps += 1;
        let outcome = twin
            .step(system, before, action)
            .and_then(|()| twin.compare(system, next));
        let (diff, error) = match outcome {
            Ok(diff) if diff.is_empty() => {
                self.exercised.insert(kind(system, action));
                self.covered.insert(fingerprint(next));
                return true;
            }
            Ok(diff) => (diff, None),
            Err(e) => (Diff::default(), Some(e)),
        };
        self.mismatches += 1;
        if self.first.is_none() {
            self.first = Some(Mismatch {
                path: path(),
                diff,
                error,
            });
        }
        false
    }
}

/// Drives `twin` (the implementation in the model's initial state) through
/// the model's behaviours as `options` say, and reports coverage and the first
/// mismatch. The twin must agree with the model's (single) initial state.
pub fn explore<A, C, T>(system: &System<A, C>, twin: T, options: &Options) -> DriveReport
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    A::State: Hash + Eq,
    A::Storage: Hash + Eq,
    T: Twin<A, C>,
{
    let (reachable, kinds) = reachable(system);
    let init = system
        .init_states()
        .pop()
        .expect("a model has an initial state");
    let mut tally = Tally {
        covered: HashSet::new(),
        exercised: BTreeSet::new(),
        steps: 0,
        paths: 0,
        mismatches: 0,
        first: None,
    };
    let mut start = twin;
    match start.compare(system, &init) {
        Ok(diff) if diff.is_empty() => {
            tally.covered.insert(fingerprint(&init));
        }
        outcome => {
            let (diff, error) = match outcome {
                Ok(d) => (d, None),
                Err(e) => (Diff::default(), Some(e)),
            };
            tally.mismatches += 1;
            tally.first = Some(Mismatch {
                path: Vec::new(),
                diff,
                error,
            });
            return report(reachable, kinds, tally);
        }
    }
    if options.bfs {
        breadth_first(system, &init, &start, options, &mut tally);
    }
    if options.depth > 0 {
        let mut path = Vec::new();
        let mut budget = options.states_max;
        depth_first(
            system,
            &init,
            &start,
            options.depth,
            &mut path,
            &mut budget,
            &mut tally,
        );
    }
    let mut rng = SplitMix(options.seed);
    for _ in 0..options.walks {
        walk(
            system,
            &init,
            &start,
            options.walk_steps_max,
            &mut rng,
            &mut tally,
        );
    }
    report(reachable, kinds, tally)
}

fn report(reachable: usize, kinds: BTreeSet<String>, tally: Tally) -> DriveReport {
    let unexercised = kinds.difference(&tally.exercised).cloned().collect();
    DriveReport {
        reachable,
        covered: tally.covered.len(),
        steps: tally.steps,
        paths: tally.paths,
        kinds,
        unexercised,
        mismatches: tally.mismatches,
        first_mismatch: tally.first,
    }
}

fn breadth_first<A, C, T>(
    system: &System<A, C>,
    init: &SystemState<A>,
    start: &T,
    options: &Options,
    tally: &mut Tally,
) where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    A::State: Hash + Eq,
    A::Storage: Hash + Eq,
    T: Twin<A, C>,
{
    // Parent links for the paths of mismatches: (parent, the step's line).
    let mut nodes: Vec<(usize, String)> = vec![(usize::MAX, String::new())];
    let mut seen = HashSet::from([fingerprint(init)]);
    let mut queue = VecDeque::from([(init.clone(), start.clone(), 0usize)]);
    let path_to = |nodes: &Vec<(usize, String)>, mut at: usize, last: String| {
        let mut path = vec![last];
        while at != 0 {
            path.push(nodes[at].1.clone());
            at = nodes[at].0;
        }
        path.reverse();
        path
    };
    while let Some((state, twin, node)) = queue.pop_front() {
        for (action, next) in successors(system, &state) {
            if seen.contains(&fingerprint(&next)) {
                continue;
            }
            let mut t = twin.clone();
            let line = system.describe(&action);
            let agreed = tally.drive(system, &mut t, &state, &action, &next, || {
                path_to(&nodes, node, line.clone())
            });
            // A state reached only through a mismatch is left for other routes.
            if agreed && seen.len() < options.states_max {
                seen.insert(fingerprint(&next));
                nodes.push((node, line));
                queue.push_back((next, t, nodes.len() - 1));
            }
        }
    }
}

fn depth_first<A, C, T>(
    system: &System<A, C>,
    state: &SystemState<A>,
    twin: &T,
    depth: usize,
    path: &mut Vec<String>,
    budget: &mut usize,
    tally: &mut Tally,
) where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    A::State: Hash + Eq,
    A::Storage: Hash + Eq,
    T: Twin<A, C>,
{
    let successors = successors(system, state);
    if depth == 0 || successors.is_empty() || *budget == 0 {
        tally.paths += 1;
        return;
    }
    for (action, next) in successors {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let mut t = twin.clone();
        path.push(system.describe(&action));
        if tally.drive(system, &mut t, state, &action, &next, || path.clone()) {
            depth_first(system, &next, &t, depth - 1, path, budget, tally);
        } else {
            tally.paths += 1;
        }
        path.pop();
    }
}

fn walk<A, C, T>(
    system: &System<A, C>,
    init: &SystemState<A>,
    start: &T,
    steps_max: usize,
    rng: &mut SplitMix,
    tally: &mut Tally,
) where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    A::State: Hash + Eq,
    A::Storage: Hash + Eq,
    T: Twin<A, C>,
{
    let mut state = init.clone();
    let mut twin = start.clone();
    let mut path = Vec::new();
    tally.paths += 1;
    for _ in 0..steps_max {
        let mut successors = successors(system, &state);
        if successors.is_empty() {
            return;
        }
        let pick = (rng.next() % successors.len() as u64) as usize;
        let (action, next) = successors.swap_remove(pick);
        path.push(system.describe(&action));
        if !tally.drive(system, &mut twin, &state, &action, &next, || path.clone()) {
            return;
        }
        state = next;
    }
}

/// SplitMix64: a seeded, dependency-free generator for the random walks.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
