//! The embedded engine: a WAL for durability, an in-memory head for recent
//! spans, and immutable blocks on an object store (the local filesystem by
//! default) for everything older.
//!
//! Write path: the caller encodes its batch, hands it to the single WAL
//! thread and waits. The thread appends every batch waiting for it, syncs
//! once per group (the `batch` policy), inserts the spans into the head and
//! only then acknowledges: a span is readable exactly when it is durable.
//! When the head is big or old enough the thread "cuts" it: the head is
//! frozen (still readable), a new WAL segment is started, and a task writes
//! the frozen head as a block, registers it, and deletes the WAL segments
//! the block now covers.

mod block;
mod head;
mod space;
pub mod wal;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use waymark_model::{Span, SpanId, SpanKind, Trace, TraceId};

pub use block::{BLOCK_VERSION, BlockIndex, BlockMeta};
use head::Head;
pub use space::{DiskSpace, Watermark};

use crate::{
    DependencyLink, Operation, Result, RetentionReport, Storage, StorageError, StorageErrorKind,
    StorageHealth, StorageStats, TraceHit, TraceQuery, codec, rank_traces,
};

/// When the WAL is synced to disk before a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// fsync after every write, each on its own: safest, slowest.
    Always,
    /// Group commit: writes that arrive together share one fsync, and each is
    /// acknowledged after the fsync that covers it. Survives power loss.
    #[default]
    Batch,
    /// No fsync: acknowledged once the OS has the bytes. Survives a crash of
    /// Waymark, not of the machine.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "batch" => Ok(FsyncPolicy::Batch),
            "never" => Ok(FsyncPolicy::Never),
            _ => Err(format!(
                "unknown fsync policy {s:?}: expected always, batch or never"
            )),
        }
    }
}

/// Settings of the embedded engine.
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Cut a block when the head holds this many spans.
    pub head_max_spans: usize,
    /// ... or this many encoded bytes.
    pub head_max_bytes: usize,
    /// ... or its oldest span arrived this long ago.
    pub head_max_age: Duration,
    /// Uncompressed size a block page aims for.
    pub page_target_bytes: usize,
    pub zstd_level: i32,
    /// Inflated pages kept in memory for repeated reads.
    pub page_cache_pages: usize,
    /// Free space below which writes are refused.
    pub watermark: Watermark,
    /// Faults injected into WAL writes (tests only).
    pub wal_faults: FaultHook,
}

/// Faults a test injects into the engine's WAL writes; empty in production.
#[derive(Clone, Default)]
pub struct FaultHook(pub Option<Arc<dyn wal::WalFaults>>);

impl std::fmt::Debug for FaultHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "FaultHook(set)"
        } else {
            "FaultHook(none)"
        })
    }
}

impl EmbeddedConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            fsync: FsyncPolicy::Batch,
            head_max_spans: 250_000,
            head_max_bytes: 96 << 20,
            head_max_age: Duration::from_secs(120),
            page_target_bytes: 256 << 10,
            zstd_level: 3,
            page_cache_pages: 64,
            watermark: Watermark::default(),
            wal_faults: FaultHook::default(),
        }
    }
}

struct Block {
    path: ObjPath,
    index: BlockIndex,
    size: u64,
}

struct State {
    head: Head,
    frozen: Vec<Arc<Head>>,
    blocks: Vec<Arc<Block>>,
}

struct Shared {
    cfg: EmbeddedConfig,
    store: Arc<dyn ObjectStore>,
    wal_dir: PathBuf,
    state: RwLock<State>,
    cache: Mutex<PageCache>,
    ready: AtomicBool,
    /// Set by `close`: background retries stop.
    closed: AtomicBool,
    stored_spans: AtomicU64,
    counters: Counters,
    condition: Mutex<Condition>,
    /// Blocks being repaired (by path), so each is repaired once.
    repairing: Mutex<BTreeSet<String>>,
    /// Opened beside a writer in another process: nothing on disk changes.
    read_only: bool,
}

/// Fault counters, read by `stats`.
#[derive(Default)]
struct Counters {
    wal_faults: AtomicU64,
    refused_writes: AtomicU64,
    block_write_failures: AtomicU64,
    corrupt_files: AtomicU64,
    /// Last free-space reading; `u64::MAX` before the first.
    disk_free: AtomicU64,
    /// Bytes in the WAL directory at the last reading, taken by the WAL
    /// thread with the free space so a metrics scrape never lists files.
    wal_bytes: AtomicU64,
}

/// The engine's fault state, read by `health`.
#[derive(Default)]
struct Condition {
    /// Why writes are refused now (published by the WAL thread).
    refusing: Option<String>,
    /// Standing warnings by subject (a file, "block writes").
    warnings: BTreeMap<String, String>,
}

impl Shared {
    fn new(
        cfg: EmbeddedConfig,
        store: Arc<dyn ObjectStore>,
        wal_dir: PathBuf,
        state: State,
        stored_spans: u64,
        read_only: bool,
    ) -> Shared {
        Shared {
            store,
            wal_dir,
            state: RwLock::new(state),
            cache: Mutex::new(PageCache::new(cfg.page_cache_pages)),
            ready: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stored_spans: AtomicU64::new(stored_spans),
            counters: Counters {
                disk_free: AtomicU64::new(u64::MAX),
                wal_bytes: AtomicU64::new(0),
                ..Default::default()
            },
            condition: Mutex::new(Condition::default()),
            repairing: Mutex::new(BTreeSet::new()),
            read_only,
            cfg,
        }
    }

    fn warn(&self, subject: impl Into<String>, message: impl Into<String>) {
        self.condition
            .lock()
            .warnings
            .insert(subject.into(), message.into());
    }

    fn clear_warning(&self, subject: &str) {
        self.condition.lock().warnings.remove(subject);
    }

    /// Counts and reports a damaged file.
    fn report_corrupt(&self, subject: String, message: String) {
        self.counters.corrupt_files.fetch_add(1, Ordering::Relaxed);
        tracing::error!(file = %subject, problem = %message, "damaged file found");
        self.warn(subject, message);
    }
}

enum Cmd {
    Write {
        payload: Vec<u8>,
        spans: Vec<Span>,
        ack: oneshot::Sender<Result<()>>,
    },
    Cut {
        ack: oneshot::Sender<Option<oneshot::Receiver<Result<()>>>>,
    },
    Shutdown,
}

