//! Refinement of the ack-retry model by the adapted cores' system, and the
//! negative controls: faults the model's safety properties let through and
//! refinement catches, with its diagnosis.
//!
//! The table's configurations (default, `sync-log`, `disk-loss`) are checked
//! through the catalogue by `actors_catalog::the_table_rows_hold_every_property`,
//! whose report carries the `refinement` line.

use eo_conformance::actors::ack_retry::{ImplAckRetry, ImplAckRetryCfg, ImplState, Node, Wire};
use eo_conformance::catalog;
use eo_conformance::refinement::ack_retry::{check, check_model};
use eo_conformance::refinement::{property_report, Outcome};
use eo_impl::ack_retry::{Msg, ReceiverRecord};
use eo_models::catalog::Settings;
use eo_models::check::{RunOptions, Status};
use eo_models::system::{LogMode, Step, SystemAction};
use stateright::actor::{ActorModelAction, Envelope, Network};
use stateright::{Checker, Model, Property};

fn show(outcome: &Outcome) -> String {
    property_report(&Ok(outcome.clone()))
        .note
        .unwrap_or_default()
}

/// `eo check impl-ack-retry`: the refinement line holds, and it walked the
/// very graph the checker searched (every generated state one transition).
#[test]
fn the_default_configuration_refines_over_the_checkers_whole_graph() {
    let entry = catalog::find("impl-ack-retry").unwrap();
    let report = entry
        .check(&Settings::default(), &RunOptions::default())
        .unwrap();
    let line = report.property("refinement").expect("a refinement line");
    println!(
        "checker: {} ms; refinement: {:?}",
        report.elapsed_ms, line.note
    );
    assert_eq!(line.status, Status::Holds, "{:?}", line.note);
    let note = line.note.clone().unwrap_or_default();
    assert!(
        note.starts_with(&format!(
            "{} transitions, each a model step or a stutter",
            report.states
        )),
        "{note} against {} states generated",
        report.states
    );
    assert!(
        note.contains(&format!("{} implementation states", report.unique_states)),
        "{note}"
    );
}

#[test]
fn a_syncing_log_refines() {
    let cfg = ImplAckRetryCfg {
        log: LogMode::Sync,
        messages: 2,
        ..ImplAckRetryCfg::default()
    };
    let outcome = check(&cfg).expect("within bounds");
    assert!(matches!(outcome, Outcome::Refines(_)), "{}", show(&outcome));
    let s = outcome.summary();
    assert!(s.steps > 0 && s.stutters > 0 && s.compound > 0, "{s:?}");
}

/// A fault planted in the receiver's driver, as a wrapper of the checked
/// system: whenever the receiver applies a message, one more
/// acknowledgement leaves with the real one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    /// An acknowledgement of seq `messages + 1`: a seq no sender ever uses,
    /// beyond the receiver's window, never applied. The sender ignores it.
    AckUnsentSeq,
    /// An acknowledgement of the seq after the one applied, not applied yet:
    /// the sender stops retrying a message the receiver may never get.
    AckNextSeq,
}

struct Tampered {
    inner: ImplAckRetry,
    tamper: Tamper,
}

fn applied(s: &ImplState, receiver: usize) -> usize {
    match &*s.actor_states[receiver] {
        eo_conformance::actors::ack_retry::NodeState::Receiver { log, .. } => log
            .iter()
            .filter(|r| matches!(r, ReceiverRecord::Applied { .. }))
            .count(),
        _ => 0,
    }
}

impl Model for Tampered {
    type State = ImplState;
    type Action = SystemAction<Node>;

    fn init_states(&self) -> Vec<ImplState> {
        self.inner.init_states()
    }

    fn actions(&self, state: &ImplState, actions: &mut Vec<Self::Action>) {
        self.inner.actions(state, actions);
    }

