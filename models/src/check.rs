//! Running the checker and reporting what it found, the same way for every model.

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
    /// Breadth-first: shortest counterexamples (with one thread), more memory.
    #[default]
    Bfs,
    /// Depth-first: less memory, longer counterexamples.
    Dfs,
}

/// A periodic progress reading of a running check.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub elapsed: Duration,
}

impl Progress {
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
    pub threads: usize,
    /// Called about once a second while the check runs.
    pub progress: Option<&'a (dyn Fn(&Progress) + Sync)>,
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
    /// An `always` or `eventually` property with no counterexample.
    Holds,
    /// An `always` or `eventually` property with a counterexample.
    Violated,
    /// A `sometimes` property with an example.
    Found,
    /// A `sometimes` property with no example: the model cannot do the thing.
    NotFound,
    /// A property this configuration cannot decide; `note` says why.
    NotChecked,
}

impl Status {
    /// Whether this status meets the property's expectation.
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Holds | Status::Found | Status::NotChecked)
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
    /// `always`, `sometimes` or `eventually`.
    pub expectation: &'static str,
    pub status: Status,
    /// For a violation: the counterexample, one readable line per step.
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

/// Everything one `eo check <model>` run found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub variant: String,
    pub config: BTreeMap<String, String>,
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub elapsed_ms: u128,
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

    pub fn states_per_second(&self) -> f64 {
        if self.elapsed_ms == 0 {
            self.states as f64 * 1000.0
        } else {
            self.states as f64 * 1000.0 / self.elapsed_ms as f64
        }
    }
}

/// A symmetry reduction: maps a state to the canonical member of its orbit.
pub type Representative<M> = fn(&<M as Model>::State) -> <M as Model>::State;

/// How a model explains itself in a report.
pub trait Explain: Model {
    /// The durable facts of a state in one line, printed after a counterexample.
    fn summarize(&self, state: &Self::State) -> String;
}

/// The identity of a run, for its report.
pub struct RunLabel {
    pub model: String,
    pub variant: String,
    pub config: BTreeMap<String, String>,
    /// Properties of the model that this configuration cannot decide, with why.
    pub not_checked: Vec<(&'static str, &'static str, String)>,
}

/// Checks `model` exhaustively (within its boundary) and reports every property.
/// With a `symmetry` reduction the search is depth-first whatever `opts` says.
pub fn run<M>(
    model: M,
    symmetry: Option<Representative<M>>,
    label: RunLabel,
    opts: &RunOptions,
) -> Report
where
    M: Explain + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq + Send + Sync + 'static,
{
    let properties = model.properties();
    let mut builder = model.checker().threads(opts.threads.max(1));
    let mut search = opts.search;
    if let Some(representative) = symmetry {
        builder = builder.symmetry_fn(representative);
        // Stateright 0.31 applies a symmetry function only in its depth-first
        // checker (its breadth-first checker ignores it). Counterexamples are
        // shortened afterwards by `shortest_path` either way.
        search = Search::Dfs;
    }
    let start = Instant::now();
    match search {
        Search::Bfs => finish(builder.spawn_bfs(), properties, label, opts, start),
        Search::Dfs => finish(builder.spawn_dfs(), properties, label, opts, start),
    }
}

fn finish<M, C>(
    checker: C,
    properties: Vec<stateright::Property<M>>,
    label: RunLabel,
    opts: &RunOptions,
    start: Instant,
) -> Report
where
    M: Explain,
    M::State: Clone + Debug + Hash + PartialEq,
    M::Action: Clone + Debug + PartialEq,
    C: Checker<M>,
{
    let mut last_report = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(progress) = opts.progress {
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                progress(&Progress {
                    states: checker.state_count(),
                    unique_states: checker.unique_state_count(),
                    max_depth: checker.max_depth(),
                    elapsed: start.elapsed(),
                });
            }
        }
    }
    let checker = checker.join();
    let elapsed = start.elapsed();
    let discoveries = checker.discoveries();
    let model = checker.model();

    let mut reports: Vec<PropertyReport> = properties
        .iter()
        .map(|p| {
            let found = discoveries.get(p.name);
            let (expectation, status) = match (&p.expectation, found.is_some()) {
                (Expectation::Always, false) => ("always", Status::Holds),
                (Expectation::Always, true) => ("always", Status::Violated),
                (Expectation::Eventually, false) => ("eventually", Status::Holds),
                (Expectation::Eventually, true) => ("eventually", Status::Violated),
                (Expectation::Sometimes, true) => ("sometimes", Status::Found),
                (Expectation::Sometimes, false) => ("sometimes", Status::NotFound),
            };
            let mut report = PropertyReport {
                name: p.name,
                expectation,
                status,
                counterexample: None,
                example: None,
                final_state: None,
                explorer_path: None,
                note: None,
            };
            // Stateright keeps the last violating state it met, not the first;
            // search again for the shortest path to this property's discovery.
            let shortest = match (&p.expectation, found.is_some()) {
                (Expectation::Always, true) => shortest_path(model, |s| !(p.condition)(model, s)),
                (Expectation::Sometimes, true) => shortest_path(model, |s| (p.condition)(model, s)),
                (Expectation::Eventually, true) => {
                    shortest_unmet_eventually(model, |s| (p.condition)(model, s))
                }
                _ => None,
            };
            let found = shortest.as_ref().or(found);
            if let Some(path) = found {
                report.explorer_path = Some(path.encode(model));
                report.final_state = Some(model.summarize(path.last_state()));
                let steps = || {
                    path.clone()
                        .into_actions()
                        .iter()
                        .map(|a| model.format_action(a))
                        .collect()
                };
                match status {
                    Status::Violated => report.counterexample = Some(steps()),
                    Status::Found => report.example = Some(steps()),
                    _ => {}
                }
            }
            report
        })
        .collect();
    for (name, expectation, why) in label.not_checked {
        reports.push(PropertyReport {
            name,
            expectation,
            status: Status::NotChecked,
            counterexample: None,
            example: None,
            final_state: None,
            explorer_path: None,
            note: Some(why),
        });
    }

    Report {
        model: label.model,
        variant: label.variant,
        config: label.config,
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed_ms: elapsed.as_millis(),
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
    search(model, |_| false, |s, _, _| goal(s))
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
    search(model, condition, |_, held, terminal| terminal && !held)
}

/// Breadth-first search over pairs (state, whether `mark` held anywhere on the
/// path so far) for the first pair satisfying `goal(state, marked, terminal)`.
fn search<M>(
    model: &M,
    mark: impl Fn(&M::State) -> bool,
    goal: impl Fn(&M::State, bool, bool) -> bool,
) -> Option<Path<M::State, M::Action>>
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
    while next < visited.len() {
        if visited.len() > SHORTEST_PATH_STATES_MAX {
            return None;
        }
        let (state, marked) = (visited[next].0.clone(), visited[next].1);
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            if let Some(succ) = model.next_state(&state, action.clone()) {
                if model.within_boundary(&succ) {
                    successors.push((succ, action));
                }
            }
        }
        if goal(&state, marked, successors.is_empty()) {
            let mut steps = Vec::new();
            let mut at = next;
            while let Some((parent, action)) = &visited[at].2 {
                steps.push(action.clone());
                at = *parent;
            }
            steps.reverse();
            return Path::from_actions(model, visited[at].0.clone(), steps.iter());
        }
        for (succ, action) in successors.drain(..) {
            let succ_marked = marked || mark(&succ);
            if seen.insert(fingerprint(&succ, succ_marked)) {
                visited.push((succ, succ_marked, Some((next, action))));
            }
        }
        next += 1;
    }
    None
}
