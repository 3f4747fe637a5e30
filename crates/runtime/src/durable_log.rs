//! A replica's durable store on disk: an append-only log of [`Write`]s, replayed into a
//! [`Store`] when the replica starts again (see `bft_core::durable` for what goes in and the
//! rule the driver follows: every write of a step is durable before any message of the step is
//! sent).
//!
//! File format (`<data-dir>/<node-name>.wal`): a sequence of records, each
//! `[len: u32 BE][crc32 of body: u32 BE][body: len bytes]`, where the body is one
//! [`Write::encode`], then zero bytes up to the end of the file (free space: no record has a
//! zero length). Nothing else (no header): an empty file is an empty store.
//!
//! - The file is grown [`PREALLOCATE`] bytes of zeros at a time, ahead of the records: an
//!   `fdatasync` after an append that leaves the file's size alone writes the data alone,
//!   without the inode (measured on this project's VM, ext4: 0.6× the CPU and 0.67× the time of
//!   a sync after a growing append; a replica syncs about once per update).
//! - [`DurableLog::open`] replays the records in order and stops at free space or at the first
//!   record that is torn (the file ends inside it: a crash during an append), corrupt (bad
//!   CRC, or a body that is no single write) or followed by zeros that are not all zeros to the
//!   end (pages of an append that reached the disk out of order). Except at free space, it
//!   truncates the file there, logs a warning naming the file and the offset, and starts from
//!   what came before: a partial last record never stops a restart, and nothing after the cut
//!   can be read again once later records fill the space before it. Writes are only
//!   acknowledged by [`DurableLog::sync`], so a torn tail was never synced and no message
//!   depending on it was ever sent.
//! - [`DurableLog::append`] writes records (to the OS) and applies them to the in-memory store;
//!   [`DurableLog::sync`] makes everything appended so far durable with one `fdatasync`.
//! - Compaction: after a sync, when the file is larger than [`DurableLog::compact_ratio`] times
//!   the live store's size (as records) and larger than [`DurableLog::compact_min_bytes`], the
//!   live store is written as `Put` records to `<file>.compact`, which is `fsync`ed, renamed over
//!   the log, and the directory is `fsync`ed. A crash at any point leaves either the old or the
//!   new log complete; a stale `.compact` file is removed at the next open.
//! - The open log is `flock`ed (exclusively, and the compacted file before it replaces the
//!   log): a second process on the same file is refused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write as _};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bft_core::durable::{Store, Write, VOTE_PREFIX};

/// Bytes of a record's header (length and CRC).
const HEADER: usize = 8;

/// Zero bytes the file is grown by when the records reach its end.
pub const PREALLOCATE: u64 = 1 << 20;

/// Bytes one store entry takes as a `Put` record.
fn entry_len(key: &[u8], value: &[u8]) -> u64 {
    (HEADER + 9 + key.len() + value.len()) as u64
}

/// Appends one record holding `w` to `buf`.
fn encode_record(w: &Write, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    w.encode(buf);
    let body = &buf[start + HEADER..];
    let len = (body.len() as u32).to_be_bytes();
    let crc = crc32fast::hash(body).to_be_bytes();
    buf[start..start + 4].copy_from_slice(&len);
    buf[start + 4..start + HEADER].copy_from_slice(&crc);
}

/// Where replay of a log's bytes stopped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The writes of every complete, intact record, in order.
    pub writes: Vec<Write>,
    /// Bytes of those records (the offset of the first byte not replayed).
    pub good: u64,
    /// Why replay stopped before the end (`None`: every byte was replayed, or the rest is
    /// free space, zeros to the end).
    pub stopped: Option<&'static str>,
}

