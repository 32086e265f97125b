//! Recovery's peak memory, measured with a counting global allocator. One test
//! only: the allocator counts every thread of this binary.

use eo_impl::disk::FileDisk;
use eo_impl::wal::{Recovered, Wal};

#[path = "support/live_bytes.rs"]
mod live_bytes;
use live_bytes::{peak_of, Counting};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What the recovered records occupy on the heap: payloads and the vector of them.
fn heap_of(recovered: &Recovered) -> usize {
    recovered.records.capacity() * std::mem::size_of::<Vec<u8>>()
        + recovered.records.iter().map(Vec::capacity).sum::<usize>()
        + recovered.snapshot.as_ref().map_or(0, Vec::capacity)
}

/// Finding 8: recovery held 2.3× the log's size (the whole file, then a copy of
/// every record). It now streams: `open_with` holds a read buffer and nothing
/// else; `open` holds that buffer plus the records it returns (the state).
#[test]
fn recovery_peak_memory_is_the_state_plus_a_bounded_buffer() {
    const RECORDS: usize = 200_000;
    const PAYLOAD_LEN: usize = 100;
    const SYNC_EVERY: usize = 4096;
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(FileDisk::open(dir.path()).unwrap()).unwrap();
    for i in 0..RECORDS {
        wal.append(&[(i % 251) as u8; PAYLOAD_LEN]).unwrap();
        if i % SYNC_EVERY == SYNC_EVERY - 1 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
    let segment_len = wal.len_bytes() as usize;
    drop(wal);

    let (streamed_peak, count) = peak_of(|| {
        let mut count = 0usize;
        let (wal, _) = Wal::open_with(FileDisk::open(dir.path()).unwrap(), |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
        drop(wal);
        count
    });
    assert_eq!(count, RECORDS);

    let (collected_peak, state) = peak_of(|| {
        let (wal, recovered) = Wal::open(FileDisk::open(dir.path()).unwrap()).unwrap();
        drop(wal);
        let state = heap_of(&recovered);
        assert_eq!(recovered.records.len(), RECORDS);
        state
    });
    println!(
        "segment {segment_len} B; streaming recovery peak {streamed_peak} B ({:.3}x); \
         collecting recovery peak {collected_peak} B = state {state} B + {} B ({:.3}x the segment)",
        streamed_peak as f64 / segment_len as f64,
        collected_peak - state.min(collected_peak),
        (collected_peak - state.min(collected_peak)) as f64 / segment_len as f64,
    );
    // The bound: at most 1.2x the segment plus the decoded state. Before
    // streaming, `open` held the whole file besides the records: 1.0x plus state.
    let bound = segment_len / 5;
    assert!(streamed_peak <= bound, "streamed {streamed_peak} > {bound}");
    assert!(
        collected_peak <= state + bound,
        "collected {collected_peak} > state {state} + {bound}"
    );
}
