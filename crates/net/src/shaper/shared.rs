//! WAN queues shared between the node processes of one local cluster: a small file that every
//! process maps (`MAP_SHARED`), holding one "busy until" timestamp per queue.
//!
//! # File format (version 1)
//!
//! All integers little-endian (the file never leaves the host that made it).
//!
//! | offset | size | content                                                     |
//! |--------|------|-------------------------------------------------------------|
//! | 0      | 8    | magic, the ASCII bytes `STWANQ01`                           |
//! | 8      | 4    | format version, `1`                                         |
//! | 12     | 4    | number of sites `S`                                         |
//! | 16     | 8    | number of slots, `S * S + S`                                |
//! | 24     | 40   | zero                                                        |
//! | 64     | 64 × slots | the slots, one per 64-byte cache line                 |
//!
//! Slot `a * S + b` is the directed WAN queue from site `a` to site `b` (the
//! [`WanQueueModel::Pairwise`] model; the slots with `a == b` are unused); slot `S * S + a` is
//! the uplink of site `a` ([`WanQueueModel::SiteUplink`]). A slot's first 8 bytes are an
//! `AtomicU64`: the instant, in nanoseconds of `CLOCK_MONOTONIC` (see [`monotonic_ns`]), at
//! which the queue will have serialized everything admitted so far; `0` is an idle queue.
//!
//! Admission ([`SharedWanQueues::reserve`]) is one lock-free compare-and-swap loop on the slot,
//! so any number of processes (and threads) may share a queue.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use steward_config::SiteId;

/// The file's first 8 bytes.
const MAGIC: [u8; 8] = *b"STWANQ01";
/// The layout described in the module documentation.
const VERSION: u32 = 1;
/// Header bytes before the first slot.
const HEADER_LEN: usize = 64;
/// Bytes per slot: one cache line, so processes working on different queues do not contend.
const SLOT_STRIDE: usize = 64;
/// The largest number of sites a file may have (a 4 MiB file).
pub const MAX_SITES: usize = 256;
/// A slot further ahead of the clock than this is stale (a file that survived a reboot, when
/// `CLOCK_MONOTONIC` restarted) and counts as idle.
const STALE_NS: u64 = 3600 * 1_000_000_000;

/// Nanoseconds on `CLOCK_MONOTONIC`: a system-wide clock on Linux, the same in every process,
/// and the clock [`std::time::Instant`] reads on Linux. What the shared slots hold.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// How WAN bandwidth is shared by the senders of a site (mirrors
/// [`steward_config::WanModel`], with the uplink's bandwidth resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WanQueueModel {
    /// One queue per directed site pair `a → b`, shared by every sender of site `a` to site
    /// `b`, at the bandwidth of the destination's link (`Topology::link(a, b)`).
    Pairwise,
    /// One queue per sending site, shared by all of its WAN traffic, at this bandwidth (the
    /// largest of the site's WAN links).
    SiteUplink {
        /// The uplink's bandwidth, bit/s.
        bandwidth_bps: u64,
    },
}

/// A queue of a [`SharedWanQueues`]: see [`SharedWanQueues::pair_slot`] and
/// [`SharedWanQueues::uplink_slot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WanSlot(pub(crate) usize);

impl WanSlot {
    /// The slot's position in the file (`a * S + b` for a pair, `S * S + a` for an uplink).
    pub fn index(self) -> usize {
        self.0
    }
}

/// Why [`SharedWanQueues::create`] or [`SharedWanQueues::open`] failed; names the file.
#[derive(Debug, thiserror::Error)]
pub enum SharedWanError {
    /// The file could not be created, read, replaced or mapped.
    #[error("WAN queue file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WAN queue file for this many sites (or the site count is unusable).
    #[error("WAN queue file {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The shared WAN queues of a cluster with `S` sites: `S * S` pairwise queues and `S` uplinks,
/// each a "busy until" timestamp. Either a file mapped by every process
/// ([`SharedWanQueues::create`], [`SharedWanQueues::open`]) or process-local memory
/// ([`SharedWanQueues::in_process`]). Share one handle between the sockets of a process with
/// an `Arc`.
pub struct SharedWanQueues {
    storage: Storage,
    sites: usize,
    path: Option<PathBuf>,
}

enum Storage {
    Mapped(Mapping),
    Local(Box<[AtomicU64]>),
}

/// A `MAP_SHARED` read-write mapping of a whole validated queue file.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value until it is unmapped in
// `drop`; after validation it is only accessed through `AtomicU64`s, which are safe to use
// from any thread (and any process).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out `&AtomicU64`.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; no reference into the mapping
        // outlives `self` (they borrow the `SharedWanQueues`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

impl fmt::Debug for SharedWanQueues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedWanQueues")
            .field("sites", &self.sites)
            .field("path", &self.path)
            .finish()
    }
}