/// Decodes the records of a log file's contents (see the module documentation).
pub fn replay(bytes: &[u8]) -> Replay {
    let mut writes = Vec::new();
    let mut at = 0usize;
    let stopped = loop {
        let rest = &bytes[at..];
        // A record's body is never empty, so its header is never eight zeros: a zero header
        // starts the free space.
        if rest.iter().take(HEADER).all(|b| *b == 0) {
            if rest.iter().all(|b| *b == 0) {
                break None;
            }
            break Some("bytes after zeros (an append reached the disk out of order)");
        }
        if rest.len() < HEADER {
            break Some("torn record header");
        }
        let len = u32::from_be_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(body) = rest.get(HEADER..HEADER + len) else {
            break Some("torn record body");
        };
        if crc32fast::hash(body) != crc {
            break Some("record checksum mismatch");
        }
        match Write::decode(body) {
            Ok((w, used)) if used == len => writes.push(w),
            _ => break Some("record body is not one write"),
        }
        at += HEADER + len;
    };
    Replay {
        writes,
        good: at as u64,
        stopped,
    }
}

/// A replica's durable log, with the store it holds.
#[derive(Debug)]
pub struct DurableLog {
    path: PathBuf,
    file: File,
    store: Store,
    /// Bytes of records in the log file (appended, synced or not); free space follows.
    log_bytes: u64,
    /// The file's size: records and free space.
    allocated: u64,
    /// Bytes the live store takes as `Put` records.
    live_bytes: u64,
    /// Records not yet handed to the OS.
    buf: Vec<u8>,
    /// Appended since the last sync.
    dirty: bool,
    /// Entries found at open (after the replay).
    recovered: usize,
    /// Compact when the log exceeds this many times the live bytes...
    pub compact_ratio: u64,
    /// ... and this many bytes.
    pub compact_min_bytes: u64,
    /// Compactions so far.
    pub compactions: u64,
    audit: Option<File>,
    /// Audit lines of writes appended and not yet synced.
    audit_lines: String,
}

