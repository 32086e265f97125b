//! After a run: read every node's log from its data directory (read-only, with
//! `runtime::store::open`) and check it with `runtime::inspect` against the
//! workload, recomputed from the plan (`runtime::workload`).
//!
//! Ack-retry senders have one *life* per data directory: the current one,
//! `sender-ID/`, and each lost disk, `lost/ID-N/`. A directory without a log (a
//! node killed before its first sync) counts as an empty log.

use super::cluster::{Plan, LOST_DIR, MANIFEST};
use crate::UsageError;
use eo_impl::core::NodeId;
use eo_impl::runtime::inspect::{self, SenderLife, Verdict};
use eo_impl::runtime::store::{self, RoleKind, StoreError, Stored};
use eo_impl::runtime::workload;
use eo_impl::two_phase_commit::{Txn, TxnId};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

/// A node's records, or none if it never wrote a log.
fn records(dir: &Path, role: RoleKind) -> Result<Option<Stored>, String> {
    match store::open(dir, role) {
        Ok(inspected) => Ok(Some(inspected.records)),
        Err(StoreError::NoLog { .. }) => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
    }
}

/// Lost lives of `sender` under `dir/lost/`, in order of loss.
fn lost_dirs(dir: &Path, sender: NodeId) -> Result<Vec<std::path::PathBuf>, String> {
    let lost = dir.join(LOST_DIR);
    if !lost.is_dir() {
        return Ok(vec![]);
    }
    let mut found: Vec<(u32, std::path::PathBuf)> = Vec::new();
    let entries =
        fs::read_dir(&lost).map_err(|e| format!("cannot read {}: {e}", lost.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((id, n)) = name.split_once('-') {
            if let (Ok(id), Ok(n)) = (id.parse::<NodeId>(), n.parse::<u32>()) {
                if id == sender {
                    found.push((n, entry.path()));
                }
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Checks the run in `dir` made by `plan`.
pub fn verify(dir: &Path, plan: &Plan) -> Result<Verdict, String> {
    let seed = plan.workload_seed();
    let node_dir = |n: &super::cluster::NodePlan| dir.join(n.name());
    let of_role = |role: RoleKind| plan.nodes.iter().filter(move |n| n.role() == role);
    let items: BTreeMap<NodeId, u64> = plan
        .nodes
        .iter()
        .filter_map(|n| n.workload.map(|w| (n.id, w)))
        .collect();
    match plan.protocol.as_str() {
        "ack-retry" => {
            let receiver = of_role(RoleKind::Receiver)
                .next()
                .ok_or("the plan has no receiver")?;
            let rx = match records(&node_dir(receiver), RoleKind::Receiver)? {
                Some(Stored::Receiver(r)) => r,
                _ => vec![],
            };
            let mut lives = Vec::new();
            for sender in of_role(RoleKind::Sender) {
                let mut dirs = lost_dirs(dir, sender.id)?;
                let current = dirs.len();
                dirs.push(node_dir(sender));
                for (i, d) in dirs.iter().enumerate() {
                    let records = match records(d, RoleKind::Sender)? {
                        Some(Stored::Sender(r)) => r,
                        _ => vec![],
                    };
                    lives.push(SenderLife {
                        sender: sender.id,
                        records,
                        lost: i < current,
                    });
                }
            }
            let transfer = |sender, item| workload::ack_retry_transfer(sender, item, seed).ok();
            Ok(inspect::check_ack_retry(
                receiver.id,
                &rx,
                &lives,
                &items,
                &transfer,
            ))
        }
        "two-phase-commit" => {
            let coordinator = of_role(RoleKind::Coordinator)
                .next()
                .ok_or("the plan has no coordinator")?;
            let coord = match records(&node_dir(coordinator), RoleKind::Coordinator)? {
                Some(Stored::Coordinator(r)) => r,
                _ => vec![],
            };
            let mut participants = Vec::new();
            for p in of_role(RoleKind::Participant) {
                let r = match records(&node_dir(p), RoleKind::Participant)? {
                    Some(Stored::Participant(r)) => r,
                    _ => vec![],
                };
                participants.push((p.id, r));
            }
            let mut clients = Vec::new();
            for c in of_role(RoleKind::Client) {
                let r = match records(&node_dir(c), RoleKind::Client)? {
                    Some(Stored::Client(r)) => r,
                    _ => vec![],
                };
                clients.push((c.id, r));
            }
            let part_ids: Vec<NodeId> = participants.iter().map(|(id, _)| *id).collect();
            let txn = |client: NodeId, seq: u64| {
                workload::two_phase_commit_legs(client, seq + 1, seed, &part_ids)
                    .ok()
                    .map(|legs| Txn {
                        id: TxnId { client, seq },
                        legs,
                    })
            };
            Ok(inspect::check_two_phase_commit(
                &coord,
                &participants,
                &clients,
                &items,
                &txn,
            ))
        }
        other => Err(format!("unknown protocol {other:?} in {MANIFEST}")),
    }
}

/// `eo run verify DIR`: the checks again, on a kept data directory.
pub fn rerun(dir: &Path, json: bool) -> Result<ExitCode, UsageError> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    let plan: Plan = serde_json::from_str(&text)
        .map_err(|e| UsageError(format!("{} is not a run manifest: {e}", path.display())))?;
    plan.check()
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    let verdict = verify(dir, &plan).map_err(UsageError)?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&verdict).expect("a verdict serialises")
        );
    } else {
        println!(
            "{}: {} outcomes fixed by the logs, {} of unknown outcome, balances {}; {} violation(s)",
            plan.protocol,
            verdict.checked,
            verdict.unknown,
            if verdict.bank_exact {
                "exact"
            } else {
                "within bounds"
            },
            verdict.violations.len() as u64 + verdict.violations_dropped
        );
    }
    for v in &verdict.violations {
        eprintln!("eo: violation: {v}");
    }
    Ok(if verdict.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
