//! The client: submits transactions and learns their outcomes, exactly once.
//!
//! ## Call order
//!
//! 1. [`Client::new`] on first start, or [`Client::recover`] with the records its
//!    log returned (its [`ClientSnapshot`] first, if any). A recovered client
//!    re-sends the Begin of every pending transaction at once.
//! 2. The application calls [`Client::submit`] (at most
//!    [`CLIENT_PENDING_TXNS_MAX`] consecutive ids outstanding); messages arrive
//!    through [`Core::handle_message`]; once [`Core::poll_timeout`] has passed,
//!    [`Core::handle_timeout`] retries pending transactions with the **same** id.
//!    After each input, [`Core::poll_ready`]: append and sync its records
//!    (`Submitted`, `Learned`), then send the Begins and hand the
//!    [`Event::Outcome`]s to the application. A coordinator at its bound answers
//!    [`Msg::Busy`]: the client hands [`Event::Busy`] to the application (a
//!    typed backpressure report, not an outcome) and doubles the retry interval.
//! 3. To compact the log, replace it with [`Core::snapshot`] (only when the last
//!    `Ready` has been carried out).
//!
//! A transaction is recorded before its first Begin leaves, so a crash never
//! loses one the coordinator may have seen; its outcome is recorded before the
//! application hears it, and a learned transaction is never retried.

use super::TRACE_TARGET;
use super::{
    backoff, check_legs, role, step, Busy, Decision, Error, Event, Leg, Msg, SubmitError, Txn,
    TxnId, CLIENT_PENDING_TXNS_MAX, CLIENT_RETRY_INTERVAL_MAX, CLIENT_RETRY_INTERVAL_MIN,
};
use crate::core::{Core, Envelope, NodeId, Ready, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tracing::debug;

/// The client's whole durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientSnapshot {
    /// The seq of the next transaction.
    pub next_seq: u64,
    /// Transactions whose outcome is not yet learned.
    pub pending: Vec<Txn>,
}

/// The client's log records.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientRecord {
    /// A new transaction, durable before its first Begin leaves.
    Submitted(Txn),
    /// The outcome of a pending transaction, durable before the application hears it.
    Learned { txn: TxnId, decision: Decision },
    /// Stands for all records before it; only ever the first record.
    Snapshot(ClientSnapshot),
}

#[derive(Clone, Debug)]
struct Pending {
    txn: Txn,
    retry_at: Time,
    attempt: u32,
}

/// The two-phase-commit client. See the module docs for the call order.
#[derive(Clone, Debug)]
pub struct Client {
    id: NodeId,
    coordinator: NodeId,
    now: Time,
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
    out: Ready<ClientRecord, Msg, Event>,
}

impl Client {
    /// The coordinator is at a bound and did not start `txn`: tell the application
    /// and push the retry back (the backoff doubles, up to its cap). Nothing is
    /// recorded: the transaction stays pending with the same id.
    fn on_busy(&mut self, txn: TxnId, reason: Busy) -> Result<(), Error> {
        if txn.client != self.id || txn.seq >= self.next_seq {
            return Err(Error::OutcomeForUnknown { txn });
        }
        let now = self.now;
        let Some(p) = self.pending.get_mut(&txn.seq) else {
            return Ok(()); // learned meanwhile: a stale refusal
        };
        p.attempt = p.attempt.saturating_add(1);
        let retry_in = backoff(
            CLIENT_RETRY_INTERVAL_MIN,
            CLIENT_RETRY_INTERVAL_MAX,
            p.attempt,
        );
        p.retry_at = now + retry_in;
        self.out.push_event(Event::Busy {
            txn,
            reason,
            retry_in,
        });
        debug!(target: TRACE_TARGET, node = self.id, role = role::CLIENT, step = step::BUSY, txn = %txn,
            persisted = "none", sent = "none", reason = ?reason, retry_in_ms = retry_in.as_millis() as u64);
        Ok(())
    }

    /// Re-sends the Begin of every pending transaction whose retry is due.
    fn retry_due(&mut self, now: Time) {
        let low = self.low();
        let mut retries = Vec::new();
        for p in self.pending.values_mut() {
            if p.retry_at <= now {
                p.attempt = p.attempt.saturating_add(1);
                p.retry_at = now
                    + backoff(
                        CLIENT_RETRY_INTERVAL_MIN,
                        CLIENT_RETRY_INTERVAL_MAX,
                        p.attempt,
                    );
                retries.push((p.txn.clone(), p.attempt));
            }
        }
        for (txn, attempt) in retries {
            debug!(target: TRACE_TARGET, node = self.id, role = role::CLIENT, step = step::RETRY, txn = %txn.id,
                persisted = "none", sent = "begin", low, attempt);
            self.out.push_message(Envelope {
                to: self.coordinator,
                msg: Msg::Begin { txn, low },
            });
        }
    }

