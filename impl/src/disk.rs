//! Disk access for the write-ahead log: a small trait, real files, and a simulated
//! disk that loses what was not synced.
//!
//! A [`Disk`] is one flat directory of named files. The log needs only whole-file
//! reads, appends, truncation, `fdatasync` of one file, and the directory
//! operations that compaction uses (create, rename, remove, list, `fsync` of the
//! directory). Nothing here knows about records.
//!
//! Durability follows POSIX, and both implementations keep to it:
//!
//! - bytes written to a file are durable only after that file is synced
//!   ([`Disk::sync`] / [`FileSync::sync_data`]);
//! - a create, a rename or a remove is durable only after the directory is synced
//!   ([`Disk::sync_dir`]); syncing a file does not make its name durable.
//!
//! [`FileDisk`] is the real thing. [`SimDisk`] is an in-memory disk for the
//! deterministic simulator and for tests; its fault model is described on the type.

use rand::Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// Makes the written bytes of one file durable. Obtained from [`Disk::syncer`] so
/// that a sync can run without `&mut` access to the disk: group commit syncs
/// through it while other threads keep appending.
pub trait FileSync {
    /// `fdatasync`: every byte written to the file before the call is durable when
    /// it returns `Ok`.
    fn sync_data(&self) -> io::Result<()>;
}

/// One directory of files, as the write-ahead log uses it.
///
/// Names are plain file names (no path separators). Operations on a missing file
/// fail with [`io::ErrorKind::NotFound`].
pub trait Disk {
    /// See [`Disk::syncer`].
    type Syncer: FileSync;

    /// The names of the files in the directory, sorted.
    fn list(&self) -> io::Result<Vec<String>>;

    /// The whole content of a file, as the running system sees it (synced or not).
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;

    /// The length of a file in bytes, as the running system sees it. The default
    /// reads the whole file; implementations override it.
    fn file_len(&self, name: &str) -> io::Result<u64> {
        Ok(self.read(name)?.len() as u64)
    }

    /// Fills `buf` with the bytes of `name` from `offset` on; fails with
    /// [`io::ErrorKind::UnexpectedEof`] if the file ends first. Recovery streams a
    /// segment through this, so that its memory does not grow with the file. The
    /// default reads the whole file; implementations override it.
    fn read_exact_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = self.read(name)?;
        copy_range(&data, offset, buf)
    }

    /// Creates an empty file, or truncates an existing one to zero. The new name
    /// is durable only after [`Disk::sync_dir`].
    fn create(&mut self, name: &str) -> io::Result<()>;

    /// Appends `data` at the end of an existing file. Not durable until synced.
    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()>;

    /// Shortens a file to `len` bytes. Not durable until synced.
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;

    /// A handle that syncs the file currently named `name` (it keeps following
    /// that file if it is later renamed).
    fn syncer(&mut self, name: &str) -> io::Result<Self::Syncer>;

    /// `fdatasync` of one file.
    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.syncer(name)?.sync_data()
    }

    /// Renames `from` to `to`, atomically replacing `to` if it exists. Durable
    /// only after [`Disk::sync_dir`].
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;

    /// Removes a file. Durable only after [`Disk::sync_dir`].
    fn remove(&mut self, name: &str) -> io::Result<()>;

    /// `fsync` of the directory: every create, rename and remove so far is durable.
    fn sync_dir(&mut self) -> io::Result<()>;
}

fn assert_name(name: &str) {
    // Names come from the log, never from outside: a bad one is a bug, not bad data.
    assert!(
        !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..",
        "disk file names are plain names: {name:?}"
    );
}

/// Copies `data[offset..offset + buf.len()]` into `buf`.
fn copy_range(data: &[u8], offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let range = usize::try_from(offset)
        .ok()
        .and_then(|start| Some(start..start.checked_add(buf.len())?))
        .filter(|range| range.end <= data.len())
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
    buf.copy_from_slice(&data[range]);
    Ok(())
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such file: {name}"))
}

