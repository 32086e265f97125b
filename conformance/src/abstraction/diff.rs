//! A field-by-field difference between two abstract (model) states: what
//! refinement and driving print when the implementation and the model part.

use eo_models::system::{in_flight, System, SystemState};
use stateright::actor::Actor;
use std::fmt;

/// One field that differs: its path (`receiver.senders[0].dedup`), and its
/// value in the expected (model) and the actual (abstracted implementation)
/// state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDiff {
    pub field: String,
    pub expected: String,
    pub actual: String,
}

/// Every field that differs, in field order; empty when the states agree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff(pub Vec<FieldDiff>);

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields that differ between two values of a type with named fields.
    pub fn between<T: Fields>(expected: &T, actual: &T) -> Diff {
        let mut diff = Diff::default();
        diff.nest("", expected, actual);
        diff
    }

    /// Records `field` if the two values differ.
    pub fn check<T: fmt::Debug + PartialEq>(&mut self, field: String, expected: &T, actual: &T) {
        if expected != actual {
            self.0.push(FieldDiff {
                field,
                expected: format!("{expected:?}"),
                actual: format!("{actual:?}"),
            });
        }
    }

    /// Records the fields of `T` that differ, under `prefix`.
    pub fn nest<T: Fields>(&mut self, prefix: &str, expected: &T, actual: &T) {
        let (e, a) = (expected.fields(), actual.fields());
        for ((name, ev), (_, av)) in e.iter().zip(&a) {
            if ev != av {
                let field = if prefix.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{prefix}.{name}")
                };
                self.0.push(FieldDiff {
                    field,
                    expected: ev.clone(),
                    actual: av.clone(),
                });
            }
        }
        // Different shapes (another role, another variant): say so whole.
        if e.len() != a.len() || e.iter().zip(&a).any(|((n, _), (m, _))| n != m) {
            self.0.push(FieldDiff {
                field: if prefix.is_empty() {
                    "shape".into()
                } else {
                    format!("{prefix}.shape")
                },
                expected: format!("{e:?}"),
                actual: format!("{a:?}"),
            });
        }
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "no difference");
        }
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}: expected {}, actual {}",
                d.field, d.expected, d.actual
            )?;
        }
        Ok(())
    }
}

/// A model type whose named fields a [`Diff`] compares one by one: each field's
/// name and its value, printed. Two values of one type list the same names in
/// the same order unless they are different variants of an enum.
pub trait Fields {
    fn fields(&self) -> Vec<(&'static str, String)>;
}

impl<T: Fields> Fields for Option<T> {
    fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            None => vec![("none", String::new())],
            Some(t) => t.fields(),
        }
    }
}

/// The difference between two states of one model [`System`]: per actor (by
/// name) its liveness, volatile state and storage field by field, the messages
/// in flight (missing and extra ones), and the crash and disk-loss counts.
/// Timers and pending random choices are left out: the models arm them as a
/// function of the state compared here.
pub fn diff_system<A, C>(
    system: &System<A, C>,
    expected: &SystemState<A>,
    actual: &SystemState<A>,
) -> Diff
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    A::State: Fields,
    A::Storage: Fields,
{
    let mut diff = Diff::default();
    for (i, name) in system.names.iter().enumerate() {
        diff.check(
            format!("{name}.crashed"),
            &expected.crashed.get(i),
            &actual.crashed.get(i),
        );
        if let (Some(e), Some(a)) = (expected.actor_states.get(i), actual.actor_states.get(i)) {
            diff.nest(name, &**e, &**a);
        }
        if let (Some(e), Some(a)) = (expected.actor_storages.get(i), actual.actor_storages.get(i)) {
            diff.nest(&format!("{name} storage"), e, a);
        }
    }
    let flight = |s: &SystemState<A>| {
        let mut v: Vec<String> = in_flight(&s.network)
            .map(|(src, dst, m)| format!("{} → {}: {m:?}", system.name(src), system.name(dst)))
            .collect();
        v.sort();
        v
    };
    let (e, a) = (flight(expected), flight(actual));
    let missing: Vec<&String> = e.iter().filter(|m| !a.contains(m)).collect();
    let extra: Vec<&String> = a.iter().filter(|m| !e.contains(m)).collect();
    if !missing.is_empty() || !extra.is_empty() || e.len() != a.len() {
        diff.0.push(FieldDiff {
            field: "in flight".into(),
            expected: format!("{e:?} (missing from actual: {missing:?})"),
            actual: format!("{a:?} (not expected: {extra:?})"),
        });
    }
    diff.check(
        "crashes so far".into(),
        &expected.history.crashes,
        &actual.history.crashes,
    );
    diff.check(
        "disk losses so far".into(),
        &expected.history.disk_losses,
        &actual.history.disk_losses,
    );
    diff
}

/// The messages in flight as the model's network holds them, from the
/// abstractions of the implementation's: copies of one envelope beyond the
/// system's `copies_max` absorbed, and dead messages — to an actor down for
/// good, or dead by the model's own rule, judged in `state` (the model state
/// the implementation's abstracts to) — removed, as the [`System`] does after
/// every step. Sorted.
pub fn flight_view<A, C>(
    system: &System<A, C>,
    state: &SystemState<A>,
    messages: impl IntoIterator<Item = (stateright::actor::Id, stateright::actor::Id, A::Msg)>,
) -> Vec<(stateright::actor::Id, stateright::actor::Id, A::Msg)>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    let mut view: Vec<_> = messages
        .into_iter()
        .filter(|(src, dst, msg)| {
            let to = usize::from(*dst);
            let down_for_good = state.crashed.get(to).copied().unwrap_or(false)
                && !system.recovers.get(to).copied().unwrap_or(true);
            !down_for_good && !(system.dead)(&system.actors.cfg, state, *src, *dst, msg)
        })
        .collect();
    view.sort();
    let mut absorbed: Vec<(stateright::actor::Id, stateright::actor::Id, A::Msg)> = Vec::new();
    for m in view {
        if absorbed.iter().filter(|k| **k == m).count() < system.copies_max {
            absorbed.push(m);
        }
    }
    absorbed
}
