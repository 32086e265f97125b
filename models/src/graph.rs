//! The explicit state graph of a bounded configuration, built by one
//! breadth-first search.
//!
//! Every reachable state within the model's boundary gets an index, in the
//! order the search discovers it — so indices are in nondecreasing depth, and
//! the lowest index satisfying a condition is a state nearest an initial state.
//! Per state the graph keeps only its fingerprint (64 bits), the index of the
//! state it was discovered from, and its successors as indices in compressed
//! sparse rows (`offsets`/`targets`, `u32` each); the states themselves live
//! only while they wait in the search's queue. A path is rebuilt by replaying
//! the model from an initial state along the parent indices, matching
//! fingerprints.
//!
//! Two states are the same state when their fingerprints are equal: exact up to
//! collisions of a 64-bit hash, since [`crate::system`] makes every part of an
//! actor-system state part of what is hashed.

use crate::check::Representative;
use stateright::{Model, Path};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant};

/// The most states a graph may hold: indices are `u32`, and one value marks
/// "no parent".
pub const GRAPH_STATES_MAX: usize = u32::MAX as usize - 1;
/// The most edges a graph may hold: offsets are `u32`.
pub const GRAPH_EDGES_MAX: usize = u32::MAX as usize;
/// How often (in states taken from the queue) the search looks at the clock.
const TICK_STATES: usize = 1024;
/// How often a progress reading is passed on.
pub const TICK_INTERVAL: Duration = Duration::from_secs(1);

const NO_PARENT: u32 = u32::MAX;

/// Why a graph could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// More reachable states than [`GRAPH_STATES_MAX`].
    #[error("more than {GRAPH_STATES_MAX} states: too large for the state graph")]
    TooManyStates,
    /// More edges than [`GRAPH_EDGES_MAX`].
    #[error("more than {GRAPH_EDGES_MAX} edges: too large for the state graph")]
    TooManyEdges,
}

/// A reading of a running search.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    /// Successor states generated so far (within the boundary).
    pub states: usize,
    /// Distinct states so far.
    pub unique_states: usize,
    /// The depth of the state being expanded.
    pub depth: usize,
}

/// A set of state indices.
#[derive(Clone, Debug, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    pub fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }
    pub fn set(&mut self, i: usize) {
        let word = i / 64;
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (i % 64);
    }
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn bytes(&self) -> usize {
        self.0.capacity() * 8
    }
}

/// A `Hasher` for keys that are already uniform 64-bit fingerprints.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The 64-bit fingerprint of a state: the standard library's SipHash-1-3
/// with fixed keys, the same in every run of one build.
pub fn fingerprint<S: Hash>(state: &S) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

/// The explicit state graph. See the module docs.
pub struct Graph {
    fingerprints: Vec<u64>,
    parents: Vec<u32>,
    offsets: Vec<u32>,
    targets: Vec<u32>,
    /// States with a successor outside the model's boundary.
    cut: Bits,
    /// How many states are initial (indices `0..inits`).
    inits: usize,
    /// Successor states generated, duplicates included.
    pub transitions: usize,
    /// The greatest depth of a state (initial states are at depth 0).
    pub max_depth: usize,
    /// Bytes of the hash index, freed once the graph is built, counted in
    /// [`Graph::bytes`].
    index_bytes: usize,
}

