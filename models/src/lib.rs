//! Stateright models of exactly-once protocols.
