//! The two-phase-commit cores driven through the model's behaviours. The
//! implementation's participant stores less than the model's: these tests pin
//! the differences driving finds, each with its diagnosis.

use eo_conformance::drive::{self, Config, DriveReport, Options};
use eo_models::two_phase_commit::TwoPhaseCfg;

fn drive(refusals_as_stored: bool) -> DriveReport {
    let cfg = TwoPhaseCfg {
        participants: 2,
        ..TwoPhaseCfg::default()
    };
    let options = Options {
        depth: 4,
        walks: 100,
        ..Options::default()
    };
    let config = Config::TwoPhaseCommit {
        cfg,
        refusals_as_stored,
    };
    let report = drive::run(&config, &options).unwrap();
    println!("{report}");
    report
}

/// A no vote: the model's participant stores `Aborted(t0)`, the
/// implementation's keeps its refusal in memory only.
#[test]
fn a_no_vote_is_stored_by_the_model_and_not_by_the_implementation() {
    let report = drive(false);
    assert_eq!(report.reachable, 25_255);
    let m = report
        .first_mismatch
        .as_ref()
        .expect("the difference is found");
    assert_eq!(
        m.path,
        [
            "client → coordinator: Begin(0)",
            "coordinator → participant 1: Prepare(t0)",
            "participant 1 chooses No(t0)",
        ]
    );
    let fields: Vec<&str> = m.diff.0.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        ["participant 1 storage.log", "participant 1 storage.shape"],
        "{m}"
    );
    // The volatile states agree: the refusal is the model's Aborted record.
    assert_eq!(m.diff.0[0].expected, "[Aborted(t0)]");
}

/// With refusals compared as stored, the next difference: an abort of a
/// transaction the participant never prepared. The model's participant
/// stores `Aborted(t0)`; the implementation's acknowledges and stores nothing.
#[test]
fn an_abort_of_an_unknown_transaction_is_stored_by_the_model_only() {
    let report = drive(true);
    let m = report
        .first_mismatch
        .as_ref()
        .expect("the difference is found");
    assert_eq!(
        m.path,
        [
            "client → coordinator: Begin(0)",
            "coordinator: Votes timer fires",
            "coordinator → participant 1: Abort(t0)",
        ]
    );
    let fields: Vec<&str> = m.diff.0.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "participant 1.log",
            "participant 1 storage.log",
            "participant 1 storage.shape"
        ],
        "{m}"
    );
    // Everything up to these differences was driven and agreed.
    assert!(report.covered > report.reachable / 2, "{report}");
    assert!(report.unexercised.is_empty(), "{report}");
}