// ---------------------------------------------------------------------------------
// FileDisk
// ---------------------------------------------------------------------------------

/// Real files in one directory.
///
/// File handles are opened in append mode on first use and cached, so an append is
/// one `write` and a sync one `fdatasync`. The directory is synced by opening it
/// and calling `fsync` (Unix); elsewhere [`Disk::sync_dir`] is a no-op.
///
/// A `FileDisk` is `Send`, so a [`crate::wal::GroupCommit`] can share it between
/// threads. Two `FileDisk`s must not write the same directory at once.
#[derive(Debug)]
pub struct FileDisk {
    dir: PathBuf,
    files: HashMap<String, Arc<File>>,
}

impl FileDisk {
    /// Opens the directory `dir`, creating it (and its parents) if missing.
    ///
    /// Creating the directory itself is not made durable here: the parent
    /// directory is not synced. Create it ahead of time if that matters.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FileDisk> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        Ok(FileDisk {
            dir,
            files: HashMap::new(),
        })
    }

    /// The directory this disk lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        assert_name(name);
        self.dir.join(name)
    }

    fn handle(&mut self, name: &str) -> io::Result<Arc<File>> {
        if let Some(file) = self.files.get(name) {
            return Ok(Arc::clone(file));
        }
        let file = OpenOptions::new().append(true).open(self.path(name))?;
        let file = Arc::new(file);
        self.files.insert(name.to_owned(), Arc::clone(&file));
        Ok(file)
    }
}

impl FileSync for Arc<File> {
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

impl Disk for FileDisk {
    type Syncer = Arc<File>;

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(name))
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path(name))?.len())
    }

    fn read_exact_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            File::open(self.path(name))?.read_exact_at(buf, offset)
        }
        #[cfg(not(unix))]
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = File::open(self.path(name))?;
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(buf)
        }
    }

    fn create(&mut self, name: &str) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(self.path(name))?;
        drop(file);
        self.files.remove(name);
        Ok(())
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let file = self.handle(name)?;
        (&*file).write_all(data)
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.handle(name)?.set_len(len)
    }

    fn syncer(&mut self, name: &str) -> io::Result<Arc<File>> {
        self.handle(name)
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from), self.path(to))?;
        // An open handle follows its file across the rename.
        self.files.remove(to);
        if let Some(file) = self.files.remove(from) {
            self.files.insert(to.to_owned(), file);
        }
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name))?;
        self.files.remove(name);
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        #[cfg(unix)]
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// SimDisk
// ---------------------------------------------------------------------------------

/// An in-memory disk that forgets what was not synced, for the deterministic
/// simulator and for tests.
///
/// `SimDisk` is a handle: clones share one disk (`Rc<RefCell<..>>` inside), so the
/// simulator keeps a clone while a node's log (and the rest of its memory) is
/// thrown away at a crash, then reopens the log on the same disk. It is not
/// `Send`; the simulator is single-threaded.
///
/// # Fault model
///
/// The disk keeps files as inodes and a directory that maps names to inodes, each
/// with a durable state and the operations issued since it was last synced:
///
/// - **File data.** Appends and truncations of a file are queued until the file is
///   synced. At a [`crash`](SimDisk::crash) a random prefix of the queue reaches
///   the disk, in order, and the first operation after that prefix, if it is an
///   append, may be *torn*: a random strict prefix of its bytes survives, and with
///   probability ½ the last 1..=16 of those surviving bytes are replaced by garbage
///   (random bytes or zeros). Everything after is lost. An empty prefix and no
///   tear is "every unsynced write is lost"; [`crash_drop_unsynced`] forces it.
/// - **Directory.** Creates, renames and removes are queued until
///   [`Disk::sync_dir`]. At a crash a random prefix of them survives, in order;
///   each rename is atomic. A file whose name did not survive is gone, even if
///   its data had been synced.
/// - **Synced state is never damaged** by a crash. Bit rot is injected only on
///   request, with [`flip_byte`](SimDisk::flip_byte).
/// - **Stopping.** [`fail_after`](SimDisk::fail_after)`(n)` lets `n` more
///   mutating operations succeed and fails every later one with an I/O error, as
///   if the machine stopped there; a test then calls `crash` to model the reboot.
///   This is how a crash "after every disk operation" is reached.
///
/// The prefix rule is an assumption: real file systems may write back unsynced
/// pages out of order, which could leave a hole before data that did reach the
/// disk. See the write-ahead log's recovery rules for what that would look like.
///
/// All randomness comes from the `rng` passed to `crash`, so a run is a function
/// of the simulator's seed.
///
/// [`crash_drop_unsynced`]: SimDisk::crash_drop_unsynced
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    state: Rc<RefCell<SimState>>,
}