fn slot_count(sites: usize) -> usize {
    sites * sites + sites
}

fn file_len(sites: usize) -> usize {
    HEADER_LEN + slot_count(sites) * SLOT_STRIDE
}

fn check_sites(path: &Path, sites: usize) -> Result<(), SharedWanError> {
    if sites == 0 || sites > MAX_SITES {
        return Err(SharedWanError::Invalid {
            path: path.to_path_buf(),
            reason: format!("{sites} sites: must be between 1 and {MAX_SITES}"),
        });
    }
    Ok(())
}

fn header(sites: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    // `check_sites` bounds `sites` by MAX_SITES.
    h[12..16].copy_from_slice(&(sites as u32).to_le_bytes());
    h[16..24].copy_from_slice(&(slot_count(sites) as u64).to_le_bytes());
    h
}

impl SharedWanQueues {
    /// Creates (or replaces) the queue file at `path` for `sites` sites, every queue idle, and
    /// opens it. Run once by whoever launches the cluster, before the nodes open it. The new
    /// file is written next to `path` and renamed over it, so a process never sees a
    /// half-written file; processes that still map an old file keep using the old one.
    pub fn create(path: &Path, sites: usize) -> Result<SharedWanQueues, SharedWanError> {
        check_sites(path, sites)?;
        let mut bytes = vec![0u8; file_len(sites)];
        bytes[..HEADER_LEN].copy_from_slice(&header(sites));
        let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
        temp_name.push(format!(".tmp-{}", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SharedWanError::Io { path, source }
        };
        std::fs::write(&temp, &bytes).map_err(io_error(&temp))?;
        if let Err(source) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            return Err(io_error(path)(source));
        }
        SharedWanQueues::open(path, sites)
    }

