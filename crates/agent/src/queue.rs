//! The durable disk queue.
//!
//! Layout in the queue directory: segment files `{seq:016x}.wal` in the WAL
//! format (8-byte header, then `len u32 | crc32c u32 | span batch` records)
//! and a `cursor` file: `seq u64 LE | index u64 LE | crc32c u32 LE`, the
//! position of the first record not yet acknowledged by a collector. The
//! cursor is replaced atomically (write to a temporary file, fsync, rename,
//! fsync the directory). Segments wholly before the cursor are deleted.
//!
//! Appends are synced before they return. When the bytes waiting in the
//! queue (counted in whole segments from the cursor's) would exceed
//! `max_bytes`, appends are refused with
//! [`QueueError::Full`] (clients are told to retry; the agent never drops
//! spans it has acknowledged, and never evicts old data for new).
//!
//! Faults follow the WAL's rules (`waymark_storage::embedded::wal`): a
//! failed append is cut back and closes its segment, the next append starts
//! a fresh one, and nothing is acknowledged behind a failure. Below the
//! free-space watermark appends are refused with [`QueueError::LowSpace`]
//! before the disk is full. Delivered segments are deleted before the
//! cursor is rewritten, so a full disk cannot keep the queue from draining:
//! a cursor that could not be saved (or one that is damaged) only means
//! records are sent again after a restart, never that one is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use waymark_model::Span;
use waymark_storage::embedded::wal::{self, SegmentWriter};
use waymark_storage::embedded::{DiskSpace, FaultHook, Watermark};
use waymark_storage::{StorageError, StorageErrorKind, codec};

/// Settings of the queue.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub dir: PathBuf,
    /// Most bytes waiting for a collector; beyond it appends are refused.
    pub max_bytes: u64,
    /// A new segment starts once the current one reaches this size.
    pub segment_bytes: u64,
    /// Free space on the queue's file system below which appends are
    /// refused.
    pub watermark: Watermark,
    /// Faults injected into segment writes (tests only).
    pub faults: FaultHook,
}

impl QueueConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        QueueConfig {
            dir: dir.into(),
            max_bytes: 1 << 30,
            segment_bytes: 8 << 20,
            watermark: Watermark::default(),
            faults: FaultHook::default(),
        }
    }
}

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("agent queue is full ({queued} of {max} bytes waiting for a collector); retry later")]
    Full { queued: u64, max: u64 },
    /// Free space is below the watermark.
    #[error("{0}")]
    LowSpace(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A record's place: segment and index within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub seq: u64,
    pub index: u64,
}

struct Inner {
    writer: SegmentWriter,
    /// seq → (records, bytes) of every segment on disk.
    segments: BTreeMap<u64, (u64, u64)>,
    /// seq → when the segment was started (its file's time after a restart).
    born: BTreeMap<u64, std::time::SystemTime>,
    cursor: Position,
    /// Set while free space is below the watermark.
    low_space: bool,
    /// Set while the cursor could not be saved (logged once per change).
    cursor_unsaved: bool,
}

/// The queue. Cheap to share behind an `Arc`.
pub struct DiskQueue {
    cfg: QueueConfig,
    inner: Mutex<Inner>,
    notify: Notify,
}

const CURSOR: &str = "cursor";

fn io(what: &str, e: std::io::Error) -> StorageError {
    StorageError::with_source(StorageErrorKind::Io, what.to_string(), e)
}

fn read_cursor(dir: &Path) -> Option<Position> {
    let b = std::fs::read(dir.join(CURSOR)).ok()?;
    if b.len() != 20 || crc32c::crc32c(&b[..16]) != u32::from_le_bytes(b[16..].try_into().ok()?) {
        tracing::warn!(dir = %dir.display(), "ignoring an invalid queue cursor");
        return None;
    }
    Some(Position {
        seq: u64::from_le_bytes(b[..8].try_into().ok()?),
        index: u64::from_le_bytes(b[8..16].try_into().ok()?),
    })
}

