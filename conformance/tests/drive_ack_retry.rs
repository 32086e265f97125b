//! The ack-retry cores driven through the model's behaviours.

use eo_conformance::drive::{self, ack_retry, Options};
use eo_models::ack_retry::AckRetryCfg;

#[test]
fn default_configuration_is_driven_through_every_state() {
    let cfg = AckRetryCfg::default();
    let system = cfg.clone().into_model();
    let twin = ack_retry::twin(&cfg, None).unwrap();
    let report = drive::explore(&system, twin, &Options::default());
    println!("{report}");
    assert!(report.first_mismatch.is_none(), "{report}");
    // The model's own count (pinned in eo-models' tests) and the real figure.
    assert_eq!(report.reachable, 6_504);
    assert!(report.coverage() >= 0.95, "{report}");
    assert_eq!(report.covered, report.reachable, "{report}");
    assert!(report.unexercised.is_empty(), "{report}");
    assert_eq!(report.kinds.len(), 10, "{report}");
}

/// Negative control: a receiver without deduplication (the benchmark's
/// at-least-once baseline) is caught at the first redelivery, with the step
/// and the ledger's difference.
#[test]
fn a_receiver_without_dedup_is_caught_with_the_step_and_the_ledger() {
    let cfg = AckRetryCfg::default();
    let system = cfg.clone().into_model();
    let twin = ack_retry::twin(&cfg, Some(|r| r.set_at_least_once(true))).unwrap();
    let report = drive::explore(&system, twin, &Options::default());
    let m = report.first_mismatch.as_ref().expect("the fault is caught");
    println!("{m}");
    // Breadth-first: a shortest behaviour that redelivers. The model sends
    // Data(1), the receiver applies it, the sender retransmits, and the copy
    // is delivered: the model re-acks, this receiver applies again.
    assert_eq!(m.path.len(), 5, "{m}");
    assert_eq!(m.path[0], "sender 0: Submit timer fires");
    assert_eq!(m.path[1], "sender 0 → receiver: Data(1)");
    assert_eq!(m.path[2], "sender 0: Retry timer fires");
    assert_eq!(m.path[4], "sender 0 → receiver: Data(1)");
    assert!(m.error.is_none(), "{m}");
    let ledger = m
        .diff
        .0
        .iter()
        .find(|d| d.field == "receiver.ledger")
        .unwrap();
    assert_eq!(ledger.expected, "[s0#1]");
    assert_eq!(ledger.actual, "[s0#1, s0#1]");
    // Its log holds the second application too: no model storage.
    let storage = m
        .diff
        .0
        .iter()
        .find(|d| d.field == "receiver storage")
        .unwrap();
    assert!(storage.actual.contains("applied twice"), "{m}");
}
