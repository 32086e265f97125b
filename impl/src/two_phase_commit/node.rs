//! [`Node`]: any two-phase-commit role behind one [`Core`], so that a driver can
//! hold a whole cluster (clients, a coordinator, participants) in one map and one
//! log type. It adds no behaviour: every call goes to the wrapped core.

use super::{
    Client, ClientRecord, Coordinator, CoordinatorRecord, Error, Event, Msg, Participant,
    ParticipantRecord, VotePolicy,
};
use crate::core::{Core, NodeId, Ready, Time};
use serde::{Deserialize, Serialize};

/// A node's role and its configuration: what `new` and `recover` need besides the id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Client {
        coordinator: NodeId,
    },
    Coordinator {
        participants: Vec<NodeId>,
    },
    Participant {
        coordinator: NodeId,
        policy: VotePolicy,
    },
}

/// One two-phase-commit node of any role.
#[derive(Clone, Debug)]
pub enum Node {
    Client(Client),
    Coordinator(Coordinator),
    Participant(Participant),
}

/// A log record of any role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRecord {
    Client(ClientRecord),
    Coordinator(CoordinatorRecord),
    Participant(ParticipantRecord),
}

fn unwrap_records<R>(
    records: Vec<NodeRecord>,
    pick: impl Fn(NodeRecord) -> Option<R>,
) -> Result<Vec<R>, Error> {
    records
        .into_iter()
        .enumerate()
        .map(|(index, r)| pick(r).ok_or(Error::WrongRole { index }))
        .collect()
}

impl Node {
    /// A node with an empty log.
    pub fn new(id: NodeId, role: &Role) -> Node {
        match role {
            Role::Client { coordinator } => Node::Client(Client::new(id, *coordinator)),
            Role::Coordinator { participants } => {
                Node::Coordinator(Coordinator::new(id, participants.iter().copied()))
            }
            Role::Participant {
                coordinator,
                policy,
            } => Node::Participant(Participant::new(id, *coordinator, policy.clone())),
        }
    }

    /// Rebuilds a node from exactly the records it persisted.
    pub fn recover(
        id: NodeId,
        role: &Role,
        now: Time,
        records: Vec<NodeRecord>,
    ) -> Result<Node, Error> {
        Ok(match role {
            Role::Client { coordinator } => {
                let records = unwrap_records(records, |r| match r {
                    NodeRecord::Client(r) => Some(r),
                    _ => None,
                })?;
                Node::Client(Client::recover(id, *coordinator, now, records)?)
            }
            Role::Coordinator { participants } => {
                let records = unwrap_records(records, |r| match r {
                    NodeRecord::Coordinator(r) => Some(r),
                    _ => None,
                })?;
                Node::Coordinator(Coordinator::recover(
                    id,
                    participants.iter().copied(),
                    now,
                    records,
                )?)
            }
            Role::Participant {
                coordinator,
                policy,
            } => {
                let records = unwrap_records(records, |r| match r {
                    NodeRecord::Participant(r) => Some(r),
                    _ => None,
                })?;
                Node::Participant(Participant::recover(
                    id,
                    *coordinator,
                    policy.clone(),
                    now,
                    records,
                )?)
            }
        })
    }

    pub fn as_client(&self) -> Option<&Client> {
        match self {
            Node::Client(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_client_mut(&mut self) -> Option<&mut Client> {
        match self {
            Node::Client(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_coordinator(&self) -> Option<&Coordinator> {
        match self {
            Node::Coordinator(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_participant(&self) -> Option<&Participant> {
        match self {
            Node::Participant(p) => Some(p),
            _ => None,
        }
    }
}

fn wrap<R>(
    ready: Ready<R, Msg, Event>,
    f: impl Fn(R) -> NodeRecord,
) -> Ready<NodeRecord, Msg, Event> {
    ready.map(f, |e| e)
}

impl Core for Node {
    type Msg = Msg;
    type Record = NodeRecord;
    type Event = Event;
    type Error = Error;

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) -> Result<(), Error> {
        match self {
            Node::Client(c) => c.handle_message(now, from, msg),
            Node::Coordinator(c) => c.handle_message(now, from, msg),
            Node::Participant(p) => p.handle_message(now, from, msg),
        }
    }

    fn handle_timeout(&mut self, now: Time) {
        match self {
            Node::Client(c) => c.handle_timeout(now),
            Node::Coordinator(c) => c.handle_timeout(now),
            Node::Participant(p) => p.handle_timeout(now),
        }
    }

    fn poll_timeout(&self) -> Option<Time> {
        match self {
            Node::Client(c) => c.poll_timeout(),
            Node::Coordinator(c) => c.poll_timeout(),
            Node::Participant(p) => p.poll_timeout(),
        }
    }

    fn poll_ready(&mut self) -> Ready<NodeRecord, Msg, Event> {
        match self {
            Node::Client(c) => wrap(c.poll_ready(), NodeRecord::Client),
            Node::Coordinator(c) => wrap(c.poll_ready(), NodeRecord::Coordinator),
            Node::Participant(p) => wrap(p.poll_ready(), NodeRecord::Participant),
        }
    }

    fn snapshot(&self) -> NodeRecord {
        match self {
            Node::Client(c) => NodeRecord::Client(c.snapshot()),
            Node::Coordinator(c) => NodeRecord::Coordinator(c.snapshot()),
            Node::Participant(p) => NodeRecord::Participant(p.snapshot()),
        }
    }
}
