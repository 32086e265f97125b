//! Running the checker and reporting what it found, the same way for every model.

use crate::graph::{Bits, Graph, GraphError, TICK_INTERVAL};
use serde::Serialize;
use stateright::{Checker, Expectation, Model, Path};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// How the state space is searched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Search {
    /// The explicit state graph ([`crate::graph`]), one thread: built by a
    /// depth-first search that holds only a stack of states, numbered
    /// breadth-first, so counterexamples are shortest and counts and depth are
    /// deterministic; the only search that checks `progress` properties.
    #[default]
    Bfs,
    /// Stateright's depth-first checker, on `threads` threads: no graph is
    /// kept (less memory), `progress` is not checked, and counterexamples are
    /// shortened afterwards by a breadth-first search.
    Dfs,
}

/// What a running check is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Exploring the state space.
    Search,
    /// Checking `progress` properties on the state graph.
    Progress,
    /// Finding shortest counterexamples and examples.
    ShortestPaths,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Search => "search",
            Phase::Progress => "progress check",
            Phase::ShortestPaths => "shortest paths",
        }
    }
}

/// A periodic reading of a running check.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub phase: Phase,
    pub states: usize,
    pub unique_states: usize,
    /// The depth reached so far (the state graph's search: the depth, along
    /// the depth-first search, of the state being expanded).
    pub depth: usize,
    /// Since the check started.
    pub elapsed: Duration,
}

impl Reading {
    pub fn states_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.states as f64 / secs
        } else {
            0.0
        }
    }
}

/// How to run a check, independent of the model.
pub struct RunOptions<'a> {
    pub search: Search,
    /// Checker threads for [`Search::Dfs`]; the breadth-first search uses one.
    pub threads: usize,
    /// Called about once a second while the check runs, in every phase.
    pub progress: Option<&'a (dyn Fn(&Reading) + Sync)>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            search: Search::Bfs,
            threads: 1,
            progress: None,
        }
    }
}

/// What the checker concluded about one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// An `always`, `eventually` or `progress` property with no counterexample.
    Holds,
    /// An `always`, `eventually` or `progress` property with a counterexample.
    Violated,
    /// A `sometimes` property with an example.
    Found,
    /// A `sometimes` property with no example: the model cannot do the thing.
    NotFound,
    /// A property this configuration or search cannot decide; `note` says why.
    NotChecked,
}

impl Status {
    /// Whether this status meets the property's expectation. A property left
    /// unchecked does not: a verdict of success must rest on a check.
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Holds | Status::Found)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Violated => "violated",
            Status::Found => "found",
            Status::NotFound => "not found",
            Status::NotChecked => "not checked",
        }
    }
}

/// The result for one property.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    pub name: &'static str,
    /// `always`, `sometimes`, `eventually` or `progress`.
    pub expectation: &'static str,
    pub status: Status,
    /// For a violation: the counterexample, one readable line per step. For
    /// `progress`, a shortest path to a state from which the goal is
    /// unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Vec<String>>,
    /// For a `sometimes` property found: the shortest example, one readable
    /// line per step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<Vec<String>>,
    /// For a violation or an example: the durable facts of its last state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_state: Option<String>,
    /// For a violation or an example: the path to open in the Explorer
    /// (`http://ADDRESS/#/steps/PATH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explorer_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Wall time of each phase of a check, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Phases {
    pub search_ms: u64,
    pub progress_ms: u64,
    pub shortest_paths_ms: u64,
}

/// Everything one `eo check <model>` run found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub variant: String,
    /// The named configuration checked (`--config NAME`), if any; `config`
    /// holds the settings it resolved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
    pub config: BTreeMap<String, String>,
    pub search: Search,
    /// Successor states generated, duplicates included.
    pub states: usize,
    pub unique_states: usize,
    /// The depth of the deepest state: with breadth-first search its distance
    /// from an initial state. `None` where it depends on thread scheduling
    /// (depth-first on more than one thread).
    pub max_depth: Option<usize>,
    /// Wall time of the whole check, every phase included.
    pub elapsed_ms: u128,
    pub phases: Phases,
    /// The state graph only: bytes per state of the graph (fingerprints,
    /// parents, edges) plus, at its peak, what only the build needs (the hash
    /// index, the search's stack, the renumbering) or the progress check's
    /// reversed edges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_bytes_per_state: Option<f64>,
    pub properties: Vec<PropertyReport>,
}

