//! The embedded engine under storage faults: failed WAL writes and syncs
//! (injected through the engine's fault hook), crashes, and damaged files.
//! Every test checks the one rule that matters: a write that was
//! acknowledged is there after recovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use waymark_model::{Span, TraceId};
use waymark_storage::embedded::FaultHook;
use waymark_storage::embedded::wal::WalFaults;
use waymark_storage::{
    EmbeddedConfig, EmbeddedStorage, FsyncPolicy, Storage, StorageErrorKind, TraceQuery,
};
use waymark_testkit::{GeneratorConfig, TraceGenerator};

/// Switchable faults: each flag fails the next write or sync (one shot), or
/// every one while `disk_full` is set.
#[derive(Default)]
struct Faults {
    fail_next_write: AtomicBool,
    fail_next_sync: AtomicBool,
    disk_full: AtomicBool,
    injected: AtomicU64,
}

fn enospc() -> std::io::Error {
    std::io::Error::from_raw_os_error(28)
}

impl WalFaults for Faults {
    fn on_write(&self, len: usize) -> Option<(usize, std::io::Error)> {
        if self.disk_full.load(Ordering::SeqCst)
            || self.fail_next_write.swap(false, Ordering::SeqCst)
        {
            self.injected.fetch_add(1, Ordering::SeqCst);
            // Part of the write reaches the file, as with a disk that fills
            // mid-write.
            return Some((len / 2, enospc()));
        }
        None
    }

    fn on_sync(&self) -> Option<std::io::Error> {
        if self.fail_next_sync.swap(false, Ordering::SeqCst) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Some(std::io::Error::from_raw_os_error(5));
        }
        None
    }
}

fn config(dir: &Path, fsync: FsyncPolicy, faults: &Arc<Faults>) -> EmbeddedConfig {
    let mut cfg = EmbeddedConfig::new(dir);
    cfg.fsync = fsync;
    cfg.page_target_bytes = 2048;
    cfg.wal_faults = FaultHook(Some(faults.clone() as Arc<dyn WalFaults>));
    // The tests' temporary directories may sit on a nearly full disk.
    cfg.watermark.min_free_bytes = 0;
    cfg.watermark.min_free_percent = 0.0;
    cfg
}

async fn open(dir: &Path, fsync: FsyncPolicy, faults: &Arc<Faults>) -> EmbeddedStorage {
    EmbeddedStorage::open(config(dir, fsync, faults))
        .await
        .unwrap()
}

fn generator(seed: u64) -> TraceGenerator {
    TraceGenerator::new(GeneratorConfig {
        seed,
        ..Default::default()
    })
}

/// Checks that every trace in `acked` is stored whole.
async fn assert_all_present(s: &EmbeddedStorage, acked: &BTreeMap<TraceId, usize>, when: &str) {
    for (id, n) in acked {
        let got = s
            .get_trace(*id)
            .await
            .unwrap_or_else(|e| panic!("{when}: reading {id:?}: {e}"));
        let got = got.unwrap_or_else(|| panic!("{when}: acknowledged trace {id:?} is gone"));
        assert_eq!(got.spans.len(), *n, "{when}: trace {id:?} lost spans");
    }
}

