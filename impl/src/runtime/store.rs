//! A node's durable state on disk, and how to read it without touching it.
//!
//! A node keeps exactly one durable thing: its write-ahead log, in the directory
//! [`WAL_DIR`] under its data directory, on a [`FileDisk`]. The records are the
//! core's own record type, serialised with postcard: [`SenderRecord`] and
//! [`ReceiverRecord`] for ack-retry, [`NodeRecord`] (one wrapper for the three
//! roles) for two-phase commit.
//!
//! [`open`] reads a node's log **read-only**, for an inspector or a verifier that
//! runs after the node stopped (or was killed): it copies the log's files into an
//! in-memory [`SimDisk`] and recovers the copy with the same code a restarting node
//! runs ([`Wal::open`]). A torn tail is cut off in the copy only (and reported in
//! [`Inspected::truncated`]); the files on disk are never written, so inspecting a
//! directory cannot change what the node finds when it restarts. The records it
//! returns are exactly the ones the node would recover: every record the node ever
//! reported durable, and possibly records written but not yet synced when it died
//! (a restarting node keeps those too, since its `open` syncs them).
//!
//! ```no_run
//! use eo_impl::runtime::store::{self, RoleKind, Stored};
//! let inspected = store::open("/tmp/eo/receiver-2".as_ref(), RoleKind::Receiver).unwrap();
//! if let Stored::Receiver(records) = inspected.records {
//!     let receiver = eo_impl::ack_retry::Receiver::recover(2, eo_impl::Time::ZERO, records).unwrap();
//!     println!("bank total {}", receiver.bank().total());
//! }
//! ```

use crate::ack_retry::{ReceiverRecord, SenderRecord};
use crate::disk::{Disk, FileDisk, SimDisk};
use crate::runtime::handshake::Protocol;
use crate::two_phase_commit::{ClientRecord, CoordinatorRecord, NodeRecord, ParticipantRecord};
use crate::wal::{Lsn, Recovered, Truncation, Wal, WalError};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The directory, under a node's data directory, that holds its write-ahead log.
pub const WAL_DIR: &str = "wal";

/// The largest log [`open`] copies into memory, in bytes (1 GiB): a bigger one is
/// [`StoreError::TooLarge`], not an out-of-memory abort.
pub const INSPECT_LEN_MAX: u64 = 1 << 30;

/// The role a node plays, which fixes its protocol and its record type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoleKind {
    /// Ack-retry sender ([`crate::ack_retry::Sender`]).
    Sender,
    /// Ack-retry receiver ([`crate::ack_retry::Receiver`]).
    Receiver,
    /// Two-phase-commit coordinator ([`crate::two_phase_commit::Coordinator`]).
    Coordinator,
    /// Two-phase-commit participant ([`crate::two_phase_commit::Participant`]).
    Participant,
    /// Two-phase-commit client ([`crate::two_phase_commit::Client`]).
    Client,
}

impl RoleKind {
    /// Every role, in the order of the command line's help.
    pub const ALL: [RoleKind; 5] = [
        RoleKind::Sender,
        RoleKind::Receiver,
        RoleKind::Coordinator,
        RoleKind::Participant,
        RoleKind::Client,
    ];

    /// The protocol this role belongs to.
    pub fn protocol(self) -> Protocol {
        match self {
            RoleKind::Sender | RoleKind::Receiver => Protocol::AckRetry,
            RoleKind::Coordinator | RoleKind::Participant | RoleKind::Client => {
                Protocol::TwoPhaseCommit
            }
        }
    }

    /// The role's name on the command line and in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            RoleKind::Sender => "sender",
            RoleKind::Receiver => "receiver",
            RoleKind::Coordinator => "coordinator",
            RoleKind::Participant => "participant",
            RoleKind::Client => "client",
        }
    }
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RoleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<RoleKind, String> {
        RoleKind::ALL
            .into_iter()
            .find(|role| role.name() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (sender, receiver, coordinator, participant, client)")
            })
    }
}

/// A node's recovered records, typed by its role (a snapshot first, if the log was
/// compacted): what the role's `recover` takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// An ack-retry sender's log.
    Sender(Vec<SenderRecord>),
    /// An ack-retry receiver's log.
    Receiver(Vec<ReceiverRecord>),
    /// A two-phase-commit coordinator's log.
    Coordinator(Vec<CoordinatorRecord>),
    /// A two-phase-commit participant's log.
    Participant(Vec<ParticipantRecord>),
    /// A two-phase-commit client's log.
    Client(Vec<ClientRecord>),
}