impl Report {
    /// True when every property met its expectation.
    pub fn all_ok(&self) -> bool {
        self.properties.iter().all(|p| p.status.is_ok())
    }

    /// The names of the properties that did not meet their expectation.
    pub fn failed(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| !p.status.is_ok())
            .map(|p| p.name)
            .collect()
    }

    pub fn property(&self, name: &str) -> Option<&PropertyReport> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Generated states per second of the search phase.
    pub fn states_per_second(&self) -> f64 {
        let ms = self.phases.search_ms.max(1);
        self.states as f64 * 1000.0 / ms as f64
    }
}

/// A symmetry reduction: maps a state to the canonical member of its orbit.
pub type Representative<M> = fn(&<M as Model>::State) -> <M as Model>::State;

/// A `progress` property: from every reachable state a state satisfying
/// `goal` is reachable (AG EF goal). On a finite graph this is "eventually
/// goal, under strong fairness of every transition" (see docs/ack-retry.md).
pub struct ProgressProperty<M: Model> {
    pub name: &'static str,
    pub goal: fn(&M, &M::State) -> bool,
}

impl<M: Model> Clone for ProgressProperty<M> {
    fn clone(&self) -> Self {
        ProgressProperty {
            name: self.name,
            goal: self.goal,
        }
    }
}

/// How a model explains itself in a report.
pub trait Explain: Model {
    /// The durable facts of a state in one line, printed after a counterexample.
    fn summarize(&self, state: &Self::State) -> String;

    /// The model's `progress` properties (none by default).
    fn progress_properties(&self) -> Vec<ProgressProperty<Self>>
    where
        Self: Sized,
    {
        Vec::new()
    }
}

/// The identity of a run, for its report.
pub struct RunLabel {
    pub model: String,
    pub variant: String,
    pub config: BTreeMap<String, String>,
    /// Properties of the model that this configuration cannot decide, with why.
    pub not_checked: Vec<(&'static str, &'static str, String)>,
}

