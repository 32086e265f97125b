use super::*;
use crate::catalog::{ModelEntry, Settings};
use crate::check::{shortest_path, Report, RunOptions, Status};
use crate::system::storage;
use crate::system::SystemAction;
use crate::two_phase_spec::TwoPhaseSpec;
use stateright::Model;
use std::collections::HashSet;

/// Checks `variant` in `participants` (its default if `None`).
fn check(variant: Variant, participants: Option<u32>, symmetry: bool) -> Report {
    let settings = Settings {
        variant: Some(variant.name().into()),
        participants,
        symmetry,
        ..Settings::default()
    };
    ENTRY
        .check(
            &settings,
            &RunOptions {
                threads: 2,
                ..RunOptions::default()
            },
        )
        .unwrap()
}

fn status(report: &Report, property: &str) -> Status {
    report.property(property).unwrap().status
}

/// Two participants: the default three (874,756 unique states) are checked by
/// `eo check`.
#[test]
fn two_participants_hold_every_property() {
    let report = check(Variant::Correct, Some(2), false);
    // Pinned: a change that silently shrinks (or grows) the state space shows
    // here. It equals the count of a walk by equality (see
    // `checker_counts_equal_a_walk_by_equality`).
    assert_eq!(report.unique_states, 49_728);
    for p in [
        "atomicity",
        "exactly-once",
        "validity",
        "client-agreement",
        "eventually-decided",
    ] {
        assert_eq!(status(&report, p), Status::Holds, "{p}");
    }
    assert_eq!(status(&report, "commit-possible"), Status::Found);
    assert_eq!(status(&report, "abort-possible"), Status::Found);
}

#[test]
fn symmetry_visits_fewer_states_with_the_same_verdicts() {
    let full = check(Variant::Correct, Some(2), false);
    let reduced = check(Variant::Correct, Some(2), true);
    assert!(reduced.unique_states < full.unique_states);
    // The breadth-first search reduces by symmetry as Stateright's depth-first
    // checker does: the same orbits.
    let settings = Settings {
        participants: Some(2),
        symmetry: true,
        ..Settings::default()
    };
    let dfs = ENTRY
        .check(
            &settings,
            &RunOptions {
                search: crate::check::Search::Dfs,
                threads: 2,
                progress: None,
            },
        )
        .unwrap();
    assert_eq!(dfs.unique_states, reduced.unique_states);
    for p in &full.properties {
        assert_eq!(status(&reduced, p.name), p.status, "{}", p.name);
    }
}

fn caught(variant: Variant, violated: &[&str]) -> Report {
    let report = check(variant, None, false);
    let expected = variant.expected_violation().unwrap();
    assert!(violated.contains(&expected));
    assert_eq!(report.failed(), violated, "{}", variant.name());
    let steps = report
        .property(expected)
        .unwrap()
        .counterexample
        .clone()
        .unwrap();
    assert!(!steps.is_empty());
    report
}

fn steps(report: &Report, property: &str) -> Vec<String> {
    report
        .property(property)
        .unwrap()
        .counterexample
        .clone()
        .unwrap()
}

#[test]
fn decision_not_logged_is_lost_in_a_coordinator_crash() {
    let r = caught(
        Variant::DecisionNotLogged,
        &["atomicity", "client-agreement"],
    );
    assert!(steps(&r, "atomicity").contains(&"coordinator crashes".to_string()));
}

#[test]
fn vote_before_persist_forgets_a_yes_vote() {
    let r = caught(
        Variant::VoteBeforePersist,
        &["atomicity", "validity", "client-agreement"],
    );
    assert!(steps(&r, "atomicity")
        .iter()
        .any(|s| s.starts_with("participant") && s.ends_with("crashes")));
}

#[test]
fn participant_timeout_abort_breaks_atomicity() {
    let r = caught(
        Variant::ParticipantTimeoutAbort,
        &["atomicity", "client-agreement"],
    );
    assert!(steps(&r, "atomicity")
        .iter()
        .any(|s| s.ends_with("Query timer fires")));
}

#[test]
fn commit_on_first_yes_breaks_validity() {
    caught(
        Variant::CommitOnFirstYes,
        &["atomicity", "validity", "client-agreement"],
    );
}

#[test]
fn no_dedup_on_commit_applies_twice() {
    caught(Variant::NoDedupOnCommit, &["exactly-once"]);
}

#[test]
fn retry_as_new_transaction_applies_a_retried_transaction_twice() {
    let r = caught(Variant::RetryAsNewTransaction, &["exactly-once"]);
    let steps = steps(&r, "exactly-once");
    assert!(
        steps
            .iter()
            .any(|s| s.contains("client") && s.contains("timer fires")),
        "{steps:?}"
    );
}

