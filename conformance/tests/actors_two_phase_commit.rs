//! `impl-two-phase-commit` in the catalogue `eo` reads: found by name beside
//! the models, the model's properties (but `balance-bound`, reported as not
//! checked) and `recovers`, its flags bounded with the catalogue's wording.

use eo_conformance::catalog;
use eo_models::catalog::Settings;
use eo_models::check::{RunOptions, Status};

#[test]
fn impl_two_phase_commit_has_the_models_properties_but_balance_bound() {
    let model = catalog::find("two-phase-commit").unwrap().info();
    let implementation = catalog::find("impl-two-phase-commit").unwrap().info();
    let names = |i: &eo_models::catalog::ModelInfo| -> Vec<&str> {
        i.properties.iter().map(|p| p.name).collect()
    };
    for name in names(&model) {
        assert_eq!(
            names(&implementation).contains(&name),
            name != "balance-bound",
            "{name}"
        );
    }
    assert!(names(&implementation).contains(&"recovers"));
}

#[test]
fn every_flag_is_bounded_with_a_typed_error() {
    let entry = catalog::find("impl-two-phase-commit").unwrap();
    let opts = RunOptions::default();
    let one = Settings {
        participants: Some(1),
        ..Settings::default()
    };
    assert_eq!(
        entry.check(&one, &opts).err().unwrap().0,
        "--participants 1 is out of range: it must be between 2 and 3"
    );
    let too_many = Settings {
        in_flight: Some(2),
        ..Settings::default()
    };
    assert!(entry.check(&too_many, &opts).is_err());
    let window = Settings {
        window: Some(2),
        ..Settings::default()
    };
    let err = entry.check(&window, &opts).err().unwrap();
    assert!(err.0.contains("does not take --window"), "{}", err.0);
}

/// The default row `eo check` runs: every property met, `balance-bound`
/// reported as not checked.
#[test]
fn the_default_row_holds_every_property() {
    let entry = catalog::find("impl-two-phase-commit").unwrap();
    let report = entry
        .check(&Settings::default(), &RunOptions::default())
        .unwrap();
    let bad: Vec<(&str, Status)> = report
        .properties
        .iter()
        .filter(|p| !p.status.is_ok() && p.name != "balance-bound")
        .map(|p| (p.name, p.status))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        report.property("balance-bound").map(|p| p.status),
        Some(Status::NotChecked)
    );
}