/// Why a check could not run to its end.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The state graph outgrew one of its bounds.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Checks `model` exhaustively (within its boundary) and reports every property.
pub fn run<M>(
    model: M,
    symmetry: Option<Representative<M>>,
    label: RunLabel,
    opts: &RunOptions,
) -> Result<Report, CheckError>
where
    M: Explain + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq + Send + Sync + 'static,
{
    let start = Instant::now();
    match opts.search {
        Search::Bfs => run_graph(&model, symmetry, label, opts, start),
        Search::Dfs => Ok(run_dfs(model, symmetry, label, opts, start)),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn expectation_name(e: &Expectation) -> &'static str {
    match e {
        Expectation::Always => "always",
        Expectation::Eventually => "eventually",
        Expectation::Sometimes => "sometimes",
    }
}

impl PropertyReport {
    fn new(name: &'static str, expectation: &'static str, status: Status) -> Self {
        PropertyReport {
            name,
            expectation,
            status,
            counterexample: None,
            example: None,
            final_state: None,
            explorer_path: None,
            note: None,
        }
    }

    /// Fills in the path of a violation or an example.
    fn with_path<M>(mut self, model: &M, path: Option<Path<M::State, M::Action>>) -> Self
    where
        M: Explain,
        M::State: Clone + Debug + Hash + PartialEq,
        M::Action: Clone + Debug + PartialEq,
    {
        if let Some(path) = path {
            self.explorer_path = Some(path.encode(model));
            self.final_state = Some(model.summarize(path.last_state()));
            let steps = || {
                path.clone()
                    .into_actions()
                    .iter()
                    .map(|a| model.format_action(a))
                    .collect()
            };
            match self.status {
                Status::Violated => self.counterexample = Some(steps()),
                Status::Found => self.example = Some(steps()),
                _ => {}
            }
        }
        self
    }
}

/// The check on the explicit state graph: one search evaluates every property
/// at each state as it is discovered and records, per property, the states that
/// decide it; the graph's breadth-first numbering picks a nearest one (a
/// shortest counterexample or example) and answers `eventually` and `progress`.
fn run_graph<M>(
    model: &M,
    symmetry: Option<Representative<M>>,
    label: RunLabel,
    opts: &RunOptions,
    start: Instant,
) -> Result<Report, CheckError>
where
    M: Explain,
    M::State: Clone + Debug + Hash + PartialEq,
    M::Action: Clone + Debug + PartialEq,
{
    let properties = model.properties();
    let progress_properties = model.progress_properties();
    let report = |phase: Phase, states: usize, unique: usize, depth: usize| {
        if let Some(progress) = opts.progress {
            progress(&Reading {
                phase,
                states,
                unique_states: unique,
                depth,
                elapsed: start.elapsed(),
            });
        }
    };
    // Per property, by discovery index: the states that decide it (always:
    // violate it; sometimes: satisfy it), or the states where it holds
    // (eventually). The graph's breadth-first numbering then picks the nearest.
    let mut deciding: Vec<Bits> = properties.iter().map(|_| Bits::default()).collect();
    let mut held: Vec<Bits> = properties.iter().map(|_| Bits::default()).collect();
    let mut goals: Vec<Bits> = progress_properties
        .iter()
        .map(|_| Bits::default())
        .collect();
    let graph = Graph::build(
        model,
        symmetry,
        |i, s| {
            for (k, p) in properties.iter().enumerate() {
                match p.expectation {
                    Expectation::Always if !(p.condition)(model, s) => deciding[k].set(i),
                    Expectation::Sometimes if (p.condition)(model, s) => deciding[k].set(i),
                    Expectation::Eventually if (p.condition)(model, s) => held[k].set(i),
                    _ => {}
                }
            }
            for (k, p) in progress_properties.iter().enumerate() {
                if (p.goal)(model, s) {
                    goals[k].set(i);
                }
            }
        },
        &mut |t| report(Phase::Search, t.states, t.unique_states, t.depth),
    )?;
    let first: Vec<Option<usize>> = deciding.iter().map(|d| graph.first_of(d)).collect();
    drop(deciding);
    let held: Vec<Bits> = held.iter().map(|h| graph.renumber(h)).collect();
    let goals: Vec<Bits> = goals.iter().map(|g| graph.renumber(g)).collect();
    let searched = start.elapsed();
    let unique = graph.len();
    let mut phases = Phases {
        search_ms: ms(searched),
        ..Phases::default()
    };

    // A phase announces itself only in a check long enough to be watched.
    let long = || start.elapsed() >= TICK_INTERVAL;
    if long() {
        report(Phase::Progress, graph.transitions, unique, graph.max_depth);
    }
    let progress_start = Instant::now();
    let unreachable: Vec<(Option<usize>, usize)> = goals
        .iter()
        .map(|goal| {
            let cannot = graph.cannot_reach(goal);
            let first = (0..unique).find(|i| cannot.get(*i));
            let count = (0..unique).filter(|i| cannot.get(*i)).count();
            (first, count)
        })
        .collect();
    phases.progress_ms = ms(progress_start.elapsed());

    if long() {
        report(
            Phase::ShortestPaths,
            graph.transitions,
            unique,
            graph.max_depth,
        );
    }
    let paths_start = Instant::now();
    let mut reports = Vec::new();
    for (k, p) in properties.iter().enumerate() {
        let (status, chain) = match p.expectation {
            Expectation::Always => match first[k] {
                Some(i) => (Status::Violated, Some(graph.chain_to(i))),
                None => (Status::Holds, None),
            },
            Expectation::Sometimes => match first[k] {
                Some(i) => (Status::Found, Some(graph.chain_to(i))),
                None => (Status::NotFound, None),
            },
            Expectation::Eventually => match graph.first_unmet_terminal(&held[k]) {
                Some(chain) => (Status::Violated, Some(chain)),
                None => (Status::Holds, None),
            },
        };
        let path = chain.and_then(|c| graph.replay(model, symmetry, &c));
        reports.push(
            PropertyReport::new(p.name, expectation_name(&p.expectation), status)
                .with_path(model, path),
        );
    }
    let cut = (0..unique).filter(|&i| graph.is_cut(i)).count();
    for (p, (first, count)) in progress_properties.iter().zip(unreachable) {
        let mut r = match first {
            Some(i) => {
                let path = graph.replay(model, symmetry, &graph.chain_to(i));
                PropertyReport::new(p.name, "progress", Status::Violated).with_path(model, path)
            }
            None => PropertyReport::new(p.name, "progress", Status::Holds),
        };
        let mut notes = Vec::new();
        if count > 0 {
            notes.push(format!(
                "{count} of {unique} states cannot reach the goal; the path leads to a nearest one"
            ));
        }
        // A state the model's boundary cut off counts as reaching the goal (what
        // lies beyond the bound is unknown): say how many there were, so that a
        // pass that rests on them is visible.
        if cut > 0 {
            notes.push(format!(
                "{cut} of {unique} states were cut off by the model's bound and counted as \
                 reaching the goal"
            ));
        }
        if !notes.is_empty() {
            r.note = Some(notes.join("; "));
        }
        reports.push(r);
    }
    phases.shortest_paths_ms = ms(paths_start.elapsed());
    push_not_checked(&mut reports, label.not_checked);

    let bytes = graph.bytes();
    Ok(Report {
        model: label.model,
        variant: label.variant,
        configuration: None,
        config: label.config,
        search: Search::Bfs,
        states: graph.transitions,
        unique_states: unique,
        max_depth: Some(graph.max_depth),
        elapsed_ms: start.elapsed().as_millis(),
        phases,
        graph_bytes_per_state: Some(bytes as f64 / unique.max(1) as f64),
        properties: reports,
    })
}

fn push_not_checked(
    reports: &mut Vec<PropertyReport>,
    not_checked: Vec<(&'static str, &'static str, String)>,
) {
    for (name, expectation, why) in not_checked {
        reports.retain(|r| r.name != name);
        let mut r = PropertyReport::new(name, expectation, Status::NotChecked);
        r.note = Some(why);
        reports.push(r);
    }
}

/// Stateright's depth-first checker; counterexamples are shortened afterwards.
fn run_dfs<M>(
    model: M,
    symmetry: Option<Representative<M>>,
    label: RunLabel,
    opts: &RunOptions,
    start: Instant,
) -> Report
where
    M: Explain + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq + Send + Sync + 'static,
{
    let properties = model.properties();
    let progress = model.progress_properties();
    let threads = opts.threads.max(1);
    let mut builder = model.checker().threads(threads);
    if let Some(representative) = symmetry {
        builder = builder.symmetry_fn(representative);
    }
    let checker = builder.spawn_dfs();
    let mut last_report = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(progress) = opts.progress {
            if last_report.elapsed() >= TICK_INTERVAL {
                last_report = Instant::now();
                progress(&Reading {
                    phase: Phase::Search,
                    states: checker.state_count(),
                    unique_states: checker.unique_state_count(),
                    depth: checker.max_depth(),
                    elapsed: start.elapsed(),
                });
            }
        }
    }
    let checker = checker.join();
    let searched = start.elapsed();
    let discoveries = checker.discoveries();
    let model = checker.model();
    let (states, unique) = (checker.state_count(), checker.unique_state_count());
    let tick = |visited: usize| {
        if let Some(progress) = opts.progress {
            progress(&Reading {
                phase: Phase::ShortestPaths,
                states,
                unique_states: visited,
                depth: 0,
                elapsed: start.elapsed(),
            });
        }
    };
    let paths_start = Instant::now();
    let mut reports: Vec<PropertyReport> = properties
        .iter()
        .map(|p| {
            let found = discoveries.get(p.name);
            let status = match (&p.expectation, found.is_some()) {
                (Expectation::Always | Expectation::Eventually, false) => Status::Holds,
                (Expectation::Always | Expectation::Eventually, true) => Status::Violated,
                (Expectation::Sometimes, true) => Status::Found,
                (Expectation::Sometimes, false) => Status::NotFound,
            };
            // Stateright keeps the last violating state it met, not the first;
            // search again for the shortest path to this property's discovery.
            let shortest = match (&p.expectation, found.is_some()) {
                (Expectation::Always, true) => {
                    search(model, |_| false, |s, _, _| !(p.condition)(model, s), &tick)
                }
                (Expectation::Sometimes, true) => {
                    search(model, |_| false, |s, _, _| (p.condition)(model, s), &tick)
                }
                (Expectation::Eventually, true) => search(
                    model,
                    |s| (p.condition)(model, s),
                    |_, held, terminal| terminal && !held,
                    &tick,
                ),
                _ => None,
            };
            let path = shortest.or_else(|| found.cloned());
            PropertyReport::new(p.name, expectation_name(&p.expectation), status)
                .with_path(model, path)
        })
        .collect();
    // Without the state graph, `progress` is checked in its weaker,
    // terminal-state form: a behaviour that ends short of the goal is a
    // violation; one that never ends (a livelock) is not seen.
    for p in progress {
        let goal = p.goal;
        let dead_end = search_bounded(
            model,
            |_| false,
            |s, _, terminal| terminal && !goal(model, s),
            &tick,
        );
        let report = match dead_end {
            Searched::Found(path) => PropertyReport::new(p.name, "progress", Status::Violated)
                .with_path(model, Some(path)),
            Searched::Exhausted => {
                let mut r = PropertyReport::new(p.name, "progress", Status::Holds);
                r.note = Some(
                    "held in its terminal-state form only: no behaviour ends short of the goal; \
                     a livelock needs the breadth-first search's state graph (drop --dfs)"
                        .into(),
                );
                r
            }
            Searched::Bound => {
                let mut r = PropertyReport::new(p.name, "progress", Status::NotChecked);
                r.note = Some(format!(
                    "--dfs's terminal-state check stopped at its bound of \
                     {SHORTEST_PATH_STATES_MAX} states (drop --dfs)"
                ));
                r
            }
        };
        reports.push(report);
    }
    push_not_checked(&mut reports, label.not_checked);
    Report {
        model: label.model,
        variant: label.variant,
        configuration: None,
        config: label.config,
        search: Search::Dfs,
        states,
        unique_states: unique,
        max_depth: (threads == 1).then(|| checker.max_depth()),
        elapsed_ms: start.elapsed().as_millis(),
        phases: Phases {
            search_ms: ms(searched),
            progress_ms: 0,
            shortest_paths_ms: ms(paths_start.elapsed()),
        },
        graph_bytes_per_state: None,
        properties: reports,
    }
}

