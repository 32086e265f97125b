//! The client actor: `eo_impl::two_phase_commit::Client` recovered from its
//! log, and its application, which submits the transactions.

use super::{step, Node, NodeState, NodeStorage};
use crate::abstraction::two_phase_commit::{legs_of, Layout};
use crate::actors::NOW;
use eo_impl::core::{Core, NodeId};
use eo_impl::two_phase_commit::{Client, ClientRecord, Error, Msg};
use stateright::actor::Out;
use std::sync::Arc;

/// Starts the client: `new` on an empty log, else `recover` from it; then its
/// application submits what the window admits.
pub fn start(
    layout: Layout,
    transactions: u8,
    in_flight: u8,
    mut log: Arc<Vec<ClientRecord>>,
    o: &mut Out<Node>,
) -> Result<NodeState, Error> {
    let mut core = if log.is_empty() {
        Client::new(layout.client(), Layout::COORDINATOR)
    } else {
        Client::recover(
            layout.client(),
            Layout::COORDINATOR,
            NOW,
            log.iter().cloned(),
        )?
    };
    admit(layout, transactions, in_flight, &mut core);
    step(&mut core, &mut log, NodeStorage::Client, super::as_is, o);
    Ok(NodeState::Client {
        core: Box::new(core),
        log,
    })
}

/// A delivery, then the application's next submissions.
#[allow(clippy::too_many_arguments)]
pub fn on_msg(
    layout: Layout,
    transactions: u8,
    in_flight: u8,
    core: &mut Client,
    log: &mut Arc<Vec<ClientRecord>>,
    from: NodeId,
    msg: Msg,
    o: &mut Out<Node>,
) {
    // A peer's bad input is a typed error and changes nothing.
    let _ = core.handle_message(NOW, from, msg);
    admit(layout, transactions, in_flight, core);
    step(core, log, NodeStorage::Client, super::as_is, o);
}

/// The deadline: every pending transaction's `Begin` again, same id.
pub fn on_timeout(core: &mut Client, log: &mut Arc<Vec<ClientRecord>>, o: &mut Out<Node>) {
    core.handle_timeout(NOW);
    step(core, log, NodeStorage::Client, super::as_is, o);
}

/// The application: submits transaction `next_seq` while it has one to run
/// and fewer than `in_flight` are pending (the model's client window).
fn admit(layout: Layout, transactions: u8, in_flight: u8, core: &mut Client) {
    while core.next_seq() < u64::from(transactions)
        && core.next_seq() - core.low() < u64::from(in_flight)
    {
        let tx = core.next_seq() as u8;
        // The legs are valid and the window has room: a refusal would be a
        // broken contract in eo-impl, and it leaves the transaction unsent.
        if core.submit(NOW, legs_of(layout, tx)).is_err() {
            return;
        }
    }
}
