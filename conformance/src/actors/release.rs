//! One `Ready` carried out with the implementation's own contract types.

use eo_impl::release::MemLog;
use eo_impl::{Core, Envelope};

/// What one step of a core produced once its `Ready` was carried out: the
/// records it appended (in order) and the messages its release let out.
pub struct Carried<C: Core> {
    pub records: Vec<C::Record>,
    pub messages: Vec<Envelope<C::Msg>>,
}

/// Polls `core`'s `Ready` and carries it out as `eo_impl::core` prescribes:
/// persist into a fresh [`MemLog`], sync it, open the release with the proof.
/// The log stands for this step's appends to the actor's storage; when they
/// become durable, and so when the messages may leave, is the system's log
/// mode (see the module docs of [`crate::actors`]). The events are the
/// application's; the properties read the durable records instead.
pub fn carry_out<C: Core>(core: &mut C) -> Carried<C> {
    let ready = core.poll_ready();
    let records = ready.records().to_vec();
    let mut log = MemLog::new();
    let release = match ready.persist(&mut log) {
        Ok(release) => release,
        Err(never) => match never {},
    };
    let proof = log.sync();
    // A log's own proof after its sync covers its last position: a refusal here
    // would be a broken contract in eo-impl, not a state of the protocol.
    let released = release
        .open(proof)
        .unwrap_or_else(|refused| panic!("a synced MemLog's proof refused: {:?}", refused.reason));
    Carried {
        records,
        messages: released.messages,
    }
}

/// Under `--log sync`, the appends that take a log from `before` to `saved`:
/// one prefix of `saved` per record added, in order, or `None` when `saved`
/// does not extend `before` by at least one record (the log was replaced).
pub fn appends<R: Clone + PartialEq>(before: &[R], saved: &[R]) -> Option<Vec<Vec<R>>> {
    (saved.starts_with(before) && saved.len() > before.len()).then(|| {
        (before.len() + 1..=saved.len())
            .map(|k| saved[..k].to_vec())
            .collect()
    })
}