impl DurableLog {
    /// Opens (creating it and its directory if needed) the log at `path` and replays it; a torn
    /// or corrupt tail is cut off with a warning (see the module documentation).
    pub fn open(path: &Path) -> io::Result<DurableLog> {
        let dir = parent(path);
        fs::create_dir_all(&dir)?;
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // One process per log: a second replica on the same file would interleave records.
        // The lock goes with the process (also on SIGKILL).
        // SAFETY: flock on a descriptor we own.
        if let Err(e) = lock(&file) {
            return Err(io::Error::new(
                e.kind(),
                format!("{} is locked by another process ({e})", path.display()),
            ));
        }
        // A compaction that crashed before its rename left this; the log is complete.
        let stale = compact_path(path);
        if stale.exists() {
            fs::remove_file(&stale)?;
        }
        if created {
            // The new file's name must survive a crash too.
            sync_dir(&dir)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let r = replay(&bytes);
        let mut allocated = bytes.len() as u64;
        if let Some(why) = r.stopped {
            tracing::warn!(
                target: "durable",
                "{}: {why} at offset {}; cutting off the last {} bytes (never synced, or \
                 damaged) and recovering from the {} records before it",
                path.display(),
                r.good,
                bytes.len() as u64 - r.good,
                r.writes.len()
            );
            file.set_len(r.good)?;
            file.sync_all()?;
            allocated = r.good;
        }
        let mut log = DurableLog {
            path: path.to_path_buf(),
            file,
            store: Store::new(),
            log_bytes: r.good,
            allocated,
            live_bytes: 0,
            buf: Vec::new(),
            dirty: false,
            recovered: 0,
            compact_ratio: 4,
            compact_min_bytes: 1 << 20,
            compactions: 0,
            audit: None,
            audit_lines: String::new(),
        };
        for w in &r.writes {
            log.apply(w);
        }
        log.recovered = log.store.len();
        Ok(log)
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store: what was recovered at open plus every write appended since.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Entries the store held right after [`DurableLog::open`].
    pub fn recovered(&self) -> usize {
        self.recovered
    }

    /// Bytes in the log file now.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Bytes the live store takes as records.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// A testing aid: after each [`DurableLog::sync`] (so before any message depending on
    /// them is sent), append every synced `Put` of a vote key (first byte `b'v'`) to `file` as
    /// a line `hex(key) hex(value)`.
    pub fn set_audit(&mut self, file: File) {
        self.audit = Some(file);
    }

    fn apply(&mut self, w: &Write) {
        match w {
            Write::Put { key, value } => {
                if let Some(old) = self.store.get(key) {
                    self.live_bytes -= entry_len(key, old);
                }
                self.live_bytes += entry_len(key, value);
                self.store.insert(key.clone(), value.clone());
            }
            Write::DeleteRange { from, to } => {
                if from < to {
                    let doomed: Vec<Vec<u8>> = self
                        .store
                        .range(from.clone()..to.clone())
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        if let Some(v) = self.store.remove(&k) {
                            self.live_bytes -= entry_len(&k, &v);
                        }
                    }
                }
            }
        }
    }

    /// Appends `writes` (handed to the OS, not yet durable: see [`DurableLog::sync`]) and
    /// applies them to the store. Returns the bytes appended.
    pub fn append(&mut self, writes: &[Write]) -> io::Result<u64> {
        self.buf.clear();
        for w in writes {
            encode_record(w, &mut self.buf);
            self.apply(w);
        }
        if self.buf.is_empty() {
            return Ok(0);
        }
        let n = self.buf.len() as u64;
        if self.log_bytes + n > self.allocated {
            self.grow(self.log_bytes + n + PREALLOCATE)?;
        }
        self.file.write_all_at(&self.buf, self.log_bytes)?;
        self.log_bytes += n;
        self.dirty = true;
        if self.audit.is_some() {
            self.pending_audit(writes);
        }
        Ok(n)
    }

    /// Writes zeros from the end of the file to at least `to` bytes (rounded up to 4 KiB):
    /// blocks allocated and written now are overwritten later without changing the file's
    /// size. Synced with the next records.
    fn grow(&mut self, to: u64) -> io::Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let to = to.div_ceil(4096) * 4096;
        while self.allocated < to {
            let n = (to - self.allocated).min(ZEROS.len() as u64);
            self.file
                .write_all_at(&ZEROS[..n as usize], self.allocated)?;
            self.allocated += n;
        }
        Ok(())
    }

    /// Audit lines of `writes`, written after the next sync.
    fn pending_audit(&mut self, writes: &[Write]) {
        for w in writes {
            if let Write::Put { key, value } = w {
                if key.first() == Some(&VOTE_PREFIX) {
                    self.audit_lines.push_str(&hex(key));
                    self.audit_lines.push(' ');
                    self.audit_lines.push_str(&hex(value));
                    self.audit_lines.push('\n');
                }
            }
        }
    }

    /// Makes everything appended so far durable (one `fdatasync`; nothing when nothing was
    /// appended), then compacts the log if it has grown large relative to the live store.
    /// Returns whether it synced.
    pub fn sync(&mut self) -> io::Result<bool> {
        if !self.dirty {
            return Ok(false);
        }
        self.file.sync_data()?;
        self.dirty = false;
        if let Some(audit) = &mut self.audit {
            if !self.audit_lines.is_empty() {
                audit.write_all(self.audit_lines.as_bytes())?;
                self.audit_lines.clear();
            }
        }
        if self.log_bytes > self.compact_min_bytes
            && self.log_bytes > self.compact_ratio.saturating_mul(self.live_bytes)
        {
            self.compact()?;
        }
        Ok(true)
    }

    /// Makes every later append fail (the file is reopened read-only): tests of what a driver
    /// does when the disk refuses a write.
    #[cfg(test)]
    pub(crate) fn make_unwritable(&mut self) {
        self.file = File::open(&self.path).unwrap();
    }

