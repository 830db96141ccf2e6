//! Span storage: the [`Storage`] trait every backend implements, the query
//! types it answers, and the embedded engine (WAL → head → blocks on an
//! object store) that Waymark runs by default.
//!
//! Backends differ in configuration, never in behaviour: the conformance
//! suite in `waymark-testkit` is run unchanged against each of them. Search
//! semantics (what a filter matches, ordering, limits) are defined once here,
//! in [`TraceQuery::matches_span`] and [`rank_traces`], so that backends
//! cannot drift apart.
//!
//! This crate must not know about wire protocols or HTTP.

use std::collections::HashMap;

use async_trait::async_trait;
use waymark_model::{Span, SpanKind, Trace, TraceId};

pub mod codec;
pub mod embedded;
pub mod sampling;

pub use embedded::{EmbeddedConfig, EmbeddedStorage, FsyncPolicy, Watermark};

/// Errors a backend reports. `kind` says what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StorageErrorKind {
    /// The store cannot take writes right now; retrying later may work.
    #[error("storage unavailable")]
    Unavailable,
    /// Data on disk failed a checksum or could not be decoded.
    #[error("corrupt data")]
    Corrupt,
    /// An I/O error from the disk or object store.
    #[error("i/o error")]
    Io,
    /// The request itself is not valid.
    #[error("invalid request")]
    Invalid,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        StorageError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        kind: StorageErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StorageError {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A search for traces. Every condition must hold for one single span
/// (service, operation, kind, tags, duration and start time all on the same
/// span); the result holds whole traces.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub span_kind: Option<SpanKind>,
    /// Each `(key, value)` must match a span attribute, a resource attribute
    /// or an event attribute of the span, compared as text. The special keys
    /// `error`, `span.kind`, `otel.status_code` and `otel.status_description`
    /// match the span's status and kind the way Jaeger renders them.
    pub tags: Vec<(String, String)>,
    /// Inclusive bounds on the span start, in ns since the epoch.
    pub start_min: u64,
    pub start_max: u64,
    /// Inclusive bounds on the span duration, in ns.
    pub duration_min: Option<u64>,
    pub duration_max: Option<u64>,
    /// Most traces to return; at least 1.
    pub limit: usize,
}

impl TraceQuery {
    /// A query matching every span in `[start_min, start_max]`.
    pub fn all(start_min: u64, start_max: u64, limit: usize) -> Self {
        TraceQuery {
            start_min,
            start_max,
            limit,
            ..Default::default()
        }
    }

    /// The one definition of "this span matches", shared by every backend.
    pub fn matches_span(&self, span: &Span) -> bool {
        if span.start_time_unix_nano < self.start_min || span.start_time_unix_nano > self.start_max
        {
            return false;
        }
        if let Some(s) = &self.service
            && span.service_name() != s
        {
            return false;
        }
        if let Some(op) = &self.operation
            && &span.name != op
        {
            return false;
        }
        if let Some(kind) = self.span_kind
            && span.kind != kind
        {
            return false;
        }
        let d = span.duration_nanos();
        if self.duration_min.is_some_and(|min| d < min) {
            return false;
        }
        if self.duration_max.is_some_and(|max| d > max) {
            return false;
        }
        self.tags.iter().all(|(k, v)| tag_matches(span, k, v))
    }
}

fn tag_matches(span: &Span, key: &str, value: &str) -> bool {
    let in_attrs = |attrs: &[waymark_model::KeyValue]| {
        attrs
            .iter()
            .any(|kv| kv.key == key && kv.value.matches_text(value))
    };
    if in_attrs(&span.attributes)
        || in_attrs(&span.resource.attributes)
        || span.events.iter().any(|e| in_attrs(&e.attributes))
    {
        return true;
    }
    // Synthetic tags, as Jaeger renders OTLP spans.
    use waymark_model::StatusCode;
    match key {
        "error" => (span.status.code == StatusCode::Error) == (value == "true"),
        "span.kind" => span.kind != SpanKind::Unspecified && span.kind.jaeger_name() == value,
        "otel.status_code" => match span.status.code {
            StatusCode::Ok => value == "OK",
            StatusCode::Error => value == "ERROR",
            StatusCode::Unset => false,
        },
        "otel.status_description" => {
            !span.status.message.is_empty() && span.status.message == value
        }
        "event" => span.events.iter().any(|e| e.name == value),
        _ => false,
    }
}

/// A candidate trace found by a search: its id and its rank key, the latest
/// start time among its matching spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHit {
    pub trace_id: TraceId,
    pub latest_match_ns: u64,
}

/// Merges hits (the same trace may be found in several places), orders them
/// most recent first with the trace id as a stable tie-break, and keeps
/// `limit`.
pub fn rank_traces(hits: impl IntoIterator<Item = TraceHit>, limit: usize) -> Vec<TraceHit> {
    let mut best: HashMap<TraceId, u64> = HashMap::new();
    for h in hits {
        let e = best.entry(h.trace_id).or_insert(h.latest_match_ns);
        *e = (*e).max(h.latest_match_ns);
    }
    let mut out: Vec<TraceHit> = best
        .into_iter()
        .map(|(trace_id, latest_match_ns)| TraceHit {
            trace_id,
            latest_match_ns,
        })
        .collect();
    out.sort_by(|a, b| {
        b.latest_match_ns
            .cmp(&a.latest_match_ns)
            .then(a.trace_id.cmp(&b.trace_id))
    });
    out.truncate(limit);
    out
}

