//! The two-phase-commit cores driven through the model's behaviours.

use eo_conformance::drive::{self, Config, DriveReport, Options};
use eo_models::two_phase_commit::TwoPhaseCfg;

fn drive(cfg: TwoPhaseCfg, options: Options) -> DriveReport {
    let report = drive::run(&Config::TwoPhaseCommit(cfg), &options).unwrap();
    println!("{report}");
    report
}

#[test]
fn explore_two_participants() {
    let cfg = TwoPhaseCfg {
        participants: 2,
        ..TwoPhaseCfg::default()
    };
    let report = drive(
        cfg,
        Options {
            depth: 4,
            walks: 100,
            ..Options::default()
        },
    );
    assert_eq!(report.reachable, 49_728);
}