    /// Opens and maps the queue file at `path`, made by [`SharedWanQueues::create`] for
    /// `sites` sites. Fails, naming the file, if it is missing, unreadable, or not a queue
    /// file of this format version for this many sites.
    pub fn open(path: &Path, sites: usize) -> Result<SharedWanQueues, SharedWanError> {
        check_sites(path, sites)?;
        let io_error = |source| SharedWanError::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |reason: String| SharedWanError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_error)?;
        let actual_len = file.metadata().map_err(io_error)?.len();
        let expected_len = file_len(sites);
        if actual_len < HEADER_LEN as u64 {
            return Err(invalid(format!(
                "not a WAN queue file: {actual_len} bytes, shorter than its header"
            )));
        }
        let mut h = [0u8; HEADER_LEN];
        file.read_exact(&mut h).map_err(io_error)?;
        if h[0..8] != MAGIC {
            return Err(invalid("not a WAN queue file (bad magic number)".into()));
        }
        let field = |range: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b[..range.len()].copy_from_slice(&h[range]);
            u64::from_le_bytes(b)
        };
        let version = field(8..12);
        if version != u64::from(VERSION) {
            return Err(invalid(format!(
                "format version {version}, this program reads version {VERSION}"
            )));
        }
        let file_sites = field(12..16);
        if file_sites != sites as u64 {
            return Err(invalid(format!(
                "made for {file_sites} sites, this topology has {sites}"
            )));
        }
        if field(16..24) != slot_count(sites) as u64 || actual_len != expected_len as u64 {
            return Err(invalid(format!(
                "corrupt: {actual_len} bytes and {} slots, expected {expected_len} bytes and {} \
                 slots",
                field(16..24),
                slot_count(sites)
            )));
        }
        // SAFETY: maps `expected_len` bytes (the file's checked length) of an open read-write
        // file, shared; the result is checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                expected_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io_error(std::io::Error::last_os_error()));
        }
        let Some(ptr) = NonNull::new(ptr.cast::<u8>()) else {
            return Err(invalid("mmap returned a null mapping".into()));
        };
        Ok(SharedWanQueues {
            storage: Storage::Mapped(Mapping {
                ptr,
                len: expected_len,
            }),
            sites,
            path: Some(path.to_path_buf()),
        })
    }

    /// Process-local queues for `sites` sites (all idle): the same sharing, but only between
    /// the sockets of this process that hold this handle.
    pub fn in_process(sites: usize) -> SharedWanQueues {
        SharedWanQueues {
            storage: Storage::Local((0..slot_count(sites)).map(|_| AtomicU64::new(0)).collect()),
            sites,
            path: None,
        }
    }

    /// The number of sites `S`.
    pub fn sites(&self) -> usize {
        self.sites
    }

    /// The mapped file, or `None` for [`SharedWanQueues::in_process`] queues.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The directed queue from site `from` to site `to`; `None` if a site is out of range.
    pub fn pair_slot(&self, from: SiteId, to: SiteId) -> Option<WanSlot> {
        let (a, b) = (from.index(), to.index());
        (a < self.sites && b < self.sites).then_some(WanSlot(a * self.sites + b))
    }

    /// The uplink of site `site`; `None` if it is out of range.
    pub fn uplink_slot(&self, site: SiteId) -> Option<WanSlot> {
        let a = site.index();
        (a < self.sites).then_some(WanSlot(self.sites * self.sites + a))
    }

    fn cell(&self, slot: WanSlot) -> Option<&AtomicU64> {
        let index = slot.0;
        if index >= slot_count(self.sites) {
            return None;
        }
        match &self.storage {
            Storage::Local(cells) => cells.get(index),
            Storage::Mapped(map) => {
                let offset = HEADER_LEN + index * SLOT_STRIDE;
                debug_assert!(offset + 8 <= map.len);
                // SAFETY: `offset + 8 <= len` (the file length was checked against the slot
                // count), the mapping is page-aligned and `offset` a multiple of 8, so the
                // pointer is valid and aligned for an AtomicU64; it lives as long as `self`,
                // which the returned reference borrows; every process only accesses slots
                // atomically.
                Some(unsafe { AtomicU64::from_ptr(map.ptr.as_ptr().add(offset).cast::<u64>()) })
            }
        }
    }

    /// When the queue in `slot` will have serialized everything admitted so far (monotonic
    /// ns; `0` if it never was used); `None` for a slot out of range.
    pub fn busy_until(&self, slot: WanSlot) -> Option<u64> {
        self.cell(slot).map(|cell| cell.load(Ordering::Acquire))
    }

    /// Admits `len` bytes offered at `now_ns` (from [`monotonic_ns`]) to the queue in `slot`,
    /// serialized at `bandwidth_bps`: the queue starts on them when it has serialized what it
    /// already holds (or now, if idle), and they leave it `len * 8 / bandwidth_bps` later.
    /// Returns that departure instant (monotonic ns), or `None` to tail-drop them: when the
    /// bytes still waiting (the backlog at `bandwidth_bps`) plus `len` would exceed
    /// `queue_limit_bytes`, or the slot is out of range. Lock-free: one compare-and-swap
    /// loop, safe between threads and processes.
    pub fn reserve(
        &self,
        slot: WanSlot,
        now_ns: u64,
        len: u64,
        bandwidth_bps: u64,
        queue_limit_bytes: u64,
    ) -> Option<u64> {
        let cell = self.cell(slot)?;
        let bps = u128::from(bandwidth_bps.max(1));
        let tx =
            u64::try_from((u128::from(len) * 8 * 1_000_000_000).div_ceil(bps)).unwrap_or(u64::MAX);
        let mut current = cell.load(Ordering::Acquire);
        loop {
            let start = if current > now_ns.saturating_add(STALE_NS) {
                now_ns
            } else {
                current.max(now_ns)
            };
            let backlog_bytes = u128::from(start - now_ns) * bps / 8 / 1_000_000_000;
            if backlog_bytes + u128::from(len) > u128::from(queue_limit_bytes) {
                return None;
            }
            let end = start.saturating_add(tx);
            match cell.compare_exchange_weak(current, end, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(end),
                Err(actual) => current = actual,
            }
        }
    }
}