/// States a shortest-counterexample search may visit before giving up and
/// keeping the checker's own (valid, longer) path.
const SHORTEST_PATH_STATES_MAX: usize = 4_000_000;

/// A shortest path from an initial state to a state satisfying `goal`, by
/// breadth-first search within the model's boundary.
pub fn shortest_path<M>(
    model: &M,
    goal: impl Fn(&M::State) -> bool,
) -> Option<Path<M::State, M::Action>>
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    search(model, |_| false, |s, _, _| goal(s), &|_| {})
}

/// A shortest path to a terminal state (one with no successor) along which
/// `condition` never held: a counterexample to "`condition` eventually holds".
pub fn shortest_unmet_eventually<M>(
    model: &M,
    condition: impl Fn(&M::State) -> bool,
) -> Option<Path<M::State, M::Action>>
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    search(
        model,
        condition,
        |_, held, terminal| terminal && !held,
        &|_| {},
    )
}

/// Breadth-first search over pairs (state, whether `mark` held anywhere on the
/// path so far) for the first pair satisfying `goal(state, marked, terminal)`.
fn search<M>(
    model: &M,
    mark: impl Fn(&M::State) -> bool,
    goal: impl Fn(&M::State, bool, bool) -> bool,
    tick: &dyn Fn(usize),
) -> Option<Path<M::State, M::Action>>
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    match search_bounded(model, mark, goal, tick) {
        Searched::Found(path) => Some(path),
        Searched::Exhausted | Searched::Bound => None,
    }
}

