//! A [`System`] of adapted cores with its own properties: the checked model.
//!
//! `eo_models::check::run` reads a model's `progress` properties and its
//! one-line summaries through the trait `Explain`, which — like `System` —
//! belongs to `eo-models`; this crate can implement it only for a type of its
//! own. [`Checked`] is that type: it runs the wrapped system step for step and
//! carries the properties, written over `Checked` itself.

use eo_models::check::ProgressProperty;
use eo_models::system::{System, SystemAction, SystemState};
use stateright::actor::Actor;
use stateright::{Expectation, Model, Path, Property};
use std::fmt::Debug;

/// A system of adapted cores and its properties.
pub struct Checked<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    pub system: System<A, C>,
    properties: Vec<Property<Checked<A, C>>>,
    progress: Vec<ProgressProperty<Checked<A, C>>>,
}

impl<A, C> Checked<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    /// `system` without properties yet.
    pub fn new(system: System<A, C>) -> Self {
        Checked {
            system,
            properties: Vec::new(),
            progress: Vec::new(),
        }
    }

    /// The configuration the system was built from.
    pub fn cfg(&self) -> &C {
        &self.system.actors.cfg
    }

    /// Adds a named property; names are unique.
    pub fn property(
        mut self,
        expectation: Expectation,
        name: &'static str,
        condition: fn(&Checked<A, C>, &SystemState<A>) -> bool,
    ) -> Self {
        assert!(
            self.properties.iter().all(|p| p.name != name),
            "duplicate property {name}"
        );
        self.properties.push(Property {
            expectation,
            name,
            condition,
        });
        self
    }

    /// Adds a `progress` property (from every reachable state a state meeting
    /// `goal` is reachable); names are unique.
    pub fn progress(
        mut self,
        name: &'static str,
        goal: fn(&Checked<A, C>, &SystemState<A>) -> bool,
    ) -> Self {
        assert!(
            self.properties.iter().all(|p| p.name != name)
                && self.progress.iter().all(|p| p.name != name),
            "duplicate property {name}"
        );
        self.progress.push(ProgressProperty { name, goal });
        self
    }

    /// The `progress` properties.
    pub fn progress_properties(&self) -> Vec<ProgressProperty<Checked<A, C>>> {
        self.progress.clone()
    }
}

impl<A, C> Clone for Checked<A, C>
where
    A: Actor + Clone,
    A::Msg: Ord,
    A::Timer: Ord,
    C: Clone,
{
    fn clone(&self) -> Self {
        Checked {
            system: self.system.clone(),
            properties: self.properties.clone(),
            progress: self.progress.clone(),
        }
    }
}

impl<A, C> Model for Checked<A, C>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
{
    type State = SystemState<A>;
    type Action = SystemAction<A>;

    fn init_states(&self) -> Vec<Self::State> {
        self.system.init_states()
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        self.system.actions(state, actions);
    }

    fn next_state(&self, last: &Self::State, action: Self::Action) -> Option<Self::State> {
        self.system.next_state(last, action)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        self.system.format_action(action)
    }

    fn format_step(&self, last: &Self::State, action: Self::Action) -> Option<String>
    where
        Self::State: Debug,
    {
        self.system.format_step(last, action)
    }

    /// None, as for a [`System`]: `eo check --svg` draws the named diagram.
    fn as_svg(&self, _: Path<Self::State, Self::Action>) -> Option<String> {
        None
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.properties.clone()
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        self.system.within_boundary(state)
    }
}
