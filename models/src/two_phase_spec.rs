//! # TwoPhase — the abstract specification of two-phase commit
//!
//! Gray and Lamport's `TwoPhase` (*Consensus on Transaction Commit*, TLA+ module
//! `TwoPhase.tla`) as a plain Stateright [`Model`]: one transaction manager (TM),
//! N resource managers (RMs) and a set of messages that only grows — a message,
//! once sent, may be received any number of times, in any order, or never.
//!
//! ```text
//! rmState    ∈ [RM → {working, prepared, committed, aborted}]
//! tmState    ∈ {init, committed, aborted}
//! tmPrepared ⊆ RM                        the RMs whose Prepared the TM received
//! msgs       ⊆ {Prepared(rm)} ∪ {Commit, Abort}
//! ```
//!
//! Actions, exactly as in the TLA+ module:
//! - `TMRcvPrepared(r)`: tmState = init, Prepared(r) ∈ msgs → r joins tmPrepared.
//! - `TMCommit`: tmState = init, tmPrepared = RM → tmState = committed, send Commit.
//! - `TMAbort`: tmState = init → tmState = aborted, send Abort.
//! - `RMPrepare(r)`: r working → r prepared, send Prepared(r).
//! - `RMChooseToAbort(r)`: r working → r aborted.
//! - `RMRcvCommitMsg(r)`: Commit ∈ msgs → r committed.
//! - `RMRcvAbortMsg(r)`: Abort ∈ msgs → r aborted.
//!
//! `TPTypeOK` holds by construction (the Rust types are the type invariant).
//! Properties:
//! - `consistent` (always) — TLA+'s `TCConsistent`: no RM has committed while
//!   another has aborted.
//! - `commit-possible`, `abort-possible` (sometimes): the spec can reach each
//!   outcome, so a spec that does nothing fails.
//!
//! The unique state counts equal TLC's for `TwoPhase`: 288 for 3 RMs and 8,832
//! for 5 (pinned in the tests).
//!
//! **Symmetry.** RMs are interchangeable. [`representative`] sorts them by their
//! whole projected state — (rmState, in tmPrepared, Prepared(r) ∈ msgs) — which
//! is canonical: two states are permutations of each other exactly when their
//! sorted projections are equal. (Sorting by rmState alone is not: two states
//! that differ only in which prepared RM the TM has heard from would stay
//! distinct.) With `--symmetry` the checker visits one state per orbit: 80 for
//! 3 RMs and 314 for 5.
//!
//! The bug variant `rm-commits-alone` lets a prepared RM commit without the TM's
//! Commit message; `consistent` catches it.

use crate::catalog::{
    bounded, ConfigError, FlagInfo, ModelEntry, ModelInfo, PropertyInfo, Settings, VariantInfo,
};
use crate::check::{run, Explain, Report, RunLabel, RunOptions};
use stateright::{Model, Property};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A resource manager's index, `0..N`.
pub type Rm = usize;

/// RMs beyond this are slow to check exhaustively (7 RMs: about 300 thousand states).
pub const PARTICIPANTS_MAX: u32 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RmState {
    Working,
    Prepared,
    Committed,
    Aborted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TmState {
    Init,
    Committed,
    Aborted,
}

/// The set `msgs`: Prepared(r) for each r with `prepared[r]`, Commit, Abort.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Msgs {
    pub prepared: Vec<bool>,
    pub commit: bool,
    pub abort: bool,
}

/// A state of `TwoPhase`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPhaseState {
    pub rm_state: Vec<RmState>,
    pub tm_state: TmState,
    pub tm_prepared: Vec<bool>,
    pub msgs: Msgs,
}

impl TwoPhaseState {
    /// `TPInit`: every RM working, the TM in init, nothing sent.
    pub fn init(rms: usize) -> Self {
        TwoPhaseState {
            rm_state: vec![RmState::Working; rms],
            tm_state: TmState::Init,
            tm_prepared: vec![false; rms],
            msgs: Msgs {
                prepared: vec![false; rms],
                commit: false,
                abort: false,
            },
        }
    }

    /// RM `r`'s whole projected state, the key symmetry sorts by.
    fn projection(&self, r: Rm) -> (RmState, bool, bool) {
        (self.rm_state[r], self.tm_prepared[r], self.msgs.prepared[r])
    }