    /// Rewrites the log as the live store (see the module documentation).
    pub fn compact(&mut self) -> io::Result<()> {
        let tmp = compact_path(&self.path);
        let mut buf = Vec::with_capacity(self.live_bytes as usize);
        for (key, value) in &self.store {
            encode_record(
                &Write::Put {
                    key: key.clone(),
                    value: value.clone(),
                },
                &mut buf,
            );
        }
        // Locked before it becomes the log, so that the lock never lapses.
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        lock(&file)?;
        file.write_all(&buf)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        sync_dir(&parent(&self.path))?;
        self.file = file;
        self.log_bytes = buf.len() as u64;
        self.allocated = self.log_bytes;
        self.compactions += 1;
        Ok(())
    }
}

/// An exclusive `flock` of `file` (fails at once if another open file holds it).
fn lock(file: &File) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn compact_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".compact");
    path.with_file_name(name)
}

/// `fsync` of a directory: makes a create or rename in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &[u8], v: &[u8]) -> Write {
        Write::Put {
            key: k.to_vec(),
            value: v.to_vec(),
        }
    }

    fn del(from: &[u8], to: &[u8]) -> Write {
        Write::DeleteRange {
            from: from.to_vec(),
            to: to.to_vec(),
        }
    }

    fn expected(writes: &[Write]) -> Store {
        let mut s = Store::new();
        for w in writes {
            w.apply(&mut s);
        }
        s
    }

    fn sample() -> Vec<Write> {
        vec![
            put(b"va", b"1"),
            put(b"vb", b"2"),
            put(b"s", b"state"),
            put(b"va", b"3"),
            del(b"vb", b"vc"),
            put(b"", b""),
        ]
    }

    #[test]
    fn writes_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("n.wal");
        let writes = sample();
        {
            let mut log = DurableLog::open(&path).unwrap();
            assert!(log.store().is_empty());
            assert_eq!(log.recovered(), 0);
            log.append(&writes[..2]).unwrap();
            assert!(log.sync().unwrap());
            assert!(!log.sync().unwrap(), "nothing appended, no sync");
            log.append(&writes[2..]).unwrap();
            log.sync().unwrap();
            assert_eq!(log.store(), &expected(&writes));
        }
        let log = DurableLog::open(&path).unwrap();
        assert_eq!(log.store(), &expected(&writes));
        assert_eq!(log.recovered(), 3);
        let live: u64 = log.store().iter().map(|(k, v)| entry_len(k, v)).sum();
        assert_eq!(log.live_bytes(), live);
    }

    #[test]
    fn delete_range_removes_from_inclusive_to_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let mut log = DurableLog::open(&path).unwrap();
        log.append(&[
            put(b"v1", b"a"),
            put(b"v2", b"b"),
            put(b"v3", b"c"),
            put(b"x", b"d"),
            del(b"v2", b"v3"),
            // An empty or inverted range removes nothing.
            del(b"v3", b"v3"),
            del(b"x", b"a"),
        ])
        .unwrap();
        log.sync().unwrap();
        drop(log);
        let log = DurableLog::open(&path).unwrap();
        let keys: Vec<&[u8]> = log.store().keys().map(|k| &k[..]).collect();
        assert_eq!(keys, vec![&b"v1"[..], b"v3", b"x"]);
    }

    /// A crash during the last append leaves any prefix of its record: every cut point
    /// recovers exactly the records before it, truncates the file there (or keeps a torn header
    /// that is zeros so far as free space), and appends go on.
    #[test]
    fn a_torn_tail_at_any_cut_point_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let writes = sample();
        let (first, last) = writes.split_at(writes.len() - 1);
        let records = {
            let mut log = DurableLog::open(&path).unwrap();
            log.append(first).unwrap();
            log.append(last).unwrap();
            log.sync().unwrap();
            log.log_bytes() as usize
        };
        let full = fs::read(&path).unwrap()[..records].to_vec();
        let mut last_record = Vec::new();
        encode_record(&last[0], &mut last_record);
        let good = full.len() - last_record.len();
        for cut in good..full.len() {
            fs::write(&path, &full[..cut]).unwrap();
            let mut log = DurableLog::open(&path).unwrap();
            assert_eq!(log.store(), &expected(first), "cut at {cut}");
            // Cut there, or (a torn header of zeros so far) kept as free space.
            let left = fs::read(&path).unwrap();
            assert!(left.len() == good || left[good..].iter().all(|b| *b == 0));
            assert_eq!(replay(&left).stopped, None, "cut at {cut}");
            // Appending after recovery yields a valid log.
            log.append(&[put(b"after", b"x")]).unwrap();
            log.sync().unwrap();
            drop(log);
            let mut want = first.to_vec();
            want.push(put(b"after", b"x"));
            assert_eq!(DurableLog::open(&path).unwrap().store(), &expected(&want));
        }
    }

    #[test]
    fn a_corrupt_record_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let records = {
            let mut log = DurableLog::open(&path).unwrap();
            log.append(&[put(b"k1", b"v1"), put(b"k2", b"v2")]).unwrap();
            log.sync().unwrap();
            log.log_bytes() as usize
        };
        let mut bytes = fs::read(&path).unwrap()[..records].to_vec();
        let second = bytes.len() / 2;
        // Flip a byte of the second record's body: its CRC no longer matches.
        *bytes.last_mut().unwrap() ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let r = replay(&bytes);
        assert_eq!(r.stopped, Some("record checksum mismatch"));
        assert_eq!(r.good as usize, second);
        let log = DurableLog::open(&path).unwrap();
        assert_eq!(log.store(), &expected(&[put(b"k1", b"v1")]));
        assert_eq!(fs::metadata(&path).unwrap().len(), second as u64);
        // A valid CRC over a body that is no single write is refused as well.
        let mut junk = Vec::new();
        let body = [9u8, 0, 0];
        junk.extend_from_slice(&(body.len() as u32).to_be_bytes());
        junk.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        junk.extend_from_slice(&body);
        assert_eq!(replay(&junk).stopped, Some("record body is not one write"));
        assert_eq!(replay(&junk).good, 0);
    }

    #[test]
    fn compaction_keeps_the_live_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let mut log = DurableLog::open(&path).unwrap();
        log.compact_min_bytes = 4096;
        let mut all = Vec::new();
        for round in 0..200u32 {
            let mut step = Vec::new();
            for k in 0..5u32 {
                step.push(put(
                    &[b"v".as_ref(), &k.to_be_bytes()].concat(),
                    &round.to_be_bytes(),
                ));
            }
            if round % 10 == 9 {
                step.push(del(b"v", b"w"));
            }
            step.push(put(b"s-keep", &round.to_be_bytes()));
            log.append(&step).unwrap();
            log.sync().unwrap();
            all.extend(step);
            assert!(log.log_bytes() <= 4096 + 4 * log.live_bytes() + 1024);
        }
        assert!(log.compactions > 0, "the log never compacted");
        assert_eq!(log.store(), &expected(&all));
        let r = replay(&fs::read(&path).unwrap());
        assert_eq!((r.good, r.stopped), (log.log_bytes(), None));
        assert!(!compact_path(&path).exists());
        // The compacted file is still locked by its writer.
        assert!(DurableLog::open(&path).is_err());
        drop(log);
        assert_eq!(DurableLog::open(&path).unwrap().store(), &expected(&all));
    }

    /// Appends go into zeros written ahead of them: the file grows once per [`PREALLOCATE`]
    /// bytes, not at every append (a sync then writes no inode), and the free space reads as
    /// the end of the log, without a warning or a cut.
    #[test]
    fn appends_fill_free_space_without_growing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let mut log = DurableLog::open(&path).unwrap();
        log.append(&[put(b"v0", b"first")]).unwrap();
        log.sync().unwrap();
        let size = fs::metadata(&path).unwrap().len();
        assert!(size >= PREALLOCATE && size % 4096 == 0, "{size}");
        let mut all = vec![put(b"v0", b"first")];
        for i in 0..100u32 {
            let w = put(&i.to_be_bytes(), &[7; 100]);
            log.append(std::slice::from_ref(&w)).unwrap();
            log.sync().unwrap();
            all.push(w);
            assert_eq!(fs::metadata(&path).unwrap().len(), size);
        }
        let records = log.log_bytes();
        assert!(records < size);
        let r = replay(&fs::read(&path).unwrap());
        assert_eq!(
            (r.good, r.stopped, r.writes.len()),
            (records, None, all.len())
        );
        drop(log);
        let mut log = DurableLog::open(&path).unwrap();
        assert_eq!(log.store(), &expected(&all));
        assert_eq!(fs::metadata(&path).unwrap().len(), size, "free space kept");
        // Past the free space, the file grows again.
        let big = put(b"big", &vec![1; PREALLOCATE as usize]);
        log.append(std::slice::from_ref(&big)).unwrap();
        log.sync().unwrap();
        all.push(big);
        assert!(fs::metadata(&path).unwrap().len() > log.log_bytes());
        drop(log);
        assert_eq!(DurableLog::open(&path).unwrap().store(), &expected(&all));
    }

    /// The pages of an append may reach the disk out of order: a later record without the
    /// one before it (zeros there). The replay stops at the zeros and the file is cut there, so
    /// that the stray record is not read again once new records fill the gap before it.
    #[test]
    fn a_record_after_zeros_is_cut_off_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let records = {
            let mut log = DurableLog::open(&path).unwrap();
            log.append(&[put(b"k1", b"v1")]).unwrap();
            log.sync().unwrap();
            log.log_bytes()
        };
        let mut stray = Vec::new();
        encode_record(&put(b"stray", b"never synced"), &mut stray);
        let gap = 16;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&stray, records + gap).unwrap();
        drop(file);
        let r = replay(&fs::read(&path).unwrap());
        assert_eq!(r.good, records);
        assert!(
            r.stopped.is_some_and(|why| why.contains("out of order")),
            "{r:?}"
        );
        let mut log = DurableLog::open(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), records);
        // New records cover the gap and more; the stray one is gone.
        log.append(&[put(b"k2", &[3; 64])]).unwrap();
        log.sync().unwrap();
        drop(log);
        let log = DurableLog::open(&path).unwrap();
        assert_eq!(
            log.store(),
            &expected(&[put(b"k1", b"v1"), put(b"k2", &[3; 64])])
        );
    }

    #[test]
    fn one_process_at_a_time_opens_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let log = DurableLog::open(&path).unwrap();
        let err = DurableLog::open(&path).unwrap_err();
        assert!(
            err.to_string().contains("locked by another process"),
            "{err}"
        );
        drop(log);
        DurableLog::open(&path).unwrap();
    }

    #[test]
    fn a_stale_compaction_file_is_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        {
            let mut log = DurableLog::open(&path).unwrap();
            log.append(&[put(b"k", b"v")]).unwrap();
            log.sync().unwrap();
        }
        fs::write(compact_path(&path), b"half-written").unwrap();
        let log = DurableLog::open(&path).unwrap();
        assert_eq!(log.store(), &expected(&[put(b"k", b"v")]));
        assert!(!compact_path(&path).exists());
    }

    #[test]
    fn synced_votes_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.wal");
        let audit_path = dir.path().join("n.votes");
        let mut log = DurableLog::open(&path).unwrap();
        log.set_audit(File::create(&audit_path).unwrap());
        log.append(&[put(b"v\x01", b"\xab"), put(b"s", b"x"), del(b"v", b"w")])
            .unwrap();
        assert_eq!(fs::read_to_string(&audit_path).unwrap(), "");
        log.sync().unwrap();
        assert_eq!(fs::read_to_string(&audit_path).unwrap(), "7601 ab\n");
    }
}