#[test]
fn untagged_decision_lets_a_late_commit_decide_the_next_transaction() {
    let r = caught(
        Variant::UntaggedDecision,
        &[
            "atomicity",
            "validity",
            "client-agreement",
            "eventually-decided",
        ],
    );
    assert!(
        r.config.get("transactions").is_some_and(|t| t == "2"),
        "{:?}",
        r.config
    );
    // The second transaction is decided by a decision with no id.
    let steps = steps(&r, "atomicity");
    assert!(steps.iter().any(|s| s.contains("Begin(1)")), "{steps:?}");
    assert!(steps.iter().any(|s| s.contains("(t?)")), "{steps:?}");
}

/// Two transactions in flight, each fitting the balance bound alone: a
/// participant that does not count the other staged posting votes yes on both,
/// both commit, and the balance exceeds its bound. Nothing else fails.
#[test]
fn vote_ignores_staged_breaks_the_balance_bound() {
    let r = caught(Variant::VoteIgnoresStaged, &["balance-bound"]);
    // Pinned: its row of the `eo check` table.
    assert_eq!(r.unique_states, 229_154);
    assert_eq!(r.config.get("in-flight").map(String::as_str), Some("2"));
    assert_eq!(r.config.get("balance-max").map(String::as_str), Some("1"));
    let steps = steps(&r, "balance-bound");
    for vote in [
        "participant 1 chooses Yes(t0)",
        "participant 1 chooses Yes(t1)",
    ] {
        assert!(steps.iter().any(|s| s == vote), "{vote}: {steps:?}");
    }
    // Both prepared before either committed: the second yes comes before the
    // first Commit is delivered.
    let second_yes = steps
        .iter()
        .rposition(|s| s.contains("chooses Yes"))
        .unwrap();
    let first_commit = steps.iter().position(|s| s.contains(": Commit(")).unwrap();
    assert!(second_yes < first_commit, "{steps:?}");
}

/// The same configuration with the correct protocol: the second posting is
/// refused while the first is staged, and every property holds — progress
/// included. Pinned: the concurrent configuration the tests check.
#[test]
fn the_correct_protocol_counts_staged_postings() {
    let r = check_cfg(
        concurrent_small(Variant::Correct),
        false,
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(r.unique_states, 127_010);
    assert!(r.all_ok(), "{:?}", r.failed());
    assert_eq!(status(&r, "balance-bound"), Status::Holds);
    assert_eq!(status(&r, "eventually-decided"), Status::Holds);
}

/// In the concurrent configuration the coordinator really votes on two
/// transactions at once, and a participant with one posting staged votes no on
/// the other (the staged posting leaves no room under the bound).
#[test]
fn two_transactions_are_voted_on_at_once() {
    let model = concurrent_small(Variant::Correct).into_model();
    let two_rounds = shortest_path(
        &model,
        |s| matches!(&*s.actor_states[0], NodeState::Coordinator(c) if c.voting.len() == 2),
    );
    assert!(two_rounds.is_some());
    let t0 = TxId { tx: 0, round: 0 };
    let t1 = TxId { tx: 1, round: 0 };
    let refused = shortest_path(&model, |s| {
        matches!(storage(s, 1), Some(NodeStorage::Participant(p))
            if participant::is_prepared(&p.log, t0)
                && p.log.contains(&participant::Record::Aborted(t1)))
    })
    .expect("a refusal while t0 is staged");
    let steps: Vec<String> = refused
        .into_actions()
        .iter()
        .map(|a| model.format_action(a))
        .collect();
    // No vote choice for t1: the refusal is forced, not chosen.
    assert!(
        !steps.iter().any(|s| s.contains("chooses No(t1)")),
        "{steps:?}"
    );
}

#[test]
fn presume_commit_breaks_atomicity() {
    let r = caught(
        Variant::PresumeCommit,
        &["atomicity", "validity", "client-agreement"],
    );
    assert!(steps(&r, "atomicity").contains(&"coordinator crashes".to_string()));
}

/// Safe but never finished: once the outcome sent at the decision is lost,
/// the client's retries go unanswered forever. Only `progress` sees it: every
/// terminal state has everyone decided, so the old terminal-state `eventually`
/// finds nothing.
#[test]
fn retry_unanswered_leaves_the_client_retrying_forever() {
    let r = caught(Variant::RetryUnanswered, &["eventually-decided"]);
    let p = r.property("eventually-decided").unwrap();
    assert_eq!(p.expectation, "progress");
    let steps = steps(&r, "eventually-decided");
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("network loses coordinator → client:")),
        "{steps:?}"
    );
    let (cfg, _) = ENTRY
        .config(&Settings::for_variant("retry-unanswered"))
        .unwrap();
    let transactions = cfg.transactions;
    let model = cfg.into_model();
    let old_eventually = crate::check::shortest_unmet_eventually(&model, |s| {
        (0..transactions).all(|x| properties::everyone_decided(&model, s, x, None))
    });
    assert!(old_eventually.is_none());
}

