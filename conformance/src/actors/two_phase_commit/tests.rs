//! The adapted two-phase-commit cores in the checker: the correct cores hold
//! every property (state counts pinned), and a planted fault is caught by the
//! very property it breaks.

use super::*;
use eo_models::check::{run, Report, RunLabel, RunOptions, Status};
use std::collections::BTreeMap;

fn check(cfg: ImplTwoPhaseCfg) -> Report {
    let label = RunLabel {
        model: "impl-two-phase-commit".into(),
        variant: "correct".into(),
        config: BTreeMap::new(),
        not_checked: Vec::new(),
    };
    run(cfg.into_model(), None, label, &RunOptions::default()).expect("the graph fits")
}

fn statuses(report: &Report) -> Vec<(&'static str, Status)> {
    report
        .properties
        .iter()
        .map(|p| (p.name, p.status))
        .collect()
}

/// Every property of the model (but `balance-bound`), and `recovers`, met.
fn assert_holds(report: &Report) {
    assert!(report.all_ok(), "{:?}", statuses(report));
    let names: Vec<&str> = report.properties.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "atomicity",
            "exactly-once",
            "validity",
            "client-agreement",
            "recovers",
            "commit-possible",
            "abort-possible",
            "eventually-decided"
        ]
    );
}

#[test]
fn the_cores_hold_every_property_in_the_default_configuration() {
    let report = check(ImplTwoPhaseCfg::default());
    assert_holds(&report);
    assert_eq!(report.unique_states, 55_368);
}

#[test]
fn the_cores_hold_every_property_under_a_syncing_log() {
    let report = check(ImplTwoPhaseCfg {
        log: LogMode::Sync,
        ..ImplTwoPhaseCfg::default()
    });
    assert_holds(&report);
    assert_eq!(report.unique_states, 176_914);
}

fn violated(report: &Report) -> Vec<&'static str> {
    report
        .properties
        .iter()
        .filter(|p| p.status == Status::Violated)
        .map(|p| p.name)
        .collect()
}

/// A participant whose yes vote leaves while its `Prepared` record never
/// becomes durable lets the coordinator commit on a vote a crash then takes
/// back: another participant commits what this one no longer holds.
#[test]
fn voting_without_a_durable_prepare_violates_validity() {
    let report = check(ImplTwoPhaseCfg {
        fault: Fault::PreparedNotLogged,
        ..ImplTwoPhaseCfg::default()
    });
    // Its own `recover` then refuses a `Committed` record with no `Prepared`
    // before it.
    assert_eq!(
        violated(&report),
        ["validity", "recovers", "eventually-decided"]
    );
}

/// The same bug under a syncing log, as it happens: the yes vote leaves before
/// the sync of its `Prepared` record (`Release::open_before_durable`'s bug),
/// and a crash keeps the tail without it. About 70 s on a loaded 2-core
/// machine: `cargo test -p eo-conformance -- --ignored`.
#[test]
#[ignore = "about 70 s: run with --ignored"]
fn voting_before_the_sync_violates_validity() {
    let report = check(ImplTwoPhaseCfg {
        fault: Fault::VoteBeforeSync,
        log: LogMode::Sync,
        ..ImplTwoPhaseCfg::default()
    });
    assert_eq!(violated(&report), ["validity", "eventually-decided"]);
}

/// A participant whose driver applies every delivered `Commit` applies a
/// retransmitted one twice.
#[test]
fn applying_a_commit_twice_violates_exactly_once() {
    let report = check(ImplTwoPhaseCfg {
        fault: Fault::CommitTwice,
        ..ImplTwoPhaseCfg::default()
    });
    // A recovered participant refuses the log with the posting twice
    // (`recover` finds a commit after it finished), and then never decides.
    assert_eq!(
        violated(&report),
        ["exactly-once", "recovers", "eventually-decided"]
    );
}

/// A coordinator that does not log its decision presumes abort after a crash
/// for a transaction it had committed.
#[test]
fn a_coordinator_that_forgets_its_decision_violates_atomicity() {
    let report = check(ImplTwoPhaseCfg {
        fault: Fault::DecisionNotLogged,
        ..ImplTwoPhaseCfg::default()
    });
    assert_eq!(
        violated(&report),
        ["atomicity", "client-agreement", "eventually-decided"]
    );
}

#[test]
fn every_number_has_a_bound() {
    assert_eq!(
        ImplTwoPhaseCfg::new(4, 1, 1, 0),
        Err(BoundError::OutOfRange {
            name: "participants",
            value: 4,
            min: PARTICIPANTS_MIN,
            max: PARTICIPANTS_MAX
        })
    );
    assert!(matches!(
        ImplTwoPhaseCfg::new(2, 1, 2, 0),
        Err(BoundError::TooLarge(_))
    ));
    assert!(ImplTwoPhaseCfg::new(2, 1, 1, 1).is_ok_and(|c| c == ImplTwoPhaseCfg::default()));
}
