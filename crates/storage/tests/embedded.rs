//! The embedded engine against the storage conformance suite, plus
//! engine-specific behaviour: restart, WAL replay, torn tails.

use waymark_storage::{EmbeddedConfig, EmbeddedStorage, Storage};

async fn open(dir: &std::path::Path) -> EmbeddedStorage {
    let mut cfg = EmbeddedConfig::new(dir);
    // Small pages so that tests cover multi-page blocks.
    cfg.page_target_bytes = 2048;
    EmbeddedStorage::open(cfg).await.unwrap()
}

waymark_testkit::storage_conformance!(|| async {
    let dir = tempfile::tempdir().unwrap();
    (open(dir.path()).await, dir)
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_replays_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spans = waymark_testkit::fixture_trace(waymark_testkit::now_ns());
    let id = spans[0].trace_id;
    {
        let s = open(dir.path()).await;
        s.write(spans.clone()).await.unwrap();
        // Dropped without flush: only the WAL has the spans.
    }
    let s = open(dir.path()).await;
    let t = s.get_trace(id).await.unwrap().expect("replayed from wal");
    assert_eq!(t.spans.len(), spans.len());
    s.flush().await.unwrap();
    drop(s);
    // After a flush the block serves it and the wal is gone.
    let s = open(dir.path()).await;
    assert_eq!(
        s.get_trace(id).await.unwrap().unwrap().spans.len(),
        spans.len()
    );
    assert_eq!(s.stats().blocks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_wal_tail_is_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let spans = waymark_testkit::fixture_trace(waymark_testkit::now_ns());
    {
        let s = open(dir.path()).await;
        s.write(spans.clone()).await.unwrap();
    }
    // Append half a record to the newest segment, as a crash mid-write would.
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let first = &segs[0];
    let mut bytes = std::fs::read(first).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
    std::fs::write(first, bytes).unwrap();
    let s = open(dir.path()).await;
    assert!(s.get_trace(spans[0].trace_id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_workload_roundtrips_through_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let mut g = waymark_testkit::TraceGenerator::new(Default::default());
    let t0 = waymark_testkit::now_ns();
    let mut all = Vec::new();
    for i in 0..200 {
        let t = g.trace(t0 + i * 1000);
        all.push(t.clone());
        s.write(t).await.unwrap();
    }
    s.flush().await.unwrap();
    for t in &all {
        let got = s.get_trace(t[0].trace_id).await.unwrap().unwrap();
        assert_eq!(got.spans.len(), t.len());
    }
    assert!(s.stats().block_bytes > 0);
}
