//! Abstraction functions: an implementation core's state mapped to the model's state.