/// Writes until one is accepted, for at most `within`.
async fn write_until_accepted(s: &EmbeddedStorage, spans: Vec<Span>, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match s.write(spans.clone()).await {
            Ok(()) => return start.elapsed(),
            Err(e) => {
                assert_eq!(e.kind, StorageErrorKind::Unavailable, "refusal kind: {e}");
                assert!(
                    start.elapsed() < within,
                    "writes still refused after {within:?}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_then_recovers_without_restart() {
    for fsync in [FsyncPolicy::Batch, FsyncPolicy::Always] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let mut g = generator(7);
        let t0 = waymark_testkit::now_ns();
        let mut acked = BTreeMap::new();
        {
            let s = open(dir.path(), fsync, &faults).await;
            for i in 0..20 {
                let t = g.trace(t0 + i);
                acked.insert(t[0].trace_id, t.len());
                s.write(t).await.unwrap();
            }
            faults.disk_full.store(true, Ordering::SeqCst);
            // Every write while the disk is full is refused, with a reason,
            // and nothing is acknowledged behind the failed record.
            let mut refused = 0;
            for i in 0..30 {
                let t = g.trace(t0 + 100 + i);
                match s.write(t.clone()).await {
                    Ok(()) => panic!("write acknowledged while every write fails"),
                    Err(e) => {
                        assert_eq!(e.kind, StorageErrorKind::Unavailable, "{e}");
                        refused += 1;
                    }
                }
            }
            assert_eq!(refused, 30);
            let health = s.health();
            let why = health
                .refusing_writes
                .expect("health says writes are refused");
            assert!(why.contains("wal"), "reason names the wal: {why}");
            let stats = s.stats();
            assert!(stats.wal_faults >= 1, "{stats:?}");
            assert!(stats.refused_writes >= 1, "{stats:?}");
            // Reads keep working while full.
            assert_all_present(&s, &acked, "while full").await;

            // Room again: accepted within seconds, no restart.
            faults.disk_full.store(false, Ordering::SeqCst);
            for i in 0..20 {
                let t = g.trace(t0 + 200 + i);
                acked.insert(t[0].trace_id, t.len());
                let waited = write_until_accepted(&s, t, Duration::from_secs(10)).await;
                assert!(waited < Duration::from_secs(10));
            }
            assert!(s.health().refusing_writes.is_none());
            assert_all_present(&s, &acked, "after recovery").await;
            // Dropped without a flush: only the WAL holds the spans.
        }
        let s = open(dir.path(), fsync, &faults).await;
        assert_all_present(&s, &acked, "after restart").await;
        assert!(
            s.health().warnings.is_empty(),
            "a cut-short record is not damage: {:?}",
            s.health().warnings
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sync_acknowledges_nothing_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let mut g = generator(8);
    let t0 = waymark_testkit::now_ns();
    let mut acked = BTreeMap::new();
    let s = open(dir.path(), FsyncPolicy::Always, &faults).await;
    let t = g.trace(t0);
    acked.insert(t[0].trace_id, t.len());
    s.write(t).await.unwrap();
    faults.fail_next_sync.store(true, Ordering::SeqCst);
    let t = g.trace(t0 + 1);
    let e = s.write(t).await.expect_err("a write whose sync failed");
    assert_eq!(e.kind, StorageErrorKind::Unavailable);
    let t = g.trace(t0 + 2);
    acked.insert(t[0].trace_id, t.len());
    write_until_accepted(&s, t, Duration::from_secs(10)).await;
    drop(s);
    let s = open(dir.path(), FsyncPolicy::Always, &faults).await;
    assert_all_present(&s, &acked, "after restart").await;
    // The failed segment was closed: the later write went to a new one.
    assert!(wal_segments(dir.path()).len() >= 2);
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    segs.sort();
    segs
}

/// A whole v2 WAL record of `n` payload bytes, for cutting short.
fn torn_record(n: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(37)).collect();
    let mut head = Vec::new();
    head.extend_from_slice(&(n as u32).to_le_bytes());
    head.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    let mut out = head.clone();
    out.extend_from_slice(&crc32c::crc32c(&head).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// A small deterministic generator for the operation sequence.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The WAL against an in-memory reference: random appends, appends whose
/// write is cut short, appends whose sync fails, block cuts and crashes
/// (with a torn record left at the tail, as a crash mid-write leaves).
/// After every recovery the store holds every acknowledged trace, whole,
/// and nothing that was never written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_model_holds_every_acknowledged_record() {
    for (seed, fsync) in [(1u64, FsyncPolicy::Batch), (2, FsyncPolicy::Always)] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut g = generator(seed);
        let t0 = waymark_testkit::now_ns();
        let mut acked: BTreeMap<TraceId, usize> = BTreeMap::new();
        let mut attempted: BTreeMap<TraceId, usize> = BTreeMap::new();
        let (mut crashes, mut failed) = (0, 0);
        let mut s = Some(open(dir.path(), fsync, &faults).await);
        for step in 0..400u64 {
            let op = rng.below(100);
            let store = s.as_ref().unwrap();
            match op {
                0..=5 => {
                    // Crash: the process goes away with what is in the WAL;
                    // sometimes a record was being written.
                    drop(s.take());
                    if rng.below(2) == 0
                        && let Some(last) = wal_segments(dir.path()).last()
                    {
                        let mut bytes = std::fs::read(last).unwrap();
                        let record = torn_record(500);
                        let cut = 1 + rng.below(record.len() as u64 - 1) as usize;
                        bytes.extend_from_slice(&record[..cut]);
                        std::fs::write(last, bytes).unwrap();
                    }
                    crashes += 1;
                    let reopened = open(dir.path(), fsync, &faults).await;
                    assert_all_present(&reopened, &acked, &format!("step {step}")).await;
                    for id in acked.keys() {
                        assert!(attempted.contains_key(id));
                    }
                    s = Some(reopened);
                }
                6..=8 => {
                    store.flush().await.unwrap();
                }
                _ => {
                    if op < 20 {
                        faults.fail_next_write.store(true, Ordering::SeqCst);
                    } else if op < 30 {
                        faults.fail_next_sync.store(true, Ordering::SeqCst);
                    }
                    let t = g.trace(t0 + step * 1000);
                    attempted.insert(t[0].trace_id, t.len());
                    let fired_before = faults.injected.load(Ordering::SeqCst);
                    match store.write(t.clone()).await {
                        Ok(()) => {
                            acked.insert(t[0].trace_id, t.len());
                        }
                        Err(e) => {
                            assert_eq!(e.kind, StorageErrorKind::Unavailable, "{e}");
                            failed += 1;
                            assert!(
                                faults.injected.load(Ordering::SeqCst) > fired_before,
                                "step {step}: refused without a fault: {e}"
                            );
                            // Let the engine start its fresh segment, so the
                            // next step exercises a write, not a refusal.
                            let since = Instant::now();
                            while store.health().refusing_writes.is_some() {
                                assert!(since.elapsed() < Duration::from_secs(10));
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                    // A fault that did not fire (a sync under a policy that
                    // had nothing to sync) must not leak into the next step.
                    faults.fail_next_write.store(false, Ordering::SeqCst);
                    faults.fail_next_sync.store(false, Ordering::SeqCst);
                }
            }
        }
        drop(s.take());
        let s = open(dir.path(), fsync, &faults).await;
        assert_all_present(&s, &acked, "at the end").await;
        // Nothing appears that was never written, and nothing comes back
        // twice or partly.
        let all = s
            .find_traces(&TraceQuery::all(t0, t0 + 1_000_000_000_000, 10_000))
            .await
            .unwrap();
        assert!(all.len() >= acked.len());
        for t in &all {
            let id = t.trace_id;
            let n = attempted.get(&id).expect("a trace that was never written");
            assert_eq!(t.spans.len(), *n, "trace {id:?} is partial or doubled");
        }
        assert!(crashes >= 5, "the sequence crashed {crashes} times");
        assert!(failed >= 20, "only {failed} writes failed");
        let injected = faults.injected.load(Ordering::SeqCst);
        eprintln!(
            "fsync {fsync:?}: {} acknowledged, {failed} failed, {injected} faults, {crashes} crashes",
            acked.len()
        );
        assert!(injected >= 20, "only {injected} faults fired");
        assert!(
            acked.len() >= 100,
            "only {} writes acknowledged",
            acked.len()
        );
    }
}

// ---- damaged files -------------------------------------------------------

/// Writes `n` traces one start-time step apart and returns them oldest
/// first with their span counts.
async fn fill(s: &EmbeddedStorage, n: u64, seed: u64) -> Vec<(TraceId, usize)> {
    let mut g = generator(seed);
    let t0 = waymark_testkit::now_ns() - 3_600_000_000_000;
    let mut out = Vec::new();
    for i in 0..n {
        let t = g.trace(t0 + i * 1_000_000);
        out.push((t[0].trace_id, t.len()));
        s.write(t).await.unwrap();
    }
    out
}

fn only_block(dir: &Path) -> PathBuf {
    let blocks: Vec<_> = std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wmb"))
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    blocks.into_iter().next().unwrap()
}

/// The block's index offset and length, read from its footer (see
/// docs/storage-format.md).
fn index_range(bytes: &[u8]) -> (usize, usize) {
    let f = &bytes[bytes.len() - 24..];
    let off = u64::from_le_bytes(f[0..8].try_into().unwrap()) as usize;
    let len = u32::from_le_bytes(f[8..12].try_into().unwrap()) as usize;
    (off, len)
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

async fn wait_for_warning(s: &EmbeddedStorage, about: &str) -> String {
    let since = Instant::now();
    loop {
        let h = s.health();
        if let Some(w) = h.warnings.iter().find(|w| w.contains(about)) {
            return w.clone();
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "no warning about {about}: {:?}",
            h.warnings
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads every trace: each is whole or absent (never partial). Returns
/// which are present, in the order given.
async fn present(s: &EmbeddedStorage, traces: &[(TraceId, usize)]) -> Vec<bool> {
    let mut out = Vec::new();
    for (id, n) in traces {
        match s.get_trace(*id).await.unwrap() {
            Some(t) => {
                assert_eq!(t.spans.len(), *n, "trace {id:?} came back partial");
                out.push(true);
            }
            None => out.push(false),
        }
    }
    out
}

fn quarantined(dir: &Path, sub: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("quarantine").join(sub))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

async fn block_of(dir: &Path, seed: u64) -> Vec<(TraceId, usize)> {
    let faults = Arc::new(Faults::default());
    let s = open(dir, FsyncPolicy::Batch, &faults).await;
    let traces = fill(&s, 150, seed).await;
    s.flush().await.unwrap();
    traces
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_block_page_loses_only_that_page() {
    let dir = tempfile::tempdir().unwrap();
    let traces = block_of(dir.path(), 11).await;
    let block = only_block(dir.path());
    // Just past the 8-byte header: inside the first (oldest) page.
    flip(&block, 20);
    let faults = Arc::new(Faults::default());
    let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
    let name = block.file_name().unwrap().to_string_lossy().into_owned();
    let warning = wait_for_warning(&s, &name).await;
    assert!(warning.contains("page(s) lost"), "{warning}");
    let got = present(&s, &traces).await;
    let kept = got.iter().filter(|p| **p).count();
    // Exactly the oldest page's traces are gone: a prefix in start order.
    let lost = got.iter().take_while(|p| !**p).count();
    assert!(lost >= 1, "the damaged page's traces are still served?");
    assert_eq!(
        lost + kept,
        traces.len(),
        "lost traces outside the bad page"
    );
    assert!(kept > traces.len() / 2, "kept only {kept}");
    assert_eq!(quarantined(dir.path(), "blocks").len(), 1);
    assert!(s.stats().corrupt_files >= 1);
    // Still takes writes and answers searches.
    fill(&s, 5, 99).await;
    drop(s);
    // After a restart the repaired block serves the same, with no warning.
    let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
    assert_eq!(present(&s, &traces).await, got);
    assert!(s.health().warnings.is_empty(), "{:?}", s.health().warnings);
    eprintln!(
        "page flip: {kept} of {} traces kept, {lost} lost with the page",
        traces.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_a_damaged_page_names_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let traces = block_of(dir.path(), 12).await;
    let faults = Arc::new(Faults::default());
    let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
    let block = only_block(dir.path());
    // Damaged while open (after the start-up scrub has begun): the first
    // read of the page must fail loudly, not return nothing.
    let name = block.file_name().unwrap().to_string_lossy().into_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    flip(&block, 20);
    match s.get_trace(traces[0].0).await {
        Err(e) => {
            assert_eq!(e.kind, StorageErrorKind::Corrupt);
            assert!(e.to_string().contains(&name), "{e}");
        }
        // On a slow machine the start-up scrub may reach the page first;
        // then it has already been reported, never served silently.
        Ok(None) => assert!(
            s.health().warnings.iter().any(|w| w.contains(&name)),
            "the damaged page's trace vanished without a report"
        ),
        Ok(Some(t)) => panic!("served {} spans from a damaged page", t.spans.len()),
    }
    // The repair follows: the other pages keep serving.
    wait_for_warning(&s, &name).await;
    let got = present(&s, &traces).await;
    assert!(got.iter().filter(|p| **p).count() > traces.len() / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_block_index_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let traces = block_of(dir.path(), 13).await;
    let block = only_block(dir.path());
    let bytes = std::fs::read(&block).unwrap();
    let (off, len) = index_range(&bytes);
    flip(&block, off + len / 2);
    let faults = Arc::new(Faults::default());
    let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
    let name = block.file_name().unwrap().to_string_lossy().into_owned();
    let warning = wait_for_warning(&s, &name).await;
    // The pages are intact: the repair finds them all by scanning.
    assert_eq!(
        present(&s, &traces).await,
        vec![true; traces.len()],
        "{warning}"
    );
    assert_eq!(quarantined(dir.path(), "blocks").len(), 1);
    let svc = s.services().await.unwrap();
    assert!(svc.contains(&"frontend".to_string()), "{svc:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_block_file_keeps_its_whole_pages() {
    let dir = tempfile::tempdir().unwrap();
    let traces = block_of(dir.path(), 14).await;
    let block = only_block(dir.path());
    let bytes = std::fs::read(&block).unwrap();
    std::fs::write(&block, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let faults = Arc::new(Faults::default());
    let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
    let name = block.file_name().unwrap().to_string_lossy().into_owned();
    wait_for_warning(&s, &name).await;
    let got = present(&s, &traces).await;
    // Pages are oldest first: what is lost is the newest traces, and no
    // trace of a whole page before the cut.
    let kept = got.iter().take_while(|p| **p).count();
    assert!(
        got[kept..].iter().all(|p| !*p),
        "lost traces before the cut"
    );
    assert!(kept >= traces.len() / 3, "kept only {kept}");
    assert!(kept < traces.len());
    eprintln!("truncated block: {kept} of {} traces kept", traces.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_the_middle_of_a_wal_segment_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let traces = {
        let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
        fill(&s, 60, 15).await
        // Dropped without a flush: only the WAL holds them.
    };
    let segs = wal_segments(dir.path());
    let seg = segs.last().unwrap().clone();
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    flip(&seg, len / 2);
    let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    let warning = wait_for_warning(&s, &name).await;
    assert!(warning.contains("good records"), "{warning}");
    let got = present(&s, &traces).await;
    let lost: Vec<_> = (0..got.len()).filter(|i| !got[*i]).collect();
    // One record (one trace) is damaged; every other one, including all
    // the records after it, is kept.
    assert_eq!(lost.len(), 1, "lost {lost:?}");
    assert!(lost[0] > 0 && lost[0] < traces.len() - 1);
    assert_eq!(quarantined(dir.path(), "").len(), 1);
    assert!(s.stats().corrupt_files >= 1);
    // The damaged bytes were not truncated away: the file keeps its length.
    assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, len);
    // New writes go on, and a flush makes the good records a block.
    fill(&s, 3, 16).await;
    s.flush().await.unwrap();
    drop(s);
    let s = open(dir.path(), FsyncPolicy::Batch, &faults).await;
    assert_eq!(present(&s, &traces).await, got);
}