/// The embedded engine. Cheap to share behind an `Arc`.
pub struct EmbeddedStorage {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Cmd>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Adaptive sampling's state, in `<data-dir>/sampling/`.
    sampling: Arc<crate::sampling::FileSamplingStore>,
}

/// How long throughput buckets are kept for adaptive sampling.
const SAMPLING_KEEP: Duration = Duration::from_secs(24 * 3600);

const BLOCK_PREFIX: &str = "blocks";

/// Most traces whose calls cross block boundaries that one dependencies
/// query resolves (each costs a page read).
const MAX_ORPHAN_TRACES: usize = 10_000;
const BLOCK_SUFFIX: &str = ".wmb";

fn io(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    StorageError::with_source(StorageErrorKind::Io, what, e)
}

impl EmbeddedStorage {
    /// Opens (or creates) the store in `cfg.data_dir`, loads block indexes
    /// and replays the WAL. Must be called inside a Tokio runtime.
    pub async fn open(cfg: EmbeddedConfig) -> Result<Self> {
        let wal_dir = cfg.data_dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(|e| io("creating wal directory", e))?;
        std::fs::create_dir_all(cfg.data_dir.join(BLOCK_PREFIX))
            .map_err(|e| io("creating block directory", e))?;
        let store: Arc<dyn ObjectStore> = Arc::new(
            LocalFileSystem::new_with_prefix(&cfg.data_dir)
                .map_err(|e| io("opening block store", e))?,
        );

        let (blocks, damaged_blocks) = load_blocks(store.as_ref()).await?;
        let covered: Vec<(u64, u64)> = blocks
            .iter()
            .map(|b| {
                (
                    b.index.meta.wal_first_segment,
                    b.index.meta.wal_last_segment,
                )
            })
            .collect();
        let max_covered = covered.iter().map(|c| c.1).max().unwrap_or(0);

        let replay = replay_wal(&cfg.data_dir, &covered, max_covered, false)?;

        let stored: u64 = blocks.iter().map(|b| b.index.meta.span_count).sum();
        let shared = Arc::new(Shared::new(
            cfg,
            store,
            wal_dir.clone(),
            State {
                head: replay.head,
                frozen: Vec::new(),
                blocks: blocks.into_iter().map(Arc::new).collect(),
            },
            stored + replay.spans as u64,
            false,
        ));
        for (subject, message) in replay.damaged {
            shared.report_corrupt(subject, message);
        }
        // Damaged blocks are repaired before the store opens, so that what
        // it serves from the start is everything still intact.
        for d in damaged_blocks {
            repair_block(&shared, d.path, None, d.why).await;
        }
        tokio::spawn(scrub_blocks(shared.clone()));
        let mut writer = WalWriter::new(
            shared.clone(),
            tokio::runtime::Handle::current(),
            replay.next_seq,
        );
        // A store that cannot start its first segment still opens: it
        // serves reads and refuses writes until the segment can be made.
        writer.start_segment();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("waymark-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io("starting wal thread", e))?;
        shared.ready.store(true, Ordering::Release);
        let sampling = Arc::new(crate::sampling::FileSamplingStore::open(
            shared.cfg.data_dir.join("sampling"),
            SAMPLING_KEEP,
            false,
        )?);
        Ok(EmbeddedStorage {
            shared,
            tx,
            thread: Mutex::new(Some(thread)),
            sampling,
        })
    }

    /// Opens the store for reading beside a writer in another process (the
    /// `query` mode): nothing on disk is changed, writes are refused, and
    /// [`EmbeddedStorage::refresh`] picks up new blocks and WAL records.
    pub async fn open_read_only(cfg: EmbeddedConfig) -> Result<Self> {
        let wal_dir = cfg.data_dir.join("wal");
        if !wal_dir.exists() {
            return Err(StorageError::new(
                StorageErrorKind::Invalid,
                format!(
                    "{} holds no waymark store (no wal directory); start a collector on it first",
                    cfg.data_dir.display()
                ),
            ));
        }
        let store: Arc<dyn ObjectStore> = Arc::new(
            LocalFileSystem::new_with_prefix(&cfg.data_dir)
                .map_err(|e| io("opening block store", e))?,
        );
        let (tx, _rx) = mpsc::channel();
        let sampling = Arc::new(crate::sampling::FileSamplingStore::open(
            cfg.data_dir.join("sampling"),
            SAMPLING_KEEP,
            true,
        )?);
        let s = EmbeddedStorage {
            shared: Arc::new(Shared::new(
                cfg,
                store,
                wal_dir,
                State {
                    head: Head::new(0),
                    frozen: Vec::new(),
                    blocks: Vec::new(),
                },
                0,
                true,
            )),
            tx,
            thread: Mutex::new(None),
            sampling,
        };
        s.refresh().await?;
        s.shared.ready.store(true, Ordering::Release);
        Ok(s)
    }

    /// Re-reads the block list and the WAL (read-only mode).
    pub async fn refresh(&self) -> Result<()> {
        let (blocks, damaged) = load_blocks(self.shared.store.as_ref()).await?;
        for d in damaged {
            repair_block(&self.shared, d.path, None, d.why).await;
        }
        let covered: Vec<(u64, u64)> = blocks
            .iter()
            .map(|b| {
                (
                    b.index.meta.wal_first_segment,
                    b.index.meta.wal_last_segment,
                )
            })
            .collect();
        let max_covered = covered.iter().map(|c| c.1).max().unwrap_or(0);
        let replay = replay_wal(&self.shared.cfg.data_dir, &covered, max_covered, true)?;
        for (subject, message) in replay.damaged {
            let known = self.shared.condition.lock().warnings.contains_key(&subject);
            if !known {
                self.shared.report_corrupt(subject, message);
            }
        }
        let (head, replayed) = (replay.head, replay.spans);
        let stored: u64 = blocks.iter().map(|b| b.index.meta.span_count).sum();
        let mut st = self.shared.state.write();
        // Keep already-loaded blocks (and their cached pages) by id.
        let mut next: Vec<Arc<Block>> = Vec::with_capacity(blocks.len());
        for b in blocks {
            match st
                .blocks
                .iter()
                .find(|o| o.index.meta.id == b.index.meta.id)
            {
                Some(o) => next.push(o.clone()),
                None => next.push(Arc::new(b)),
            }
        }
        st.blocks = next;
        st.head = head;
        self.shared
            .stored_spans
            .store(stored + replayed as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Stops the WAL thread after it has written what it holds. Writes after
    /// this fail with `Unavailable`.
    pub fn close(&self) {
        self.shared.ready.store(false, Ordering::Release);
        self.shared.closed.store(true, Ordering::Release);
        let _ = self.tx.send(Cmd::Shutdown);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// The inflated bytes of a page, from the cache or the store.
    async fn read_page(&self, block: &Arc<Block>, page_no: u32) -> Result<Arc<Vec<u8>>> {
        let key = (block.index.meta.id.clone(), page_no);
        if let Some(p) = self.shared.cache.lock().get(&key) {
            return Ok(p);
        }
        let page = &block.index.pages[page_no as usize];
        let bytes = self
            .shared
            .store
            .get_range(&block.path, page.offset..page.offset + page.len as u64)
            .await
            .map_err(|e| io(format!("reading {}", block.path), e))?;
        let raw = match block::inflate_page(&bytes, page) {
            Ok(raw) => Arc::new(raw),
            Err(e) => {
                let msg = format!(
                    "block {} is damaged: page {page_no} fails its check ({e}); {}",
                    block.path,
                    if self.shared.read_only {
                        "the writing process repairs it"
                    } else {
                        "its intact pages are being moved to a repaired block and the damaged file set aside (see /ready)"
                    }
                );
                let sh = self.shared.clone();
                let b = block.clone();
                tokio::spawn(async move {
                    repair_block(&sh, b.path.clone(), Some(b), e).await;
                });
                return Err(StorageError::new(StorageErrorKind::Corrupt, msg));
            }
        };
        self.shared.cache.lock().put(key, raw.clone());
        Ok(raw)
    }
}

impl Drop for EmbeddedStorage {
    fn drop(&mut self) {
        self.close();
    }
}

/// What replaying the WAL rebuilt.
struct WalReplay {
    head: Head,
    next_seq: u64,
    spans: usize,
    /// Damaged segments: (file, what was found).
    damaged: Vec<(String, String)>,
}

/// Where damaged files are copied or moved, under the data directory.
const QUARANTINE_DIR: &str = "quarantine";

/// Rebuilds the head from the WAL segments no block covers. A writer
/// deletes covered segments and truncates torn tails; a read-only opener
/// touches nothing. A segment with damage (bad records followed by good
/// ones, or a whole record whose checksum fails) keeps every good record;
/// a writer copies it to `quarantine/` first, for inspection.
fn replay_wal(
    data_dir: &std::path::Path,
    covered: &[(u64, u64)],
    max_covered: u64,
    read_only: bool,
) -> Result<WalReplay> {
    let wal_dir = data_dir.join("wal");
    let wal_dir = wal_dir.as_path();
    let segments = wal::list_segments(wal_dir)?;
    let next_seq = segments.last().copied().unwrap_or(0).max(max_covered) + 1;
    let mut head = Head::new(next_seq);
    let mut replayed = 0usize;
    let mut damaged = Vec::new();
    for &seq in &segments {
        if covered.iter().any(|(a, b)| (*a..=*b).contains(&seq)) {
            // Its block was written before a crash kept us from deleting
            // the segment.
            if !read_only {
                let _ = std::fs::remove_file(wal::segment_path(wal_dir, seq));
            }
            continue;
        }
        let path = wal::segment_path(wal_dir, seq);
        let r = match wal::replay_segment(wal_dir, seq, true) {
            Ok(r) => r,
            // The writer deleted it since we listed the directory.
            Err(_) if read_only && !path.exists() => continue,
            Err(e) if e.kind == StorageErrorKind::Corrupt => {
                // Not a segment at all (its header is bad): set it aside
                // whole rather than refuse to start.
                let name = path.display().to_string();
                if !read_only {
                    let _ = quarantine_file(data_dir, &path, true);
                }
                damaged.push((name, format!("{e}; moved to {QUARANTINE_DIR}/")));
                continue;
            }
            Err(e) => return Err(e),
        };
        let r = if r.is_corrupt() {
            let skipped: u64 = r.damage.iter().map(|d| d.len).sum::<u64>()
                + if r.tail_corrupt { r.truncated_bytes } else { 0 };
            let mut msg = format!(
                "wal segment has damaged records: {skipped} bytes in {} place(s) fail their checksums; \
                 the {} good records around them were kept",
                r.damage.len() + usize::from(r.tail_corrupt),
                r.records.len()
            );
            if !read_only {
                match quarantine_file(data_dir, &path, false) {
                    Ok(to) => msg.push_str(&format!("; a copy is in {}", to.display())),
                    Err(e) => msg.push_str(&format!("; could not keep a copy: {e}")),
                }
            }
            damaged.push((path.display().to_string(), msg));
            if read_only {
                r
            } else {
                wal::replay_segment(wal_dir, seq, false)?
            }
        } else if r.truncated_bytes > 0 && !read_only {
            wal::replay_segment(wal_dir, seq, false)?
        } else {
            r
        };
        if r.truncated_bytes > 0 && !read_only && !r.tail_corrupt {
            tracing::warn!(
                segment = seq,
                bytes = r.truncated_bytes,
                "truncated torn wal tail"
            );
        }
        if head.is_empty() {
            head.first_segment = seq;
        }
        for rec in r.records {
            match codec::decode_spans(&rec) {
                Ok(spans) => {
                    replayed += spans.len();
                    head.insert(spans, rec.len());
                }
                // Its checksum held, so this is a batch of a version we
                // cannot read: report it, keep the rest.
                Err(e) => damaged.push((
                    path.display().to_string(),
                    format!("a wal record could not be decoded: {e}"),
                )),
            }
        }
        if head.is_empty() && !read_only {
            let _ = std::fs::remove_file(&path);
        }
    }
    if head.is_empty() {
        head.first_segment = next_seq;
    }
    head.last_segment = next_seq;
    if replayed > 0 && !read_only {
        tracing::info!(spans = replayed, "replayed wal");
    }
    Ok(WalReplay {
        head,
        next_seq,
        spans: replayed,
        damaged,
    })
}

/// Copies (or moves) a damaged file into `quarantine/`, named after it and
/// the time, and returns where it went.
fn quarantine_file(
    data_dir: &std::path::Path,
    path: &std::path::Path,
    move_it: bool,
) -> std::io::Result<PathBuf> {
    let dir = data_dir.join(QUARANTINE_DIR);
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = dir.join(format!(
        "{}-{name}",
        waymark_model::now_unix_nanos() / 1_000_000
    ));
    if move_it {
        std::fs::rename(path, &to)?;
    } else {
        std::fs::copy(path, &to)?;
    }
    Ok(to)
}

/// A block that could not be opened because it is damaged.
struct DamagedBlock {
    path: ObjPath,
    why: StorageError,
}

async fn load_blocks(store: &dyn ObjectStore) -> Result<(Vec<Block>, Vec<DamagedBlock>)> {
    let prefix = ObjPath::from(BLOCK_PREFIX);
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| io("listing blocks", e))?;
    let mut out = Vec::new();
    let mut damaged = Vec::new();
    for m in metas {
        if !m.location.as_ref().ends_with(BLOCK_SUFFIX) {
            continue;
        }
        match load_block(store, m.location.clone(), m.size).await {
            Ok(b) => out.push(b),
            Err(e) if e.kind == StorageErrorKind::Corrupt => damaged.push(DamagedBlock {
                path: m.location,
                why: e,
            }),
            Err(e) => {
                tracing::error!(block = %m.location, error = %e, "skipping unreadable block")
            }
        }
    }
    Ok((out, damaged))
}

async fn load_block(store: &dyn ObjectStore, path: ObjPath, size: u64) -> Result<Block> {
    if size < block::FOOTER_LEN {
        return Err(StorageError::new(
            StorageErrorKind::Corrupt,
            "block too short",
        ));
    }
    let footer = store
        .get_range(&path, size - block::FOOTER_LEN..size)
        .await
        .map_err(|e| io("reading block footer", e))?;
    let (off, len, crc, version) = block::parse_footer(&footer, size)?;
    let idx = store
        .get_range(&path, off..off + len as u64)
        .await
        .map_err(|e| io("reading block index", e))?;
    let index = block::parse_index(&idx, crc, version)?;
    Ok(Block { path, index, size })
}

const QUARANTINE_PREFIX: &str = "quarantine/blocks";

/// Repairs a damaged block: its intact pages (all of them found by the
/// page table when `known` carries a verified index, else by scanning the
/// file) are written as a new block `<id>-repaired`, the new block replaces
/// the old one in the serving set, and the damaged file is moved to
/// `quarantine/blocks/`. The new block is written before the old one is
/// moved, under a name derived from the old one, so a crash in between
/// repeats the same repair instead of duplicating spans. A read-only
/// process only reports.
async fn repair_block(
    shared: &Arc<Shared>,
    path: ObjPath,
    known: Option<Arc<Block>>,
    why: StorageError,
) {
    let subject = path.to_string();
    if shared.read_only && shared.condition.lock().warnings.contains_key(&subject) {
        return;
    }
    if !shared.repairing.lock().insert(subject.clone()) {
        return;
    }
    let outcome = repair_block_inner(shared, &path, known.as_deref(), &why).await;
    let message = match outcome {
        Ok(m) => m,
        Err(e) => format!(
            "damaged ({why}) and could not be repaired: {}",
            error_chain(&e)
        ),
    };
    shared.report_corrupt(subject.clone(), message);
    shared.repairing.lock().remove(&subject);
}

async fn repair_block_inner(
    shared: &Arc<Shared>,
    path: &ObjPath,
    known: Option<&Block>,
    why: &StorageError,
) -> Result<String> {
    if shared.read_only {
        return Ok(format!(
            "damaged ({why}); skipped by this read-only process, the writing process repairs it"
        ));
    }
    let bytes = shared
        .store
        .get(path)
        .await
        .map_err(|e| io(format!("reading {path}"), e))?
        .bytes()
        .await
        .map_err(|e| io(format!("reading {path}"), e))?;
    let index = known.map(|b| b.index.clone());
    let (salvage, index) = tokio::task::spawn_blocking(move || {
        let s = block::salvage(&bytes, index.as_ref());
        (s, index)
    })
    .await
    .map_err(|e| io("block repair panicked", e))?;
    let stem = path
        .filename()
        .and_then(|n| n.strip_suffix(BLOCK_SUFFIX))
        .unwrap_or("block")
        .to_string();
    let mut repaired = None;
    if !salvage.spans.is_empty() {
        let id = format!("{stem}-repaired");
        let cfg = shared.cfg.clone();
        let segments = index
            .as_ref()
            .map(|i| (i.meta.wal_first_segment, i.meta.wal_last_segment))
            .unwrap_or((1, 0));
        let spans = salvage.spans;
        let (data, new_index) = tokio::task::spawn_blocking(move || {
            block::build_block(id, &spans, segments, cfg.page_target_bytes, cfg.zstd_level)
        })
        .await
        .map_err(|e| io("block builder panicked", e))??;
        let new_path = ObjPath::from(format!(
            "{BLOCK_PREFIX}/{}{BLOCK_SUFFIX}",
            new_index.meta.id
        ));
        let size = data.len() as u64;
        shared
            .store
            .put(&new_path, data.into())
            .await
            .map_err(|e| io(format!("writing {new_path}"), e))?;
        repaired = Some(Arc::new(Block {
            path: new_path,
            index: new_index,
            size,
        }));
    }
    let to = ObjPath::from(format!(
        "{QUARANTINE_PREFIX}/{}",
        path.filename().unwrap_or("block")
    ));
    shared
        .store
        .rename(path, &to)
        .await
        .map_err(|e| io(format!("moving {path} to {to}"), e))?;
    let recovered = repaired.as_ref().map_or(0, |b| b.index.meta.span_count);
    let lost_note = match &index {
        Some(i) => format!(
            "{} of its {} spans recovered from {} intact page(s), {} page(s) lost",
            recovered, i.meta.span_count, salvage.good_pages, salvage.bad_pages
        ),
        None => format!(
            "{recovered} spans recovered from {} intact page(s) found by scanning it",
            salvage.good_pages
        ),
    };
    {
        let mut st = shared.state.write();
        let before = st.blocks.len();
        st.blocks.retain(|b| &b.path != path);
        let removed = st.blocks.len() != before;
        if let Some(b) = &repaired {
            st.blocks.retain(|o| o.path != b.path);
            st.blocks.push(b.clone());
        }
        if removed && let Some(i) = &index {
            shared
                .stored_spans
                .fetch_sub(i.meta.span_count, Ordering::Relaxed);
        }
        shared.stored_spans.fetch_add(recovered, Ordering::Relaxed);
    }
    if let Some(i) = &index {
        shared.cache.lock().forget_block(&i.meta.id);
    }
    Ok(format!(
        "damaged ({why}); {lost_note}{}; the damaged file was moved to {to}",
        repaired
            .as_ref()
            .map(|b| format!(" into {}", b.path))
            .unwrap_or_default()
    ))
}

/// Verifies the page checksums of every block once after start-up, so that
/// damage is found and repaired before a query needs the page.
async fn scrub_blocks(shared: Arc<Shared>) {
    let blocks = shared.state.read().blocks.clone();
    let mut checked = 0usize;
    for b in blocks {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        for (n, page) in b.index.pages.iter().enumerate() {
            let bytes = match shared
                .store
                .get_range(&b.path, page.offset..page.offset + page.len as u64)
                .await
            {
                Ok(bytes) => bytes,
                // Deleted by retention meanwhile, or unreadable now: the
                // read path reports what matters.
                Err(_) => break,
            };
            if crc32c::crc32c(&bytes) != page.crc {
                let why = StorageError::new(
                    StorageErrorKind::Corrupt,
                    format!("page {n} checksum mismatch"),
                );
                repair_block(&shared, b.path.clone(), Some(b.clone()), why).await;
                break;
            }
        }
        checked += 1;
    }
    tracing::debug!(blocks = checked, "block scrub done");
}

type Pending = Vec<(Vec<Span>, usize, oneshot::Sender<Result<()>>)>;

/// First wait before retrying a failed segment creation; doubled up to
/// [`RETRY_MAX`] while it keeps failing.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often the free space is read while writes come in.
const SPACE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// The WAL thread's state: the segment being appended to, or why there is
/// none. Every state change is logged once and published to
/// `Shared::condition`, which `/ready` reads.
struct WalWriter {
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
    segment: Option<wal::SegmentWriter>,
    /// The number the next segment gets.
    next_seq: u64,
    /// Why no segment is open, when to try again and the wait after that.
    fault: Option<(String, Instant, Duration)>,
    /// Set while the free space is below the watermark.
    low_space: Option<String>,
    space_checked: Option<Instant>,
    pending: Pending,
}

impl WalWriter {
    fn new(shared: Arc<Shared>, rt: tokio::runtime::Handle, next_seq: u64) -> Self {
        WalWriter {
            shared,
            rt,
            segment: None,
            next_seq,
            fault: None,
            low_space: None,
            space_checked: None,
            pending: Vec::new(),
        }
    }

    /// Why a write would be refused now.
    fn refusal(&self) -> Option<&str> {
        if let Some((why, ..)) = &self.fault {
            return Some(why);
        }
        if self.segment.is_none() {
            return Some("the wal has no open segment");
        }
        self.low_space.as_deref()
    }

    fn publish(&self) {
        let refusing = self.refusal().map(str::to_string);
        self.shared.condition.lock().refusing = refusing;
    }

    /// Starts segment `next_seq` (durably), or enters the fault state with
    /// a retry scheduled.
    fn start_segment(&mut self) {
        let seq = self.next_seq;
        match wal::SegmentWriter::create_with(
            &self.shared.wal_dir,
            seq,
            self.shared.cfg.wal_faults.0.clone(),
        ) {
            Ok(seg) => {
                self.next_seq = seq + 1;
                self.shared.state.write().head.last_segment = seq;
                self.segment = Some(seg);
                if let Some((why, ..)) = self.fault.take() {
                    tracing::info!(segment = seq, after = %why, "wal accepts writes again");
                }
            }
            Err(e) => {
                self.shared
                    .counters
                    .wal_faults
                    .fetch_add(1, Ordering::Relaxed);
                let why = format!("cannot start wal segment {seq}: {}", error_chain(&e));
                let wait = match &self.fault {
                    None => {
                        tracing::error!(segment = seq, error = %why, "wal refuses writes until a new segment can be started");
                        RETRY_FIRST
                    }
                    Some((_, _, wait)) => (*wait * 2).min(RETRY_MAX),
                };
                self.fault = Some((why, Instant::now() + wait, wait));
            }
        }
        self.publish();
    }

    /// Periodic work: retry a failed segment, read the free space, cut the
    /// head when it is due.
    fn tick(&mut self) {
        if let Some((_, at, _)) = &self.fault
            && Instant::now() >= *at
        {
            self.start_segment();
        }
        self.check_space();
        self.maybe_cut(false);
    }

    fn check_space(&mut self) {
        let wm = self.shared.cfg.watermark;
        if self
            .space_checked
            .is_some_and(|t| t.elapsed() < SPACE_CHECK_EVERY)
        {
            return;
        }
        self.space_checked = Some(Instant::now());
        self.shared
            .counters
            .wal_bytes
            .store(dir_bytes(&self.shared.wal_dir), Ordering::Relaxed);
        let Ok(space) = DiskSpace::of(&self.shared.wal_dir) else {
            return;
        };
        self.shared
            .counters
            .disk_free
            .store(space.free, Ordering::Relaxed);
        let low = wm.is_low(space, self.low_space.is_some());
        match (low, self.low_space.is_some()) {
            (true, false) => {
                let why = wm.reason(space, &self.shared.cfg.data_dir);
                tracing::warn!(
                    free_bytes = space.free,
                    threshold_bytes = wm.threshold(space.total),
                    "free space below the watermark; refusing writes"
                );
                self.low_space = Some(why);
                self.publish();
                // Writing the head as a block frees its WAL segments, and
                // the room kept free is there for exactly that.
                self.maybe_cut(true);
            }
            (true, true) => {
                self.low_space = Some(wm.reason(space, &self.shared.cfg.data_dir));
                self.publish();
                self.maybe_cut(true);
            }
            (false, true) => {
                tracing::info!(
                    free_bytes = space.free,
                    "free space above the watermark again; accepting writes"
                );
                self.low_space = None;
                self.publish();
            }
            (false, false) => {}
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let policy = self.shared.cfg.fsync;
        // The first readings, so that metrics have them from the start.
        self.check_space();
        loop {
            let wait = match &self.fault {
                Some((_, at, _)) => at
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(500)),
                None => Duration::from_millis(500),
            };
            let first = match rx.recv_timeout(wait) {
                Ok(c) => c,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.tick();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            self.tick();
            let mut cmds = vec![first];
            while cmds.len() < 4096 {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            let mut shutdown = false;
            for cmd in cmds {
                match cmd {
                    Cmd::Write {
                        payload,
                        spans,
                        ack,
                    } => {
                        if let Some(why) = self.refusal() {
                            self.shared
                                .counters
                                .refused_writes
                                .fetch_add(1, Ordering::Relaxed);
                            let _ = ack.send(Err(StorageError::new(
                                StorageErrorKind::Unavailable,
                                why.to_string(),
                            )));
                            continue;
                        }
                        if let Some(seg) = self.segment.as_mut() {
                            seg.append(&payload);
                        }
                        self.pending.push((spans, payload.len(), ack));
                        if policy == FsyncPolicy::Always {
                            self.commit(true);
                        }
                    }
                    Cmd::Cut { ack } => {
                        self.commit(policy != FsyncPolicy::Never);
                        let done = self.cut();
                        let _ = ack.send(done);
                    }
                    Cmd::Shutdown => shutdown = true,
                }
            }
            self.commit(policy == FsyncPolicy::Batch);
            if shutdown {
                return;
            }
            self.maybe_cut(false);
        }
    }

    /// Writes queued records, then makes their spans readable and
    /// acknowledges. A failed write or sync fails every queued record and
    /// closes the segment: nothing is appended behind a failure, and no
    /// record is acknowledged again until a new segment is durably started.
    fn commit(&mut self, sync: bool) {
        if self.pending.is_empty() {
            return;
        }
        let Some(seg) = self.segment.as_mut() else {
            for (_, _, ack) in self.pending.drain(..) {
                let _ = ack.send(Err(StorageError::new(
                    StorageErrorKind::Unavailable,
                    "the wal has no open segment",
                )));
            }
            return;
        };
        match seg.write_out(sync) {
            Ok(()) => {
                let mut n = 0;
                {
                    let mut st = self.shared.state.write();
                    for (spans, len, _) in self.pending.iter_mut() {
                        n += spans.len();
                        st.head.insert(std::mem::take(spans), *len);
                    }
                }
                self.shared
                    .stored_spans
                    .fetch_add(n as u64, Ordering::Relaxed);
                for (_, _, ack) in self.pending.drain(..) {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                let seq = seg.seq;
                self.shared
                    .counters
                    .wal_faults
                    .fetch_add(1, Ordering::Relaxed);
                let why = format!(
                    "wal write failed ({}); writes are refused until a new segment is started",
                    error_chain(&e)
                );
                tracing::error!(segment = seq, records = self.pending.len(), error = %why, "wal write failed; segment closed");
                self.segment = None;
                // Wait a little before the next segment: the disk that just
                // failed is most likely still full, and a new segment per
                // failed request would only litter the directory.
                self.fault = Some((why.clone(), Instant::now() + RETRY_FIRST, RETRY_FIRST));
                // Published before the refusals go out, so a client that
                // reads the health after its refusal sees the fault.
                self.publish();
                for (_, _, ack) in self.pending.drain(..) {
                    let _ = ack.send(Err(StorageError::new(
                        StorageErrorKind::Unavailable,
                        why.clone(),
                    )));
                }
            }
        }
    }

    fn maybe_cut(&mut self, low_space: bool) {
        let due = {
            let st = self.shared.state.read();
            let h = &st.head;
            !h.is_empty()
                && if low_space {
                    // One block write at a time while space is short.
                    st.frozen.is_empty()
                } else {
                    h.spans.len() >= self.shared.cfg.head_max_spans
                        || h.approx_bytes >= self.shared.cfg.head_max_bytes
                        || h.created.elapsed() >= self.shared.cfg.head_max_age
                }
        };
        if due {
            self.cut();
        }
    }

    /// Freezes the head and starts writing it as a block. Returns a receiver
    /// for the first block write's outcome, or `None` when nothing was cut.
    fn cut(&mut self) -> Option<oneshot::Receiver<Result<()>>> {
        if self.shared.state.read().head.is_empty() {
            return None;
        }
        let old_seq = self.segment.as_ref()?.seq;
        let next = self.next_seq;
        let new_segment = match wal::SegmentWriter::create_with(
            &self.shared.wal_dir,
            next,
            self.shared.cfg.wal_faults.0.clone(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot start a new wal segment; not cutting a block");
                return None;
            }
        };
        self.next_seq = next + 1;
        let frozen = {
            let mut st = self.shared.state.write();
            let mut old = std::mem::replace(&mut st.head, Head::new(next));
            old.last_segment = old_seq;
            let frozen = Arc::new(old);
            st.frozen.push(frozen.clone());
            frozen
        };
        self.segment = Some(new_segment);
        let (tx, rx) = oneshot::channel();
        self.rt
            .spawn(write_block_until_done(self.shared.clone(), frozen, tx));
        Some(rx)
    }
}

/// "what: cause: cause…" for logs and client messages.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

const BLOCK_RETRY_FIRST: Duration = Duration::from_millis(500);
const BLOCK_RETRY_MAX: Duration = Duration::from_secs(5);
const BLOCK_WRITES: &str = "block writes";

/// Writes a frozen head as a block, retrying with backoff until it is
/// stored or the engine closes: its spans stay readable in memory and
/// durable in the WAL meanwhile. `first` gets the first attempt's outcome.
async fn write_block_until_done(
    shared: Arc<Shared>,
    frozen: Arc<Head>,
    first: oneshot::Sender<Result<()>>,
) {
    let mut first = Some(first);
    let mut wait = BLOCK_RETRY_FIRST;
    let mut failures = 0u32;
    loop {
        match write_block(&shared, frozen.clone()).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(
                        failures,
                        spans = frozen.spans.len(),
                        "block written after earlier failures"
                    );
                    shared.clear_warning(BLOCK_WRITES);
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                return;
            }
            Err(e) => {
                shared
                    .counters
                    .block_write_failures
                    .fetch_add(1, Ordering::Relaxed);
                let why = error_chain(&e);
                if failures == 0 {
                    tracing::error!(error = %why, spans = frozen.spans.len(), "block write failed; its spans stay in memory and in the wal, retrying");
                }
                failures += 1;
                shared.warn(
                    BLOCK_WRITES,
                    format!("a block write failed {failures} time(s), retrying: {why}"),
                );
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                }
            }
        }
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(BLOCK_RETRY_MAX);
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
    }
}

async fn write_block(shared: &Arc<Shared>, frozen: Arc<Head>) -> Result<()> {
    let id = format!(
        "{:013}-{:016x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
        rand::random::<u64>()
    );
    let cfg = shared.cfg.clone();
    let f2 = frozen.clone();
    let (bytes, index) = tokio::task::spawn_blocking(move || {
        block::build_block(
            id,
            &f2.spans,
            (f2.first_segment, f2.last_segment),
            cfg.page_target_bytes,
            cfg.zstd_level,
        )
    })
    .await
    .map_err(|e| io("block builder panicked", e))??;
    let path = ObjPath::from(format!("{BLOCK_PREFIX}/{}{BLOCK_SUFFIX}", index.meta.id));
    let size = bytes.len() as u64;
    shared
        .store
        .put(&path, bytes.into())
        .await
        .map_err(|e| io(format!("writing {path}"), e))?;
    let spans = index.meta.span_count;
    tracing::debug!(block = %path, spans, bytes = size, "wrote block");
    {
        let mut st = shared.state.write();
        st.blocks.push(Arc::new(Block { path, index, size }));
        st.frozen.retain(|h| !Arc::ptr_eq(h, &frozen));
    }
    // The block is registered: a segment that cannot be deleted now is
    // deleted at the next start (the block's meta says it is covered).
    for seq in frozen.first_segment..=frozen.last_segment {
        let p = wal::segment_path(&shared.wal_dir, seq);
        if p.exists()
            && let Err(e) = std::fs::remove_file(&p)
        {
            tracing::warn!(segment = seq, error = %e, "cannot delete a wal segment its block covers");
        }
    }
    Ok(())
}

#[async_trait]
impl Storage for EmbeddedStorage {
    fn sampling_store(&self) -> Option<Arc<dyn crate::sampling::SamplingStore>> {
        Some(self.sampling.clone())
    }

    async fn write(&self, spans: Vec<Span>) -> Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let payload = codec::encode_spans(&spans);
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Write {
                payload,
                spans,
                ack,
            })
            .map_err(|_| StorageError::new(StorageErrorKind::Unavailable, "storage is closed"))?;
        rx.await
            .map_err(|_| StorageError::new(StorageErrorKind::Unavailable, "storage is closed"))?
    }

    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        let mut spans: Vec<Span> = Vec::new();
        let blocks = {
            let st = self.shared.state.read();
            spans.extend(st.head.trace_spans(&trace_id).cloned());
            for h in &st.frozen {
                spans.extend(h.trace_spans(&trace_id).cloned());
            }
            st.blocks.clone()
        };
        for b in &blocks {
            if let Some(page) = b.index.page_of(&trace_id) {
                let raw = self.read_page(b, page).await?;
                spans.extend(block::decode_page_trace(&raw, &trace_id)?);
            }
        }
        if spans.is_empty() {
            return Ok(None);
        }
        spans.sort_by(|a, b| {
            (a.start_time_unix_nano, a.span_id).cmp(&(b.start_time_unix_nano, b.span_id))
        });
        Ok(Some(Trace { trace_id, spans }))
    }