    fn next_state(&self, last: &ImplState, action: Self::Action) -> Option<ImplState> {
        let mut next = self.inner.next_state(last, action.clone())?;
        let receiver = self.inner.cfg().receiver_index();
        let Step::Actor(ActorModelAction::Deliver { src, dst, msg }) = action else {
            return Some(next);
        };
        let Msg::Data {
            incarnation, seq, ..
        } = msg.0
        else {
            return Some(next);
        };
        if usize::from(dst) != receiver || applied(&next, receiver) <= applied(last, receiver) {
            return Some(next);
        }
        let extra = match self.tamper {
            Tamper::AckUnsentSeq => u64::from(self.inner.cfg().messages) + 1,
            Tamper::AckNextSeq => seq + 1,
        };
        let ack = Envelope {
            src: dst,
            dst: src,
            msg: Wire(Msg::Ack {
                incarnation,
                hwm: 0,
                seq: extra,
            }),
        };
        if let Network::UnorderedNonDuplicating(multiset) = &mut next.network {
            let n = multiset.entry(ack).or_insert(0);
            *n = 1;
        }
        Some(next)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        self.inner.format_action(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        fn holds(t: &Tampered, name: &str, s: &ImplState) -> bool {
            let p = t.inner.properties();
            let p = p.iter().find(|p| p.name == name).expect("a property");
            (p.condition)(&t.inner, s)
        }
        vec![
            Property::always("exactly-once", |t: &Tampered, s: &ImplState| {
                holds(t, "exactly-once", s)
            }),
            Property::always("no-loss", |t: &Tampered, s: &ImplState| {
                holds(t, "no-loss", s)
            }),
            Property::always("no-phantom", |t: &Tampered, s: &ImplState| {
                holds(t, "no-phantom", s)
            }),
            Property::always("within-window", |t: &Tampered, s: &ImplState| {
                holds(t, "within-window", s)
            }),
            Property::always("recovers", |t: &Tampered, s: &ImplState| {
                holds(t, "recovers", s)
            }),
        ]
    }

    fn within_boundary(&self, state: &ImplState) -> bool {
        self.inner.within_boundary(state)
    }
}

/// The safety properties the tampered system violates.
fn violated(t: &Tampered) -> Vec<&'static str> {
    let checker = Tampered {
        inner: t.inner.clone(),
        tamper: t.tamper,
    }
    .checker()
    .spawn_bfs()
    .join();
    t.properties()
        .iter()
        .filter(|p| checker.discovery(p.name).is_some())
        .map(|p| p.name)
        .collect()
}

fn tampered(tamper: Tamper) -> (Tampered, ImplAckRetryCfg) {
    let cfg = ImplAckRetryCfg::default();
    (
        Tampered {
            inner: cfg.clone().into_model(),
            tamper,
        },
        cfg,
    )
}

/// The receiver acknowledges a seq it never applied, beyond its window: no
/// sender holds that seq, so no safety property notices; refinement does,
/// at the first message applied, and names the acknowledgement the model
/// would not send.
#[test]
fn an_ack_of_an_unsent_seq_is_caught_by_refinement_alone() {
    let (t, cfg) = tampered(Tamper::AckUnsentSeq);
    assert_eq!(violated(&t), Vec::<&str>::new());
    let outcome = check_model(&t, &cfg).expect("within bounds");
    let failure = outcome
        .failure()
        .unwrap_or_else(|| panic!("{}", show(&outcome)));
    println!("{}", show(&outcome));
    assert_eq!(failure.action, "sender 0 → receiver: Data(1, inc 1, msg 1)");
    assert_eq!(
        failure.nearest.as_deref(),
        Some("sender 0 → receiver: Data(1)")
    );
    let fields: Vec<&str> = failure.diff.0.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["in flight"], "{}", show(&outcome));
    assert!(
        failure.diff.0[0]
            .actual
            .contains("not expected: [\"receiver → sender 0: Ack(4, hwm 0)\"]"),
        "{}",
        failure.diff
    );
}

/// The receiver acknowledges the seq after the one it applied: the sender
/// stops retrying a message that may be lost — `no-loss` catches it, and so
/// does refinement, one step after the first application.
#[test]
fn an_ack_of_the_next_seq_is_caught_by_both() {
    let (t, cfg) = tampered(Tamper::AckNextSeq);
    assert_eq!(violated(&t), ["no-loss"]);
    let outcome = check_model(&t, &cfg).expect("within bounds");
    let failure = outcome
        .failure()
        .unwrap_or_else(|| panic!("{}", show(&outcome)));
    assert_eq!(failure.action, "sender 0 → receiver: Data(1, inc 1, msg 1)");
    assert!(
        failure.diff.0[0]
            .actual
            .contains("not expected: [\"receiver → sender 0: Ack(2, hwm 0)\"]"),
        "{}",
        failure.diff
    );
}

/// The `--deep` row (`sync-log-three`): too slow for the suite, run by hand
/// (`cargo test -p eo-conformance --test refinement_ack_retry -- --ignored`).
#[test]
#[ignore]
fn the_deep_row_refines() {
    let cfg = ImplAckRetryCfg {
        log: LogMode::Sync,
        ..ImplAckRetryCfg::default()
    };
    let outcome = check(&cfg).expect("within bounds");
    println!("{}", show(&outcome));
    assert!(matches!(outcome, Outcome::Refines(_)), "{}", show(&outcome));
}
