//! The admin endpoints: Prometheus `/metrics`, `/health` (the process is
//! alive and serving) and `/ready` (it can accept and durably store spans:
//! not during WAL replay, not while storage refuses writes (a WAL fault, a
//! disk below its free-space watermark), not while shutting down). Standing
//! storage warnings (damaged files set aside, block writes being retried)
//! follow the first line as `warning: …` lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use waymark_storage::Storage;

/// Gauges filled from `Storage::stats` at each scrape.
#[derive(Default, Clone)]
pub struct StorageGauges {
    pub wal_bytes: Gauge,
    pub block_bytes: Gauge,
    pub blocks: Gauge,
    pub head_spans: Gauge,
    pub stored_spans: Gauge,
    pub disk_free_bytes: Gauge,
    pub refusing_writes: Gauge,
    pub wal_faults: Counter,
    pub refused_writes: Counter,
    pub block_write_failures: Counter,
    pub corrupt_files: Counter,
}

impl StorageGauges {
    pub fn register(&self, reg: &mut Registry) {
        reg.register(
            "waymark_wal_bytes",
            "Bytes in WAL segments",
            self.wal_bytes.clone(),
        );
        reg.register(
            "waymark_block_bytes",
            "Bytes in blocks",
            self.block_bytes.clone(),
        );
        reg.register("waymark_blocks", "Number of blocks", self.blocks.clone());
        reg.register(
            "waymark_head_spans",
            "Spans held in memory, not yet in a block",
            self.head_spans.clone(),
        );
        reg.register(
            "waymark_stored_spans",
            "Spans held by storage",
            self.stored_spans.clone(),
        );
        reg.register(
            "waymark_storage_free_bytes",
            "Free bytes on the data directory's file system",
            self.disk_free_bytes.clone(),
        );
        reg.register(
            "waymark_storage_refusing_writes",
            "1 while storage refuses writes (a WAL fault or the free-space watermark), else 0",
            self.refusing_writes.clone(),
        );
        reg.register(
            "waymark_storage_wal_faults",
            "WAL appends, syncs or segment creations that failed",
            self.wal_faults.clone(),
        );
        reg.register(
            "waymark_storage_refused_writes",
            "Writes refused by storage because of a WAL fault or the free-space watermark",
            self.refused_writes.clone(),
        );
        reg.register(
            "waymark_storage_block_write_failures",
            "Block writes that failed (each is retried until it succeeds)",
            self.block_write_failures.clone(),
        );
        reg.register(
            "waymark_storage_corrupt_files",
            "Damaged files found: WAL segments with bad records, blocks failing a checksum",
            self.corrupt_files.clone(),
        );
    }
}

#[derive(Clone)]
pub struct AdminState {
    pub registry: Arc<Registry>,
    pub gauges: StorageGauges,
    /// Set once storage is open.
    pub storage: Arc<OnceLock<Arc<dyn Storage>>>,
    /// True once every listener is serving; false again on shutdown.
    pub serving: Arc<AtomicBool>,
    /// Set by modes without storage (the agent) once they can accept and
    /// durably keep spans.
    pub ready_without_storage: Arc<AtomicBool>,
    /// Run before each scrape to refresh gauges that are read, not pushed.
    pub on_scrape: Arc<OnceLock<ScrapeHook>>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
}

/// A function that refreshes metrics before a scrape.
pub type ScrapeHook = Arc<dyn Fn() + Send + Sync>;

async fn metrics(State(st): State<AdminState>) -> Response {
    if let Some(hook) = st.on_scrape.get() {
        hook();
    }
    if let Some(s) = st.storage.get() {
        let stats = s.stats();
        st.gauges.wal_bytes.set(stats.wal_bytes as i64);
        st.gauges.block_bytes.set(stats.block_bytes as i64);
        st.gauges.blocks.set(stats.blocks as i64);
        st.gauges.head_spans.set(stats.head_spans as i64);
        st.gauges.stored_spans.set(stats.stored_spans as i64);
        if let Some(free) = stats.disk_free_bytes {
            st.gauges.disk_free_bytes.set(free as i64);
        }
        let g = &st.gauges;
        g.refusing_writes
            .set(i64::from(s.health().refusing_writes.is_some()));
        // Counters kept by the backend: mirrored, never decreasing.
        for (c, v) in [
            (&g.wal_faults, stats.wal_faults),
            (&g.refused_writes, stats.refused_writes),
            (&g.block_write_failures, stats.block_write_failures),
            (&g.corrupt_files, stats.corrupt_files),
        ] {
            c.inner().fetch_max(v, Ordering::Relaxed);
        }
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &st.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn health() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

async fn ready(State(st): State<AdminState>) -> Response {
    let storage = st.storage.get();
    let health = storage.map(|s| s.health()).unwrap_or_default();
    let storage_ready =
        storage.is_some_and(|s| s.is_ready()) || st.ready_without_storage.load(Ordering::Acquire);
    let mut warnings = String::new();
    for w in &health.warnings {
        warnings.push_str("warning: ");
        warnings.push_str(w);
        warnings.push('\n');
    }
    let (status, text) = if !storage_ready {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: storage is opening (replaying the wal, or in query mode waiting for a collector to create the store)\n".to_string(),
        )
    } else if let Some(why) = &health.refusing_writes {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: storage refuses writes: {why}\n"),
        )
    } else if !st.serving.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: listeners are not serving\n".to_string(),
        )
    } else {
        (StatusCode::OK, "ready\n".to_string())
    };
    (status, format!("{text}{warnings}")).into_response()
}