    /// A client with an empty log, submitting to `coordinator`.
    pub fn new(id: NodeId, coordinator: NodeId) -> Client {
        Client {
            id,
            coordinator,
            now: Time::ZERO,
            next_seq: 0,
            pending: BTreeMap::new(),
            out: Ready::default(),
        }
    }

    /// Rebuilds a client from its log and re-sends every pending Begin at once.
    pub fn recover(
        id: NodeId,
        coordinator: NodeId,
        now: Time,
        records: impl IntoIterator<Item = ClientRecord>,
    ) -> Result<Client, Error> {
        let mut c = Client::new(id, coordinator);
        c.now = now;
        let retry_at = now + CLIENT_RETRY_INTERVAL_MIN;
        for (index, record) in records.into_iter().enumerate() {
            match record {
                ClientRecord::Snapshot(s) => {
                    if index != 0 {
                        return Err(Error::SnapshotNotFirst { index });
                    }
                    c.next_seq = s.next_seq;
                    for txn in s.pending {
                        c.replay_submitted(index, txn, retry_at, true)?;
                    }
                }
                ClientRecord::Submitted(txn) => c.replay_submitted(index, txn, retry_at, false)?,
                ClientRecord::Learned { txn, .. } => {
                    if txn.client != id || c.pending.remove(&txn.seq).is_none() {
                        return Err(Error::CorruptLog {
                            index,
                            txn,
                            reason: "learned a transaction not pending",
                        });
                    }
                }
            }
        }
        let low = c.low();
        let begins: Vec<Txn> = c.pending.values().map(|p| p.txn.clone()).collect();
        for txn in begins {
            c.out.push_message(Envelope {
                to: coordinator,
                msg: Msg::Begin { txn, low },
            });
        }
        debug!(target: TRACE_TARGET,
            node = id,
            role = role::CLIENT,
            step = step::RECOVER,
            txn = "-",
            persisted = "none",
            sent = "begin",
            pending = c.pending.len(),
            next_seq = c.next_seq
        );
        Ok(c)
    }

    fn replay_submitted(
        &mut self,
        index: usize,
        txn: Txn,
        retry_at: Time,
        from_snapshot: bool,
    ) -> Result<(), Error> {
        let corrupt = |reason| Error::CorruptLog {
            index,
            txn: txn.id,
            reason,
        };
        if txn.id.client != self.id {
            return Err(corrupt("another client's transaction"));
        }
        check_legs(&txn.legs).map_err(corrupt)?;
        if from_snapshot {
            if txn.id.seq >= self.next_seq {
                return Err(corrupt("pending at or above next_seq"));
            }
        } else {
            if txn.id.seq != self.next_seq {
                return Err(corrupt("submitted out of order"));
            }
            self.next_seq += 1;
        }
        if self.next_seq - self.low_with(txn.id.seq) > CLIENT_PENDING_TXNS_MAX {
            return Err(corrupt("outside the client window"));
        }
        let seq = txn.id.seq;
        if self
            .pending
            .insert(
                seq,
                Pending {
                    txn,
                    retry_at,
                    attempt: 0,
                },
            )
            .is_some()
        {
            return Err(Error::CorruptLog {
                index,
                txn: TxnId {
                    client: self.id,
                    seq,
                },
                reason: "pending twice",
            });
        }
        Ok(())
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The smallest seq whose outcome is not learned (`next_seq` if none).
    pub fn low(&self) -> u64 {
        self.pending.keys().next().copied().unwrap_or(self.next_seq)
    }

    fn low_with(&self, seq: u64) -> u64 {
        self.low().min(seq)
    }

    /// The seq the next submitted transaction gets: every seq below it was
    /// submitted (and is pending or learned).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Transactions awaiting their outcome: bounded by [`CLIENT_PENDING_TXNS_MAX`].
    pub fn pending(&self) -> Vec<TxnId> {
        self.pending.values().map(|p| p.txn.id).collect()
    }

    /// Records a new transaction and sends its Begin (after the record). The id is
    /// the client's next seq; retries reuse it.
    pub fn submit(&mut self, now: Time, legs: Vec<Leg>) -> Result<TxnId, SubmitError> {
        self.tick(now);
        let txn = Txn {
            id: TxnId {
                client: self.id,
                seq: self.next_seq,
            },
            legs,
        };
        check_legs(&txn.legs).map_err(SubmitError::Invalid)?;
        let low = self.low();
        if self.next_seq - low >= CLIENT_PENDING_TXNS_MAX {
            return Err(SubmitError::WindowFull {
                low,
                pending: self.pending.len(),
            });
        }
        self.next_seq += 1;
        let id = txn.id;
        self.out.push_record(ClientRecord::Submitted(txn.clone()));
        self.out.push_message(Envelope {
            to: self.coordinator,
            msg: Msg::Begin {
                txn: txn.clone(),
                low,
            },
        });
        let retry_at = now + CLIENT_RETRY_INTERVAL_MIN;
        self.pending.insert(
            id.seq,
            Pending {
                txn,
                retry_at,
                attempt: 0,
            },
        );
        debug!(target: TRACE_TARGET, node = self.id, role = role::CLIENT, step = step::BEGIN, txn = %id,
            persisted = "submitted", sent = "begin", low, pending = self.pending.len());
        Ok(id)
    }

    fn tick(&mut self, now: Time) {
        self.now.advance_to(now);
    }
}

impl Core for Client {
    type Msg = Msg;
    type Record = ClientRecord;
    type Event = Event;
    type Error = Error;