impl Stored {
    /// How many records (the snapshot counts as one).
    pub fn len(&self) -> usize {
        match self {
            Stored::Sender(r) => r.len(),
            Stored::Receiver(r) => r.len(),
            Stored::Coordinator(r) => r.len(),
            Stored::Participant(r) => r.len(),
            Stored::Client(r) => r.len(),
        }
    }

    /// No record at all: the node never made anything durable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`open`] found in a node's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// The records, typed by role.
    pub records: Stored,
    /// The position of the snapshot, or `Lsn(0)` if the log was never compacted.
    pub base: Lsn,
    /// The position of the last record.
    pub lsn_last: Lsn,
    /// A torn tail that a restarting node would cut off (cut in the copy only).
    pub truncated: Option<Truncation>,
}

/// Why a node's log could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory has no `wal/` directory: the node never started there.
    #[error("no write-ahead log at {path:?}")]
    NoLog {
        /// The directory looked for.
        path: PathBuf,
    },
    /// Reading the log's files failed.
    #[error("cannot read {path:?}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log's files add up to more than [`INSPECT_LEN_MAX`] bytes.
    #[error(
        "the log at {path:?} holds {len} bytes, above the inspection limit of {INSPECT_LEN_MAX}"
    )]
    TooLarge {
        /// The log directory.
        path: PathBuf,
        /// Bytes in its files.
        len: u64,
    },
    /// The log does not recover (corruption, not a torn tail), or a record does not
    /// decode as the role's record type.
    #[error("the log at {path:?} does not recover: {source}")]
    Wal {
        /// The log directory.
        path: PathBuf,
        /// What recovery found.
        #[source]
        source: WalError,
    },
    /// A two-phase-commit record of another role than the one asked for.
    #[error("record {index} of the log at {path:?} belongs to another role than {role}")]
    WrongRole {
        /// The log directory.
        path: PathBuf,
        /// The role asked for.
        role: RoleKind,
        /// The record's index (0 is the first record recovered).
        index: usize,
    },
}

/// The log directory of a node whose data directory is `data_dir`.
pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(WAL_DIR)
}

/// Reads the log of the node whose data directory is `data_dir` and whose role is
/// `role`, without writing anything (see the module docs).
pub fn open(data_dir: &Path, role: RoleKind) -> Result<Inspected, StoreError> {
    let dir = wal_dir(data_dir);
    if !dir.is_dir() {
        return Err(StoreError::NoLog { path: dir });
    }
    let copy = copy_to_memory(&dir)?;
    let (_, recovered) = Wal::open(copy).map_err(|source| StoreError::Wal {
        path: dir.clone(),
        source,
    })?;
    let records = decode(&dir, role, &recovered)?;
    Ok(Inspected {
        records,
        base: recovered.base,
        lsn_last: recovered.lsn_last(),
        truncated: recovered.truncated,
    })
}

/// Copies every file of the log directory into a fresh in-memory disk, as durable.
fn copy_to_memory(dir: &Path) -> Result<SimDisk, StoreError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    // Opening a FileDisk on an existing directory writes nothing.
    let files = FileDisk::open(dir).map_err(io_err(dir))?;
    let names = files.list().map_err(io_err(dir))?;
    let mut total = 0u64;
    for name in &names {
        total += files.file_len(name).map_err(io_err(&dir.join(name)))?;
    }
    if total > INSPECT_LEN_MAX {
        return Err(StoreError::TooLarge {
            path: dir.to_path_buf(),
            len: total,
        });
    }
    let mut copy = SimDisk::new();
    for name in &names {
        let path = dir.join(name);
        let bytes = files.read(name).map_err(io_err(&path))?;
        let in_memory = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        copy.create(name).map_err(in_memory)?;
        copy.append(name, &bytes).map_err(in_memory)?;
        copy.sync(name).map_err(in_memory)?;
    }
    copy.sync_dir().map_err(io_err(dir))?;
    Ok(copy)
}

fn decode(dir: &Path, role: RoleKind, recovered: &Recovered) -> Result<Stored, StoreError> {
    let wal = |source| StoreError::Wal {
        path: dir.to_path_buf(),
        source,
    };
    let node_records = || recovered.decode::<NodeRecord>().map_err(wal);
    let wrong_role = |index| StoreError::WrongRole {
        path: dir.to_path_buf(),
        role,
        index,
    };
    Ok(match role {
        RoleKind::Sender => Stored::Sender(recovered.decode().map_err(wal)?),
        RoleKind::Receiver => Stored::Receiver(recovered.decode().map_err(wal)?),
        RoleKind::Coordinator => Stored::Coordinator(unwrap_role(
            node_records()?,
            |r| match r {
                NodeRecord::Coordinator(r) => Some(r),
                _ => None,
            },
            wrong_role,
        )?),
        RoleKind::Participant => Stored::Participant(unwrap_role(
            node_records()?,
            |r| match r {
                NodeRecord::Participant(r) => Some(r),
                _ => None,
            },
            wrong_role,
        )?),
        RoleKind::Client => Stored::Client(unwrap_role(
            node_records()?,
            |r| match r {
                NodeRecord::Client(r) => Some(r),
                _ => None,
            },
            wrong_role,
        )?),
    })
}

