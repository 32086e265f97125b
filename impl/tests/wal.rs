//! Tests of the write-ahead log. Every test that does not need a machine crash
//! runs on both disks (`file_disk::*` and `sim_disk::*`); crash tests run on the
//! simulated disk, group commit on real files.

use eo_impl::disk::{Disk, FileDisk, FileSync, SimDisk};
use eo_impl::wal::{
    FrameError, GroupCommit, HeaderError, Lsn, Recovered, Wal, WalError, HEADER_LEN,
    READ_CHUNK_LEN, RECORD_LEN_MAX, SEGMENT_HEADER_LEN, SYNC_MARK_COPIES, SYNC_MARK_LEN,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

/// Somewhere a log lives; `disk()` is a fresh handle on the same storage each time
/// (a reopened directory, or a clone of the simulated disk).
trait Env {
    type D: Disk;
    fn disk(&self) -> Self::D;
}

struct FileEnv {
    dir: tempfile::TempDir,
}

impl FileEnv {
    fn new() -> FileEnv {
        FileEnv {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Env for FileEnv {
    type D = FileDisk;
    fn disk(&self) -> FileDisk {
        FileDisk::open(self.dir.path()).unwrap()
    }
}

struct SimEnv {
    disk: SimDisk,
}

impl SimEnv {
    fn new() -> SimEnv {
        SimEnv {
            disk: SimDisk::new(),
        }
    }
}

impl Env for SimEnv {
    type D = SimDisk;
    fn disk(&self) -> SimDisk {
        self.disk.clone()
    }
}

macro_rules! on_both_disks {
    ($($name:ident),* $(,)?) => {
        mod file_disk {
            $( #[test] fn $name() { super::$name(&super::FileEnv::new()) } )*
        }
        mod sim_disk {
            $( #[test] fn $name() { super::$name(&super::SimEnv::new()) } )*
        }
    };
}

on_both_disks!(
    round_trip,
    torn_tail_is_truncated_durably,
    flipped_byte_in_an_unsynced_last_record_is_truncated,
    flipped_byte_in_a_sync_mark_is_harmless,
    flipped_byte_in_a_synced_record_is_corrupt,
    length_past_eof_at_tail_is_truncated,
    compaction_then_reopen_yields_snapshot_and_tail,
    damaged_snapshot_is_an_error,
    leftovers_are_removed_at_open,
    record_too_large_is_refused,
    typed_records_round_trip,
    snapshot_larger_than_a_record_is_split_and_reassembled,
    a_file_that_is_not_a_segment_is_refused,
    a_mark_torn_between_its_copies_lets_no_phantom_record_in,
    a_mark_torn_anywhere_then_a_torn_record_is_cut_off,
    a_torn_record_hiding_a_mark_is_not_skipped_as_a_damaged_copy,
);

fn open<E: Env>(env: &E) -> (Wal<E::D>, Recovered) {
    Wal::open(env.disk()).expect("open")
}

fn payloads(recovered: &Recovered) -> Vec<Vec<u8>> {
    recovered.payloads().map(<[u8]>::to_vec).collect()
}

fn bytes(items: &[&[u8]]) -> Vec<Vec<u8>> {
    items.iter().map(|b| b.to_vec()).collect()
}

/// Bytes a sync writes before its `fdatasync`: the mark, in copies.
const MARKS_LEN: usize = SYNC_MARK_COPIES * SYNC_MARK_LEN;

fn frame_len(payload: &[u8]) -> usize {
    HEADER_LEN + payload.len()
}

/// Flips bits of one byte of a file, durably, through the `Disk` trait only.
fn flip<D: Disk>(disk: &mut D, name: &str, offset: usize) {
    let mut data = disk.read(name).unwrap();
    data[offset] ^= 0x24;
    disk.truncate(name, offset as u64).unwrap();
    disk.append(name, &data[offset..]).unwrap();
    disk.sync(name).unwrap();
}

/// Appends raw bytes to a file, durably.
fn append_raw<D: Disk>(disk: &mut D, name: &str, data: &[u8]) {
    disk.append(name, data).unwrap();
    disk.sync(name).unwrap();
}

/// A record frame for `payload`, as the log writes it (length, checksum, kind 1, body).
fn record_frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
    let mut covered = len.to_vec();
    covered.push(1);
    covered.extend_from_slice(payload);
    let mut frame = len.to_vec();
    frame.extend_from_slice(&crc32c::crc32c(&covered).to_le_bytes());
    frame.push(1);
    frame.extend_from_slice(payload);
    assert_eq!(frame.len(), frame_len(payload));
    frame
}

/// A sync mark copy naming `lsn`, as the log writes it (length 8, checksum, kind 4).
fn mark_copy(lsn: u64) -> Vec<u8> {
    let len = 8u32.to_le_bytes();
    let mut covered = len.to_vec();
    covered.push(4);
    covered.extend_from_slice(&lsn.to_le_bytes());
    let mut frame = len.to_vec();
    frame.extend_from_slice(&crc32c::crc32c(&covered).to_le_bytes());
    frame.push(4);
    frame.extend_from_slice(&lsn.to_le_bytes());
    assert_eq!(frame.len(), SYNC_MARK_LEN);
    frame
}

/// A record whose payload holds a valid record frame for `inner` at offset 8, cut
/// just after that inner frame: what a crash leaves of its append.
fn torn_record_hiding(inner: &[u8]) -> Vec<u8> {
    let hidden = record_frame(inner);
    let mut payload = vec![0xAA; 8];
    payload.extend_from_slice(&hidden);
    payload.extend_from_slice(&[0xBB; 64]);
    let mut torn = record_frame(&payload);
    torn.truncate(HEADER_LEN + 8 + hidden.len() + 3);
    torn
}

/// A log holding `records`, synced; returns the segment name.
fn write_log<E: Env>(env: &E, records: &[&[u8]]) -> String {
    let (mut wal, _) = open(env);
    for r in records {
        wal.append(r).unwrap();
    }
    wal.sync().unwrap();
    wal.segment().to_owned()
}

// ---------------------------------------------------------------------------------
// Tests on both disks
// ---------------------------------------------------------------------------------

fn round_trip<E: Env>(env: &E) {
    let (mut wal, recovered) = open(env);
    assert_eq!(recovered, Recovered::default());
    assert_eq!(wal.append(b"one").unwrap(), Lsn(1));
    assert_eq!(wal.append(b"").unwrap(), Lsn(2));
    assert_eq!(wal.append(b"three").unwrap(), Lsn(3));
    assert_eq!(wal.lsn_durable(), Lsn(0));
    assert_eq!(wal.sync().unwrap(), Lsn(3));
    assert_eq!(wal.sync_count(), 1);
    assert_eq!(wal.sync().unwrap(), Lsn(3));
    assert_eq!(wal.sync_count(), 1, "nothing new: no fdatasync");
    assert_eq!(
        wal.len_bytes(),
        (SEGMENT_HEADER_LEN + 3 * HEADER_LEN + 8 + MARKS_LEN) as u64
    );
    assert_eq!(wal.records_since_snapshot(), 3);
    drop(wal);

    let (mut wal, recovered) = open(env);
    assert_eq!(payloads(&recovered), bytes(&[b"one", b"", b"three"]));
    assert_eq!(recovered.truncated, None);
    assert_eq!(recovered.lsn_last(), Lsn(3));
    assert_eq!((wal.lsn_last(), wal.lsn_durable()), (Lsn(3), Lsn(3)));
    assert_eq!(wal.append(b"four").unwrap(), Lsn(4));
    wal.sync().unwrap();
    drop(wal);

    let (_, recovered) = open(env);
    assert_eq!(
        payloads(&recovered),
        bytes(&[b"one", b"", b"three", b"four"])
    );
}

fn torn_tail_is_truncated_durably<E: Env>(env: &E) {
    let mut frame = Vec::new();
    {
        // A frame written the way the log writes it, to tear at every length.
        let other = SimEnv::new();
        let (mut wal, _) = open(&other);
        wal.append(b"the torn record").unwrap();
        frame.extend(&other.disk().read(wal.segment()).unwrap()[SEGMENT_HEADER_LEN..]);
    }
    let segment = write_log(env, &[b"a", b"bb"]);
    let valid = (SEGMENT_HEADER_LEN + frame_len(b"a") + frame_len(b"bb") + MARKS_LEN) as u64;
    for cut in 1..frame.len() {
        append_raw(&mut env.disk(), &segment, &frame[..cut]);
        let (_, recovered) = open(env);
        assert_eq!(payloads(&recovered), bytes(&[b"a", b"bb"]), "cut={cut}");
        let truncation = recovered.truncated.expect("a torn tail is reported");
        assert_eq!(
            (truncation.offset, truncation.len),
            (valid, cut as u64),
            "cut={cut}"
        );
        assert_eq!(env.disk().read(&segment).unwrap().len() as u64, valid);
        // Reopening again finds nothing to cut: the truncation was durable.
        let (_, again) = open(env);
        assert_eq!(again.truncated, None, "cut={cut}");
        assert_eq!(payloads(&again), bytes(&[b"a", b"bb"]));
    }
}

/// A record written after the last sync and damaged: no mark covers it, so it is
/// cut off like a torn write (it was never acknowledged), and the log goes on.
fn flipped_byte_in_an_unsynced_last_record_is_truncated<E: FreshLike>(env: &E) {
    let records: [&[u8]; 3] = [b"first", b"second", b"third!"];
    let last = SEGMENT_HEADER_LEN + frame_len(records[0]) + frame_len(records[1]) + MARKS_LEN;
    for at in last..last + frame_len(records[2]) {
        let sub = E::fresh_like(env);
        let segment = write_log(&sub, &records[..2]);
        let (mut wal, _) = open(&sub);
        wal.append(records[2]).unwrap();
        drop(wal); // a process crash: written, never synced
        flip(&mut sub.disk(), &segment, at);
        let (mut wal, recovered) = open(&sub);
        assert_eq!(payloads(&recovered), bytes(&records[..2]), "at={at}");
        assert_eq!(
            recovered.truncated.as_ref().map(|t| t.offset),
            Some(last as u64)
        );
        assert_eq!(wal.append(b"again").unwrap(), Lsn(3));
        wal.sync().unwrap();
        drop(wal);
        let (_, recovered) = open(&sub);
        assert_eq!(
            payloads(&recovered),
            bytes(&[b"first", b"second", b"again"])
        );
    }
}

/// A damaged copy of a sync mark, the last one or one in the middle of the log:
/// every record is still there, nothing is cut, and the log goes on. (A damaged
/// first copy is followed by an intact copy naming the same record; a damaged
/// second copy follows a first copy, written in the same append.)
fn flipped_byte_in_a_sync_mark_is_harmless<E: FreshLike>(env: &E) {
    let records: [&[u8]; 3] = [b"first", b"second", b"third!"];
    let mark = SEGMENT_HEADER_LEN + records.iter().map(|r| frame_len(r)).sum::<usize>();
    for middle in [false, true] {
        for at in mark..mark + MARKS_LEN {
            let sub = E::fresh_like(env);
            let segment = write_log(&sub, &records);
            if middle {
                let (mut wal, _) = open(&sub);
                wal.append(b"later").unwrap();
                wal.sync().unwrap();
            }
            flip(&mut sub.disk(), &segment, at);
            let (mut wal, recovered) = open(&sub);
            let want = if middle {
                bytes(&[b"first", b"second", b"third!", b"later"])
            } else {
                bytes(&records)
            };
            assert_eq!(payloads(&recovered), want, "middle={middle} at={at}");
            assert_eq!(recovered.truncated, None, "middle={middle} at={at}");
            assert_eq!(wal.recovery_stats().marks_skipped, 1, "at={at}");
            // The log goes on, and damage to its records is still an error.
            wal.append(b"fourth").unwrap();
            wal.sync().unwrap();
            drop(wal);
            flip(&mut sub.disk(), &segment, SEGMENT_HEADER_LEN + 1);
            assert!(
                matches!(Wal::open(sub.disk()), Err(WalError::Corrupt { .. })),
                "middle={middle} at={at}"
            );
        }
    }
}

/// Both copies of the last mark damaged, and nothing after them: a torn tail,
/// cut off; the records before it are intact.
#[test]
fn both_copies_of_the_last_mark_damaged_are_cut_off() {
    let env = SimEnv::new();
    let records: [&[u8]; 2] = [b"first", b"second"];
    let segment = write_log(&env, &records);
    let mark = SEGMENT_HEADER_LEN + records.iter().map(|r| frame_len(r)).sum::<usize>();
    flip(&mut env.disk(), &segment, mark + 3);
    flip(&mut env.disk(), &segment, mark + SYNC_MARK_LEN + 3);
    let (_, recovered) = open(&env);
    assert_eq!(payloads(&recovered), bytes(&records));
    assert_eq!(recovered.truncated.map(|t| t.offset), Some(mark as u64));
}

/// Review finding (lone mark copy): a crash tears the append of a sync mark between
/// its two copies; `open` cuts the torn second copy. Then a record's append is torn
/// by a crash too, with a valid record frame inside its payload. Before the fix,
/// `open` left the lone first copy uncompleted, and the next open took the torn
/// record's first `SYNC_MARK_LEN` bytes for the missing copy, skipped them and
/// returned the frame hidden in the payload: a record never appended.
fn a_mark_torn_between_its_copies_lets_no_phantom_record_in<E: Env>(env: &E) {
    let segment = write_log(env, &[b"r1"]);
    let mut disk = env.disk();
    let len = disk.file_len(&segment).unwrap();
    // The crash kept the first copy and 5 bytes of the second.
    disk.truncate(&segment, len - (SYNC_MARK_LEN as u64 - 5))
        .unwrap();
    disk.sync(&segment).unwrap();
    let (wal, recovered) = open(env);
    assert_eq!(payloads(&recovered), bytes(&[b"r1"]));
    drop(wal);
    append_raw(&mut env.disk(), &segment, &torn_record_hiding(b"PHANTOM"));
    let (_, recovered) = open(env);
    assert_eq!(payloads(&recovered), bytes(&[b"r1"]), "a phantom record");
}

/// The other skip rule, "a damaged first copy right before an intact copy naming
/// the last record": a torn record whose payload holds, at offset 8, a valid mark
/// naming the last record and then a record frame. Before the fix, the torn
/// record's first `SYNC_MARK_LEN` bytes were skipped as a damaged copy, the mark in
/// its payload taken for the intact copy, and the frame after it returned: a record
/// never appended. Checked after a synced record (a complete pair before the tear)
/// and after an unsynced one (no mark before the tear).
fn a_torn_record_hiding_a_mark_is_not_skipped_as_a_damaged_copy<E: FreshLike>(env: &E) {
    for synced in [true, false] {
        let sub = E::fresh_like(env);
        let (mut wal, _) = open(&sub);
        wal.append(b"r1").unwrap();
        if synced {
            wal.sync().unwrap();
        }
        let segment = wal.segment().to_owned();
        drop(wal); // r1 is on disk, marked or not
        let hidden = record_frame(b"PHANTOM");
        let mut payload = vec![0xAA; 8];
        payload.extend_from_slice(&mark_copy(1));
        payload.extend_from_slice(&hidden);
        payload.extend_from_slice(&[0xBB; 64]);
        let mut torn = record_frame(&payload);
        torn.truncate(HEADER_LEN + 8 + SYNC_MARK_LEN + hidden.len() + 3);
        append_raw(&mut sub.disk(), &segment, &torn);
        // A mark inside a torn record's payload may make the tear look like damage
        // (a typed error); it must never let the frame after it in.
        match Wal::open(sub.disk()) {
            Ok((_, recovered)) => {
                assert_eq!(payloads(&recovered), bytes(&[b"r1"]), "synced={synced}")
            }
            Err(WalError::Corrupt { .. }) => {}
            Err(e) => panic!("synced={synced}: {e}"),
        }
    }
}

/// The same class, at every byte of the mark's append: wherever the crash tore
/// the mark, the record torn after the reopen is cut off whole (the cut starts
/// where its append started), the log goes on, and a later reopen sees it all.
fn a_mark_torn_anywhere_then_a_torn_record_is_cut_off<E: FreshLike>(env: &E) {
    let records: [&[u8]; 2] = [b"first", b"second"];
    let records_end =
        (SEGMENT_HEADER_LEN + records.iter().map(|r| frame_len(r)).sum::<usize>()) as u64;
    for kept in 0..MARKS_LEN as u64 {
        let sub = E::fresh_like(env);
        let segment = write_log(&sub, &records);
        let mut disk = sub.disk();
        disk.truncate(&segment, records_end + kept).unwrap();
        disk.sync(&segment).unwrap();
        let (wal, recovered) = open(&sub);
        assert_eq!(payloads(&recovered), bytes(&records), "kept={kept}");
        drop(wal);
        let before = disk.file_len(&segment).unwrap();
        // An ordinary record, torn: its header promises more than is on disk.
        let mut torn = record_frame(&[7; 40]);
        torn.truncate(HEADER_LEN + 20);
        append_raw(&mut disk, &segment, &torn);
        let (mut wal, recovered) = open(&sub);
        assert_eq!(payloads(&recovered), bytes(&records), "kept={kept}");
        let truncated = recovered.truncated.expect("the torn record is cut off");
        assert_eq!(
            (truncated.offset, truncated.len),
            (before, torn.len() as u64),
            "kept={kept}"
        );
        wal.append(b"third").unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, recovered) = open(&sub);
        assert_eq!(
            payloads(&recovered),
            bytes(&[b"first", b"second", b"third"]),
            "kept={kept}"
        );
        assert_eq!(recovered.truncated, None, "kept={kept}");
    }
}

/// Finding 5: damage to any synced record, the last one included, is an error
/// naming the damaged frame's offset, and nothing is truncated. Before sync marks,
/// a damaged last record was cut off as a torn tail, silently.
fn flipped_byte_in_a_synced_record_is_corrupt<E: FreshLike>(env: &E) {
    let records: [&[u8]; 3] = [b"first", b"second", b"third!"];
    let starts: Vec<usize> = records
        .iter()
        .scan(SEGMENT_HEADER_LEN, |at, r| {
            let start = *at;
            *at += frame_len(r);
            Some(start)
        })
        .collect();
    let mark = starts[2] + frame_len(records[2]);
    for at in SEGMENT_HEADER_LEN..mark {
        let sub = E::fresh_like(env);
        let segment = write_log(&sub, &records);
        flip(&mut sub.disk(), &segment, at);
        let before = sub.disk().read(&segment).unwrap();
        let bad = *starts.iter().rev().find(|&&s| s <= at).unwrap() as u64;
        match Wal::open(sub.disk()) {
            Err(WalError::Corrupt {
                offset, next_valid, ..
            }) => {
                assert_eq!(offset, bad, "at={at}");
                assert_eq!(next_valid, mark as u64, "at={at}");
            }
            Err(other) => panic!("at={at}: expected Corrupt, got {other:?}"),
            Ok((_, recovered)) => panic!("at={at}: expected Corrupt, recovered {recovered:?}"),
        }
        assert_eq!(
            sub.disk().read(&segment).unwrap(),
            before,
            "corruption is never truncated"
        );
    }
}

fn length_past_eof_at_tail_is_truncated<E: Env>(env: &E) {
    let segment = write_log(env, &[b"a", b"b"]);
    let mut header = 1000u32.to_le_bytes().to_vec();
    header.extend_from_slice(&[0xAB; 4]);
    header.extend_from_slice(b"only a little");
    append_raw(&mut env.disk(), &segment, &header);
    let (_, recovered) = open(env);
    assert_eq!(payloads(&recovered), bytes(&[b"a", b"b"]));
    let truncation = recovered.truncated.unwrap();
    assert!(
        matches!(truncation.reason, FrameError::PastEof { len: 1000, .. }),
        "{truncation:?}"
    );

    let mut huge = u32::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(&[0; HEADER_LEN - 4]);
    append_raw(&mut env.disk(), &segment, &huge);
    let (_, recovered) = open(env);
    assert_eq!(payloads(&recovered), bytes(&[b"a", b"b"]));
    assert!(matches!(
        recovered.truncated.unwrap().reason,
        FrameError::LenTooLarge { .. }
    ));
}

fn compaction_then_reopen_yields_snapshot_and_tail<E: Env>(env: &E) {
    let (mut wal, _) = open(env);
    for r in [b"a", b"b", b"c"] {
        wal.append(r).unwrap();
    }
    wal.compact(b"snapshot of a b c").unwrap();
    assert_eq!(
        (wal.base(), wal.lsn_last(), wal.lsn_durable()),
        (Lsn(4), Lsn(4), Lsn(4))
    );
    assert_eq!(wal.records_since_snapshot(), 0);
    assert_eq!(
        wal.len_bytes(),
        (SEGMENT_HEADER_LEN + frame_len(b"snapshot of a b c")) as u64
    );
    assert_eq!(wal.append(b"d").unwrap(), Lsn(5));
    assert_eq!(wal.append(b"e").unwrap(), Lsn(6));
    wal.sync().unwrap();
    assert_eq!(env.disk().list().unwrap(), vec![wal.segment().to_owned()]);
    drop(wal);

    let (mut wal, recovered) = open(env);
    assert_eq!(recovered.base, Lsn(4));
    assert_eq!(
        recovered.snapshot.as_deref(),
        Some(&b"snapshot of a b c"[..])
    );
    assert_eq!(recovered.records, bytes(&[b"d", b"e"]));
    assert_eq!(
        payloads(&recovered),
        bytes(&[b"snapshot of a b c", b"d", b"e"])
    );
    assert_eq!(wal.records_since_snapshot(), 2);

    // Compacting again replaces the first snapshot, tail and all.
    wal.compact(b"second").unwrap();
    assert_eq!(wal.base(), Lsn(7));
    drop(wal);
    let (_, recovered) = open(env);
    assert_eq!(payloads(&recovered), bytes(&[b"second"]));
    assert_eq!(env.disk().list().unwrap().len(), 1);
}

fn damaged_snapshot_is_an_error<E: Env>(env: &E) {
    let (mut wal, _) = open(env);
    wal.append(b"a").unwrap();
    wal.compact(b"snap").unwrap();
    let segment = wal.segment().to_owned();
    drop(wal);
    flip(
        &mut env.disk(),
        &segment,
        SEGMENT_HEADER_LEN + HEADER_LEN + 1,
    );
    assert!(matches!(
        Wal::open(env.disk()),
        Err(WalError::SnapshotDamaged { .. })
    ));
}

fn leftovers_are_removed_at_open<E: Env>(env: &E) {
    let (mut wal, _) = open(env);
    wal.append(b"old").unwrap();
    wal.sync().unwrap();
    let old = wal.segment().to_owned();
    wal.compact(b"snap").unwrap();
    let live = wal.segment().to_owned();
    drop(wal);
    // As if the cleanup after a compaction and a later compaction were lost.
    let mut disk = env.disk();
    disk.create(&old).unwrap();
    append_raw(&mut disk, &old, &first_segment_header());
    append_raw(&mut disk, &old, b"stale");
    disk.create("wal-00000000000000000009.tmp").unwrap();
    append_raw(
        &mut disk,
        "wal-00000000000000000009.tmp",
        b"half a compaction",
    );
    disk.sync_dir().unwrap();

    let (_, recovered) = open(env);
    assert_eq!(payloads(&recovered), bytes(&[b"snap"]));
    assert_eq!(env.disk().list().unwrap(), vec![live]);
}

fn record_too_large_is_refused<E: Env>(env: &E) {
    let (mut wal, _) = open(env);
    let big = vec![7u8; RECORD_LEN_MAX + 1];
    assert!(matches!(
        wal.append(&big),
        Err(WalError::RecordTooLarge { len, max }) if len == RECORD_LEN_MAX + 1 && max == RECORD_LEN_MAX
    ));
    assert!(!wal.is_poisoned());
    assert_eq!(wal.append(&big[..RECORD_LEN_MAX]).unwrap(), Lsn(1));
    wal.sync().unwrap();
    drop(wal);
    let (_, recovered) = open(env);
    assert_eq!(recovered.records.len(), 1);
    assert_eq!(recovered.records[0].len(), RECORD_LEN_MAX);
}

/// The header of a never-compacted segment, as the log writes it.
fn first_segment_header() -> Vec<u8> {
    let env = SimEnv::new();
    let (wal, _) = open(&env);
    env.disk().read(wal.segment()).unwrap()[..SEGMENT_HEADER_LEN].to_vec()
}

/// Finding 4: a snapshot above the record limit (a bank of ~280,000 accounts
/// serialises to more than 1 MiB) was refused with `RecordTooLarge`, so compaction
/// became impossible. It is now split into parts and reassembled.
fn snapshot_larger_than_a_record_is_split_and_reassembled<E: Env>(env: &E) {
    const SNAPSHOT_LEN: usize = 3 * RECORD_LEN_MAX + 12_345;
    let snapshot: Vec<u8> = (0..SNAPSHOT_LEN).map(|i| (i * 7 % 251) as u8).collect();
    let (mut wal, _) = open(env);
    wal.append(b"before").unwrap();
    wal.compact(&snapshot).unwrap();
    assert_eq!(wal.base(), Lsn(2));
    let parts = SNAPSHOT_LEN.div_ceil(RECORD_LEN_MAX);
    assert_eq!(
        wal.len_bytes(),
        (SEGMENT_HEADER_LEN + parts * HEADER_LEN + SNAPSHOT_LEN) as u64
    );
    assert_eq!(wal.append(b"after").unwrap(), Lsn(3));
    wal.sync().unwrap();
    drop(wal);
    let (mut wal, recovered) = open(env);
    assert_eq!(recovered.base, Lsn(2));
    assert!(recovered.snapshot.as_deref() == Some(&snapshot[..]));
    assert_eq!(recovered.records, bytes(&[b"after"]));
    // A snapshot of exactly a multiple of the part size, and an empty one.
    for len in [2 * RECORD_LEN_MAX, 0] {
        wal.compact(&snapshot[..len]).unwrap();
        drop(wal);
        let (w, recovered) = open(env);
        assert_eq!(recovered.snapshot.as_deref().map(<[u8]>::len), Some(len));
        assert!(recovered.snapshot.as_deref() == Some(&snapshot[..len]));
        wal = w;
    }
    // Damage to any part is damage to synced data.
    wal.compact(&snapshot).unwrap();
    let segment = wal.segment().to_owned();
    drop(wal);
    let second_part = SEGMENT_HEADER_LEN + HEADER_LEN + RECORD_LEN_MAX + HEADER_LEN + 17;
    flip(&mut env.disk(), &segment, second_part);
    assert!(matches!(
        Wal::open(env.disk()),
        Err(WalError::SnapshotDamaged {
            reason: FrameError::Checksum { .. },
            ..
        })
    ));
}

/// Finding 5: random files named like the first segment opened as an empty log
/// (5,000 of 5,000), with only a warning. Each is now `NotASegment`, untouched.
fn a_file_that_is_not_a_segment_is_refused<E: FreshLike>(env: &E) {
    const FILES: u64 = 5_000;
    const FILE_LEN_MAX: usize = 4096;
    let name = "wal-00000000000000000000.log";
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // Real files are slow to create by the thousand; a few hundred suffice there.
    let files = if std::any::type_name::<E>().contains("File") {
        FILES / 20
    } else {
        FILES
    };
    let mut refused = 0;
    for i in 0..files {
        let sub = E::fresh_like(env);
        let mut disk = sub.disk();
        let len = match i {
            0 => 0,
            1 => SEGMENT_HEADER_LEN - 1,
            _ => rand::Rng::random_range(&mut rng, 0..=FILE_LEN_MAX),
        };
        let mut data = vec![0u8; len];
        rand::RngCore::fill_bytes(&mut rng, &mut data);
        disk.create(name).unwrap();
        append_raw(&mut disk, name, &data);
        disk.sync_dir().unwrap();
        match Wal::open(sub.disk()) {
            Err(WalError::NotASegment { segment, .. }) => {
                assert_eq!(segment, name);
                refused += 1;
            }
            Err(other) => panic!("file {i}: expected NotASegment, got {other:?}"),
            Ok((_, recovered)) => panic!("file {i} opened as a log: {recovered:?}"),
        }
        assert_eq!(sub.disk().read(name).unwrap(), data, "file {i} untouched");
    }
    assert_eq!(refused, files);

    // A log of the old format (frames, no header) is refused too, by its magic.
    let sub = E::fresh_like(env);
    let mut disk = sub.disk();
    disk.create(name).unwrap();
    let mut old = Vec::new();
    for _ in 0..3 {
        let mut covered = 3u32.to_le_bytes().to_vec();
        covered.extend_from_slice(b"abc");
        old.extend_from_slice(&3u32.to_le_bytes());
        old.extend_from_slice(&crc32c::crc32c(&covered).to_le_bytes());
        old.extend_from_slice(b"abc");
    }
    append_raw(&mut disk, name, &old);
    disk.sync_dir().unwrap();
    assert!(matches!(
        Wal::open(sub.disk()),
        Err(WalError::NotASegment {
            reason: HeaderError::Magic { .. },
            ..
        })
    ));

    // A valid header for another base than the name's is refused.
    let sub = E::fresh_like(env);
    let mut disk = sub.disk();
    let other = "wal-00000000000000000007.log";
    disk.create(other).unwrap();
    append_raw(&mut disk, other, &first_segment_header());
    disk.sync_dir().unwrap();
    assert!(matches!(
        Wal::open(sub.disk()),
        Err(WalError::NotASegment {
            reason: HeaderError::Base { .. },
            ..
        })
    ));

    // An older "segment" that is not one is refused, not deleted as a leftover.
    let sub = E::fresh_like(env);
    let (mut wal, _) = open(&sub);
    wal.compact(b"snap").unwrap();
    drop(wal);
    let mut disk = sub.disk();
    disk.create(name).unwrap();
    append_raw(&mut disk, name, b"somebody else's file");
    disk.sync_dir().unwrap();
    assert!(matches!(
        Wal::open(sub.disk()),
        Err(WalError::NotASegment { .. })
    ));
    assert_eq!(sub.disk().read(name).unwrap(), b"somebody else's file");
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Rec {
    Seen { from: u32, seq: u64 },
    Applied(Vec<u8>),
    State { seen: Vec<(u32, u64)> },
}

fn typed_records_round_trip<E: Env>(env: &E) {
    let (mut wal, _) = open(env);
    wal.append_record(&Rec::Seen { from: 1, seq: 10 }).unwrap();
    wal.compact_record(&Rec::State {
        seen: vec![(1, 10)],
    })
    .unwrap();
    wal.append_record(&Rec::Applied(b"x".to_vec())).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, recovered) = open(env);
    assert_eq!(
        recovered.decode::<Rec>().unwrap(),
        vec![
            Rec::State {
                seen: vec![(1, 10)]
            },
            Rec::Applied(b"x".to_vec())
        ]
    );
    assert!(matches!(
        recovered.decode::<(u64, u64, u64, u64, u64)>(),
        Err(WalError::Decode { lsn: Lsn(2), .. })
    ));
}

/// A fresh, empty environment of the same kind (for tests that loop).
trait FreshLike: Env + Sized {
    fn fresh_like(_: &Self) -> Self;
}

impl FreshLike for FileEnv {
    fn fresh_like(_: &Self) -> Self {
        FileEnv::new()
    }
}

impl FreshLike for SimEnv {
    fn fresh_like(_: &Self) -> Self {
        SimEnv::new()
    }
}

// ---------------------------------------------------------------------------------
// Crashes (simulated disk)
// ---------------------------------------------------------------------------------

#[test]
fn crash_loses_unsynced_appends() {
    let env = SimEnv::new();
    let (mut wal, _) = open(&env);
    wal.append(b"a").unwrap();
    wal.append(b"b").unwrap();
    assert_eq!(wal.sync().unwrap(), Lsn(2));
    wal.append(b"c").unwrap();
    wal.append(b"d").unwrap();
    drop(wal);
    env.disk.crash_drop_unsynced();
    let (wal, recovered) = open(&env);
    assert_eq!(payloads(&recovered), bytes(&[b"a", b"b"]));
    assert_eq!(wal.lsn_last(), Lsn(2));
}

#[test]
fn random_crashes_keep_a_prefix_that_includes_the_synced_records() {
    for seed in 0..300 {
        let env = SimEnv::new();
        let (mut wal, _) = open(&env);
        for i in 0..4u8 {
            wal.append(&[i; 20]).unwrap();
        }
        wal.sync().unwrap();
        for i in 4..10u8 {
            wal.append(&[i; 20]).unwrap();
        }
        drop(wal);
        env.disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
        let (_, recovered) = open(&env);
        let got = payloads(&recovered);
        assert!((4..=10).contains(&got.len()), "seed={seed}");
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p, &vec![i as u8; 20], "seed={seed}");
        }
    }
}

#[test]
fn process_crash_keeps_written_records_and_open_makes_them_durable() {
    let env = SimEnv::new();
    let (mut wal, _) = open(&env);
    wal.append(b"written, not synced").unwrap();
    drop(wal); // the process dies; the machine does not
    let (_, recovered) = open(&env);
    assert_eq!(payloads(&recovered), bytes(&[b"written, not synced"]));
    env.disk.crash_drop_unsynced(); // now the machine does
    let (_, recovered) = open(&env);
    assert_eq!(payloads(&recovered), bytes(&[b"written, not synced"]));
}

#[test]
fn io_error_poisons_the_log_until_reopened() {
    let env = SimEnv::new();
    let (mut wal, _) = open(&env);
    wal.append(b"a").unwrap();
    wal.sync().unwrap();
    env.disk.fail_after(Some(0));
    assert!(matches!(
        wal.append(b"b"),
        Err(WalError::Io { op: "append", .. })
    ));
    assert!(wal.is_poisoned());
    env.disk.fail_after(None);
    assert!(matches!(wal.append(b"c"), Err(WalError::Poisoned)));
    assert!(matches!(wal.sync(), Err(WalError::Poisoned)));
    drop(wal);
    let (_, recovered) = open(&env);
    assert_eq!(payloads(&recovered), bytes(&[b"a"]));
}

/// Stops the disk after each operation of a compaction in turn, crashes it (several
/// ways), and checks that recovery finds the whole old log or the whole new one.
#[test]
fn crash_at_every_step_of_compaction_leaves_old_or_new_log() {
    crash_at_every_step_of_compaction(b"snapshot");
}

/// Creating the first segment (a `.tmp`, synced, renamed) can be cut by a crash
/// after any disk operation: the next open finds no log or a complete empty one,
/// never a `.log` without its header.
#[test]
fn crash_at_every_step_of_creating_the_log_leaves_no_log_or_an_empty_one() {
    for step in 0.. {
        let disk = SimDisk::new();
        disk.fail_after(Some(step));
        let done = Wal::open(disk.clone()).is_ok();
        for seed in 0..24u64 {
            let disk = disk.fork();
            if seed == 0 {
                disk.crash_drop_unsynced();
            } else {
                disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            }
            let (mut wal, recovered) =
                Wal::open(disk.clone()).unwrap_or_else(|e| panic!("step={step} seed={seed}: {e}"));
            assert_eq!(recovered, Recovered::default(), "step={step} seed={seed}");
            assert_eq!(disk.list().unwrap(), vec![wal.segment().to_owned()]);
            wal.append(b"first").unwrap();
            wal.sync().unwrap();
        }
        if done {
            break;
        }
        assert!(step < 100, "creation never finished");
    }
}

/// The same with a snapshot of three parts: a crash between parts never leaves
/// a partial snapshot in place.
#[test]
fn crash_at_every_step_of_a_chunked_compaction_leaves_old_or_new_log() {
    let snapshot: Vec<u8> = (0..2 * RECORD_LEN_MAX + 99)
        .map(|i| (i % 253) as u8)
        .collect();
    crash_at_every_step_of_compaction(&snapshot);
}

fn crash_at_every_step_of_compaction(snapshot: &[u8]) {
    let old: Vec<Vec<u8>> = bytes(&[b"a", b"b", b"c", b"d"]);
    let new = vec![snapshot.to_vec()];
    let (mut saw_old, mut saw_new) = (false, false);
    for step in 0.. {
        let env = SimEnv::new();
        let (mut wal, _) = open(&env);
        for r in &old[..3] {
            wal.append(r).unwrap();
        }
        wal.sync().unwrap();
        wal.append(&old[3]).unwrap(); // not synced
        env.disk.fail_after(Some(step));
        let done = wal.compact(snapshot).is_ok();
        drop(wal);

        for seed in 0..24u64 {
            let disk = env.disk.fork();
            if seed == 0 {
                disk.crash_drop_unsynced();
            } else {
                disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
            }
            let (mut wal, recovered) =
                Wal::open(disk.clone()).unwrap_or_else(|e| panic!("step={step} seed={seed}: {e}"));
            let got = payloads(&recovered);
            if got == new {
                saw_new = true;
                assert_eq!(recovered.base, Lsn(5));
            } else {
                saw_old = true;
                assert!(
                    got.len() >= 3 && got[..] == old[..got.len()],
                    "step={step} seed={seed}: neither old nor new log: {got:?}"
                );
                assert!(
                    !done,
                    "step={step} seed={seed}: a finished compaction was lost"
                );
            }
            assert_eq!(
                disk.list().unwrap().len(),
                1,
                "step={step} seed={seed}: leftovers removed"
            );
            wal.append(b"after").unwrap();
            wal.sync().unwrap();
            drop(wal);
            let (_, again) = Wal::open(disk.clone()).unwrap();
            assert_eq!(again.truncated, None);
            assert_eq!(payloads(&again)[..got.len()], got[..]);
        }
        if done {
            break;
        }
        assert!(step < 100, "compaction never finished");
    }
    assert!(saw_old && saw_new);
}

// ---------------------------------------------------------------------------------
// Property: random appends, syncs, compactions and crashes
// ---------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<u8>),
    Sync,
    Compact,
    /// Machine crash with this seed, then reopen.
    Crash(u64),
    /// Process crash: reopen without losing anything written.
    Reopen,
    /// Compact with the disk stopping after `ops` operations, then crash.
    CompactCrash {
        ops: u64,
        seed: u64,
    },
    /// Append `payload` and sync, but the machine crashes during the sync: only
    /// `kept` bytes of the mark's append reach the disk (every byte, and between
    /// the copies, is a place a crash can tear). Then reopen, and go on from there.
    TearMark {
        payload: Vec<u8>,
        kept: usize,
    },
    /// On a copy of the disk: a crash tears the append of one more record, keeping
    /// `kept` (modulo its length) bytes of its frame; if `hide`, its payload starts
    /// with 8 bytes, a valid mark naming the last record and a valid record frame.
    /// Then open the copy.
    TearRecord {
        payload: Vec<u8>,
        kept: usize,
        hide: bool,
    },
    /// On a copy of the disk: overwrite `len` bytes of the live segment at a
    /// fraction `at` of its length (durably), then open the copy.
    Rot {
        at: f64,
        len: usize,
        seed: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Append),
        3 => Just(Op::Sync),
        1 => Just(Op::Compact),
        2 => any::<u64>().prop_map(Op::Crash),
        1 => Just(Op::Reopen),
        1 => (0u64..8, any::<u64>()).prop_map(|(ops, seed)| Op::CompactCrash { ops, seed }),
        2 => (0.0..1.0f64, 1usize..=16, any::<u64>()).prop_map(|(at, len, seed)| Op::Rot { at, len, seed }),
        2 => (proptest::collection::vec(any::<u8>(), 0..40), 0..MARKS_LEN)
            .prop_map(|(payload, kept)| Op::TearMark { payload, kept }),
        2 => (proptest::collection::vec(any::<u8>(), 0..40), any::<usize>(), any::<bool>())
            .prop_map(|(payload, kept, hide)| Op::TearRecord { payload, kept, hide }),
    ]
}