    /// `TCConsistent`.
    pub fn is_consistent(&self) -> bool {
        !(self.rm_state.contains(&RmState::Committed) && self.rm_state.contains(&RmState::Aborted))
    }
}

/// The canonical member of a state's orbit under permutations of the RMs.
pub fn representative(s: &TwoPhaseState) -> TwoPhaseState {
    let mut keys: Vec<(RmState, bool, bool)> =
        (0..s.rm_state.len()).map(|r| s.projection(r)).collect();
    keys.sort_unstable();
    TwoPhaseState {
        rm_state: keys.iter().map(|k| k.0).collect(),
        tm_state: s.tm_state,
        tm_prepared: keys.iter().map(|k| k.1).collect(),
        msgs: Msgs {
            prepared: keys.iter().map(|k| k.2).collect(),
            commit: s.msgs.commit,
            abort: s.msgs.abort,
        },
    }
}

/// The actions of `TwoPhase`, plus the bug variant's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    TmRcvPrepared(Rm),
    TmCommit,
    TmAbort,
    RmPrepare(Rm),
    RmChooseToAbort(Rm),
    RmRcvCommitMsg(Rm),
    RmRcvAbortMsg(Rm),
    /// `rm-commits-alone` only: a prepared RM commits without a Commit message.
    RmCommitAlone(Rm),
}

/// The specification and its bug variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Correct,
    /// A prepared RM may commit on its own, without the TM's Commit message —
    /// while the TM may still abort. `consistent` fails: one RM committed,
    /// another aborted.
    RmCommitsAlone,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Correct, Variant::RmCommitsAlone];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::RmCommitsAlone => "rm-commits-alone",
        }
    }

    pub fn expected_violation(self) -> Option<&'static str> {
        match self {
            Variant::Correct => None,
            Variant::RmCommitsAlone => Some("consistent"),
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Variant::Correct => "Gray and Lamport's TwoPhase, action for action",
            Variant::RmCommitsAlone => "a prepared RM commits without the TM's Commit message",
        }
    }

    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// `TwoPhase` with N RMs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPhaseSpec {
    pub rms: usize,
    pub variant: Variant,
}

impl TwoPhaseSpec {
    pub fn new(rms: usize) -> Self {
        TwoPhaseSpec {
            rms,
            variant: Variant::Correct,
        }
    }

    /// Every state one step from `state` (stuttering steps excluded).
    pub fn successors(&self, state: &TwoPhaseState) -> Vec<(Action, TwoPhaseState)> {
        let mut actions = Vec::new();
        self.actions(state, &mut actions);
        actions
            .into_iter()
            .filter_map(|a| Some((a, self.next_state(state, a)?)))
            .filter(|(_, next)| next != state)
            .collect()
    }
}

impl Model for TwoPhaseSpec {
    type State = TwoPhaseState;
    type Action = Action;

    fn init_states(&self) -> Vec<TwoPhaseState> {
        vec![TwoPhaseState::init(self.rms)]
    }

    fn actions(&self, s: &TwoPhaseState, actions: &mut Vec<Action>) {
        if s.tm_state == TmState::Init {
            if s.tm_prepared.iter().all(|p| *p) {
                actions.push(Action::TmCommit);
            }
            actions.push(Action::TmAbort);
        }
        for r in 0..self.rms {
            if s.tm_state == TmState::Init && s.msgs.prepared[r] {
                actions.push(Action::TmRcvPrepared(r));
            }
            if s.rm_state[r] == RmState::Working {
                actions.push(Action::RmPrepare(r));
                actions.push(Action::RmChooseToAbort(r));
            }
            if s.msgs.commit {
                actions.push(Action::RmRcvCommitMsg(r));
            }
            if s.msgs.abort {
                actions.push(Action::RmRcvAbortMsg(r));
            }
            if self.variant == Variant::RmCommitsAlone && s.rm_state[r] == RmState::Prepared {
                actions.push(Action::RmCommitAlone(r));
            }
        }
    }

