//! From the implementation to the model: trace validation (`eo validate`).