impl Graph {
    /// Explores `model` breadth-first within its boundary (under `symmetry`,
    /// one representative per orbit) and calls `visit(index, state)` once per
    /// distinct state, in index order; `tick` about once a second.
    pub fn build<M>(
        model: &M,
        symmetry: Option<Representative<M>>,
        mut visit: impl FnMut(usize, &M::State),
        tick: &mut dyn FnMut(&Tick),
    ) -> Result<Graph, GraphError>
    where
        M: Model,
        M::State: Hash,
    {
        let key = |s: &M::State| match symmetry {
            Some(representative) => fingerprint(&representative(s)),
            None => fingerprint(s),
        };
        let mut index: HashMap<u64, u32, BuildHasherDefault<PassThrough>> = HashMap::default();
        let mut graph = Graph {
            fingerprints: Vec::new(),
            parents: Vec::new(),
            offsets: vec![0],
            targets: Vec::new(),
            cut: Bits::default(),
            inits: 0,
            transitions: 0,
            max_depth: 0,
            index_bytes: 0,
        };
        let mut queue: VecDeque<(M::State, u32)> = VecDeque::new();
        for init in model.init_states() {
            if !model.within_boundary(&init) {
                continue;
            }
            let fp = key(&init);
            if index.contains_key(&fp) {
                continue;
            }
            let i = graph.fingerprints.len();
            index.insert(fp, i as u32);
            graph.fingerprints.push(fp);
            graph.parents.push(NO_PARENT);
            visit(i, &init);
            queue.push_back((init, 0));
        }
        graph.inits = graph.fingerprints.len();
        let mut actions = Vec::new();
        let mut at = 0usize;
        let mut last_tick = Instant::now();
        while let Some((state, depth)) = queue.pop_front() {
            graph.max_depth = graph.max_depth.max(depth as usize);
            if at % TICK_STATES == 0 && last_tick.elapsed() >= TICK_INTERVAL {
                last_tick = Instant::now();
                tick(&Tick {
                    states: graph.transitions,
                    unique_states: graph.fingerprints.len(),
                    depth: depth as usize,
                });
            }
            let first_edge = graph.targets.len();
            model.actions(&state, &mut actions);
            for action in actions.drain(..) {
                let Some(next) = model.next_state(&state, action) else {
                    continue;
                };
                if !model.within_boundary(&next) {
                    graph.cut.set(at);
                    continue;
                }
                graph.transitions += 1;
                let fp = key(&next);
                let target = match index.get(&fp) {
                    Some(t) => *t,
                    None => {
                        let t = graph.fingerprints.len();
                        if t >= GRAPH_STATES_MAX {
                            return Err(GraphError::TooManyStates);
                        }
                        index.insert(fp, t as u32);
                        graph.fingerprints.push(fp);
                        graph.parents.push(at as u32);
                        visit(t, &next);
                        queue.push_back((next, depth + 1));
                        t as u32
                    }
                };
                graph.targets.push(target);
            }
            // Two actions to one state are one edge.
            let edges = &mut graph.targets[first_edge..];
            edges.sort_unstable();
            let distinct = {
                let mut n = 0;
                for k in 0..edges.len() {
                    if k == 0 || edges[k] != edges[k - 1] {
                        edges[n] = edges[k];
                        n += 1;
                    }
                }
                n
            };
            graph.targets.truncate(first_edge + distinct);
            if graph.targets.len() > GRAPH_EDGES_MAX {
                return Err(GraphError::TooManyEdges);
            }
            graph.offsets.push(graph.targets.len() as u32);
            at += 1;
        }
        // A hashbrown slot: the (key, value) pair and one control byte.
        graph.index_bytes = index.capacity() * (std::mem::size_of::<(u64, u32)>() + 1);
        Ok(graph)
    }

