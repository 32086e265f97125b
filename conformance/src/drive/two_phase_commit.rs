//! The two-phase-commit cores driven by the model.