/// How a bounded breadth-first search ended.
enum Searched<M: Model> {
    /// A nearest state satisfying the goal, with its path.
    Found(Path<M::State, M::Action>),
    /// Every reachable state was visited; none satisfies the goal.
    Exhausted,
    /// [`SHORTEST_PATH_STATES_MAX`] states were visited before either.
    Bound,
}

/// The search behind [`search`], telling an exhausted search from one that
/// stopped at its bound. A state is terminal when it has no successor at all:
/// one whose successors all lie outside the model's boundary is cut, not
/// terminal (as in the state graph of [`crate::graph`]).
fn search_bounded<M>(
    model: &M,
    mark: impl Fn(&M::State) -> bool,
    goal: impl Fn(&M::State, bool, bool) -> bool,
    tick: &dyn Fn(usize),
) -> Searched<M>
where
    M: Model,
    M::State: Clone + Hash + PartialEq,
    M::Action: Clone + PartialEq,
{
    let fingerprint = |s: &M::State, marked: bool| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        marked.hash(&mut h);
        h.finish()
    };
    // Every visited pair with its parent's index and the action that led to it.
    type Visited<S, A> = Vec<(S, bool, Option<(usize, A)>)>;
    let mut visited: Visited<M::State, M::Action> = Vec::new();
    let mut seen = HashSet::new();
    for init in model.init_states() {
        let marked = mark(&init);
        if seen.insert(fingerprint(&init, marked)) {
            visited.push((init, marked, None));
        }
    }
    let mut next = 0;
    let mut actions = Vec::new();
    let mut successors = Vec::new();
    let mut last_tick = Instant::now();
    while next < visited.len() {
        if last_tick.elapsed() >= TICK_INTERVAL {
            last_tick = Instant::now();
            tick(visited.len());
        }
        if visited.len() > SHORTEST_PATH_STATES_MAX {
            return Searched::Bound;
        }
        let (state, marked) = (visited[next].0.clone(), visited[next].1);
        model.actions(&state, &mut actions);
        let mut cut = false;
        for action in actions.drain(..) {
            if let Some(succ) = model.next_state(&state, action.clone()) {
                if model.within_boundary(&succ) {
                    successors.push((succ, action));
                } else {
                    cut = true;
                }
            }
        }
        if goal(&state, marked, successors.is_empty() && !cut) {
            let mut steps = Vec::new();
            let mut at = next;
            while let Some((parent, action)) = &visited[at].2 {
                steps.push(action.clone());
                at = *parent;
            }
            steps.reverse();
            return match Path::from_actions(model, visited[at].0.clone(), steps.iter()) {
                Some(path) => Searched::Found(path),
                // A path the model cannot replay: report nothing rather than a
                // wrong path (the search itself produced these actions).
                None => Searched::Exhausted,
            };
        }
        for (succ, action) in successors.drain(..) {
            let succ_marked = marked || mark(&succ);
            if seen.insert(fingerprint(&succ, succ_marked)) {
                visited.push((succ, succ_marked, Some((next, action))));
            }
        }
        next += 1;
    }
    Searched::Exhausted
}
