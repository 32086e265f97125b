//! The explicit state graph of a bounded configuration, built by one
//! depth-first search and numbered breadth-first.
//!
//! The search holds only the states it has discovered but not yet expanded, on
//! an explicit stack: at most (depth of the search) × (branching) full states,
//! where a breadth-first queue would hold a whole frontier — millions of states
//! of about 1.7 KiB each in two-phase commit at two participants. Per state the
//! graph keeps its fingerprint (64 bits) and its successors as `u32` indices, in
//! the order the model's actions produced them (two actions to one state are
//! one edge).
//!
//! Once the search is done the states are renumbered by a breadth-first search
//! over the indices alone (no state is regenerated), following each state's
//! successors in that same action order. This reproduces exactly the numbering
//! a breadth-first search of the model would give: indices are in nondecreasing
//! distance from an initial state, the lowest index satisfying a condition is a
//! state nearest an initial state, each state's parent is the state a
//! breadth-first search discovers it from, and [`Graph::max_depth`] is the
//! breadth-first depth. Counterexamples therefore stay shortest and every
//! count and depth is deterministic. The graph then keeps successors in
//! compressed sparse rows (`offsets`/`targets`, `u32` each) and the parent of
//! each state; a path is rebuilt by replaying the model from an initial state
//! along the parent indices, matching fingerprints.
//!
//! Under a symmetry reduction a state stands for its orbit and is expanded
//! through the member the search met first, whose successors come in that
//! member's action order; the two searches may meet different members, so
//! within one depth the order may differ from a breadth-first search of the
//! model. Depths, and so the lengths of counterexamples, do not.
//!
//! The states themselves are seen once, when the depth-first search discovers
//! them, by the caller's `visit`, under their discovery index;
//! [`Graph::index_of_discovered`] and [`Graph::renumber`] carry what the caller
//! recorded over to the breadth-first numbering.
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
/// How often (in states expanded) the search looks at the clock.
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
    /// The depth of the state being expanded, along the depth-first search
    /// (not its breadth-first depth, known only once the graph is numbered).
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
    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let b = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    w * 64 + b
                })
            })
        })
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

/// The seeds of the fingerprint hash: fixed, so that a fingerprint (and so
/// every count, index and counterexample) is the same in every run of one
/// build. Any values do; these are the first digits of pi.
const FINGERPRINT_SEEDS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// The 64-bit fingerprint of a state: aHash (its portable algorithm, chosen
/// at compile time) with [`FINGERPRINT_SEEDS`], the same in every run of one
/// build. A state hashes as many small writes (one per field, enum tag and
/// length); aHash's per-write cost is a fraction of the SipHash-1-3 of
/// `std::hash::DefaultHasher` used before (docs/system.md, "What a step
/// costs"). A fingerprint is only ever compared within one run.
pub fn fingerprint<S: Hash>(state: &S) -> u64 {
    let [a, b, c, d] = FINGERPRINT_SEEDS;
    ahash::RandomState::with_seeds(a, b, c, d).hash_one(state)
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
    /// The breadth-first index of each state, by discovery index (the index
    /// `visit` saw).
    rank: Vec<u32>,
    /// Successor states generated, duplicates included.
    pub transitions: usize,
    /// The greatest breadth-first depth of a state (initial states are at
    /// depth 0).
    pub max_depth: usize,
    /// The most states the depth-first search held on its stack at once.
    pub stack_max: usize,
    /// Bytes of the structures only the build needs (the hash index, the
    /// stack's states at their inline size, the rows by discovery index and the
    /// renumbering's scratch), at their peak; counted in [`Graph::bytes`].
    build_bytes: usize,
}

/// What the depth-first search leaves for the renumbering: successors by
/// discovery index.
struct Discovered {
    fingerprints: Vec<u64>,
    /// Row `i` is `targets[starts[i]..ends[i]]`.
    starts: Vec<u32>,
    ends: Vec<u32>,
    targets: Vec<u32>,
    cut: Bits,
    inits: usize,
}

impl Discovered {
    fn successors(&self, i: usize) -> &[u32] {
        &self.targets[self.starts[i] as usize..self.ends[i] as usize]
    }

    fn bytes(&self) -> usize {
        self.fingerprints.capacity() * 8
            + (self.starts.capacity() + self.ends.capacity() + self.targets.capacity()) * 4
            + self.cut.bytes()
    }
}

