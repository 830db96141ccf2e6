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
pub mod wal;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

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

use crate::{
    DependencyLink, Operation, Result, RetentionReport, Storage, StorageError, StorageErrorKind,
    StorageStats, TraceHit, TraceQuery, codec, rank_traces,
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
    stored_spans: AtomicU64,
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

        let blocks = load_blocks(store.as_ref()).await?;
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

        let (head, next_seq, replayed) = replay_wal(&wal_dir, &covered, max_covered, false)?;

        let stored: u64 = blocks.iter().map(|b| b.index.meta.span_count).sum();
        let shared = Arc::new(Shared {
            store,
            wal_dir: wal_dir.clone(),
            state: RwLock::new(State {
                head,
                frozen: Vec::new(),
                blocks: blocks.into_iter().map(Arc::new).collect(),
            }),
            cache: Mutex::new(PageCache::new(cfg.page_cache_pages)),
            ready: AtomicBool::new(false),
            stored_spans: AtomicU64::new(stored + replayed as u64),
            cfg,
        });
        let segment = wal::SegmentWriter::create(&wal_dir, next_seq)?;
        let (tx, rx) = mpsc::channel();
        let rt = tokio::runtime::Handle::current();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("waymark-wal".into())
            .spawn(move || wal_thread(sh, rx, segment, rt))
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
            shared: Arc::new(Shared {
                store,
                wal_dir,
                state: RwLock::new(State {
                    head: Head::new(0),
                    frozen: Vec::new(),
                    blocks: Vec::new(),
                }),
                cache: Mutex::new(PageCache::new(cfg.page_cache_pages)),
                ready: AtomicBool::new(false),
                stored_spans: AtomicU64::new(0),
                cfg,
            }),
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
        let blocks = load_blocks(self.shared.store.as_ref()).await?;
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
        let (head, _, replayed) = replay_wal(&self.shared.wal_dir, &covered, max_covered, true)?;
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
        let raw = Arc::new(block::inflate_page(&bytes, page)?);
        self.shared.cache.lock().put(key, raw.clone());
        Ok(raw)
    }
}

impl Drop for EmbeddedStorage {
    fn drop(&mut self) {
        self.close();
    }
}

/// Rebuilds the head from the WAL segments no block covers. A writer
/// deletes covered segments and truncates torn tails; a read-only opener
/// touches nothing.
fn replay_wal(
    wal_dir: &std::path::Path,
    covered: &[(u64, u64)],
    max_covered: u64,
    read_only: bool,
) -> Result<(Head, u64, usize)> {
    let segments = wal::list_segments(wal_dir)?;
    let next_seq = segments.last().copied().unwrap_or(0).max(max_covered) + 1;
    let mut head = Head::new(next_seq);
    let mut replayed = 0usize;
    for &seq in &segments {
        if covered.iter().any(|(a, b)| (*a..=*b).contains(&seq)) {
            // Its block was written before a crash kept us from deleting
            // the segment.
            if !read_only {
                let _ = std::fs::remove_file(wal::segment_path(wal_dir, seq));
            }
            continue;
        }
        let r = match wal::replay_segment(wal_dir, seq, read_only) {
            Ok(r) => r,
            // The writer deleted it since we listed the directory.
            Err(_) if read_only && !wal::segment_path(wal_dir, seq).exists() => continue,
            Err(e) => return Err(e),
        };
        if r.truncated_bytes > 0 && !read_only {
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
            let spans = codec::decode_spans(&rec)?;
            replayed += spans.len();
            head.insert(spans, rec.len());
        }
        if head.is_empty() && !read_only {
            let _ = std::fs::remove_file(wal::segment_path(wal_dir, seq));
        }
    }
    if head.is_empty() {
        head.first_segment = next_seq;
    }
    head.last_segment = next_seq;
    if replayed > 0 && !read_only {
        tracing::info!(spans = replayed, "replayed wal");
    }
    Ok((head, next_seq, replayed))
}

async fn load_blocks(store: &dyn ObjectStore) -> Result<Vec<Block>> {
    let prefix = ObjPath::from(BLOCK_PREFIX);
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| io("listing blocks", e))?;
    let mut out = Vec::new();
    for m in metas {
        if !m.location.as_ref().ends_with(BLOCK_SUFFIX) {
            continue;
        }
        match load_block(store, m.location.clone(), m.size).await {
            Ok(b) => out.push(b),
            Err(e) => {
                tracing::error!(block = %m.location, error = %e, "skipping unreadable block")
            }
        }
    }
    Ok(out)
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