    fn next_state(&self, s: &TwoPhaseState, action: Action) -> Option<TwoPhaseState> {
        let mut n = s.clone();
        match action {
            Action::TmRcvPrepared(r) => n.tm_prepared[r] = true,
            Action::TmCommit => {
                n.tm_state = TmState::Committed;
                n.msgs.commit = true;
            }
            Action::TmAbort => {
                n.tm_state = TmState::Aborted;
                n.msgs.abort = true;
            }
            Action::RmPrepare(r) => {
                n.rm_state[r] = RmState::Prepared;
                n.msgs.prepared[r] = true;
            }
            Action::RmChooseToAbort(r) | Action::RmRcvAbortMsg(r) => {
                n.rm_state[r] = RmState::Aborted
            }
            Action::RmRcvCommitMsg(r) | Action::RmCommitAlone(r) => {
                n.rm_state[r] = RmState::Committed
            }
        }
        Some(n)
    }

    fn format_action(&self, action: &Action) -> String {
        match action {
            Action::TmRcvPrepared(r) => format!("TMRcvPrepared(rm {r})"),
            Action::TmCommit => "TMCommit".into(),
            Action::TmAbort => "TMAbort".into(),
            Action::RmPrepare(r) => format!("RMPrepare(rm {r})"),
            Action::RmChooseToAbort(r) => format!("RMChooseToAbort(rm {r})"),
            Action::RmRcvCommitMsg(r) => format!("RMRcvCommitMsg(rm {r})"),
            Action::RmRcvAbortMsg(r) => format!("RMRcvAbortMsg(rm {r})"),
            Action::RmCommitAlone(r) => format!("RMCommitAlone(rm {r}) [bug]"),
        }
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("consistent", |_, s: &TwoPhaseState| s.is_consistent()),
            Property::sometimes("commit-possible", |_, s: &TwoPhaseState| {
                s.rm_state.contains(&RmState::Committed)
            }),
            Property::sometimes("abort-possible", |_, s: &TwoPhaseState| {
                s.rm_state.contains(&RmState::Aborted)
            }),
        ]
    }
}

impl Explain for TwoPhaseSpec {
    fn summarize(&self, s: &TwoPhaseState) -> String {
        let rms: Vec<String> = (0..self.rms)
            .map(|r| format!("rm {r} {:?}", s.rm_state[r]).to_lowercase())
            .collect();
        let prepared: Vec<Rm> = (0..self.rms).filter(|r| s.tm_prepared[*r]).collect();
        let mut msgs: Vec<String> = (0..self.rms)
            .filter(|r| s.msgs.prepared[*r])
            .map(|r| format!("Prepared({r})"))
            .collect();
        if s.msgs.commit {
            msgs.push("Commit".into());
        }
        if s.msgs.abort {
            msgs.push("Abort".into());
        }
        format!(
            "{}; tm {:?}, tmPrepared {prepared:?}; msgs {{{}}}",
            rms.join(", "),
            s.tm_state,
            msgs.join(", ")
        )
        .replace("Init", "init")
        .replace("tm Committed", "tm committed")
        .replace("tm Aborted", "tm aborted")
    }
}

/// `two-phase-spec` in the catalogue.
pub struct TwoPhaseSpecEntry;

pub static ENTRY: TwoPhaseSpecEntry = TwoPhaseSpecEntry;

impl TwoPhaseSpecEntry {
    /// Reads and validates the configuration; returns the spec and whether to
    /// reduce by symmetry.
    pub fn config(&self, settings: &Settings) -> Result<(TwoPhaseSpec, bool), ConfigError> {
        let info = self.info();
        let settings = &info.resolve(settings)?;
        info.refuse_unknown_flags(settings)?;
        let variant = Variant::parse(info.variant(settings)?.name).expect("catalogue names parse");
        let rms = bounded(
            settings.participants,
            "participants",
            3,
            1,
            PARTICIPANTS_MAX,
        )?;
        Ok((
            TwoPhaseSpec {
                rms: usize::from(rms),
                variant,
            },
            settings.symmetry,
        ))
    }
}