fn write_cursor(dir: &Path, p: Position) -> Result<(), StorageError> {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&p.seq.to_le_bytes());
    b.extend_from_slice(&p.index.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join("cursor.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("writing queue cursor", e))?;
        f.write_all(&b).map_err(|e| io("writing queue cursor", e))?;
        f.sync_all().map_err(|e| io("syncing queue cursor", e))?;
    }
    std::fs::rename(&tmp, dir.join(CURSOR)).map_err(|e| io("replacing queue cursor", e))?;
    wal::sync_dir(dir)
}

impl DiskQueue {
    /// Opens (or creates) the queue, truncating torn tails and deleting
    /// segments the cursor has passed.
    pub fn open(cfg: QueueConfig) -> Result<Arc<DiskQueue>, StorageError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| io("creating queue directory", e))?;
        let mut segments = BTreeMap::new();
        for seq in wal::list_segments(&cfg.dir)? {
            let r = wal::replay_segment(&cfg.dir, seq, false)?;
            if r.is_corrupt() {
                tracing::error!(
                    segment = seq,
                    damaged_ranges = r.damage.len() + usize::from(r.tail_corrupt),
                    good_records = r.records.len(),
                    "queue segment has damaged records; every good record is kept and delivered"
                );
            } else if r.truncated_bytes > 0 {
                tracing::warn!(
                    segment = seq,
                    bytes = r.truncated_bytes,
                    "truncated torn queue tail"
                );
            }
            let bytes = std::fs::metadata(wal::segment_path(&cfg.dir, seq))
                .map(|m| m.len())
                .unwrap_or(0);
            segments.insert(seq, (r.records.len() as u64, bytes));
        }
        let mut born: BTreeMap<u64, std::time::SystemTime> = segments
            .keys()
            .map(|seq| {
                let t = std::fs::metadata(wal::segment_path(&cfg.dir, *seq))
                    .and_then(|m| m.modified())
                    .unwrap_or_else(|_| std::time::SystemTime::now());
                (*seq, t)
            })
            .collect();
        let first = segments.keys().next().copied().unwrap_or(1);
        let mut cursor = read_cursor(&cfg.dir).unwrap_or(Position {
            seq: first,
            index: 0,
        });
        if cursor.seq < first {
            cursor = Position {
                seq: first,
                index: 0,
            };
        }
        for seq in segments
            .keys()
            .copied()
            .filter(|s| *s < cursor.seq)
            .collect::<Vec<_>>()
        {
            let _ = std::fs::remove_file(wal::segment_path(&cfg.dir, seq));
            segments.remove(&seq);
        }
        // Always append to a fresh segment: the last one may end in a torn
        // record we truncated, and a new file keeps the format simple.
        let next = segments
            .keys()
            .last()
            .copied()
            .unwrap_or(0)
            .max(cursor.seq.saturating_sub(1))
            + 1;
        let writer = SegmentWriter::create_with(&cfg.dir, next, cfg.faults.0.clone())?;
        segments.insert(next, (0, writer.len));
        born.insert(next, std::time::SystemTime::now());
        if segments.keys().next() == Some(&next) {
            cursor = Position {
                seq: next,
                index: 0,
            };
        }
        Ok(Arc::new(DiskQueue {
            cfg,
            inner: Mutex::new(Inner {
                writer,
                segments,
                born,
                cursor,
                low_space: false,
                cursor_unsaved: false,
            }),
            notify: Notify::new(),
        }))
    }

    /// Bytes and records waiting for a collector.
    pub fn backlog(&self) -> (u64, u64) {
        let g = self.inner.lock();
        let bytes = g.segments.range(g.cursor.seq..).map(|(_, (_, b))| *b).sum();
        let records = g
            .segments
            .range(g.cursor.seq..)
            .map(|(seq, (n, _))| {
                if *seq == g.cursor.seq {
                    n.saturating_sub(g.cursor.index)
                } else {
                    *n
                }
            })
            .sum();
        (bytes, records)
    }

    /// An upper bound on the age of the oldest record waiting for a
    /// collector: the age of the segment holding it. Zero when empty.
    pub fn oldest_age(&self) -> std::time::Duration {
        let g = self.inner.lock();
        let waiting = g.segments.range(g.cursor.seq..).any(|(seq, (n, _))| {
            if *seq == g.cursor.seq {
                *n > g.cursor.index
            } else {
                *n > 0
            }
        });
        if !waiting {
            return std::time::Duration::ZERO;
        }
        g.segments
            .range(g.cursor.seq..)
            .find(|(seq, (n, _))| {
                if **seq == g.cursor.seq {
                    *n > g.cursor.index
                } else {
                    *n > 0
                }
            })
            .and_then(|(seq, _)| g.born.get(seq))
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default()
    }

    /// Appends spans durably (synced before returning).
    pub fn append(&self, spans: &[Span]) -> Result<(), QueueError> {
        if spans.is_empty() {
            return Ok(());
        }
        let payload = codec::encode_spans(spans);
        {
            let mut g = self.inner.lock();
            let queued: u64 = g.segments.range(g.cursor.seq..).map(|(_, (_, b))| *b).sum();
            if queued + payload.len() as u64 + 8 > self.cfg.max_bytes {
                return Err(QueueError::Full {
                    queued,
                    max: self.cfg.max_bytes,
                });
            }
            self.check_space(&mut g)?;
            // A failed append closes its segment (the writer never appends
            // behind a failure): start the next one before taking more.
            if g.writer.len >= self.cfg.segment_bytes || g.writer.is_broken() {
                let next = g.writer.seq + 1;
                g.writer = SegmentWriter::create_with(&self.cfg.dir, next, self.cfg.faults.0.clone()).map_err(|e| {
                    tracing::error!(segment = next, error = %e, "cannot start a queue segment; refusing spans");
                    e
                })?;
                let len = g.writer.len;
                g.segments.insert(next, (0, len));
                g.born.insert(next, std::time::SystemTime::now());
            }
            g.writer.append(&payload);
            if let Err(e) = g.writer.write_out(true) {
                tracing::error!(segment = g.writer.seq, error = %e, "queue append failed; segment closed");
                return Err(e.into());
            }
            let (seq, len) = (g.writer.seq, g.writer.len);
            let e = g.segments.entry(seq).or_default();
            e.0 += 1;
            e.1 = len;
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Refuses appends while free space is below the watermark (with the
    /// same hysteresis as the storage engine), logging each change once.
    fn check_space(&self, g: &mut Inner) -> Result<(), QueueError> {
        let wm = self.cfg.watermark;
        let Ok(space) = DiskSpace::of(&self.cfg.dir) else {
            return Ok(());
        };
        let low = wm.is_low(space, g.low_space);
        if low != g.low_space {
            if low {
                tracing::warn!(
                    free_bytes = space.free,
                    threshold_bytes = wm.threshold(space.total),
                    "queue disk below the free-space watermark; refusing spans"
                );
            } else {
                tracing::info!(
                    free_bytes = space.free,
                    "queue disk above the free-space watermark again; accepting spans"
                );
            }
            g.low_space = low;
        }
        if low {
            return Err(QueueError::LowSpace(format!(
                "agent queue: {}",
                wm.reason(space, &self.cfg.dir)
            )));
        }
        Ok(())
    }

    /// Up to `max_records` records from the cursor on, with the position
    /// just after each. Waits up to `wait` when nothing is queued.
    /// The files are read on the blocking pool, off the async executor.
    pub async fn read(
        self: &Arc<Self>,
        max_records: usize,
        wait: std::time::Duration,
    ) -> Result<Vec<(Position, Vec<Span>)>, StorageError> {
        let out = self.blocking(move |q| q.read_now(max_records)).await?;
        if !out.is_empty() {
            return Ok(out);
        }
        let _ = tokio::time::timeout(wait, self.notify.notified()).await;
        self.blocking(move |q| q.read_now(max_records)).await
    }

    /// [`DiskQueue::ack`] on the blocking pool: it deletes files and syncs
    /// the cursor.
    pub async fn ack_async(self: &Arc<Self>, upto: Position) -> Result<(), StorageError> {
        self.blocking(move |q| q.ack(upto)).await
    }

    /// Runs file work on the blocking pool.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&DiskQueue) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let q = self.clone();
        tokio::task::spawn_blocking(move || f(&q))
            .await
            .map_err(|e| {
                StorageError::new(
                    StorageErrorKind::Unavailable,
                    format!("agent queue task failed: {e}"),
                )
            })?
    }

    fn read_now(&self, max_records: usize) -> Result<Vec<(Position, Vec<Span>)>, StorageError> {
        let (mut pos, segs): (Position, Vec<(u64, u64)>) = {
            let g = self.inner.lock();
            (
                g.cursor,
                g.segments
                    .range(g.cursor.seq..)
                    .map(|(s, (n, _))| (*s, *n))
                    .collect(),
            )
        };
        let mut out = Vec::new();
        for (seq, records) in segs {
            if seq > pos.seq {
                pos = Position { seq, index: 0 };
            }
            if pos.index >= records {
                continue;
            }
            let r = wal::replay_segment(&self.cfg.dir, seq, true)?;
            for (i, rec) in r.records.iter().enumerate().skip(pos.index as usize) {
                // Its checksum held, so this is a batch of a format this
                // build cannot read: holding the queue up behind it forever
                // would lose everything after it, so it is reported and
                // passed over.
                let spans = match codec::decode_spans(rec) {
                    Ok(spans) => spans,
                    Err(e) => {
                        tracing::error!(segment = seq, record = i, error = %e, "queue record cannot be decoded; skipping it");
                        Vec::new()
                    }
                };
                out.push((
                    Position {
                        seq,
                        index: i as u64 + 1,
                    },
                    spans,
                ));
                if out.len() >= max_records {
                    return Ok(out);
                }
            }
            pos = Position {
                seq,
                index: r.records.len() as u64,
            };
        }
        Ok(out)
    }

    /// Records everything before `upto` as delivered: persists the cursor
    /// and deletes segments wholly before it.
    pub fn ack(&self, upto: Position) -> Result<(), StorageError> {
        let mut g = self.inner.lock();
        if upto <= g.cursor {
            return Ok(());
        }
        let mut cursor = upto;
        // A fully delivered segment moves the cursor to the start of the
        // next one; when it is the one being written, a new segment starts
        // so that the delivered bytes can be freed.
        if let Some((n, _)) = g.segments.get(&cursor.seq).copied()
            && cursor.index >= n
        {
            if cursor.seq == g.writer.seq {
                // On a full disk this may fail; the cursor then stays at
                // the end of the current segment, which is freed later.
                let next = g.writer.seq + 1;
                match SegmentWriter::create_with(&self.cfg.dir, next, self.cfg.faults.0.clone()) {
                    Ok(w) => {
                        g.writer = w;
                        let len = g.writer.len;
                        g.segments.insert(next, (0, len));
                        g.born.insert(next, std::time::SystemTime::now());
                    }
                    Err(e) => {
                        tracing::debug!(segment = next, error = %e, "cannot start the next queue segment yet")
                    }
                }
            }
            if let Some(next) = g.segments.range(cursor.seq + 1..).next().map(|(s, _)| *s) {
                cursor = Position {
                    seq: next,
                    index: 0,
                };
            }
        }
        // Delivered segments go first: deleting them needs no space, and a
        // cursor older than the oldest segment left means "start there",
        // so a crash before the cursor is saved skips nothing.
        g.cursor = cursor;
        let done: Vec<u64> = g.segments.range(..cursor.seq).map(|(s, _)| *s).collect();
        for seq in done {
            match std::fs::remove_file(wal::segment_path(&self.cfg.dir, seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("deleting delivered queue segment", e)),
            }
            g.segments.remove(&seq);
            g.born.remove(&seq);
        }
        match write_cursor(&self.cfg.dir, cursor) {
            Ok(()) => {
                if std::mem::take(&mut g.cursor_unsaved) {
                    tracing::info!("queue cursor saved again");
                }
                Ok(())
            }
            // Delivery goes on from the cursor in memory; after a restart
            // at most the current segment's delivered records are sent
            // again.
            Err(e) => {
                if !std::mem::replace(&mut g.cursor_unsaved, true) {
                    tracing::warn!(error = %e, "cannot save the queue cursor; records may be delivered twice after a restart");
                }
                Ok(())
            }
        }
    }
}

/// The queue as the pipeline's sink. An append syncs the file, so it runs
/// on the blocking pool rather than on an async worker thread (which would
/// stall every request that worker serves).
pub struct QueueSink(pub Arc<DiskQueue>);

#[async_trait::async_trait]
impl waymark_pipeline::SpanSink for QueueSink {
    async fn write(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        let q = self.0.clone();
        let appended = tokio::task::spawn_blocking(move || q.append(&spans))
            .await
            .map_err(|e| {
                StorageError::new(
                    StorageErrorKind::Unavailable,
                    format!("agent queue cannot write: append task failed: {e}"),
                )
            })?;
        match appended {
            Ok(()) => Ok(()),
            Err(QueueError::Full { queued, max }) => Err(StorageError::new(
                StorageErrorKind::Unavailable,
                format!("agent queue is full ({queued} of {max} bytes waiting for a collector)"),
            )),
            Err(QueueError::LowSpace(why)) => {
                Err(StorageError::new(StorageErrorKind::Unavailable, why))
            }
            // A failed append acknowledged nothing: the client retries.
            Err(QueueError::Storage(e)) => Err(StorageError::new(
                StorageErrorKind::Unavailable,
                format!("agent queue cannot write: {e}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    use waymark_testkit::span;

    fn spans(n: u64, tag: u128) -> Vec<Span> {
        (0..n)
            .map(|i| span(tag, i + 1, None, "svc", "op", 1_000 + i, 10))
            .collect()
    }

    fn ids(batches: &[(Position, Vec<Span>)]) -> Vec<(u128, u64)> {
        batches
            .iter()
            .flat_map(|(_, s)| s.iter())
            .map(|s| {
                (
                    u128::from_be_bytes(s.trace_id.0),
                    u64::from_be_bytes(s.span_id.0),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn delivers_in_order_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = QueueConfig::new(dir.path());
        cfg.segment_bytes = 300; // several segments
        let q = DiskQueue::open(cfg.clone()).unwrap();
        for t in 1..=10u128 {
            q.append(&spans(2, t)).unwrap();
        }
        let first = q.read(4, Duration::ZERO).await.unwrap();
        assert_eq!(first.len(), 4);
        q.ack(first.last().unwrap().0).unwrap();
        drop(q);
        // After a restart the acknowledged records are gone, the rest remain.
        let q = DiskQueue::open(cfg.clone()).unwrap();
        let rest = q.read(100, Duration::ZERO).await.unwrap();
        let got: Vec<u128> = ids(&rest).iter().map(|(t, _)| *t).collect();
        assert_eq!(got, (5..=10u128).flat_map(|t| [t, t]).collect::<Vec<_>>());
        assert!(q.oldest_age() > Duration::ZERO);
        q.ack(rest.last().unwrap().0).unwrap();
        assert_eq!(q.backlog().1, 0);
        assert_eq!(q.oldest_age(), Duration::ZERO);
        assert!(
            q.read(10, Duration::from_millis(10))
                .await
                .unwrap()
                .is_empty()
        );
        // Delivered segments were deleted.
        let left = wal::list_segments(dir.path()).unwrap();
        assert!(left.len() <= 2, "{left:?}");
    }

    #[tokio::test]
    async fn unacknowledged_records_are_redelivered() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QueueConfig::new(dir.path());
        let q = DiskQueue::open(cfg.clone()).unwrap();
        q.append(&spans(3, 1)).unwrap();
        let a = q.read(10, Duration::ZERO).await.unwrap();
        let b = q.read(10, Duration::ZERO).await.unwrap();
        assert_eq!(ids(&a), ids(&b), "read without ack does not consume");
        drop(q);
        let q = DiskQueue::open(cfg).unwrap();
        assert_eq!(ids(&q.read(10, Duration::ZERO).await.unwrap()), ids(&a));
    }

    #[tokio::test]
    async fn full_queue_refuses_and_recovers_after_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = QueueConfig::new(dir.path());
        cfg.max_bytes = 2_000;
        let q = DiskQueue::open(cfg).unwrap();
        let mut accepted = 0;
        let err = loop {
            match q.append(&spans(5, accepted + 1)) {
                Ok(()) => accepted += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, QueueError::Full { .. }), "{err}");
        assert!(accepted > 0);
        let all = q.read(1000, Duration::ZERO).await.unwrap();
        assert_eq!(
            all.len() as u128,
            accepted,
            "everything accepted is still there"
        );
        q.ack(all.last().unwrap().0).unwrap();
        q.append(&spans(5, 999)).unwrap();
    }

    #[tokio::test]
    async fn torn_tail_is_truncated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QueueConfig::new(dir.path());
        let q = DiskQueue::open(cfg.clone()).unwrap();
        q.append(&spans(2, 1)).unwrap();
        q.append(&spans(2, 2)).unwrap();
        drop(q);
        let seg = wal::segment_path(
            dir.path(),
            *wal::list_segments(dir.path()).unwrap().last().unwrap(),
        );
        let mut b = std::fs::read(&seg).unwrap();
        b.extend_from_slice(&[50, 0, 0, 0, 9, 9]);
        std::fs::write(&seg, b).unwrap();
        let q = DiskQueue::open(cfg).unwrap();
        let got = q.read(10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 2);
    }

    /// Model check: random appends, reads, acks and restarts; what is
    /// delivered is exactly what was appended, in order, once acknowledged.
    #[tokio::test]
    async fn random_operations_match_a_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(OneShot::default());
        let mut cfg = QueueConfig::new(dir.path());
        cfg.segment_bytes = 500;
        cfg.watermark = Watermark {
            min_free_bytes: 0,
            min_free_percent: 0.0,
        };
        cfg.faults = FaultHook(Some(faults.clone()));
        let mut q = DiskQueue::open(cfg.clone()).unwrap();
        let mut model: std::collections::VecDeque<u128> = Default::default();
        let mut next = 1u128;
        let mut failed = 0;
        for _ in 0..600 {
            match rng.random_range(0..12) {
                0..=4 => {
                    q.append(&spans(1, next)).unwrap();
                    model.push_back(next);
                    next += 1;
                }
                10 | 11 => {
                    // An append whose write is cut short or whose sync fails
                    // is not acknowledged and must never be delivered; the
                    // appends after it are.
                    if rng.random_bool(0.5) {
                        faults.write.store(true, Ordering::SeqCst);
                    } else {
                        faults.sync.store(true, Ordering::SeqCst);
                    }
                    let e = q
                        .append(&spans(1, next))
                        .expect_err("an append that failed");
                    assert!(matches!(e, QueueError::Storage(_)), "{e}");
                    next += 1;
                    failed += 1;
                }
                5..=7 => {
                    let n = rng.random_range(1..5);
                    let got = q.read(n, Duration::ZERO).await.unwrap();
                    let got_ids: Vec<u128> = ids(&got).iter().map(|(t, _)| *t).collect();
                    let want: Vec<u128> = model.iter().take(n).copied().collect();
                    assert_eq!(got_ids, want);
                    if let Some((p, _)) = got.last()
                        && rng.random_bool(0.7)
                    {
                        q.ack(*p).unwrap();
                        for _ in 0..got.len() {
                            model.pop_front();
                        }
                    }
                }
                _ => {
                    drop(q);
                    q = DiskQueue::open(cfg.clone()).unwrap();
                }
            }
            assert_eq!(q.backlog().1, model.len() as u64);
        }
        assert!(failed > 50, "{failed}");
    }

    /// Fails the next write (cut in half) or sync once.
    #[derive(Default)]
    struct OneShot {
        write: AtomicBool,
        sync: AtomicBool,
    }

    impl wal::WalFaults for OneShot {
        fn on_write(&self, len: usize) -> Option<(usize, std::io::Error)> {
            self.write
                .swap(false, Ordering::SeqCst)
                .then(|| (len / 2, std::io::Error::from_raw_os_error(28)))
        }
        fn on_sync(&self) -> Option<std::io::Error> {
            self.sync
                .swap(false, Ordering::SeqCst)
                .then(|| std::io::Error::from_raw_os_error(5))
        }
    }

    async fn drain(q: &Arc<DiskQueue>) -> Vec<u128> {
        let got = q.read(10_000, Duration::ZERO).await.unwrap();
        // One id per record (each record is one trace here).
        let mut out: Vec<u128> = ids(&got).iter().map(|(t, _)| *t).collect();
        out.dedup();
        out
    }

    #[tokio::test]
    async fn damaged_cursor_redelivers_instead_of_skipping() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QueueConfig::new(dir.path());
        let q = DiskQueue::open(cfg.clone()).unwrap();
        for t in 1..=5 {
            q.append(&spans(2, t)).unwrap();
        }
        let got = q.read(2, Duration::ZERO).await.unwrap();
        q.ack(got.last().unwrap().0).unwrap();
        drop(q);
        let mut c = std::fs::read(dir.path().join(CURSOR)).unwrap();
        c[3] ^= 0xff;
        std::fs::write(dir.path().join(CURSOR), c).unwrap();
        let q = DiskQueue::open(cfg).unwrap();
        // The delivered ones come again (the collector removes duplicates),
        // and nothing waiting is skipped.
        assert_eq!(drain(&q).await, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn damaged_record_in_a_segment_keeps_the_records_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = QueueConfig::new(dir.path());
        let q = DiskQueue::open(cfg.clone()).unwrap();
        for t in 1..=6 {
            q.append(&spans(3, t)).unwrap();
        }
        drop(q);
        let seg = wal::segment_path(dir.path(), 1);
        let mut b = std::fs::read(&seg).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        std::fs::write(&seg, b).unwrap();
        let q = DiskQueue::open(cfg).unwrap();
        let got = drain(&q).await;
        // One record is damaged; all the others, before and after it, are
        // delivered.
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got.contains(&1) && got.contains(&6), "{got:?}");
    }

    #[tokio::test]
    async fn delivered_segments_are_freed_even_when_the_cursor_cannot_be_saved() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = QueueConfig::new(dir.path());
        cfg.segment_bytes = 300;
        let q = DiskQueue::open(cfg.clone()).unwrap();
        for t in 1..=8 {
            q.append(&spans(2, t)).unwrap();
        }
        let before = wal::list_segments(dir.path()).unwrap().len();
        // A directory where the cursor's temporary file goes makes saving
        // the cursor fail, as a full disk would.
        std::fs::create_dir(dir.path().join("cursor.tmp")).unwrap();
        let got = q.read(6, Duration::ZERO).await.unwrap();
        q.ack(got.last().unwrap().0).unwrap();
        assert!(wal::list_segments(dir.path()).unwrap().len() < before);
        assert_eq!(drain(&q).await, vec![7, 8]);
        drop(q);
        std::fs::remove_dir(dir.path().join("cursor.tmp")).unwrap();
        // After a restart delivery resumes no later than the cursor in
        // memory was: 7 and 8 are still there.
        let q = DiskQueue::open(cfg).unwrap();
        let again = drain(&q).await;
        assert!(again.ends_with(&[7, 8]), "{again:?}");
    }
}