/// The recovered payloads are a prefix of `log` that includes its first `durable`.
fn check_prefix(
    recovered: &Recovered,
    log: &[Vec<u8>],
    durable: usize,
) -> Result<Vec<Vec<u8>>, TestCaseError> {
    let got = payloads(recovered);
    prop_assert!(
        got.len() >= durable,
        "lost synced records: got {} < durable {}",
        got.len(),
        durable
    );
    prop_assert!(got.len() <= log.len(), "recovered more than appended");
    prop_assert_eq!(&got[..], &log[..got.len()]);
    Ok(got)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn recovery_returns_a_prefix_with_every_synced_record(ops in proptest::collection::vec(op(), 1..60)) {
        let disk = SimDisk::new();
        let (mut wal, _) = Wal::open(disk.clone()).unwrap();
        // The log as the model sees it: the snapshot (if any) first, then the tail.
        let mut log: Vec<Vec<u8>> = Vec::new();
        let mut durable = 0;
        let mut snapshots = 0u32;
        for op in ops {
            match op {
                Op::Append(payload) => {
                    let lsn = wal.append(&payload).unwrap();
                    log.push(payload);
                    prop_assert_eq!(lsn, wal.lsn_last());
                }
                Op::Sync => {
                    prop_assert_eq!(wal.sync().unwrap(), wal.lsn_last());
                    durable = log.len();
                }
                Op::Compact => {
                    snapshots += 1;
                    let snapshot = format!("snapshot {snapshots} of {} records", log.len()).into_bytes();
                    wal.compact(&snapshot).unwrap();
                    log = vec![snapshot];
                    durable = 1;
                }
                Op::Crash(seed) => {
                    drop(wal);
                    disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
                    let (w, recovered) = Wal::open(disk.clone()).unwrap();
                    log = check_prefix(&recovered, &log, durable)?;
                    durable = log.len();
                    wal = w;
                }
                Op::Reopen => {
                    drop(wal);
                    let (w, recovered) = Wal::open(disk.clone()).unwrap();
                    prop_assert_eq!(&payloads(&recovered), &log);
                    durable = log.len();
                    wal = w;
                }
                Op::TearMark { payload, kept } => {
                    wal.append(&payload).unwrap();
                    log.push(payload);
                    wal.sync().unwrap();
                    let segment = wal.segment().to_owned();
                    drop(wal);
                    let mut torn = disk.clone();
                    let len = torn.file_len(&segment).unwrap();
                    torn.truncate(&segment, len - (MARKS_LEN - kept) as u64).unwrap();
                    torn.sync(&segment).unwrap();
                    // The records are all on disk: all come back, and are marked.
                    let (w, recovered) = Wal::open(disk.clone()).unwrap();
                    prop_assert_eq!(&payloads(&recovered), &log);
                    durable = log.len();
                    wal = w;
                }
                Op::TearRecord { payload, kept, hide } => {
                    let payload = if hide {
                        let mut hiding = vec![0xAA; 8];
                        hiding.extend_from_slice(&mark_copy(wal.lsn_last().0));
                        hiding.extend_from_slice(&record_frame(b"PHANTOM"));
                        hiding.extend_from_slice(&payload);
                        hiding
                    } else {
                        payload
                    };
                    let mut torn = record_frame(&payload);
                    torn.truncate(kept % torn.len());
                    let mut copy = disk.fork();
                    let segment = wal.segment().to_owned();
                    let before = copy.file_len(&segment).unwrap();
                    copy.append(&segment, &torn).unwrap();
                    copy.sync(&segment).unwrap();
                    match Wal::open(copy) {
                        Ok((_, recovered)) => {
                            // Every record written comes back, nothing else, and the
                            // cut starts exactly where the torn append started.
                            prop_assert_eq!(&payloads(&recovered), &log);
                            let cut = recovered.truncated.map(|t| (t.offset, t.len));
                            let want = (!torn.is_empty()).then_some((before, torn.len() as u64));
                            prop_assert_eq!(cut, want);
                        }
                        // The mark in the payload looks like a synced mark behind a
                        // bad frame: refused, never skipped into.
                        Err(WalError::Corrupt { .. }) if hide => {}
                        Err(e) => prop_assert!(false, "a torn record refused: {e}"),
                    }
                }
                Op::Rot { at, len, seed } => {
                    // Damage is refused with a typed error, or loses nothing synced.
                    use rand::Rng;
                    let copy = disk.fork();
                    let segment = wal.segment().to_owned();
                    let file_len = copy.read(&segment).unwrap().len();
                    let start = ((file_len as f64 * at) as usize).min(file_len - 1);
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    for offset in start..(start + len).min(file_len) {
                        prop_assert!(copy.flip_byte(&segment, offset, rng.random_range(1..=255u8)));
                    }
                    match Wal::open(copy) {
                        Ok((_, recovered)) => {
                            check_prefix(&recovered, &log, durable)?;
                        }
                        Err(e @ (WalError::Io { .. } | WalError::Poisoned)) => {
                            prop_assert!(false, "not a data error: {e}");
                        }
                        Err(_) => {}
                    }
                }
                Op::CompactCrash { ops, seed } => {
                    snapshots += 1;
                    let snapshot = format!("snapshot {snapshots} of {} records", log.len()).into_bytes();
                    disk.fail_after(Some(ops));
                    let done = wal.compact(&snapshot).is_ok();
                    drop(wal);
                    disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
                    let (w, recovered) = Wal::open(disk.clone()).unwrap();
                    let got = payloads(&recovered);
                    if got == [snapshot.clone()] {
                        log = got;
                    } else {
                        prop_assert!(!done, "a finished compaction was lost");
                        log = check_prefix(&recovered, &log, durable)?;
                    }
                    durable = log.len();
                    wal = w;
                }
            }
            prop_assert!(wal.lsn_durable() <= wal.lsn_last());
        }
    }
}

