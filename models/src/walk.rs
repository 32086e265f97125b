//! A walk of every reachable state by equality, for tests: it compares whole
//! states (`Eq`), not fingerprints, so its count is the ground truth the
//! checkers' counts are held to.

use stateright::Model;
use std::collections::HashSet;
use std::hash::Hash;

/// Walks every reachable state within the boundary, depth first, and calls
/// `visit` once per state with no step, then once per step out of it (the
/// action and the next state). Returns how many states there were.
pub fn walk<M>(
    model: &M,
    mut visit: impl FnMut(&M::State, Option<(&M::Action, &M::State)>),
) -> usize
where
    M: Model,
    M::State: Clone + Eq + Hash,
    M::Action: Clone,
{
    let mut seen = HashSet::new();
    let mut stack: Vec<M::State> = model
        .init_states()
        .into_iter()
        .filter(|s| model.within_boundary(s))
        .collect();
    let mut actions = Vec::new();
    while let Some(s) = stack.pop() {
        if !seen.insert(s.clone()) {
            continue;
        }
        visit(&s, None);
        model.actions(&s, &mut actions);
        for action in actions.drain(..) {
            let Some(next) = model.next_state(&s, action.clone()) else {
                continue;
            };
            if model.within_boundary(&next) {
                visit(&s, Some((&action, &next)));
                if !seen.contains(&next) {
                    stack.push(next);
                }
            }
        }
    }
    seen.len()
}

/// How many distinct states are reachable, by equality.
pub fn count<M>(model: &M) -> usize
where
    M: Model,
    M::State: Clone + Eq + Hash,
    M::Action: Clone,
{
    walk(model, |_, _| {})
}