/// The documented limitation: with a coordinator that never recovers, 2PC
/// blocks, and `progress` says so — and nothing else fails.
#[test]
fn a_coordinator_that_never_recovers_fails_progress_only() {
    let settings = Settings {
        participants: Some(2),
        coordinator_never_recovers: true,
        ..Settings::default()
    };
    let r = ENTRY.check(&settings, &RunOptions::default()).unwrap();
    assert_eq!(r.failed(), ["eventually-decided"]);
    assert_eq!(
        r.property("eventually-decided").unwrap().expectation,
        "progress"
    );
}

#[test]
fn the_blocked_configuration_has_terminal_states_with_a_prepared_participant() {
    let cfg = TwoPhaseCfg {
        participants: 2,
        coordinator_never_recovers: true,
        ..TwoPhaseCfg::default()
    };
    let model = cfg.into_model();
    let blocked = shortest_path(&model, |s| {
        let mut actions = Vec::new();
        model.actions(s, &mut actions);
        let terminal = actions.iter().all(|a| model.next_state(s, a.clone()).is_none());
        terminal
            && (1..=2).any(|i| matches!(storage(s, i), Some(NodeStorage::Participant(p)) if participant::prepared(&p.log).is_some()))
    })
    .expect("a blocked participant");
    let steps: Vec<String> = blocked
        .into_actions()
        .iter()
        .map(|a| model.format_action(a))
        .collect();
    println!("blocked: {steps:#?}");
    assert!(steps.contains(&"coordinator crashes".to_string()));
}

fn walk(
    model: &TwoPhaseCommit,
    visit: impl FnMut(&State, Option<(&SystemAction<Node>, &State)>),
) -> usize {
    crate::walk::walk(model, visit)
}

/// A step of the actor model that maps to no TwoPhase step of one
/// transaction's instance: the step, the transaction, and the abstract states
/// before and after it.
#[derive(Debug)]
struct Unrefined {
    step: String,
    tx: Tx,
    from: crate::two_phase_spec::TwoPhaseState,
    to: crate::two_phase_spec::TwoPhaseState,
}

/// Walks every reachable state of `cfg` and checks that each step maps, for
/// every transaction, to a step or a stutter of that transaction's TwoPhase
/// instance under [`abstraction`]. Returns the first step that does not (in
/// walk order), the number of states walked, and the distinct abstract states
/// reached (of any transaction).
fn check_refinement(
    cfg: &TwoPhaseCfg,
) -> (
    Option<Unrefined>,
    usize,
    HashSet<crate::two_phase_spec::TwoPhaseState>,
) {
    let rms = usize::from(cfg.participants);
    let spec = TwoPhaseSpec::new(rms);
    let model = cfg.clone().into_model();
    let txs = 0..cfg.transactions;
    for s in model.init_states() {
        for x in txs.clone() {
            assert_eq!(
                abstraction(cfg, &s, x),
                crate::two_phase_spec::TwoPhaseState::init(rms)
            );
        }
    }
    let mut abstract_states = HashSet::new();
    let mut unrefined = None;
    let seen = walk(&model, |s, step| {
        for x in txs.clone() {
            let from = abstraction(cfg, s, x);
            match step {
                None => {
                    abstract_states.insert(from);
                }
                Some((action, next)) => {
                    let to = abstraction(cfg, next, x);
                    if unrefined.is_none() && !refines_step(&spec, &from, &to) {
                        unrefined = Some(Unrefined {
                            step: model.format_action(action),
                            tx: x,
                            from,
                            to,
                        });
                    }
                }
            }
        }
    });
    (unrefined, seen, abstract_states)
}