type Ino = u64;

/// At most this many surviving bytes of a torn append are replaced by garbage.
const TORN_GARBAGE_LEN_MAX: usize = 16;

#[derive(Clone, Debug, Default)]
struct SimState {
    inodes: BTreeMap<Ino, Inode>,
    ino_next: Ino,
    /// The directory the running system sees.
    dir: BTreeMap<String, Ino>,
    /// The directory as of the last `sync_dir`.
    dir_durable: BTreeMap<String, Ino>,
    /// Directory operations since the last `sync_dir`, in order.
    dir_pending: Vec<DirOp>,
    /// Mutating operations so far (for tests that stop the disk at each one).
    ops: u64,
    /// Mutating operations that may still succeed; `None` is unlimited.
    ops_left: Option<u64>,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    /// Content as of the last sync.
    durable: Vec<u8>,
    /// Content the running system sees: `durable` with `pending` applied.
    data: Vec<u8>,
    /// Data operations since the last sync, in order.
    pending: Vec<FileOp>,
}

#[derive(Clone, Debug)]
enum FileOp {
    Append(Vec<u8>),
    Truncate(usize),
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(String, Ino),
    Rename(String, String),
    Unlink(String),
}

impl FileOp {
    fn apply(&self, data: &mut Vec<u8>) {
        match self {
            FileOp::Append(bytes) => data.extend_from_slice(bytes),
            FileOp::Truncate(len) => data.truncate(*len),
        }
    }
}

impl DirOp {
    fn apply(&self, dir: &mut BTreeMap<String, Ino>) {
        match self {
            DirOp::Link(name, ino) => {
                dir.insert(name.clone(), *ino);
            }
            DirOp::Rename(from, to) => {
                // Queued only after succeeding on `dir`, and a prefix of the queue
                // replays the same history on `dir_durable`, so `from` exists.
                let ino = dir.remove(from).expect("rename replays a valid history");
                dir.insert(to.clone(), ino);
            }
            DirOp::Unlink(name) => {
                dir.remove(name);
            }
        }
    }
}

impl SimState {
    /// Counts one mutating operation, or fails if the disk has stopped.
    fn tick(&mut self) -> io::Result<()> {
        if let Some(left) = self.ops_left.as_mut() {
            if *left == 0 {
                return Err(io::Error::other("simulated disk stopped"));
            }
            *left -= 1;
        }
        self.ops += 1;
        Ok(())
    }

    fn ino(&self, name: &str) -> io::Result<Ino> {
        assert_name(name);
        self.dir.get(name).copied().ok_or_else(|| not_found(name))
    }

    fn file_op(&mut self, name: &str, op: FileOp) -> io::Result<()> {
        let ino = self.ino(name)?;
        self.tick()?;
        let inode = self
            .inodes
            .get_mut(&ino)
            .expect("directory entries point at inodes");
        op.apply(&mut inode.data);
        inode.pending.push(op);
        Ok(())
    }

    fn dir_op(&mut self, op: DirOp) {
        op.apply(&mut self.dir);
        self.dir_pending.push(op);
    }