fn unwrap_role<R>(
    records: Vec<NodeRecord>,
    pick: impl Fn(NodeRecord) -> Option<R>,
    wrong_role: impl Fn(usize) -> StoreError,
) -> Result<Vec<R>, StoreError> {
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| pick(record).ok_or_else(|| wrong_role(index)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack_retry::ReceiverRecord;
    use crate::bank::Transfer;
    use crate::two_phase_commit::{ClientRecord, TxnId};

    fn applied(seq: u64) -> ReceiverRecord {
        ReceiverRecord::Applied {
            from: 1,
            incarnation: 1,
            seq,
            transfer: Transfer {
                from: 1,
                to: 2,
                amount: 3,
            },
        }
    }

    fn write_log<R: serde::Serialize>(data_dir: &Path, records: &[R], synced: bool) {
        let disk = FileDisk::open(wal_dir(data_dir)).unwrap();
        let (mut wal, _) = Wal::open(disk).unwrap();
        for record in records {
            wal.append_record(record).unwrap();
        }
        if synced {
            wal.sync().unwrap();
        }
    }

    fn dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let disk = FileDisk::open(dir).unwrap();
        disk.list()
            .unwrap()
            .into_iter()
            .map(|name| {
                let bytes = disk.read(&name).unwrap();
                (name, bytes)
            })
            .collect()
    }

    #[test]
    fn open_returns_the_typed_records_and_writes_nothing() {
        let data = tempfile::tempdir().unwrap();
        let records = [applied(1), applied(2), applied(3)];
        // Unsynced on purpose: the files end without a sync mark, which a real
        // recovery would append; inspection must not.
        write_log(data.path(), &records, false);
        let before = dir_bytes(&wal_dir(data.path()));
        let inspected = open(data.path(), RoleKind::Receiver).unwrap();
        assert_eq!(inspected.records, Stored::Receiver(records.to_vec()));
        assert_eq!(inspected.lsn_last, Lsn(3));
        assert_eq!(dir_bytes(&wal_dir(data.path())), before, "read-only");
    }

    #[test]
    fn a_torn_tail_is_cut_in_the_copy_only() {
        let data = tempfile::tempdir().unwrap();
        write_log(data.path(), &[applied(1), applied(2)], true);
        let mut disk = FileDisk::open(wal_dir(data.path())).unwrap();
        let segment = disk.list().unwrap().pop().unwrap();
        disk.append(&segment, &[7, 0, 0]).unwrap(); // a torn header
        let before = dir_bytes(&wal_dir(data.path()));
        let inspected = open(data.path(), RoleKind::Receiver).unwrap();
        assert_eq!(inspected.records.len(), 2);
        assert!(inspected.truncated.is_some());
        assert_eq!(dir_bytes(&wal_dir(data.path())), before);
    }

    #[test]
    fn two_phase_commit_records_are_typed_by_role() {
        let data = tempfile::tempdir().unwrap();
        let learned = ClientRecord::Learned {
            txn: TxnId { client: 5, seq: 0 },
            decision: crate::two_phase_commit::Decision::Commit,
        };
        write_log(data.path(), &[NodeRecord::Client(learned.clone())], true);
        let inspected = open(data.path(), RoleKind::Client).unwrap();
        assert_eq!(inspected.records, Stored::Client(vec![learned]));
        let error = open(data.path(), RoleKind::Participant).unwrap_err();
        assert!(matches!(error, StoreError::WrongRole { index: 0, .. }));
    }

    #[test]
    fn a_directory_without_a_log_is_a_typed_error() {
        let data = tempfile::tempdir().unwrap();
        let error = open(data.path(), RoleKind::Sender).unwrap_err();
        assert!(matches!(error, StoreError::NoLog { .. }));
        assert!(!wal_dir(data.path()).exists(), "nothing created");
    }

    #[test]
    fn role_names_round_trip() {
        for role in RoleKind::ALL {
            assert_eq!(role.name().parse::<RoleKind>(), Ok(role));
        }
        assert!("leader".parse::<RoleKind>().is_err());
    }
}