/// An operation of a service, with its span kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    pub name: String,
    pub kind: SpanKind,
}

/// Calls from one service to another over a time window.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
    pub error_count: u64,
}

/// Sizes and counts a backend reports for metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageStats {
    pub wal_bytes: u64,
    pub block_bytes: u64,
    pub blocks: u64,
    pub head_spans: u64,
    pub stored_spans: u64,
    /// Free bytes on the data directory's file system, when it has one.
    pub disk_free_bytes: Option<u64>,
    /// WAL appends, syncs or segment creations that failed (counter).
    pub wal_faults: u64,
    /// Writes refused because storage could not take them: a WAL fault or
    /// the free-space watermark (counter).
    pub refused_writes: u64,
    /// Block writes that failed and are being retried (counter).
    pub block_write_failures: u64,
    /// Files found damaged: WAL segments with bad records, blocks that
    /// failed a checksum (counter).
    pub corrupt_files: u64,
}

/// What a backend says about its ability to serve, for `/ready`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageHealth {
    /// Why writes are refused right now; `None` when they are accepted.
    pub refusing_writes: Option<String>,
    /// Conditions an operator should know about that do not stop writes:
    /// damaged files found and set aside, block writes being retried.
    pub warnings: Vec<String>,
}

/// What a retention pass removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetentionReport {
    pub blocks_deleted: u64,
    pub spans_deleted: u64,
}

/// The interface between Waymark and a span store.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores spans. Returns only once they are durable under the backend's
    /// policy: an acknowledged span must survive a crash.
    async fn write(&self, spans: Vec<Span>) -> Result<()>;

    /// All spans of a trace, from any time; `None` when no span is stored.
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>>;

    /// Traces with at least one span matching `query`, most recent first
    /// (see [`rank_traces`]).
    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>>;

    /// Names of services that have stored spans, sorted.
    async fn services(&self) -> Result<Vec<String>>;

    /// Operations of a service, sorted; restricted to a kind when given.
    async fn operations(&self, service: &str, kind: Option<SpanKind>) -> Result<Vec<Operation>>;

    /// Service-to-service calls among spans that started in
    /// `[end_ns - lookback_ns, end_ns]`, sorted by parent then child.
    async fn dependencies(&self, end_ns: u64, lookback_ns: u64) -> Result<Vec<DependencyLink>>;

    /// Deletes data that started before `cutoff_ns`, in whole units (blocks).
    async fn purge_before(&self, cutoff_ns: u64) -> Result<RetentionReport>;

    /// Makes everything written so far durable in the backend's long-term
    /// form (for the embedded engine: writes the head as a block).
    async fn flush(&self) -> Result<()>;

    /// Current sizes, for metrics.
    fn stats(&self) -> StorageStats;

    /// False while the backend cannot accept and durably store writes (for
    /// example during WAL replay).
    fn is_ready(&self) -> bool {
        true
    }

    /// Whether writes are accepted now, and what is wrong if anything.
    fn health(&self) -> StorageHealth {
        StorageHealth::default()
    }

    /// Where adaptive sampling keeps its state in this backend, if it can.
    fn sampling_store(&self) -> Option<std::sync::Arc<dyn sampling::SamplingStore>> {
        None
    }
}

/// Computes dependency links from spans: every span whose parent is in the
/// same set and belongs to another service counts as one call from the
/// parent's service to its own; an error status on the child counts as an
/// error.
pub fn dependencies_from_spans<'a>(
    spans: impl IntoIterator<Item = &'a Span> + Clone,
    out: &mut HashMap<(String, String), (u64, u64)>,
) {
    let mut by_id: rustc_hash::FxHashMap<(TraceId, waymark_model::SpanId), &Span> =
        Default::default();
    for s in spans.clone() {
        by_id.insert((s.trace_id, s.span_id), s);
    }
    for s in spans {
        let Some(pid) = s.parent_span_id else {
            continue;
        };
        let Some(parent) = by_id.get(&(s.trace_id, pid)) else {
            continue;
        };
        let (ps, cs) = (parent.service_name(), s.service_name());
        if ps == cs {
            continue;
        }
        let e = out.entry((ps.to_string(), cs.to_string())).or_default();
        e.0 += 1;
        if s.is_error() {
            e.1 += 1;
        }
    }
}

/// Turns accumulated edges into sorted links.
pub fn links_from_map(map: HashMap<(String, String), (u64, u64)>) -> Vec<DependencyLink> {
    let mut v: Vec<DependencyLink> = map
        .into_iter()
        .map(
            |((parent, child), (call_count, error_count))| DependencyLink {
                parent,
                child,
                call_count,
                error_count,
            },
        )
        .collect();
    v.sort_by(|a, b| (&a.parent, &a.child).cmp(&(&b.parent, &b.child)));
    v
}
