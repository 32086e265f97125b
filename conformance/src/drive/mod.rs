//! From the model to the implementation: model behaviours replayed against the cores.
