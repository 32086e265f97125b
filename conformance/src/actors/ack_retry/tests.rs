//! The adapted ack-retry cores in the checker: the correct cores hold every
//! property (state counts pinned), and a planted fault is caught by the very
//! property it breaks.

use super::*;
use eo_models::check::{run, Report, RunLabel, RunOptions, Status};
use std::collections::BTreeMap;

fn check(cfg: ImplAckRetryCfg) -> Report {
    let label = RunLabel {
        model: "impl-ack-retry".into(),
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

/// Every property of the model, and `recovers`, met.
fn assert_holds(report: &Report) {
    assert!(report.all_ok(), "{:?}", statuses(report));
    let names: Vec<&str> = report.properties.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "exactly-once",
            "no-loss",
            "no-phantom",
            "within-window",
            "recovers",
            "all-delivered",
            "eventually-delivered"
        ]
    );
}

#[test]
fn the_cores_hold_every_property_in_the_default_configuration() {
    let report = check(ImplAckRetryCfg::default());
    assert_holds(&report);
    assert_eq!(report.unique_states, 28_448);
}

#[test]
fn the_cores_hold_every_property_under_a_syncing_log() {
    let report = check(ImplAckRetryCfg {
        log: LogMode::Sync,
        messages: 2,
        ..ImplAckRetryCfg::default()
    });
    assert_holds(&report);
    assert_eq!(report.unique_states, 3_460);
}

#[test]
fn the_cores_hold_every_property_when_a_sender_loses_its_disk() {
    let report = check(ImplAckRetryCfg {
        disk_losses: 1,
        messages: 2,
        ..ImplAckRetryCfg::default()
    });
    assert_holds(&report);
    assert_eq!(report.unique_states, 12_577);
}

/// Honesty: with the receiver's duplicate check off (`eo-impl`'s
/// `bench-baseline` knob) a retransmission is applied twice, and exactly
/// `exactly-once` fails.
#[test]
fn a_receiver_without_dedup_violates_exactly_once() {
    let report = check(ImplAckRetryCfg {
        fault: Fault::ReceiverDedupOff,
        ..ImplAckRetryCfg::default()
    });
    assert_eq!(
        report.property("exactly-once").map(|p| p.status),
        Some(Status::Violated)
    );
    assert_eq!(report.failed()[0], "exactly-once");
}

/// Honesty for the syncing log: a receiver whose acknowledgements leave before
/// its `Applied` record is synced lets the sender drop a message a receiver
/// crash then loses: `no-loss` fails.
#[test]
fn acknowledging_before_the_sync_violates_no_loss() {
    let report = check(ImplAckRetryCfg {
        fault: Fault::ReceiverReleasesBeforeSync,
        log: LogMode::Sync,
        messages: 2,
        ..ImplAckRetryCfg::default()
    });
    assert_eq!(
        report.property("no-loss").map(|p| p.status),
        Some(Status::Violated)
    );
    assert_eq!(report.failed()[0], "no-loss");
}

#[test]
fn every_number_has_a_bound() {
    assert_eq!(
        ImplAckRetryCfg::new(4, 1, 1, 0, 0),
        Err(BoundError::OutOfRange {
            name: "senders",
            value: 4,
            min: 1,
            max: SENDERS_MAX
        })
    );
    assert!(matches!(
        ImplAckRetryCfg::new(3, 3, 1, 0, 0),
        Err(BoundError::TooLarge(_))
    ));
    assert!(ImplAckRetryCfg::new(1, 3, 2, 1, 0).is_ok_and(|c| c == ImplAckRetryCfg::default()));
}
