//! An abstract (model) state in readable lines, as a failing refinement step
//! prints it: each actor by name (down or its state, and its storage), the
//! messages in flight, the unsynced tails and the fault counts.

use eo_models::system::{in_flight, System, SystemState};
use stateright::actor::Actor;

/// One line per part of `state`.
pub fn describe_state<A, C>(spec: &System<A, C>, state: &SystemState<A>) -> Vec<String>
where
    A: Actor<Msg: Ord, Timer: Ord>,
{
    let mut lines = Vec::new();
    for (i, name) in spec.names.iter().enumerate() {
        let live = if state.crashed.get(i).copied().unwrap_or(false) {
            "down".to_owned()
        } else {
            state
                .actor_states
                .get(i)
                .map_or_else(|| "?".into(), |s| format!("{:?}", **s))
        };
        let stored = state
            .actor_storages
            .get(i)
            .map_or_else(|| "?".into(), |s| format!("{s:?}"));
        lines.push(format!("{name}: {live}; stored {stored}"));
        if let Some(tail) = state.history.tails.get(i).filter(|t| !t.is_empty()) {
            lines.push(format!(
                "{name} unsynced: {:?}, held {:?}",
                tail.appends, tail.held
            ));
        }
    }
    let mut flight: Vec<String> = in_flight(&state.network)
        .map(|(src, dst, m)| format!("{} → {}: {m:?}", spec.name(src), spec.name(dst)))
        .collect();
    flight.sort();
    lines.push(if flight.is_empty() {
        "in flight: nothing".into()
    } else {
        format!("in flight: {}", flight.join(", "))
    });
    lines.push(format!(
        "crashes so far: {}, disk losses so far: {}",
        state.history.crashes, state.history.disk_losses
    ));
    lines
}
