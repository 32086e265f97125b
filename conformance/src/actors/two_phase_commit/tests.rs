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
    assert_eq!(report.unique_states, 315_315);
}