    async fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Trace>> {
        let limit = q.limit.max(1);
        let mut hits: Vec<TraceHit> = Vec::new();
        let blocks = {
            let st = self.shared.state.read();
            st.head.search(q, &mut hits);
            for h in &st.frozen {
                h.search(q, &mut hits);
            }
            st.blocks.clone()
        };
        // Every page that may match, newest first; stop once no older page
        // can change the top `limit`.
        let mut pages: Vec<(u64, usize, u32)> = Vec::new();
        for (bi, b) in blocks.iter().enumerate() {
            pages.extend(b.index.candidates(q).map(|(p, max)| (max, bi, p)));
        }
        pages.sort_unstable_by(|a, b| b.cmp(a));
        let mut ranked_len = 0;
        let mut kth = 0;
        for (max_start, bi, page) in pages {
            if hits.len() != ranked_len {
                let ranked = rank_traces(hits.iter().copied(), limit);
                ranked_len = hits.len();
                kth = if ranked.len() >= limit {
                    ranked[limit - 1].latest_match_ns
                } else {
                    0
                };
            }
            if kth > 0 && max_start < kth {
                break;
            }
            let raw = self.read_page(&blocks[bi], page).await?;
            let spans = block::decode_page(&raw)?;
            block::search_spans(&spans, q, &mut hits);
        }
        let mut out = Vec::new();
        for hit in rank_traces(hits, limit) {
            if let Some(t) = self.get_trace(hit.trace_id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn services(&self) -> Result<Vec<String>> {
        let mut set = BTreeSet::new();
        let st = self.shared.state.read();
        set.extend(st.head.services().cloned());
        for h in &st.frozen {
            set.extend(h.services().cloned());
        }
        for b in &st.blocks {
            set.extend(b.index.meta.services.iter().cloned());
        }
        Ok(set.into_iter().collect())
    }

    async fn operations(&self, service: &str, kind: Option<SpanKind>) -> Result<Vec<Operation>> {
        let mut set = BTreeSet::new();
        {
            let st = self.shared.state.read();
            st.head.operations(service, &mut set);
            for h in &st.frozen {
                h.operations(service, &mut set);
            }
            for b in &st.blocks {
                if let Some(si) = b.index.service_index(service) {
                    for (s, name, k) in &b.index.meta.operations {
                        if *s == si {
                            set.insert(Operation {
                                name: name.clone(),
                                kind: *k,
                            });
                        }
                    }
                }
            }
        }
        Ok(set
            .into_iter()
            .filter(|o| kind.is_none_or(|k| o.kind == k))
            .collect())
    }

    async fn dependencies(&self, end_ns: u64, lookback_ns: u64) -> Result<Vec<DependencyLink>> {
        let start = end_ns.saturating_sub(lookback_ns);
        let in_window = |t: u64| t >= start && t <= end_ns;
        let mut map: HashMap<(String, String), (u64, u64)> = HashMap::new();
        fn add(
            map: &mut HashMap<(String, String), (u64, u64)>,
            parent: &str,
            child: &str,
            calls: u64,
            errors: u64,
        ) {
            if parent != child {
                let e = map
                    .entry((parent.to_string(), child.to_string()))
                    .or_default();
                e.0 += calls;
                e.1 += errors;
            }
        }
        // Calls whose parent span is elsewhere: (trace, parent, child
        // service, error). Resolved below, in memory or in the blocks.
        let mut unresolved: Vec<(TraceId, SpanId, String, bool)> = Vec::new();
        let (blocks, in_memory) = {
            let st = self.shared.state.read();
            let mem: Vec<&Span> = st
                .head
                .spans
                .iter()
                .chain(st.frozen.iter().flat_map(|h| h.spans.iter()))
                .collect();
            let by_id: rustc_hash::FxHashMap<(TraceId, SpanId), Arc<waymark_model::Resource>> = mem
                .iter()
                .map(|s| ((s.trace_id, s.span_id), s.resource.clone()))
                .collect();
            for s in mem.iter().filter(|s| in_window(s.start_time_unix_nano)) {
                let Some(pid) = s.parent_span_id else {
                    continue;
                };
                match by_id.get(&(s.trace_id, pid)) {
                    Some(p) => add(
                        &mut map,
                        p.service_name(),
                        s.service_name(),
                        1,
                        u64::from(s.is_error()),
                    ),
                    None => unresolved.push((
                        s.trace_id,
                        pid,
                        s.service_name().to_string(),
                        s.is_error(),
                    )),
                }
            }
            (st.blocks.clone(), by_id)
        };
        for b in &blocks {
            let m = &b.index.meta;
            if m.max_time < start || m.min_time > end_ns {
                continue;
            }
            for (p, c, n, e) in b.index.dependencies() {
                add(&mut map, p, c, n, e);
            }
            for o in b.index.orphans.iter().filter(|o| in_window(o.start_ns)) {
                unresolved.push((
                    o.trace_id,
                    o.parent_span_id,
                    m.services[o.service as usize].clone(),
                    o.error,
                ));
            }
        }
        // The parents: in memory, else in the blocks holding their trace.
        let mut by_trace: HashMap<TraceId, Vec<(SpanId, String, bool)>> = HashMap::new();
        for (t, pid, child, error) in unresolved {
            match in_memory.get(&(t, pid)) {
                Some(p) => add(&mut map, p.service_name(), &child, 1, u64::from(error)),
                None => by_trace.entry(t).or_default().push((pid, child, error)),
            }
        }
        drop(in_memory);
        if by_trace.len() > MAX_ORPHAN_TRACES {
            tracing::debug!(
                traces = by_trace.len(),
                "dependencies: too many traces span blocks; counting the first ones"
            );
        }
        for (trace, calls) in by_trace.into_iter().take(MAX_ORPHAN_TRACES) {
            let mut parents: HashMap<SpanId, String> = HashMap::new();
            for b in &blocks {
                if let Some(page) = b.index.page_of(&trace) {
                    let raw = self.read_page(b, page).await?;
                    for s in block::decode_page_trace(&raw, &trace)? {
                        parents.insert(s.span_id, s.service_name().to_string());
                    }
                }
            }
            for (pid, child, error) in calls {
                if let Some(p) = parents.get(&pid) {
                    add(&mut map, p, &child, 1, u64::from(error));
                }
            }
        }
        Ok(crate::links_from_map(map))
    }

    async fn purge_before(&self, cutoff_ns: u64) -> Result<RetentionReport> {
        let doomed: Vec<Arc<Block>> = {
            let mut st = self.shared.state.write();
            let (old, keep): (Vec<_>, Vec<_>) = st
                .blocks
                .drain(..)
                .partition(|b| b.index.meta.max_time < cutoff_ns);
            st.blocks = keep;
            old
        };
        let mut report = RetentionReport::default();
        for b in doomed {
            self.shared
                .store
                .delete(&b.path)
                .await
                .map_err(|e| io(format!("deleting {}", b.path), e))?;
            self.shared.cache.lock().forget_block(&b.index.meta.id);
            self.shared
                .stored_spans
                .fetch_sub(b.index.meta.span_count, Ordering::Relaxed);
            report.blocks_deleted += 1;
            report.spans_deleted += b.index.meta.span_count;
            tracing::info!(block = %b.path, spans = b.index.meta.span_count, "deleted block past retention");
        }
        Ok(report)
    }

    async fn flush(&self) -> Result<()> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Cut { ack })
            .map_err(|_| StorageError::new(StorageErrorKind::Unavailable, "storage is closed"))?;
        let done = rx
            .await
            .map_err(|_| StorageError::new(StorageErrorKind::Unavailable, "storage is closed"))?;
        match done {
            Some(rx) => rx.await.map_err(|_| {
                StorageError::new(StorageErrorKind::Unavailable, "block writer stopped")
            })?,
            None => Ok(()),
        }
    }

    fn stats(&self) -> StorageStats {
        let st = self.shared.state.read();
        StorageStats {
            wal_bytes: self.shared.counters.wal_bytes.load(Ordering::Relaxed),
            block_bytes: st.blocks.iter().map(|b| b.size).sum(),
            blocks: st.blocks.len() as u64,
            head_spans: (st.head.spans.len()
                + st.frozen.iter().map(|h| h.spans.len()).sum::<usize>())
                as u64,
            stored_spans: self.shared.stored_spans.load(Ordering::Relaxed),
            disk_free_bytes: match self.shared.counters.disk_free.load(Ordering::Relaxed) {
                u64::MAX => None,
                free => Some(free),
            },
            wal_faults: self.shared.counters.wal_faults.load(Ordering::Relaxed),
            refused_writes: self.shared.counters.refused_writes.load(Ordering::Relaxed),
            block_write_failures: self
                .shared
                .counters
                .block_write_failures
                .load(Ordering::Relaxed),
            corrupt_files: self.shared.counters.corrupt_files.load(Ordering::Relaxed),
        }
    }

    fn health(&self) -> StorageHealth {
        let c = self.shared.condition.lock();
        StorageHealth {
            refusing_writes: c.refusing.clone(),
            warnings: c
                .warnings
                .iter()
                .map(|(subject, message)| format!("{subject}: {message}"))
                .collect(),
        }
    }

    fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }
}

/// A small least-recently-used cache of decoded pages.
struct PageCache {
    cap: usize,
    tick: u64,
    map: HashMap<(String, u32), (Arc<Vec<u8>>, u64)>,
}

impl PageCache {
    fn new(cap: usize) -> Self {
        PageCache {
            cap,
            tick: 0,
            map: HashMap::new(),
        }
    }

    fn get(&mut self, key: &(String, u32)) -> Option<Arc<Vec<u8>>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(key).map(|(v, t)| {
            *t = tick;
            v.clone()
        })
    }

    fn put(&mut self, key: (String, u32), v: Arc<Vec<u8>>) {
        if self.cap == 0 {
            return;
        }
        if self.map.len() >= self.cap
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&oldest);
        }
        self.tick += 1;
        self.map.insert(key, (v, self.tick));
    }

    fn forget_block(&mut self, id: &str) {
        self.map.retain(|(b, _), _| b != id);
    }
}

/// Total size of the files in `dir` (0 when it cannot be listed).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
