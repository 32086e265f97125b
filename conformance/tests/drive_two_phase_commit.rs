//! The two-phase-commit cores driven through the model's behaviours, two
//! participants, one transaction, one crash: every reachable state
//! breadth-first, every path of 4 steps and 100 random walks.

use eo_conformance::drive::{self, Config, DriveReport, Options};
use eo_models::two_phase_commit::TwoPhaseCfg;

fn drive() -> DriveReport {
    let cfg = TwoPhaseCfg {
        participants: 2,
        ..TwoPhaseCfg::default()
    };
    let options = Options {
        depth: 4,
        walks: 100,
        ..Options::default()
    };
    let report = drive::run(&Config::TwoPhaseCommit(cfg), &options).unwrap();
    println!("{report}");
    report
}

/// The model's participant keeps no votes and unprepared aborts in memory, as
/// the implementation's does: the implementation is driven through 98.1% of
/// the model's states, every kind of action exercised. What remains is one
/// difference, pinned below: the model's participant asks for the outcome by
/// re-sending its yes vote, so the model's coordinator answers every `Yes` for
/// a decided transaction with the decision; the implementation's asks with a
/// `Query` (answered) and ignores a late yes vote.
#[test]
fn two_participants_are_driven_through_most_states() {
    let report = drive();
    assert_eq!(report.reachable, 49_728);
    assert_eq!(report.covered, 48_778, "{report}");
    assert!(report.coverage() >= 0.95, "{report}");
    assert!(report.unexercised.is_empty(), "{report}");
    assert_eq!(report.kinds.len(), 28, "{report}");
    let m = report
        .first_mismatch
        .as_ref()
        .expect("the late yes vote differs");
    assert_eq!(
        m.path,
        [
            "client → coordinator: Begin(0)",
            "coordinator → participant 1: Prepare(t0)",
            "coordinator: Votes timer fires",
            "participant 1 chooses Yes(t0)",
            "coordinator → participant 1: Abort(t0)",
            "participant 1 → coordinator: Yes(t0)",
        ]
    );
    assert!(m.error.is_none(), "{m}");
    let fields: Vec<&str> = m.diff.0.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["in flight"], "{m}");
    // The model re-sends the abort; the implementation sends nothing.
    let d = &m.diff.0[0];
    assert!(
        d.expected
            .contains("coordinator → participant 1: Abort(t0)"),
        "{m}"
    );
    assert!(
        !d.actual.contains("coordinator → participant 1: Abort(t0)"),
        "{m}"
    );
}
