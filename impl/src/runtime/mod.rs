//! The real runtime: nodes that drive the sans-IO cores with real I/O.
//!
//! What it will be (issue 11): a node that drives one core over TCP, keeps its
//! write-ahead log on disk with fsync and group commit, and lets an application
//! submit work and receive outcomes through a handle.
//!
//! What exists so far is only the wire, itself sans-IO so that it can be tested
//! and fuzzed without sockets:
//!
//! - [`frame`]: length-prefixed, versioned frames with a size limit checked before
//!   anything is allocated, and a streaming decoder that buffers at most one frame;
//! - [`handshake`]: the connection handshake naming protocol, cluster, node id and
//!   incarnation, with an optional cluster key for HMAC-SHA256 challenge-response;
//! - [`store`]: where a node keeps its log, and a read-only view of it for
//!   inspectors and verifiers;
//! - [`workload`]: the content of the built-in load generator, a pure function a
//!   verifier recomputes.

pub mod frame;
pub mod handshake;
pub mod inspect;
pub mod node;
pub mod proxy;
pub mod store;
pub mod trace;
pub mod transport;
pub mod workload;