fn wal_thread(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Cmd>,
    mut segment: wal::SegmentWriter,
    rt: tokio::runtime::Handle,
) {
    let policy = shared.cfg.fsync;
    let mut pending: Vec<(Vec<Span>, usize, oneshot::Sender<Result<()>>)> = Vec::new();
    loop {
        let first = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(c) => c,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                maybe_cut(&shared, &mut segment, &rt, false);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
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
                    segment.append(&payload);
                    pending.push((spans, payload.len(), ack));
                    if policy == FsyncPolicy::Always {
                        commit(&shared, &mut segment, &mut pending, true);
                    }
                }
                Cmd::Cut { ack } => {
                    commit(
                        &shared,
                        &mut segment,
                        &mut pending,
                        policy != FsyncPolicy::Never,
                    );
                    let done = cut(&shared, &mut segment, &rt);
                    let _ = ack.send(done);
                }
                Cmd::Shutdown => shutdown = true,
            }
        }
        commit(
            &shared,
            &mut segment,
            &mut pending,
            policy == FsyncPolicy::Batch,
        );
        if shutdown {
            return;
        }
        maybe_cut(&shared, &mut segment, &rt, false);
    }
}

/// Writes queued records, then makes their spans readable and acknowledges.
fn commit(
    shared: &Shared,
    segment: &mut wal::SegmentWriter,
    pending: &mut Vec<(Vec<Span>, usize, oneshot::Sender<Result<()>>)>,
    sync: bool,
) {
    if pending.is_empty() {
        return;
    }
    match segment.write_out(sync) {
        Ok(()) => {
            let mut n = 0;
            {
                let mut st = shared.state.write();
                for (spans, len, _) in pending.iter_mut() {
                    n += spans.len();
                    st.head.insert(std::mem::take(spans), *len);
                }
            }
            shared.stored_spans.fetch_add(n as u64, Ordering::Relaxed);
            for (_, _, ack) in pending.drain(..) {
                let _ = ack.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "wal write failed; starting a new segment");
            let msg = e.to_string();
            for (_, _, ack) in pending.drain(..) {
                let _ = ack.send(Err(StorageError::new(
                    StorageErrorKind::Unavailable,
                    msg.clone(),
                )));
            }
            // The failed write may have left a partial record; later records
            // must not follow it in the same segment.
            let next = segment.seq + 1;
            match wal::SegmentWriter::create(&shared.wal_dir, next) {
                Ok(s) => {
                    *segment = s;
                    shared.state.write().head.last_segment = next;
                }
                Err(e) => tracing::error!(error = %e, "cannot start a new wal segment"),
            }
        }
    }
}

fn maybe_cut(
    shared: &Arc<Shared>,
    segment: &mut wal::SegmentWriter,
    rt: &tokio::runtime::Handle,
    force: bool,
) {
    let due = {
        let st = shared.state.read();
        let h = &st.head;
        !h.is_empty()
            && (force
                || h.spans.len() >= shared.cfg.head_max_spans
                || h.approx_bytes >= shared.cfg.head_max_bytes
                || h.created.elapsed() >= shared.cfg.head_max_age)
    };
    if due {
        cut(shared, segment, rt);
    }
}

/// Freezes the head and starts writing it as a block. Returns a receiver for
/// the block write's outcome, or `None` when the head was empty.
fn cut(
    shared: &Arc<Shared>,
    segment: &mut wal::SegmentWriter,
    rt: &tokio::runtime::Handle,
) -> Option<oneshot::Receiver<Result<()>>> {
    if shared.state.read().head.is_empty() {
        return None;
    }
    let next = segment.seq + 1;
    let new_segment = match wal::SegmentWriter::create(&shared.wal_dir, next) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a new wal segment; not cutting a block");
            return None;
        }
    };
    let frozen = {
        let mut st = shared.state.write();
        let mut old = std::mem::replace(&mut st.head, Head::new(next));
        old.last_segment = segment.seq;
        let frozen = Arc::new(old);
        st.frozen.push(frozen.clone());
        frozen
    };
    *segment = new_segment;
    let (tx, rx) = oneshot::channel();
    let sh = shared.clone();
    rt.spawn(async move {
        let res = write_block(&sh, frozen).await;
        if let Err(e) = &res {
            tracing::error!(error = %e, "block write failed; its spans stay in memory and in the wal");
        }
        let _ = tx.send(res);
    });
    Some(rx)
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
    for seq in frozen.first_segment..=frozen.last_segment {
        let p = wal::segment_path(&shared.wal_dir, seq);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| io("deleting wal segment", e))?;
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
        let wal_bytes = std::fs::read_dir(&self.shared.wal_dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        let st = self.shared.state.read();
        StorageStats {
            wal_bytes,
            block_bytes: st.blocks.iter().map(|b| b.size).sum(),
            blocks: st.blocks.len() as u64,
            head_spans: (st.head.spans.len()
                + st.frozen.iter().map(|h| h.spans.len()).sum::<usize>())
                as u64,
            stored_spans: self.shared.stored_spans.load(Ordering::Relaxed),
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