    fn handle_message(&mut self, now: Time, from: NodeId, msg: Msg) -> Result<(), Error> {
        self.tick(now);
        let kind = msg.kind();
        if from != self.coordinator {
            return Err(Error::UnexpectedMessage { from, kind });
        }
        let (txn, decision) = match msg {
            Msg::Outcome { txn, decision } => (txn, decision),
            Msg::Busy { txn, reason } => return self.on_busy(txn, reason),
            _ => return Err(Error::UnexpectedMessage { from, kind }),
        };
        if txn.client != self.id || txn.seq >= self.next_seq {
            return Err(Error::OutcomeForUnknown { txn });
        }
        if self.pending.remove(&txn.seq).is_none() {
            debug!(target: TRACE_TARGET, node = self.id, role = role::CLIENT, step = step::IGNORE, txn = %txn,
                persisted = "none", sent = "none", reason = "already-learned", decision = ?decision);
            return Ok(());
        }
        self.out
            .push_record(ClientRecord::Learned { txn, decision });
        self.out.push_event(Event::Outcome { txn, decision });
        debug!(target: TRACE_TARGET, node = self.id, role = role::CLIENT, step = step::OUTCOME, txn = %txn,
            persisted = "learned", sent = "none", decision = ?decision);
        Ok(())
    }

    fn handle_timeout(&mut self, now: Time) {
        self.tick(now);
        self.retry_due(now);
    }

    fn poll_timeout(&self) -> Option<Time> {
        self.pending.values().map(|p| p.retry_at).min()
    }

    fn poll_ready(&mut self) -> Ready<ClientRecord, Msg, Event> {
        std::mem::take(&mut self.out)
    }

    /// # Panics
    /// If records from the last input have not been taken with `poll_ready`.
    fn snapshot(&self) -> ClientRecord {
        assert!(
            self.out.records().is_empty(),
            "snapshot before the pending records were polled"
        );
        ClientRecord::Snapshot(ClientSnapshot {
            next_seq: self.next_seq,
            pending: self.pending.values().map(|p| p.txn.clone()).collect(),
        })
    }
}

// ---- Read-only view for eo-conformance's model-checking adapter (no behaviour change). ----

/// A client's protocol state: everything but its clock, its retry deadlines and
/// its retry counters. Two clients with equal protocol states and every retry
/// already due (a driver whose `now` is past them all) answer every input
/// alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientProtocol {
    pub next_seq: u64,
    /// The transactions awaiting their outcome, by seq.
    pub pending: Vec<Txn>,
    /// Whether outputs wait to be polled.
    pub unpolled: bool,
}

impl Client {
    /// The protocol state (see [`ClientProtocol`]).
    pub fn protocol(&self) -> ClientProtocol {
        ClientProtocol {
            next_seq: self.next_seq,
            pending: self.pending.values().map(|p| p.txn.clone()).collect(),
            unpolled: !self.out.is_empty(),
        }
    }
}