impl Graph {
    /// Explores `model` depth-first within its boundary (under `symmetry`, one
    /// representative per orbit), calling `visit(i, state)` once per distinct
    /// state with its discovery index `i` (see [`Graph::index_of_discovered`]),
    /// and `tick` about once a second; then numbers the states breadth-first
    /// (see the module docs).
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
        let mut found = Discovered {
            fingerprints: Vec::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            targets: Vec::new(),
            cut: Bits::default(),
            inits: 0,
        };
        // Discovered, not yet expanded: the state, its depth along the search,
        // its discovery index.
        let mut stack: Vec<(M::State, u32, u32)> = Vec::new();
        for init in model.init_states() {
            if !model.within_boundary(&init) {
                continue;
            }
            let fp = key(&init);
            if index.contains_key(&fp) {
                continue;
            }
            let i = found.fingerprints.len();
            index.insert(fp, i as u32);
            found.fingerprints.push(fp);
            visit(i, &init);
            stack.push((init, 0, i as u32));
        }
        found.inits = found.fingerprints.len();
        found.starts.resize(found.inits, 0);
        found.ends.resize(found.inits, 0);
        // The first initial state is expanded first, as breadth-first would.
        stack.reverse();
        let mut transitions = 0usize;
        let mut stack_max = stack.len();
        let mut actions = Vec::new();
        let mut expanded = 0usize;
        let mut last_tick = Instant::now();
        while let Some((state, depth, at)) = stack.pop() {
            let at = at as usize;
            if expanded % TICK_STATES == 0 && last_tick.elapsed() >= TICK_INTERVAL {
                last_tick = Instant::now();
                tick(&Tick {
                    states: transitions,
                    unique_states: found.fingerprints.len(),
                    depth: depth as usize,
                });
            }
            expanded += 1;
            let first_edge = found.targets.len();
            model.actions(&state, &mut actions);
            for action in actions.drain(..) {
                let Some(next) = model.next_state(&state, action) else {
                    continue;
                };
                if !model.within_boundary(&next) {
                    found.cut.set(at);
                    continue;
                }
                transitions += 1;
                let fp = key(&next);
                let target = match index.get(&fp) {
                    Some(t) => *t,
                    None => {
                        let t = found.fingerprints.len();
                        if t >= GRAPH_STATES_MAX {
                            return Err(GraphError::TooManyStates);
                        }
                        index.insert(fp, t as u32);
                        found.fingerprints.push(fp);
                        found.starts.push(0);
                        found.ends.push(0);
                        visit(t, &next);
                        stack.push((next, depth + 1, t as u32));
                        t as u32
                    }
                };
                // Two actions to one state are one edge; the first keeps its
                // place, so that the renumbering follows the actions' order.
                if !found.targets[first_edge..].contains(&target) {
                    found.targets.push(target);
                }
            }
            if found.targets.len() > GRAPH_EDGES_MAX {
                return Err(GraphError::TooManyEdges);
            }
            found.starts[at] = first_edge as u32;
            found.ends[at] = found.targets.len() as u32;
            stack_max = stack_max.max(stack.len());
        }
        // A hashbrown slot: the (key, value) pair and one control byte.
        let index_bytes = index.capacity() * (std::mem::size_of::<(u64, u32)>() + 1);
        let stack_bytes = stack.capacity() * std::mem::size_of::<(M::State, u32, u32)>();
        let search_bytes = found.bytes() + index_bytes + stack_bytes;
        drop(index);
        drop(stack);
        let mut graph = Graph::renumber_breadth_first(found);
        graph.transitions = transitions;
        graph.stack_max = stack_max;
        graph.build_bytes = graph
            .build_bytes
            .max(search_bytes.saturating_sub(graph.own_bytes()));
        Ok(graph)
    }

    /// Numbers the states in the order a breadth-first search of the model
    /// discovers them, by a breadth-first search over `found`'s indices that
    /// follows each row in its actions' order; rebuilds the rows sorted.
    fn renumber_breadth_first(found: Discovered) -> Graph {
        let n = found.fingerprints.len();
        // `order[r]` is the discovery index of breadth-first index `r`;
        // `rank` its inverse.
        let mut order: Vec<u32> = Vec::with_capacity(n);
        let mut rank = vec![NO_PARENT; n];
        let mut parents: Vec<u32> = Vec::with_capacity(n);
        for (i, r) in rank.iter_mut().enumerate().take(found.inits) {
            *r = i as u32;
            order.push(i as u32);
            parents.push(NO_PARENT);
        }
        let mut max_depth = 0;
        let mut level_end = order.len();
        let mut r = 0;
        while r < order.len() {
            if r == level_end {
                max_depth += 1;
                level_end = order.len();
            }
            for &t in found.successors(order[r] as usize) {
                if rank[t as usize] == NO_PARENT {
                    rank[t as usize] = order.len() as u32;
                    order.push(t);
                    parents.push(r as u32);
                }
            }
            r += 1;
        }
        debug_assert_eq!(order.len(), n, "every discovered state is reachable");
        let fingerprints: Vec<u64> = order
            .iter()
            .map(|&i| found.fingerprints[i as usize])
            .collect();
        let mut offsets: Vec<u32> = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut targets: Vec<u32> = Vec::with_capacity(found.targets.len());
        let mut cut = Bits::new(n);
        for (r, &i) in order.iter().enumerate() {
            let first = targets.len();
            targets.extend(
                found
                    .successors(i as usize)
                    .iter()
                    .map(|&t| rank[t as usize]),
            );
            targets[first..].sort_unstable();
            offsets.push(targets.len() as u32);
            if found.cut.get(i as usize) {
                cut.set(r);
            }
        }
        let mut graph = Graph {
            fingerprints,
            parents,
            offsets,
            targets,
            cut,
            inits: found.inits,
            rank,
            transitions: 0,
            max_depth,
            stack_max: 0,
            build_bytes: 0,
        };
        // At its peak the renumbering holds the discovered rows, `order` and
        // the new graph.
        graph.build_bytes = found.bytes() + order.capacity() * 4;
        graph
    }

    /// The breadth-first index of the state `visit` saw as discovery index `i`.
    pub fn index_of_discovered(&self, i: usize) -> usize {
        self.rank[i] as usize
    }

    /// A set of discovery indices as the set of their breadth-first indices.
    pub fn renumber(&self, discovered: &Bits) -> Bits {
        let mut bits = Bits::new(self.len());
        for i in discovered.iter() {
            bits.set(self.index_of_discovered(i));
        }
        bits
    }

    /// The least breadth-first index in a set of discovery indices: a state of
    /// the set nearest an initial state (the first a breadth-first search
    /// would meet).
    pub fn first_of(&self, discovered: &Bits) -> Option<usize> {
        discovered.iter().map(|i| self.index_of_discovered(i)).min()
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

    /// Bytes the graph used at its peak: its arrays, plus the larger of what
    /// only the build needed (see [`Graph::build`]: the hash index, the
    /// search's stack, the rows by discovery index) and the reversed edges of
    /// a progress check.
    pub fn bytes(&self) -> usize {
        self.own_bytes() + self.build_bytes.max(self.reverse_bytes())
    }

    /// Bytes of the graph's own arrays.
    fn own_bytes(&self) -> usize {
        self.fingerprints.capacity() * 8
            + self.parents.capacity() * 4
            + self.offsets.capacity() * 4
            + self.targets.capacity() * 4
            + self.rank.capacity() * 4
            + self.cut.bytes()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::two_phase_commit::{representative, State, TwoPhaseCfg, TwoPhaseCommit};

    /// What a breadth-first search of the model itself gives: per state in
    /// discovery order its fingerprint, parent, sorted successors and whether
    /// it is cut; and the greatest depth.
    struct Reference {
        fingerprints: Vec<u64>,
        parents: Vec<u32>,
        successors: Vec<Vec<u32>>,
        cut: Vec<bool>,
        max_depth: usize,
        transitions: usize,
        /// The most states the queue held at once.
        queue_max: usize,
    }

    fn breadth_first<M: Model>(model: &M, symmetry: Option<Representative<M>>) -> Reference
    where
        M::State: Hash,
    {
        let key = |s: &M::State| match symmetry {
            Some(representative) => fingerprint(&representative(s)),
            None => fingerprint(s),
        };
        let mut r = Reference {
            fingerprints: Vec::new(),
            parents: Vec::new(),
            successors: Vec::new(),
            cut: Vec::new(),
            max_depth: 0,
            transitions: 0,
            queue_max: 0,
        };
        let mut index = HashMap::new();
        let mut queue = VecDeque::new();
        for init in model.init_states() {
            if model.within_boundary(&init) && !index.contains_key(&key(&init)) {
                index.insert(key(&init), r.fingerprints.len() as u32);
                r.fingerprints.push(key(&init));
                r.parents.push(NO_PARENT);
                queue.push_back((init, 0));
            }
        }
        let mut at = 0;
        let mut actions = Vec::new();
        while let Some((state, depth)) = queue.pop_front() {
            r.queue_max = r.queue_max.max(queue.len() + 1);
            r.max_depth = r.max_depth.max(depth);
            let mut row = Vec::new();
            let mut cut = false;
            model.actions(&state, &mut actions);
            for action in actions.drain(..) {
                let Some(next) = model.next_state(&state, action) else {
                    continue;
                };
                if !model.within_boundary(&next) {
                    cut = true;
                    continue;
                }
                r.transitions += 1;
                let fp = key(&next);
                let t = *index.entry(fp).or_insert_with(|| {
                    r.fingerprints.push(fp);
                    r.parents.push(at);
                    queue.push_back((next, depth + 1));
                    r.fingerprints.len() as u32 - 1
                });
                row.push(t);
            }
            row.sort_unstable();
            row.dedup();
            r.successors.push(row);
            r.cut.push(cut);
            at += 1;
        }
        r
    }

    /// The depth-first build renumbered is the breadth-first graph, index for
    /// index: same fingerprints, parents, successors, cut states, depth and
    /// transitions — so counterexamples, counts and depth are those of a
    /// breadth-first search. With and without symmetry (under which the member
    /// of an orbit first met differs between the two searches).
    #[test]
    fn the_depth_first_build_numbers_states_as_breadth_first_search_does() {
        let cfg = TwoPhaseCfg {
            participants: 2,
            ..TwoPhaseCfg::default()
        };
        let symmetric: Representative<TwoPhaseCommit> = representative as fn(&State) -> State;
        for symmetry in [None, Some(symmetric)] {
            let model = cfg.clone().into_model();
            let reference = breadth_first(&model, symmetry);
            let mut visited = Vec::new();
            let graph = Graph::build(
                &model,
                symmetry,
                |i, s| visited.push((i, fingerprint(s))),
                &mut |_| {},
            )
            .unwrap();
            let n = graph.len();
            assert!(n > 1000, "{n} states: too few to tell the searches apart");
            assert_eq!(n, reference.fingerprints.len());
            let depths = |fingerprints: &[u64], parents: &[u32]| -> HashMap<u64, usize> {
                let mut depth = vec![0; fingerprints.len()];
                for i in 0..fingerprints.len() {
                    if parents[i] != NO_PARENT {
                        depth[i] = depth[parents[i] as usize] + 1;
                    }
                }
                fingerprints.iter().copied().zip(depth).collect()
            };
            if symmetry.is_none() {
                assert_eq!(graph.fingerprints, reference.fingerprints);
                assert_eq!(graph.parents, reference.parents);
                for i in 0..n {
                    assert_eq!(graph.successors(i), &reference.successors[i][..], "row {i}");
                    assert_eq!(graph.is_cut(i), reference.cut[i], "cut {i}");
                }
            } else {
                // Each orbit is expanded through the member the search met
                // first, and its successors come in that member's action order:
                // within a depth the order may differ, the depths may not.
                assert_eq!(
                    depths(&graph.fingerprints, &graph.parents),
                    depths(&reference.fingerprints, &reference.parents)
                );
                let edges: usize = reference.successors.iter().map(Vec::len).sum();
                assert_eq!(graph.targets.len(), edges);
                let cut = reference.cut.iter().filter(|c| **c).count();
                assert_eq!((0..n).filter(|&i| graph.is_cut(i)).count(), cut);
            }
            assert_eq!(graph.max_depth, reference.max_depth);
            assert_eq!(graph.transitions, reference.transitions);
            // `visit` saw each state once, under a discovery index that maps to
            // the state's breadth-first index.
            assert_eq!(visited.len(), n);
            let mut ranks: Vec<usize> = visited
                .iter()
                .map(|(i, _)| graph.index_of_discovered(*i))
                .collect();
            ranks.sort_unstable();
            ranks.dedup();
            assert_eq!(ranks.len(), n);
            if symmetry.is_none() {
                for (i, fp) in &visited {
                    assert_eq!(graph.fingerprints[graph.index_of_discovered(*i)], *fp);
                }
            }
            // What the searches hold in full states: the stack is a small
            // fraction of the breadth-first frontier.
            assert!(
                graph.stack_max * 4 < reference.queue_max,
                "stack {} against a frontier of {}",
                graph.stack_max,
                reference.queue_max
            );
            // The depth-first order really differs from the breadth-first one.
            assert!((0..n).any(|i| graph.index_of_discovered(i) != i));
        }
    }

    #[test]
    fn bits_iterate_their_members_in_order() {
        let mut bits = Bits::default();
        for i in [0, 5, 63, 64, 200] {
            bits.set(i);
        }
        assert_eq!(bits.iter().collect::<Vec<_>>(), vec![0, 5, 63, 64, 200]);
        assert_eq!(Bits::new(100).iter().count(), 0);
    }
}