    fn sync_ino(&mut self, ino: Ino) -> io::Result<()> {
        self.tick()?;
        // The file may have been removed since the syncer was taken; syncing an
        // unlinked file is harmless.
        if let Some(inode) = self.inodes.get_mut(&ino) {
            for op in inode.pending.drain(..) {
                op.apply(&mut inode.durable);
            }
            debug_assert_eq!(inode.durable, inode.data);
        }
        Ok(())
    }

    fn crash(&mut self, rng: Option<&mut dyn rand::RngCore>) {
        let mut rng = rng;
        for inode in self.inodes.values_mut() {
            let pending = std::mem::take(&mut inode.pending);
            let kept = match rng.as_deref_mut() {
                Some(rng) => rng.random_range(0..=pending.len()),
                None => 0,
            };
            for op in &pending[..kept] {
                op.apply(&mut inode.durable);
            }
            if let (Some(rng), Some(FileOp::Append(bytes))) =
                (rng.as_deref_mut(), pending.get(kept))
            {
                if rng.random_bool(0.5) {
                    tear(rng, bytes, &mut inode.durable);
                }
            }
            inode.data = inode.durable.clone();
        }
        let pending = std::mem::take(&mut self.dir_pending);
        let kept = match rng {
            Some(rng) => rng.random_range(0..=pending.len()),
            None => 0,
        };
        for op in &pending[..kept] {
            op.apply(&mut self.dir_durable);
        }
        self.dir = self.dir_durable.clone();
        self.collect_garbage();
        self.ops_left = None;
    }

    /// Drops inodes that no name can reach, now or after a crash.
    fn collect_garbage(&mut self) {
        let live: BTreeSet<Ino> = self
            .dir
            .values()
            .chain(self.dir_durable.values())
            .copied()
            .collect();
        self.inodes.retain(|ino, _| live.contains(ino));
    }
}

/// Appends a torn version of `bytes` to `out`: a random strict prefix, possibly
/// ending in garbage.
fn tear(rng: &mut dyn rand::RngCore, bytes: &[u8], out: &mut Vec<u8>) {
    if bytes.is_empty() {
        return;
    }
    let kept = rng.random_range(0..bytes.len());
    let start = out.len();
    out.extend_from_slice(&bytes[..kept]);
    if kept > 0 && rng.random_bool(0.5) {
        let garbage_len = rng.random_range(1..=kept.min(TORN_GARBAGE_LEN_MAX));
        let garbage = &mut out[start + kept - garbage_len..];
        if rng.random_bool(0.5) {
            rng.fill_bytes(garbage);
        } else {
            garbage.fill(0);
        }
    }
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// A crash and reboot: loses unsynced writes and directory operations as
    /// described in the fault model, tearing at most one append per file. All
    /// randomness comes from `rng`. Resets [`fail_after`](SimDisk::fail_after).
    pub fn crash(&self, rng: &mut impl Rng) {
        self.state.borrow_mut().crash(Some(rng));
    }

    /// A crash that keeps exactly what was synced: every unsynced write and
    /// directory operation is lost, nothing is torn.
    pub fn crash_drop_unsynced(&self) {
        self.state.borrow_mut().crash(None);
    }

    /// Disk loss: every file and name, synced or not, is gone, as if the disk were
    /// replaced by a blank one. Every clone of this handle sees the blank disk; a
    /// log opened on it afterwards starts empty.
    pub fn wipe(&self) {
        let mut state = self.state.borrow_mut();
        let ops = state.ops;
        *state = SimState {
            ops,
            ..SimState::default()
        };
    }

    /// Lets `ops` more mutating operations (create, append, truncate, sync,
    /// rename, remove, sync_dir) succeed, then fails every later one until the
    /// next crash. `None` lifts the limit.
    pub fn fail_after(&self, ops: Option<u64>) {
        self.state.borrow_mut().ops_left = ops;
    }

    /// Mutating operations carried out so far.
    pub fn op_count(&self) -> u64 {
        self.state.borrow().ops
    }

    /// An independent copy of this disk, with the same durable and unsynced
    /// state. Later operations on either do not affect the other.
    pub fn fork(&self) -> SimDisk {
        SimDisk {
            state: Rc::new(RefCell::new(self.state.borrow().clone())),
        }
    }

    /// Bit rot: flips bits of one byte of a file, in its current and its durable
    /// content (when the byte exists there). Returns `false` if there is no such
    /// file or byte.
    pub fn flip_byte(&self, name: &str, offset: usize, mask: u8) -> bool {
        assert!(mask != 0, "flipping no bits is not a fault");
        let mut state = self.state.borrow_mut();
        let Ok(ino) = state.ino(name) else {
            return false;
        };
        let inode = state
            .inodes
            .get_mut(&ino)
            .expect("directory entries point at inodes");
        let Some(byte) = inode.data.get_mut(offset) else {
            return false;
        };
        *byte ^= mask;
        if let Some(byte) = inode.durable.get_mut(offset) {
            *byte ^= mask;
        }
        true
    }
}