// ---------------------------------------------------------------------------------
// Group commit (real files)
// ---------------------------------------------------------------------------------

#[test]
fn group_commit_releases_every_waiter_with_a_durable_lsn() {
    const THREADS: usize = 8;
    const APPENDS_PER_THREAD: usize = 25;
    let env = FileEnv::new();
    let (wal, _) = open(&env);
    let group = GroupCommit::new(wal);
    let lsns: Vec<Lsn> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let group = &group;
                s.spawn(move || {
                    (0..APPENDS_PER_THREAD)
                        .map(|i| {
                            let lsn = group.append_record_and_wait(&(t as u32, i as u32)).unwrap();
                            let durable = group.with_wal(|w| w.lsn_durable()).unwrap();
                            assert!(lsn <= durable, "released before durable");
                            lsn
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let total = THREADS * APPENDS_PER_THREAD;
    let mut sorted = lsns.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), total, "every append got its own LSN");
    let syncs = group.sync_count().unwrap();
    assert!(syncs >= 1 && syncs <= total as u64);
    drop(group);

    let (_, recovered) = open(&env);
    let mut got = recovered.decode::<(u32, u32)>().unwrap();
    got.sort();
    let mut want: Vec<(u32, u32)> = (0..THREADS as u32)
        .flat_map(|t| (0..APPENDS_PER_THREAD as u32).map(move |i| (t, i)))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

/// A `FileDisk` whose first armed sync waits until a number of appends have been
/// made, so that a batch forms however fast `fdatasync` is. No timing is asserted:
/// the timeout only keeps a broken implementation from hanging the test.
struct GatedDisk {
    inner: FileDisk,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    armed: bool,
    appends: usize,
    wait_for: usize,
}

struct GatedSyncer {
    inner: <FileDisk as Disk>::Syncer,
    gate: Arc<Gate>,
}

impl FileSync for GatedSyncer {
    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.gate.state.lock().unwrap();
        if state.armed {
            state.armed = false;
            let wait_for = state.wait_for;
            let (_state, _timeout) = self
                .gate
                .changed
                .wait_timeout_while(state, Duration::from_secs(20), |s| s.appends < wait_for)
                .unwrap();
        } else {
            drop(state);
        }
        self.inner.sync_data()
    }
}

impl Disk for GatedDisk {
    type Syncer = GatedSyncer;
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        self.inner.read(name)
    }
    fn create(&mut self, name: &str) -> io::Result<()> {
        self.inner.create(name)
    }
    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.inner.append(name, data)?;
        self.gate.state.lock().unwrap().appends += 1;
        self.gate.changed.notify_all();
        Ok(())
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.inner.truncate(name, len)
    }
    fn syncer(&mut self, name: &str) -> io::Result<GatedSyncer> {
        Ok(GatedSyncer {
            inner: self.inner.syncer(name)?,
            gate: Arc::clone(&self.gate),
        })
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn sync_dir(&mut self) -> io::Result<()> {
        self.inner.sync_dir()
    }
}

#[test]
fn group_commit_needs_fewer_syncs_than_appends() {
    const THREADS: usize = 8;
    let env = FileEnv::new();
    let gate = Arc::new(Gate::default());
    let (wal, _) = Wal::open(GatedDisk {
        inner: env.disk(),
        gate: Arc::clone(&gate),
    })
    .unwrap();
    {
        let mut state = gate.state.lock().unwrap();
        state.armed = true;
        // Every thread's record, and the first leader's sync mark (one append),
        // counted from here (creating the log appended its header).
        state.appends = 0;
        state.wait_for = THREADS + 1;
    }
    let group = GroupCommit::new(wal);
    let lsns: Vec<Lsn> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let group = &group;
                s.spawn(move || {
                    group
                        .append_and_wait(format!("thread {t}").as_bytes())
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wal = group.into_inner().unwrap();
    for lsn in &lsns {
        assert!(*lsn <= wal.lsn_durable());
    }
    assert_eq!(wal.lsn_durable(), Lsn(THREADS as u64));
    // The first leader syncs its own record while the others append; the next
    // leader syncs all of theirs at once.
    assert!(
        wal.sync_count() < THREADS as u64,
        "syncs={}",
        wal.sync_count()
    );
    assert_eq!(wal.sync_count(), 2);
    drop(wal);
    let (_, recovered) = open(&env);
    assert_eq!(recovered.records.len(), THREADS);
}

// ---------------------------------------------------------------------------------
// Mutation fuzz: damage to synced data is never dropped silently
// ---------------------------------------------------------------------------------

/// How a damaged log opened, over many overwrites.
#[derive(Debug, Default)]
struct FuzzOutcomes {
    /// `open` refused with a typed error.
    refused: u64,
    /// `open` returned every synced record, intact.
    intact: u64,
    /// `open` returned without error but lost or altered a synced record.
    silent_loss: u64,
}

/// Builds a log of random records on a simulated disk, syncing at random points
/// and always at the end (sometimes compacting first), then overwrites a random
/// run of `1..=overwrite_len_max` bytes of it, durably, again and again on a
/// fresh copy, and opens each copy. Uses only the log's original API, so it runs
/// on the code before sync marks too.
fn mutation_fuzz(logs: u64, overwrites_per_log: u64, overwrite_len_max: usize) -> FuzzOutcomes {
    use rand::{Rng, RngCore};
    let mut outcomes = FuzzOutcomes::default();
    for seed in 0..logs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let disk = SimDisk::new();
        let (mut wal, _) = Wal::open(disk.clone()).unwrap();
        let mut synced: Vec<Vec<u8>> = Vec::new();
        let mut pending: Vec<Vec<u8>> = Vec::new();
        if rng.random_bool(0.3) {
            wal.append(b"before the snapshot").unwrap();
            let snapshot = format!("snapshot {seed}").into_bytes();
            wal.compact(&snapshot).unwrap();
            synced.push(snapshot);
        }
        for _ in 0..rng.random_range(1..40) {
            let mut payload = vec![0u8; rng.random_range(0..48)];
            rng.fill_bytes(&mut payload);
            wal.append(&payload).unwrap();
            pending.push(payload);
            if rng.random_bool(0.3) {
                wal.sync().unwrap();
                synced.append(&mut pending);
            }
        }
        wal.sync().unwrap();
        synced.append(&mut pending);
        let segment = wal.segment().to_owned();
        drop(wal);
        let len = disk.read(&segment).unwrap().len();
        for _ in 0..overwrites_per_log {
            let copy = disk.fork();
            let at = rng.random_range(0..len);
            let run = rng.random_range(1..=overwrite_len_max).min(len - at);
            for offset in at..at + run {
                let mask = rng.random_range(1..=255u8);
                assert!(copy.flip_byte(&segment, offset, mask));
            }
            match Wal::open(copy) {
                Err(_) => outcomes.refused += 1,
                Ok((_, recovered)) => {
                    let got = payloads(&recovered);
                    if got.len() >= synced.len() && got[..synced.len()] == synced[..] {
                        outcomes.intact += 1;
                    } else {
                        outcomes.silent_loss += 1;
                    }
                }
            }
        }
    }
    outcomes
}

/// Finding 5: in a mutation fuzz of the log before sync marks, 4 of 7,003
/// overwrites lost two synced records silently (damage to the last synced record
/// was cut off as a torn tail). Every overwrite of up to 16 bytes is now either
/// refused with a typed error or harmless.
#[test]
fn mutation_fuzz_never_loses_a_synced_record_silently() {
    const LOGS: u64 = 200;
    const OVERWRITES_PER_LOG: u64 = 50;
    const OVERWRITE_LEN_MAX: usize = 16;
    let outcomes = mutation_fuzz(LOGS, OVERWRITES_PER_LOG, OVERWRITE_LEN_MAX);
    println!("mutation fuzz, overwrites of 1..={OVERWRITE_LEN_MAX} bytes: {outcomes:?}");
    assert_eq!(outcomes.silent_loss, 0, "{outcomes:?}");
    assert_eq!(
        outcomes.refused + outcomes.intact,
        LOGS * OVERWRITES_PER_LOG
    );
    // The fuzz does exercise both sides: most damage is refused, some is harmless
    // (a damaged last mark, cut off).
    assert!(outcomes.refused > 0 && outcomes.intact > 0, "{outcomes:?}");
}

// ---------------------------------------------------------------------------------
// Linear costs
// ---------------------------------------------------------------------------------

/// Finding 8: a crafted 1 MiB torn tail, in which nearly every offset holds a
/// plausible length, took 4.4 s to scan: the search for a later valid record
/// checksummed up to a whole record at every offset (quadratic). The search now
/// looks only for sync marks, of fixed length: the work is counted, not timed.
#[test]
fn a_crafted_torn_tail_is_scanned_in_linear_work() {
    const TAIL_LEN: usize = 1 << 20;
    let env = SimEnv::new();
    let segment = write_log(&env, &[b"a", b"b"]);
    let valid = env.disk().read(&segment).unwrap().len();
    // Lengths of 4, 1 KiB and 256 KiB at three offsets of every four: each is a
    // record that fits in the file and must be checksummed to be rejected.
    let tail: Vec<u8> = [0u8, 0, 4, 0]
        .iter()
        .copied()
        .cycle()
        .take(TAIL_LEN)
        .collect();
    append_raw(&mut env.disk(), &segment, &tail);
    let (wal, recovered) = open(&env);
    assert_eq!(payloads(&recovered), bytes(&[b"a", b"b"]));
    assert_eq!(recovered.truncated.unwrap().len, TAIL_LEN as u64);
    let stats = wal.recovery_stats();
    println!("crafted {TAIL_LEN}-byte torn tail: {stats:?}");
    let file_len = (valid + TAIL_LEN) as u64;
    // One pass over the file, plus at most one sync-mark checksum per offset.
    assert!(stats.offsets_probed <= TAIL_LEN as u64, "{stats:?}");
    assert!(stats.crc_bytes <= 2 * file_len, "{stats:?}");
    assert!(stats.bytes_read <= 2 * file_len, "{stats:?}");
}

/// The same shape of search on a tail that is all sync-mark headers with bad
/// checksums: the worst case for the search, still linear.
#[test]
fn a_tail_of_near_marks_is_scanned_in_linear_work() {
    const TAIL_LEN: usize = 1 << 20;
    let env = SimEnv::new();
    let segment = write_log(&env, &[b"a"]);
    // A sync mark's length and kind at every offset of a period of 9 bytes... the
    // candidate filter passes at one offset in nine, each costing one checksum.
    let mut near_mark = 8u32.to_le_bytes().to_vec();
    near_mark.extend_from_slice(&[0xEE; 4]);
    near_mark.push(4);
    let tail: Vec<u8> = near_mark.iter().copied().cycle().take(TAIL_LEN).collect();
    append_raw(&mut env.disk(), &segment, &tail);
    let (wal, recovered) = open(&env);
    assert_eq!(payloads(&recovered), bytes(&[b"a"]));
    let stats = wal.recovery_stats();
    assert!(stats.offsets_probed <= TAIL_LEN as u64, "{stats:?}");
    assert!(stats.crc_bytes <= 3 * TAIL_LEN as u64, "{stats:?}");
}

/// Recovery reads the segment in bounded chunks: its read buffer does not grow
/// with the log.
#[test]
fn recovery_streams_the_segment_in_bounded_memory() {
    const RECORDS: usize = 40_000;
    let env = SimEnv::new();
    let (mut wal, _) = open(&env);
    for i in 0..RECORDS {
        wal.append(&[(i % 256) as u8; 100]).unwrap();
        if i % 1000 == 999 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
    let len = wal.len_bytes();
    assert!(
        len > 4 * (READ_CHUNK_LEN as u64),
        "a segment of several chunks"
    );
    drop(wal);
    let mut seen = 0usize;
    let (wal, recovery) = Wal::open_with(env.disk(), |entry| {
        assert!(!entry.snapshot);
        assert_eq!(entry.lsn, Lsn(seen as u64 + 1));
        assert_eq!(entry.payload, &[(seen % 256) as u8; 100][..]);
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, RECORDS);
    assert_eq!(recovery.lsn_last, Lsn(RECORDS as u64));
    let stats = wal.recovery_stats();
    assert_eq!(stats.bytes_read, len);
    assert!(
        stats.buffer_len_max <= READ_CHUNK_LEN + HEADER_LEN + RECORD_LEN_MAX,
        "{stats:?}"
    );
}

#[test]
fn open_decode_hands_over_typed_records_in_order() {
    let env = SimEnv::new();
    let (mut wal, _) = open(&env);
    wal.append_record(&Rec::Seen { from: 1, seq: 1 }).unwrap();
    wal.compact_record(&Rec::State { seen: vec![(1, 1)] })
        .unwrap();
    wal.append_record(&Rec::Applied(b"x".to_vec())).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let mut got = Vec::new();
    let (_, recovery) =
        Wal::open_decode::<Rec>(env.disk(), |lsn, rec| got.push((lsn, rec))).unwrap();
    assert_eq!(
        got,
        vec![
            (Lsn(2), Rec::State { seen: vec![(1, 1)] }),
            (Lsn(3), Rec::Applied(b"x".to_vec()))
        ]
    );
    assert_eq!((recovery.base, recovery.lsn_last), (Lsn(2), Lsn(3)));
    let result = Wal::open_decode::<(u64, u64, u64, u64, u64)>(env.disk(), |_, _| {});
    assert!(matches!(result, Err(WalError::Decode { lsn: Lsn(2), .. })));
}

// ---------------------------------------------------------------------------------
// Positions
// ---------------------------------------------------------------------------------

/// A pipelined driver: each thread appends a batch without waiting, then waits
/// once for its last LSN; every LSN of the batch is then durable.
#[test]
fn group_commit_positions_let_a_pipelined_driver_wait_once() {
    const THREADS: usize = 4;
    const BATCH: usize = 50;
    let env = FileEnv::new();
    let (wal, _) = open(&env);
    let group = GroupCommit::new(wal);
    assert_eq!(group.lsn_durable().unwrap(), Lsn(0));
    let batches: Vec<Vec<Lsn>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let group = &group;
                s.spawn(move || {
                    let lsns: Vec<Lsn> = (0..BATCH)
                        .map(|i| group.append_record(&(t as u32, i as u32)).unwrap())
                        .collect();
                    assert!(lsns.windows(2).all(|w| w[0] < w[1]), "LSNs grow");
                    let last = *lsns.last().unwrap();
                    let durable = group.wait_durable(last).unwrap();
                    assert!(durable >= last);
                    assert!(group.lsn_durable().unwrap() >= last);
                    lsns
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = (THREADS * BATCH) as u64;
    assert_eq!(group.lsn_last().unwrap(), Lsn(total));
    assert!(
        group.sync_count().unwrap() <= THREADS as u64,
        "one wait, at most one sync, per thread"
    );
    // Waiting for what is already durable does no I/O; waiting past the end is refused.
    let syncs = group.sync_count().unwrap();
    assert_eq!(group.wait_durable(Lsn(1)).unwrap(), Lsn(total));
    assert_eq!(group.sync().unwrap(), Lsn(total));
    assert_eq!(group.sync_count().unwrap(), syncs);
    assert!(matches!(
        group.wait_durable(Lsn(total + 1)),
        Err(WalError::NotAppended { lsn, lsn_last }) if lsn == Lsn(total + 1) && lsn_last == Lsn(total)
    ));
    let lsn = group.append(b"one more").unwrap();
    assert_eq!(
        group.lsn_durable().unwrap(),
        Lsn(total),
        "append alone does not sync"
    );
    assert_eq!(group.sync().unwrap(), lsn);
    drop(group);

    let (_, recovered) = open(&env);
    let mut got = recovered.records[..total as usize]
        .iter()
        .map(|r| postcard::from_bytes::<(u32, u32)>(r).unwrap())
        .collect::<Vec<_>>();
    got.sort();
    let want: Vec<(u32, u32)> = (0..THREADS as u32)
        .flat_map(|t| (0..BATCH as u32).map(move |i| (t, i)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), total as usize);
}

/// A single-threaded log reports positions too: `sync` returns the durable LSN,
/// and a crash keeps every record up to it.
#[test]
fn sync_reports_the_durable_position_that_survives_a_crash() {
    let env = SimEnv::new();
    let (mut wal, _) = open(&env);
    let first = wal.append(b"a").unwrap();
    let second = wal.append(b"b").unwrap();
    assert_eq!(wal.lsn_durable(), Lsn::ZERO);
    let durable = wal.sync().unwrap();
    assert_eq!((first, second, durable), (Lsn(1), Lsn(2), Lsn(2)));
    wal.append(b"c").unwrap();
    drop(wal);
    env.disk.crash(&mut ChaCha8Rng::seed_from_u64(3));
    let (wal, recovered) = open(&env);
    assert!(recovered.lsn_last() >= durable);
    assert_eq!(
        wal.lsn_durable(),
        wal.lsn_last(),
        "open makes what it returns durable"
    );
}

/// Disk loss (`SimDisk::wipe`): the next open starts an empty log, at LSN 1 again.
/// What that means for a protocol (a sender must not reuse its sequence numbers)
/// is the cores' business; the log only reports that it holds nothing.
#[test]
fn disk_loss_opens_an_empty_log() {
    let env = SimEnv::new();
    let (mut wal, _) = open(&env);
    wal.append(b"a").unwrap();
    wal.compact(b"snapshot").unwrap();
    wal.append(b"b").unwrap();
    wal.sync().unwrap();
    drop(wal);
    env.disk.wipe();
    let (mut wal, recovered) = open(&env);
    assert_eq!(recovered, Recovered::default());
    assert_eq!(wal.append(b"again").unwrap(), Lsn(1));
}