/// Walks every reachable state of the correct protocol (two participants, one
/// transaction, one crash) and checks that each step maps to a TwoPhase step or
/// a stutter under [`abstraction`].
#[test]
fn refines_two_phase() {
    let cfg = TwoPhaseCfg {
        participants: 2,
        ..TwoPhaseCfg::default()
    };
    let (unrefined, seen, abstract_states) = check_refinement(&cfg);
    assert!(unrefined.is_none(), "{unrefined:#?}");
    let spec = TwoPhaseSpec::new(2);
    println!(
        "refinement: {} actor states reach {} distinct TwoPhase states (of {} for 2 RMs)",
        seen,
        abstract_states.len(),
        {
            let mut all = HashSet::new();
            let mut st = spec.init_states();
            while let Some(x) = st.pop() {
                if all.insert(x.clone()) {
                    st.extend(spec.successors(&x).into_iter().map(|(_, n)| n));
                }
            }
            all.len()
        }
    );
    assert!(abstract_states.len() > 10);
}

/// The concurrent configuration of the tests: one participant, two
/// transactions both in flight, no crash, balance bound 1 — the configuration
/// `vote-ignores-staged` runs.
fn concurrent_small(variant: Variant) -> TwoPhaseCfg {
    let d = Variant::VoteIgnoresStaged.defaults();
    assert_eq!((d.participants, d.transactions, d.in_flight), (1, 2, 2));
    TwoPhaseCfg {
        participants: d.participants,
        transactions: d.transactions,
        crashes: d.crashes,
        in_flight: d.in_flight,
        balance_max: TwoPhaseCfg::balance_max_for(d.in_flight),
        variant,
        ..TwoPhaseCfg::default()
    }
}

/// `--config concurrent` is two transactions in flight, one crash, one
/// participant, with the balance bound that goes with two in flight; a flag
/// given explicitly wins.
#[test]
fn the_concurrent_configuration_resolves_to_two_in_flight() {
    let settings = Settings {
        config: Some("concurrent".into()),
        ..Settings::default()
    };
    let (cfg, symmetry) = ENTRY.config(&settings).unwrap();
    assert_eq!(
        cfg,
        TwoPhaseCfg {
            participants: 1,
            transactions: 2,
            crashes: 1,
            in_flight: 2,
            balance_max: Some(CONCURRENT_BALANCE_MAX),
            ..TwoPhaseCfg::default()
        }
    );
    assert!(!symmetry);
    let one_at_a_time = Settings {
        in_flight: Some(1),
        ..settings
    };
    let (cfg, _) = ENTRY.config(&one_at_a_time).unwrap();
    assert_eq!((cfg.in_flight, cfg.balance_max), (1, None));
}

/// Per transaction, every step of the concurrent configuration maps to a step
/// or a stutter of that transaction's TwoPhase instance.
#[test]
fn refines_two_phase_per_transaction_with_two_in_flight() {
    let cfg = concurrent_small(Variant::VoteIgnoresStaged);
    let cfg = TwoPhaseCfg {
        variant: Variant::Correct,
        ..cfg
    };
    let (unrefined, seen, abstract_states) = check_refinement(&cfg);
    assert!(unrefined.is_none(), "{unrefined:#?}");
    assert_eq!(seen, 127_010);
    // One RM: working, prepared, committed, aborted, each with its messages.
    println!(
        "refinement, two in flight: {seen} actor states reach {} TwoPhase states",
        abstract_states.len()
    );
    assert!(abstract_states.len() >= 5);
}

/// The limit of the refinement: TwoPhase has no balances, so the bug that
/// breaks only the balance bound refines it, transaction by transaction. Only
/// `balance-bound`, a property of the actor model, catches it.
#[test]
fn vote_ignores_staged_still_refines_two_phase() {
    let (unrefined, _, _) = check_refinement(&concurrent_small(Variant::VoteIgnoresStaged));
    assert!(unrefined.is_none(), "{unrefined:#?}");
}

/// The negative control: the refinement check is not vacuous. Each bug that
/// breaks atomicity or validity of the first transaction has a step that maps
/// to no TwoPhase step; the test names it with the abstract states around it.
#[test]
fn refinement_fails_for_the_bugs_that_break_atomicity_or_validity() {
    for variant in [
        Variant::DecisionNotLogged,
        Variant::VoteBeforePersist,
        Variant::ParticipantTimeoutAbort,
        Variant::CommitOnFirstYes,
        Variant::PresumeCommit,
    ] {
        let cfg = TwoPhaseCfg {
            participants: 2,
            variant,
            ..TwoPhaseCfg::default()
        };
        let (unrefined, _, _) = check_refinement(&cfg);
        let u = unrefined.unwrap_or_else(|| panic!("{}: every step refines", variant.name()));
        println!(
            "{}: step `{}` does not map to TwoPhase (transaction {}):\n  from {:?}\n  to   {:?}",
            variant.name(),
            u.step,
            u.tx,
            u.from,
            u.to
        );
        assert_ne!(u.from, u.to, "{}: a stutter always refines", variant.name());
        assert!(!u.step.is_empty());
    }
}

