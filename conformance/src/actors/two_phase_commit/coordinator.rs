//! The coordinator actor: `eo_impl::two_phase_commit::Coordinator` recovered
//! from its log, fed each delivery and each firing of its deadline.

use super::{step, Fault, Node, NodeState, NodeStorage};
use crate::abstraction::two_phase_commit::Layout;
use crate::actors::NOW;
use eo_impl::core::{Core, NodeId};
use eo_impl::two_phase_commit::{Coordinator, CoordinatorRecord, Error, Msg};
use stateright::actor::Out;
use std::sync::Arc;

/// Starts the coordinator: `new` on an empty log, else `recover` from it.
pub fn start(
    layout: Layout,
    fault: Fault,
    mut log: Arc<Vec<CoordinatorRecord>>,
    o: &mut Out<Node>,
) -> Result<NodeState, Error> {
    let participants = layout.participant_ids();
    let mut core = if log.is_empty() {
        Coordinator::new(Layout::COORDINATOR, participants)
    } else {
        Coordinator::recover(Layout::COORDINATOR, participants, NOW, log.iter().cloned())?
    };
    carry(fault, &mut core, &mut log, o);
    Ok(NodeState::Coordinator {
        core: Box::new(core),
        log,
    })
}

/// A delivery. A peer's bad input is a typed error and changes nothing.
pub fn on_msg(
    fault: Fault,
    core: &mut Coordinator,
    log: &mut Arc<Vec<CoordinatorRecord>>,
    from: NodeId,
    msg: Msg,
    o: &mut Out<Node>,
) {
    let _ = core.handle_message(NOW, from, msg);
    carry(fault, core, log, o);
}

/// The deadline: every vote timeout and decision re-send at once.
pub fn on_timeout(
    fault: Fault,
    core: &mut Coordinator,
    log: &mut Arc<Vec<CoordinatorRecord>>,
    o: &mut Out<Node>,
) {
    core.handle_timeout(NOW);
    carry(fault, core, log, o);
}

fn carry(
    fault: Fault,
    core: &mut Coordinator,
    log: &mut Arc<Vec<CoordinatorRecord>>,
    o: &mut Out<Node>,
) {
    match fault {
        // The bug: the decision is sent, but the driver leaves its record out
        // of what it saves, so a crash forgets it.
        #[cfg(test)]
        Fault::DecisionNotLogged => step(
            core,
            log,
            NodeStorage::Coordinator,
            |records| records.retain(|r| !matches!(r, CoordinatorRecord::Decided(_))),
            o,
        ),
        _ => step(core, log, NodeStorage::Coordinator, super::as_is, o),
    }
}