/// Syncs one simulated file (by inode, so it follows renames).
#[derive(Clone, Debug)]
pub struct SimSyncer {
    state: Rc<RefCell<SimState>>,
    ino: Ino,
}

impl FileSync for SimSyncer {
    fn sync_data(&self) -> io::Result<()> {
        self.state.borrow_mut().sync_ino(self.ino)
    }
}

impl Disk for SimDisk {
    type Syncer = SimSyncer;

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.state.borrow().dir.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let state = self.state.borrow();
        let ino = state.ino(name)?;
        Ok(state.inodes[&ino].data.clone())
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        let state = self.state.borrow();
        let ino = state.ino(name)?;
        Ok(state.inodes[&ino].data.len() as u64)
    }

    fn read_exact_at(&self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let state = self.state.borrow();
        let ino = state.ino(name)?;
        copy_range(&state.inodes[&ino].data, offset, buf)
    }

    fn create(&mut self, name: &str) -> io::Result<()> {
        assert_name(name);
        let mut state = self.state.borrow_mut();
        if state.dir.contains_key(name) {
            return state.file_op(name, FileOp::Truncate(0));
        }
        state.tick()?;
        let ino = state.ino_next;
        state.ino_next += 1;
        state.inodes.insert(ino, Inode::default());
        state.dir_op(DirOp::Link(name.to_owned(), ino));
        Ok(())
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.state
            .borrow_mut()
            .file_op(name, FileOp::Append(data.to_vec()))
    }

    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        let mut state = self.state.borrow_mut();
        let ino = state.ino(name)?;
        if len > state.inodes[&ino].data.len() {
            // The log only ever shortens files; growing one is not modelled.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "SimDisk truncate cannot grow a file",
            ));
        }
        state.file_op(name, FileOp::Truncate(len))
    }

    fn syncer(&mut self, name: &str) -> io::Result<SimSyncer> {
        let ino = self.state.borrow().ino(name)?;
        Ok(SimSyncer {
            state: Rc::clone(&self.state),
            ino,
        })
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        assert_name(to);
        let mut state = self.state.borrow_mut();
        state.ino(from)?;
        state.tick()?;
        state.dir_op(DirOp::Rename(from.to_owned(), to.to_owned()));
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.ino(name)?;
        state.tick()?;
        state.dir_op(DirOp::Unlink(name.to_owned()));
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.tick()?;
        let pending = std::mem::take(&mut state.dir_pending);
        for op in &pending {
            op.apply(&mut state.dir_durable);
        }
        debug_assert_eq!(state.dir, state.dir_durable);
        // Removed files are gone for good now; without this a long simulation
        // would keep every compacted-away segment in memory.
        state.collect_garbage();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn sim_crash_drops_unsynced_writes_and_names() {
        let mut disk = SimDisk::new();
        disk.create("a").unwrap();
        disk.append("a", b"synced").unwrap();
        disk.sync("a").unwrap();
        disk.sync_dir().unwrap();
        disk.append("a", b" unsynced").unwrap();
        disk.create("b").unwrap();
        disk.append("b", b"data").unwrap();
        disk.sync("b").unwrap(); // data synced, name not
        assert_eq!(disk.read("a").unwrap(), b"synced unsynced");

        disk.crash_drop_unsynced();
        assert_eq!(disk.read("a").unwrap(), b"synced");
        assert_eq!(disk.list().unwrap(), vec!["a".to_owned()]);
        assert_eq!(disk.read("b").unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn sim_crash_keeps_a_prefix_of_unsynced_writes() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk = SimDisk::new();
            disk.create("a").unwrap();
            disk.sync_dir().unwrap();
            disk.append("a", b"0123").unwrap();
            disk.sync("a").unwrap();
            disk.append("a", b"4567").unwrap();
            disk.append("a", b"89ab").unwrap();
            disk.crash(&mut rng);
            let data = disk.read("a").unwrap();
            assert!(data.len() <= 12, "seed={seed}");
            assert_eq!(&data[..4], b"0123", "seed={seed}: synced bytes survive");
            // Whole appends that survived are intact; only the last may be garbage.
            let whole = (data.len() / 4) * 4;
            let torn_garbage = data.len() % 4 != 0;
            if !torn_garbage && whole >= 8 {
                assert_eq!(&data[4..8], b"4567", "seed={seed}");
            }
        }
    }

    #[test]
    fn sim_rename_is_atomic_across_crashes() {
        for seed in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk = SimDisk::new();
            disk.create("old").unwrap();
            disk.append("old", b"old").unwrap();
            disk.sync("old").unwrap();
            disk.sync_dir().unwrap();
            disk.create("tmp").unwrap();
            disk.append("tmp", b"new").unwrap();
            disk.sync("tmp").unwrap();
            disk.rename("tmp", "old").unwrap();
            disk.crash(&mut rng);
            let content = disk.read("old").unwrap();
            assert!(
                content == b"old" || content == b"new",
                "seed={seed}: {content:?}"
            );
        }
    }

    #[test]
    fn sim_wipe_loses_synced_files_for_every_clone() {
        let mut disk = SimDisk::new();
        disk.create("a").unwrap();
        disk.append("a", b"synced").unwrap();
        disk.sync("a").unwrap();
        disk.sync_dir().unwrap();
        let other = disk.clone();
        other.wipe();
        assert!(disk.list().unwrap().is_empty());
        disk.crash_drop_unsynced();
        assert!(disk.list().unwrap().is_empty(), "nothing comes back");
        disk.create("b").unwrap();
        assert_eq!(other.list().unwrap(), vec!["b".to_owned()]);
    }

    #[test]
    fn sim_fail_after_stops_the_disk_until_the_crash() {
        let mut disk = SimDisk::new();
        disk.fail_after(Some(2));
        disk.create("a").unwrap();
        disk.append("a", b"x").unwrap();
        assert!(disk.append("a", b"y").is_err());
        assert!(disk.sync("a").is_err());
        disk.crash_drop_unsynced();
        assert!(disk.list().unwrap().is_empty());
        disk.create("a").unwrap();
        assert_eq!(disk.op_count(), 3);
    }

    #[test]
    fn file_disk_round_trip_and_rename_follows_handles() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = FileDisk::open(dir.path().join("d")).unwrap();
        disk.create("a").unwrap();
        disk.append("a", b"hello").unwrap();
        let syncer = disk.syncer("a").unwrap();
        disk.rename("a", "b").unwrap();
        disk.append("b", b" world").unwrap();
        syncer.sync_data().unwrap();
        disk.sync_dir().unwrap();
        assert_eq!(disk.list().unwrap(), vec!["b".to_owned()]);
        assert_eq!(disk.read("b").unwrap(), b"hello world");
        disk.truncate("b", 5).unwrap();
        disk.append("b", b"!").unwrap();
        assert_eq!(disk.read("b").unwrap(), b"hello!");
        disk.remove("b").unwrap();
        assert!(disk.list().unwrap().is_empty());
        assert_eq!(
            disk.append("b", b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
