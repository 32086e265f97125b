//! Symmetry: participants are interchangeable, so a state stands for its
//! orbit under permutations of them.

use super::{Mask, Msg, NodeState, State, Timer, VoteChoice};
use crate::system::reshape;
use stateright::actor::{Envelope, Id, Network};
use std::sync::Arc;

/// The canonical member of a state's orbit under permutations of the
/// participants: participants sorted by their whole projected state — volatile
/// state, storage, crashed flag, timers, pending vote choice, the messages to
/// and from them, and the coordinator's per-participant bits (yes vote received,
/// acknowledgement awaited) — with every id and bit rewritten consistently.
pub fn representative(s: &State) -> State {
    let n = s.actor_states.len();
    let p = n - 2; // coordinator, participants, client
                   // The coordinator's per-participant bits.
    let coordinator = match &*s.actor_states[0] {
        NodeState::Coordinator(c) => Some(c),
        _ => None,
    };
    let bit = |mask: Mask, i: usize| mask & (1 << i) != 0;
    let key = |i: usize| {
        let id = Id::from(i + 1);
        let mut timers: Vec<Timer> = s.timers_set[i + 1].iter().copied().collect();
        timers.sort_unstable();
        let mut choices: Vec<(String, Vec<VoteChoice>)> = s.random_choices[i + 1]
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        choices.sort_unstable();
        let mut msgs: Vec<(bool, Msg)> = s
            .network
            .iter_all()
            .filter(|e| e.src == id || e.dst == id)
            .map(|e| (e.src == id, *e.msg))
            .collect();
        msgs.sort_unstable();
        let bits: Vec<bool> = coordinator
            .map(|c| {
                let mut b: Vec<bool> = c.voting.iter().map(|v| bit(v.yes, i)).collect();
                b.extend(c.unacked.iter().map(|u| bit(u.waiting, i)));
                b
            })
            .unwrap_or_default();
        (
            (*s.actor_states[i + 1]).clone(),
            s.actor_storages[i + 1].clone(),
            s.crashed[i + 1],
            timers,
            choices,
            msgs,
            bits,
        )
    };
    let mut order: Vec<usize> = (0..p).collect();
    let keys: Vec<_> = (0..p).map(key).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    if order.iter().enumerate().all(|(new, old)| new == *old) {
        return s.clone();
    }
    // old index → new index
    let mut new_of = vec![0; p];
    for (new, old) in order.iter().enumerate() {
        new_of[*old] = new;
    }
    let map_id = |id: Id| {
        let i = usize::from(id);
        if (1..=p).contains(&i) {
            Id::from(new_of[i - 1] + 1)
        } else {
            id
        }
    };
    let map_mask = |mask: Mask| {
        (0..p)
            .filter(|i| bit(mask, *i))
            .fold(0, |m, i| m | (1 << new_of[i]))
    };
    let slot = |new_i: usize| {
        if (1..=p).contains(&new_i) {
            order[new_i - 1] + 1
        } else {
            new_i
        }
    };
    let mut actor_states: Vec<Arc<NodeState>> =
        (0..n).map(|i| s.actor_states[slot(i)].clone()).collect();
    if let NodeState::Coordinator(c) = &*s.actor_states[0] {
        let mut c = c.clone();
        for v in c.voting.iter_mut() {
            v.yes = map_mask(v.yes);
        }
        for u in c.unacked.iter_mut() {
            u.waiting = map_mask(u.waiting);
        }
        actor_states[0] = Arc::new(NodeState::Coordinator(c));
    }
    let mut canonical = State {
        actor_states,
        network: {
            let renamed = s.network.iter_all().map(|e| Envelope {
                src: map_id(e.src),
                dst: map_id(e.dst),
                msg: *e.msg,
            });
            match &s.network {
                // `System::forgets_last_delivery`: a duplicating network
                // keeps no last delivery to rename.
                Network::UnorderedDuplicating(..) => Network::new_unordered_duplicating(renamed),
                _ => Network::new_unordered_nonduplicating(renamed),
            }
        },
        timers_set: (0..n).map(|i| s.timers_set[slot(i)].clone()).collect(),
        random_choices: (0..n).map(|i| s.random_choices[slot(i)].clone()).collect(),
        crashed: (0..n).map(|i| s.crashed[slot(i)]).collect(),
        history: s.history.clone(),
        actor_storages: (0..n).map(|i| s.actor_storages[slot(i)].clone()).collect(),
    };
    // Timers and choices moved between actors: the shape moves with them.
    reshape(&mut canonical);
    canonical
}