    /// How many distinct states.
    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// The successors of state `i`, as indices.
    pub fn successors(&self, i: usize) -> &[u32] {
        &self.targets[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Whether state `i` has a successor outside the boundary.
    pub fn is_cut(&self, i: usize) -> bool {
        self.cut.get(i)
    }

    /// Whether state `i` has no successor at all (within the boundary or not).
    pub fn is_terminal(&self, i: usize) -> bool {
        self.successors(i).is_empty() && !self.is_cut(i)
    }

    /// Bytes the graph used at its peak: its arrays, plus the larger of the
    /// hash index that found states by fingerprint during the search (freed
    /// after it) and the reversed edges of a progress check.
    pub fn bytes(&self) -> usize {
        self.fingerprints.capacity() * 8
            + self.parents.capacity() * 4
            + self.offsets.capacity() * 4
            + self.targets.capacity() * 4
            + self.cut.bytes()
            + self.index_bytes.max(self.reverse_bytes())
    }

    /// The states from which no state of `goal` can be reached, by a search
    /// backwards from `goal` over the reversed edges. States with a successor
    /// outside the boundary count as reaching the goal (their futures are not
    /// explored, so nothing is claimed about them).
    pub fn cannot_reach(&self, goal: &Bits) -> Bits {
        let n = self.len();
        // Reverse the edges: counting sort into predecessor rows.
        let mut rev_offsets = vec![0u32; n + 1];
        for &t in &self.targets {
            rev_offsets[t as usize + 1] += 1;
        }
        for i in 0..n {
            rev_offsets[i + 1] += rev_offsets[i];
        }
        let mut fill = rev_offsets.clone();
        let mut sources = vec![0u32; self.targets.len()];
        for i in 0..n {
            for &t in self.successors(i) {
                sources[fill[t as usize] as usize] = i as u32;
                fill[t as usize] += 1;
            }
        }
        drop(fill);
        let mut reaches = Bits::new(n);
        let mut stack: Vec<u32> = Vec::new();
        for i in 0..n {
            if goal.get(i) || self.is_cut(i) {
                reaches.set(i);
                stack.push(i as u32);
            }
        }
        while let Some(t) = stack.pop() {
            let t = t as usize;
            for &s in &sources[rev_offsets[t] as usize..rev_offsets[t + 1] as usize] {
                if !reaches.get(s as usize) {
                    reaches.set(s as usize);
                    stack.push(s);
                }
            }
        }
        let mut cannot = Bits::new(n);
        for i in 0..n {
            if !reaches.get(i) {
                cannot.set(i);
            }
        }
        cannot
    }

    /// Bytes of the reversed edges [`Graph::cannot_reach`] builds for a while.
    pub fn reverse_bytes(&self) -> usize {
        (self.len() + 1) * 4 * 2 + self.targets.len() * 4 + self.len().div_ceil(8) * 2
    }

    /// A shortest path from an initial state to a terminal state (no successor)
    /// through states none of which is in `held`: a counterexample to
    /// "eventually", which Stateright evaluates at terminal states.
    pub fn first_unmet_terminal(&self, held: &Bits) -> Option<Vec<usize>> {
        let n = self.len();
        let mut parent = vec![NO_PARENT; n];
        let mut seen = Bits::new(n);
        let mut queue = VecDeque::new();
        for i in 0..self.inits {
            if !held.get(i) {
                seen.set(i);
                queue.push_back(i);
            }
        }
        while let Some(i) = queue.pop_front() {
            if self.is_terminal(i) {
                let mut chain = vec![i];
                let mut at = i;
                while parent[at] != NO_PARENT {
                    at = parent[at] as usize;
                    chain.push(at);
                }
                chain.reverse();
                return Some(chain);
            }
            for &t in self.successors(i) {
                let t = t as usize;
                if !held.get(t) && !seen.get(t) {
                    seen.set(t);
                    parent[t] = i as u32;
                    queue.push_back(t);
                }
            }
        }
        None
    }

    /// The indices from an initial state to state `i` along the search tree:
    /// a shortest path.
    pub fn chain_to(&self, i: usize) -> Vec<usize> {
        let mut chain = vec![i];
        let mut at = i;
        while self.parents[at] != NO_PARENT {
            at = self.parents[at] as usize;
            chain.push(at);
        }
        chain.reverse();
        chain
    }

    /// Replays `chain` (indices, each a successor of the one before) in the
    /// model and returns it as a Stateright path.
    pub fn replay<M>(
        &self,
        model: &M,
        symmetry: Option<Representative<M>>,
        chain: &[usize],
    ) -> Option<Path<M::State, M::Action>>
    where
        M: Model,
        M::State: Clone + Hash + PartialEq,
        M::Action: Clone + PartialEq,
    {
        let key = |s: &M::State| match symmetry {
            Some(representative) => fingerprint(&representative(s)),
            None => fingerprint(s),
        };
        let first = *chain.first()?;
        let init = model
            .init_states()
            .into_iter()
            .find(|s| key(s) == self.fingerprints[first])?;
        let mut state = init.clone();
        let mut steps = Vec::new();
        let mut actions = Vec::new();
        for &next in &chain[1..] {
            model.actions(&state, &mut actions);
            let (action, succ) = actions.drain(..).find_map(|a| {
                let succ = model.next_state(&state, a.clone())?;
                (model.within_boundary(&succ) && key(&succ) == self.fingerprints[next])
                    .then_some((a, succ))
            })?;
            actions.clear();
            steps.push(action);
            state = succ;
        }
        Path::from_actions(model, init, steps.iter())
    }
}
