//! A participant actor: `eo_impl::two_phase_commit::Participant` recovered
//! from its log, its vote chosen by the checker (see the module docs of
//! [`super`]), fed each delivery and each firing of its query deadline.

use super::{step, Fault, Node, NodeState, NodeStorage, VoteChoice, Wire};
use crate::abstraction::two_phase_commit::Layout;
use crate::actors::NOW;
use eo_impl::core::{Core, NodeId};
use eo_impl::two_phase_commit::{
    Decision, Error, Msg, Participant, ParticipantRecord, TxnId, VotePolicy,
};
use stateright::actor::Out;
use std::sync::Arc;

/// Starts participant `id`: `new` on an empty log, else `recover` from it.
/// The vote policy is set anew before every vote ([`on_vote`]).
pub fn start(
    id: NodeId,
    fault: Fault,
    mut log: Arc<Vec<ParticipantRecord>>,
    o: &mut Out<Node>,
) -> Result<NodeState, Error> {
    let mut core = if log.is_empty() {
        Participant::new(id, Layout::COORDINATOR, VotePolicy::Yes)
    } else {
        Participant::recover(
            id,
            Layout::COORDINATOR,
            VotePolicy::Yes,
            NOW,
            log.iter().cloned(),
        )?
    };
    carry(fault, &mut core, &mut log, None, o);
    Ok(NodeState::Participant {
        core: Box::new(core),
        log,
    })
}

/// A delivery. A `Prepare` for a transaction the core holds nothing for waits
/// for the vote choice; every other message is handed over at once (a peer's
/// bad input is a typed error and changes nothing).
pub fn on_msg(
    in_flight: u8,
    fault: Fault,
    core: &mut Participant,
    log: &mut Arc<Vec<ParticipantRecord>>,
    from: NodeId,
    msg: Wire,
    o: &mut Out<Node>,
) {
    if let Msg::Prepare { txn, .. } = &msg.0 {
        let held = core.txn_views().iter().any(|(t, _)| t == txn);
        if !held && from == Layout::COORDINATOR && txn.seq >= core.floor(txn.client) {
            // The choices of the transactions in flight at once are kept apart
            // by their slot in the client's window (as the model's are).
            let key = format!("vote {}", txn.seq % u64::from(in_flight.max(1)));
            o.choose_random(
                key,
                vec![
                    VoteChoice {
                        vote: true,
                        prepare: msg.clone(),
                    },
                    VoteChoice {
                        vote: false,
                        prepare: msg,
                    },
                ],
            );
            return;
        }
    }
    let duplicate_commit = match &msg.0 {
        Msg::Decision {
            txn,
            decision: Decision::Commit,
        } if core.finished(*txn) == Some(Decision::Commit) => Some(*txn),
        _ => None,
    };
    let _ = core.handle_message(NOW, from, msg.0);
    carry(fault, core, log, duplicate_commit, o);
}

/// The vote chosen: the policy set to it, the `Prepare` handed over.
pub fn on_vote(
    fault: Fault,
    core: &mut Participant,
    log: &mut Arc<Vec<ParticipantRecord>>,
    choice: &VoteChoice,
    o: &mut Out<Node>,
) {
    core.set_vote_policy(if choice.vote {
        VotePolicy::Yes
    } else {
        VotePolicy::No
    });
    let _ = core.handle_message(NOW, Layout::COORDINATOR, choice.prepare.0.clone());
    carry(fault, core, log, None, o);
}

/// The deadline: a query for every prepared transaction.
pub fn on_timeout(
    fault: Fault,
    core: &mut Participant,
    log: &mut Arc<Vec<ParticipantRecord>>,
    o: &mut Out<Node>,
) {
    core.handle_timeout(NOW);
    carry(fault, core, log, None, o);
}

/// Carries out the step; `duplicate_commit` is a `Commit` just delivered for a
/// transaction the core had already committed.
fn carry(
    fault: Fault,
    core: &mut Participant,
    log: &mut Arc<Vec<ParticipantRecord>>,
    duplicate_commit: Option<TxnId>,
    o: &mut Out<Node>,
) {
    let _ = duplicate_commit;
    match fault {
        // The bug: the driver applies every delivered `Commit`, writing the
        // posting again for a duplicate that the core only acknowledged.
        #[cfg(test)]
        Fault::CommitTwice => {
            let again = duplicate_commit.and_then(|txn| {
                log.iter().find_map(|r| match r {
                    ParticipantRecord::Committed { txn: t, posting } if *t == txn => {
                        Some(ParticipantRecord::Committed {
                            txn,
                            posting: *posting,
                        })
                    }
                    _ => None,
                })
            });
            step(
                core,
                log,
                NodeStorage::Participant,
                |records| records.extend(again),
                o,
            )
        }
        // The bug: the yes vote leaves, but the driver leaves its record out
        // of what it saves.
        #[cfg(test)]
        Fault::PreparedNotLogged => step(
            core,
            log,
            NodeStorage::Participant,
            |records| records.retain(|r| !matches!(r, ParticipantRecord::Prepared(_))),
            o,
        ),
        _ => step(core, log, NodeStorage::Participant, super::as_is, o),
    }
}
