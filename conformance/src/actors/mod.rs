//! The implementation's sans-IO cores as Stateright actors inside the models' system.
