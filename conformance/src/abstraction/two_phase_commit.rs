//! Two-phase commit: the implementation's cores mapped to the model's actors.