#[test]
fn bad_configurations_are_one_line_errors() {
    let err = |s: Settings| ENTRY.config(&s).unwrap_err().0;
    assert!(err(Settings {
        participants: Some(6),
        ..Settings::default()
    })
    .contains("--participants 6 is out of range"));
    assert!(err(Settings {
        transactions: Some(3),
        ..Settings::default()
    })
    .contains("--transactions 3 is out of range"));
    assert!(err(Settings {
        crashes: Some(3),
        ..Settings::default()
    })
    .contains("--crashes 3 is out of range"));
    assert!(err(Settings {
        in_flight: Some(3),
        transactions: Some(2),
        ..Settings::default()
    })
    .contains("--in-flight 3 is out of range"));
    assert!(err(Settings {
        in_flight: Some(2),
        ..Settings::default()
    })
    .contains("--in-flight 2 exceeds --transactions 1"));
    assert!(err(Settings {
        senders: Some(1),
        ..Settings::default()
    })
    .contains("does not take --senders"));
    assert!(err(Settings {
        variant: Some("nope".into()),
        ..Settings::default()
    })
    .contains("no variant 'nope'"));
}

/// Every reachable state with its network emptied — all that a property reads —
/// and how many full states there were.
fn projections(model: &TwoPhaseCommit) -> (HashSet<State>, usize) {
    let mut projected = HashSet::new();
    let seen = walk(model, |s, step| {
        if step.is_none() {
            let mut p = s.clone();
            p.network = Network::new_unordered_nonduplicating([]);
            crate::system::reshape(&mut p);
            projected.insert(p);
        }
    });
    (projected, seen)
}

/// The dead-message rules are sound only if removing those messages changes
/// nothing a property can see: the same actor states, storages, timers and
/// crash counts are reachable with the messages removed as with them kept in
/// flight (and counted as settled traffic), in every variant a rule singles out.
#[test]
fn removing_dead_messages_loses_nothing_a_property_sees() {
    for (variant, participants, transactions, crashes, never_recovers) in [
        (Variant::Correct, 2, 1, 1, false),
        (Variant::Correct, 1, 2, 1, false),
        (Variant::Correct, 2, 1, 1, true),
        (Variant::DecisionNotLogged, 2, 1, 1, false),
        (Variant::DecisionNotLogged, 1, 2, 0, false),
        (Variant::NoDedupOnCommit, 2, 1, 1, false),
        (Variant::RetryAsNewTransaction, 1, 1, 1, false),
        (Variant::UntaggedDecision, 1, 2, 1, false),
    ] {
        let cfg = TwoPhaseCfg {
            participants,
            transactions,
            crashes,
            coordinator_never_recovers: never_recovers,
            variant,
            ..TwoPhaseCfg::default()
        };
        let reduced = cfg.clone().into_model();
        let mut kept = cfg.clone().into_model();
        kept.keep_dead = true;
        let (with_removal, states_removed) = projections(&reduced);
        let (with_dead, states_kept) = projections(&kept);
        println!(
            "{cfg:?}: {states_kept} states keeping dead messages, {states_removed} removing them, \
             {} projections",
            with_dead.len()
        );
        assert!(states_removed < states_kept, "{cfg:?}: nothing was removed");
        assert_eq!(
            with_removal.len(),
            with_dead.len(),
            "{cfg:?}: projections differ"
        );
        assert!(with_removal == with_dead, "{cfg:?}: projections differ");
    }
}

/// Every row of the `eo check` table small enough to walk by equality in the
/// test budget (`correct` is walked with two participants, here and in
/// `two_participants_hold_every_property`): the checker's unique count is the
/// walk's.
#[test]
fn checker_counts_equal_a_walk_by_equality() {
    // Rows of 98,000 states and more: checked by `eo check`, too slow to walk.
    const TOO_LARGE: [&str; 3] = ["correct", "decision-not-logged", "untagged-decision"];
    let mut walked = 0;
    for info in ENTRY.info().variants {
        if TOO_LARGE.contains(&info.name) {
            continue;
        }
        let (cfg, _) = ENTRY.config(&info.settings).unwrap();
        let report = ENTRY.check(&info.settings, &RunOptions::default()).unwrap();
        let walk = crate::walk::count(&cfg.into_model());
        assert_eq!(report.unique_states, walk, "{}", info.name);
        walked += 1;
    }
    assert!(walked >= 7, "{walked} rows walked");
    let two = TwoPhaseCfg {
        participants: 2,
        ..TwoPhaseCfg::default()
    };
    assert_eq!(crate::walk::count(&two.into_model()), 49_728);
}