impl ModelEntry for TwoPhaseSpecEntry {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            name: "two-phase-spec",
            about: "Gray and Lamport's TwoPhase (TLA+) as a plain model: the abstract 2PC the actor model refines",
            flags: vec![
                FlagInfo { name: "participants", default: "3".into(), help: "resource managers (1 to 7)" },
                FlagInfo { name: "symmetry", default: "off".into(), help: "reduce by symmetry over RMs (counts orbits)" },
            ],
            properties: vec![
                PropertyInfo { name: "consistent", expectation: "always", about: "TCConsistent: no RM committed while another aborted" },
                PropertyInfo { name: "commit-possible", expectation: "sometimes", about: "some RM can commit" },
                PropertyInfo { name: "abort-possible", expectation: "sometimes", about: "some RM can abort" },
            ],
            variants: Variant::ALL
                .into_iter()
                .map(|v| VariantInfo::of(v.name(), v.expected_violation(), v.about()))
                .collect(),
            configs: Vec::new(),
        }
    }

    fn check(&self, settings: &Settings, opts: &RunOptions) -> Result<Report, ConfigError> {
        let (spec, symmetry) = self.config(settings)?;
        let label = RunLabel {
            model: "two-phase-spec".into(),
            variant: spec.variant.name().into(),
            config: BTreeMap::from([
                ("participants".to_string(), spec.rms.to_string()),
                (
                    "symmetry".to_string(),
                    if symmetry { "on" } else { "off" }.to_string(),
                ),
            ]),
            not_checked: Vec::new(),
        };
        let reduce: Option<crate::check::Representative<TwoPhaseSpec>> =
            symmetry.then_some(representative as fn(&TwoPhaseState) -> TwoPhaseState);
        run(spec, reduce, label, opts).map_err(|e| ConfigError(e.to_string()))
    }

    fn explore(&self, settings: &Settings, address: SocketAddr) -> Result<(), ConfigError> {
        let (spec, symmetry) = self.config(settings)?;
        let reduce: Option<crate::check::Representative<TwoPhaseSpec>> =
            symmetry.then_some(representative as fn(&TwoPhaseState) -> TwoPhaseState);
        crate::catalog::serve(spec, reduce, address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    fn check(rms: u32, symmetry: bool, variant: Variant) -> Report {
        let settings = Settings {
            variant: Some(variant.name().into()),
            participants: Some(rms),
            symmetry,
            ..Settings::default()
        };
        ENTRY.check(&settings, &RunOptions::default()).unwrap()
    }

    #[test]
    fn state_counts_equal_tlc() {
        assert_eq!(check(3, false, Variant::Correct).unique_states, 288);
        assert_eq!(check(5, false, Variant::Correct).unique_states, 8_832);
    }

    #[test]
    fn symmetry_counts_orbits() {
        assert_eq!(check(3, true, Variant::Correct).unique_states, 80);
        assert_eq!(check(5, true, Variant::Correct).unique_states, 314);
    }

    #[test]
    fn orbit_count_matches_a_brute_force_count() {
        // Count the distinct representatives of the full state space: the orbits.
        for rms in [3, 5] {
            let spec = TwoPhaseSpec::new(rms);
            let mut seen = std::collections::HashSet::new();
            let mut reps = std::collections::HashSet::new();
            let mut stack = spec.init_states();
            while let Some(s) = stack.pop() {
                if !seen.insert(s.clone()) {
                    continue;
                }
                reps.insert(representative(&s));
                stack.extend(spec.successors(&s).into_iter().map(|(_, n)| n));
            }
            assert_eq!(reps.len(), if rms == 3 { 80 } else { 314 });
        }
    }

    #[test]
    fn correct_spec_is_consistent_and_reaches_both_outcomes() {
        for symmetry in [false, true] {
            let r = check(3, symmetry, Variant::Correct);
            assert_eq!(r.property("consistent").unwrap().status, Status::Holds);
            assert_eq!(r.property("commit-possible").unwrap().status, Status::Found);
            assert_eq!(r.property("abort-possible").unwrap().status, Status::Found);
            assert!(r.all_ok());
        }
    }

    #[test]
    fn rm_commits_alone_is_inconsistent() {
        let r = check(2, false, Variant::RmCommitsAlone);
        assert_eq!(r.failed(), ["consistent"]);
        let steps = r
            .property("consistent")
            .unwrap()
            .counterexample
            .clone()
            .unwrap();
        assert!(
            steps.iter().any(|s| s.starts_with("RMCommitAlone")),
            "{steps:?}"
        );
    }

    #[test]
    fn bad_configurations_are_one_line_errors() {
        let err = |s: Settings| ENTRY.config(&s).unwrap_err().0;
        assert!(err(Settings {
            participants: Some(0),
            ..Settings::default()
        })
        .contains("--participants 0 is out of range"));
        assert!(err(Settings {
            participants: Some(8),
            ..Settings::default()
        })
        .contains("--participants 8 is out of range"));
        assert!(err(Settings {
            transactions: Some(2),
            ..Settings::default()
        })
        .contains("does not take --transactions"));
    }
}
