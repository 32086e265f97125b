//! `impl-ack-retry` in the catalogue `eo` reads: found by name beside the
//! models, its flags bounded with the catalogue's wording, its table rows green.

use eo_conformance::catalog;
use eo_models::catalog::{ConfigScope, Settings};
use eo_models::check::{RunOptions, Status};

#[test]
fn the_catalogue_lists_the_models_then_the_implementation() {
    let names: Vec<&str> = catalog::all().iter().map(|e| e.info().name).collect();
    assert_eq!(
        names,
        [
            "ack-retry",
            "two-phase-spec",
            "two-phase-commit",
            "impl-ack-retry",
            "impl-two-phase-commit"
        ]
    );
    let err = catalog::find("impl-nothing").err().unwrap();
    assert!(err.0.contains("impl-ack-retry"), "{}", err.0);
}

#[test]
fn impl_ack_retry_has_the_models_properties_and_more() {
    let model = catalog::find("ack-retry").unwrap().info();
    let implementation = catalog::find("impl-ack-retry").unwrap().info();
    let names = |i: &eo_models::catalog::ModelInfo| -> Vec<&str> {
        i.properties.iter().map(|p| p.name).collect()
    };
    for name in names(&model) {
        assert!(names(&implementation).contains(&name), "{name}");
    }
}

#[test]
fn every_flag_is_bounded_with_a_typed_error() {
    let entry = catalog::find("impl-ack-retry").unwrap();
    let opts = RunOptions::default();
    let too_many = Settings {
        senders: Some(4),
        ..Settings::default()
    };
    let err = entry.check(&too_many, &opts).err().unwrap();
    assert_eq!(
        err.0,
        "--senders 4 is out of range: it must be between 1 and 3"
    );
    let too_large = Settings {
        senders: Some(2),
        messages: Some(4),
        ..Settings::default()
    };
    assert!(entry.check(&too_large, &opts).is_err());
    let window = Settings {
        window: Some(2),
        ..Settings::default()
    };
    let err = entry.check(&window, &opts).err().unwrap();
    assert!(err.0.contains("does not take --window"), "{}", err.0);
}

/// The rows `eo check` runs by default: every property met.
#[test]
fn the_table_rows_hold_every_property() {
    let entry = catalog::find("impl-ack-retry").unwrap();
    let info = entry.info();
    let mut rows = vec![Settings::default()];
    for config in info
        .configs
        .iter()
        .filter(|c| c.scope == ConfigScope::Table)
    {
        rows.push(Settings {
            config: Some(config.name.into()),
            ..Settings::default()
        });
    }
    for row in rows {
        let report = entry.check(&row, &RunOptions::default()).unwrap();
        let bad: Vec<(&str, Status)> = report
            .properties
            .iter()
            .filter(|p| !p.status.is_ok())
            .map(|p| (p.name, p.status))
            .collect();
        assert!(bad.is_empty(), "{row:?}: {bad:?}");
        println!("{:?}: {} unique states", row.config, report.unique_states);
    }
}
