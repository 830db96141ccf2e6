//! The ingest pipeline: a bounded queue between the receivers and storage.
//!
//! A receiver submits the spans of one request and waits. The queue is
//! bounded in spans (not requests); a submission that cannot get room within
//! `max_wait` is refused with [`SubmitError::Full`] so the receiver answers
//! with back-pressure (HTTP 503 / gRPC `UNAVAILABLE`) instead of buffering
//! without bound or dropping silently. Writer tasks merge queued submissions
//! into larger storage writes and acknowledge each one once storage has made
//! it durable. Every span is counted: received, rejected (invalid), refused
//! (queue full), stored or failed.
//!
//! The pipeline knows nothing about protocols beyond the label each receiver
//! passes for metrics.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{Semaphore, mpsc, oneshot};
use waymark_model::Span;
use waymark_storage::{Storage, StorageError, StorageErrorKind};

/// Where the pipeline's writers put spans: storage in a collector, the
/// durable disk queue in an agent.
#[async_trait::async_trait]
pub trait SpanSink: Send + Sync + 'static {
    /// Returns once the spans are durable (the caller acknowledges then).
    async fn write(&self, spans: Vec<Span>) -> Result<(), StorageError>;
}

/// A [`Storage`] as a sink.
pub struct StorageSink(pub Arc<dyn Storage>);

#[async_trait::async_trait]
impl SpanSink for StorageSink {
    async fn write(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        self.0.write(spans).await
    }
}

/// Settings of the pipeline (the `pipeline` section of the configuration
/// file; see `waymark_server::settings` for their flags).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Most spans queued or being written at once.
    pub queue_spans: usize,
    /// Most spans merged into one storage write.
    pub max_batch_spans: usize,
    /// How long a submission may wait for room before it is refused.
    #[serde(deserialize_with = "waymark_model::time::deserialize_duration")]
    pub max_wait: Duration,
    /// Number of writer tasks.
    pub writers: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_spans: 200_000,
            max_batch_spans: 16_384,
            max_wait: Duration::from_millis(500),
            writers: 2,
        }
    }
}

/// Why a submission was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("ingest queue is full ({queued} spans queued); retry later")]
    Full { queued: usize },
    /// The sink's error, with its kind, so that the edge can tell a client
    /// to retry (a full disk) or not (corrupt data).
    #[error("storage failed: {0}")]
    Storage(StorageError),
    #[error("pipeline is shutting down")]
    Closed,
}

impl SubmitError {
    /// What the failure is, in storage's terms: a full queue or a closing
    /// pipeline is a store that cannot take writes right now.
    pub fn kind(&self) -> StorageErrorKind {
        match self {
            SubmitError::Full { .. } | SubmitError::Closed => StorageErrorKind::Unavailable,
            SubmitError::Storage(e) => e.kind,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: &'static str,
}

/// Counters of everything that passes through ingest.
#[derive(Default)]
pub struct IngestMetrics {
    pub received: Family<ProtocolLabel, Counter>,
    pub rejected: Family<ProtocolLabel, Counter>,
    pub refused: Family<ProtocolLabel, Counter>,
    pub stored: Family<ProtocolLabel, Counter>,
    pub failed: Family<ProtocolLabel, Counter>,
    pub queue_spans: Gauge,
    /// UDP packets dropped because the packet queue was full.
    pub packets_dropped: Family<ProtocolLabel, Counter>,
    /// Packets or request bodies that could not be decoded at all.
    pub malformed: Family<ProtocolLabel, Counter>,
}

impl IngestMetrics {
    pub fn register(self: &Arc<Self>, reg: &mut Registry) {
        reg.register(
            "waymark_spans_received",
            "Spans decoded by receivers",
            self.received.clone(),
        );
        reg.register(
            "waymark_spans_rejected",
            "Spans rejected as invalid (bad ids, over limits)",
            self.rejected.clone(),
        );
        reg.register(
            "waymark_spans_refused",
            "Spans refused because the ingest queue was full (client told to retry)",
            self.refused.clone(),
        );
        reg.register(
            "waymark_spans_stored",
            "Spans durably stored and acknowledged",
            self.stored.clone(),
        );
        reg.register(
            "waymark_spans_failed",
            "Spans whose storage write failed",
            self.failed.clone(),
        );
        reg.register(
            "waymark_udp_packets_dropped",
            "UDP packets dropped because the receiver's packet queue was full",
            self.packets_dropped.clone(),
        );
        reg.register(
            "waymark_malformed_requests",
            "Requests or packets that could not be decoded",
            self.malformed.clone(),
        );
        reg.register(
            "waymark_ingest_queue_spans",
            "Spans queued or being written",
            self.queue_spans.clone(),
        );
    }

    fn label(protocol: &'static str) -> ProtocolLabel {
        ProtocolLabel { protocol }
    }

    pub fn count_received(&self, protocol: &'static str, n: usize) {
        self.received
            .get_or_create(&Self::label(protocol))
            .inc_by(n as u64);
    }

    pub fn count_malformed(&self, protocol: &'static str) {
        self.malformed.get_or_create(&Self::label(protocol)).inc();
    }

    pub fn count_packet_dropped(&self, protocol: &'static str) {
        self.packets_dropped
            .get_or_create(&Self::label(protocol))
            .inc();
    }

    pub fn count_rejected(&self, protocol: &'static str, n: usize) {
        self.rejected
            .get_or_create(&Self::label(protocol))
            .inc_by(n as u64);
    }
}

struct Job {
    spans: Vec<Span>,
    /// Queue room this job holds (its span count, capped at the capacity).
    room: usize,
    protocol: &'static str,
    ack: oneshot::Sender<Result<(), StorageError>>,
}

/// Handle used by receivers; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::UnboundedSender<Job>,
    room: Arc<Semaphore>,
    cfg: PipelineConfig,
    metrics: Arc<IngestMetrics>,
}

impl Pipeline {
    /// Starts the writer tasks on the current runtime.
    pub fn start(
        storage: Arc<dyn SpanSink>,
        cfg: PipelineConfig,
        metrics: Arc<IngestMetrics>,
    ) -> Pipeline {
        // Unbounded channel, bounded by the semaphore: a job only enters
        // after it acquired room for its spans.
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let room = Arc::new(Semaphore::new(cfg.queue_spans));
        for _ in 0..cfg.writers.max(1) {
            let rx = rx.clone();
            let storage = storage.clone();
            let room = room.clone();
            let metrics = metrics.clone();
            let max_batch = cfg.max_batch_spans;
            tokio::spawn(async move {
                loop {
                    let mut jobs = Vec::new();
                    {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        let mut n = first.spans.len();
                        jobs.push(first);
                        while n < max_batch {
                            match rx.try_recv() {
                                Ok(j) => {
                                    n += j.spans.len();
                                    jobs.push(j);
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    write_jobs(storage.as_ref(), jobs, &room, &metrics).await;
                }
            });
        }
        Pipeline {
            tx,
            room,
            cfg,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Arc<IngestMetrics> {
        &self.metrics
    }

    /// Queues spans and waits until they are durably stored.
    pub async fn submit(
        &self,
        protocol: &'static str,
        spans: Vec<Span>,
    ) -> Result<(), SubmitError> {
        if spans.is_empty() {
            return Ok(());
        }
        let n = spans.len();
        let want = n.min(self.cfg.queue_spans) as u32;
        let permit = match tokio::time::timeout(
            self.cfg.max_wait,
            self.room.clone().acquire_many_owned(want),
        )
        .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(SubmitError::Closed),
            Err(_) => {
                self.metrics
                    .refused
                    .get_or_create(&IngestMetrics::label(protocol))
                    .inc_by(n as u64);
                return Err(SubmitError::Full {
                    queued: self.cfg.queue_spans - self.room.available_permits(),
                });
            }
        };
        // The writer returns the room once the write is done.
        permit.forget();
        self.metrics.queue_spans.inc_by(want as i64);
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Job {
                spans,
                room: want as usize,
                protocol,
                ack,
            })
            .map_err(|_| SubmitError::Closed)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SubmitError::Storage(e)),
            Err(_) => Err(SubmitError::Closed),
        }
    }
}

async fn write_jobs(
    storage: &dyn SpanSink,
    jobs: Vec<Job>,
    room: &Semaphore,
    metrics: &IngestMetrics,
) {
    let total: usize = jobs.iter().map(|j| j.spans.len()).sum();
    let mut all = Vec::with_capacity(total);
    let mut acks = Vec::with_capacity(jobs.len());
    let held: usize = jobs.iter().map(|j| j.room).sum();
    for j in jobs {
        acks.push((j.protocol, j.spans.len(), j.ack));
        all.extend(j.spans);
    }
    let res: Result<(), StorageError> = storage.write(all).await;
    // Give the room back before acknowledging, so that a client that got
    // its answer never sees its spans still counted as queued.
    room.add_permits(held);
    metrics.queue_spans.dec_by(held as i64);
    // One write answers many submissions: the error's kind and its whole
    // message (the source chain included) are taken once and given to each.
    let answer = res.as_ref().map(|_| ()).map_err(|e| {
        let mut message = e.message.clone();
        let mut cur = std::error::Error::source(e);
        while let Some(s) = cur {
            message.push_str(": ");
            message.push_str(&s.to_string());
            cur = s.source();
        }
        (e.kind, message)
    });
    for (protocol, n, ack) in acks {
        let label = IngestMetrics::label(protocol);
        match &res {
            Ok(()) => metrics.stored.get_or_create(&label).inc_by(n as u64),
            Err(_) => metrics.failed.get_or_create(&label).inc_by(n as u64),
        };
        let _ = ack.send(match &answer {
            Ok(()) => Ok(()),
            Err((kind, message)) => Err(StorageError::new(*kind, message.clone())),
        });
    }
    match &res {
        // A refusal (full disk, a WAL fault) is logged once by the storage
        // when its state changes and counted in `failed`; one line per
        // refused request would flood the log.
        Err(e) if e.kind == StorageErrorKind::Unavailable => {
            tracing::debug!(error = %e, spans = total, "storage refused a write")
        }
        Err(e) => tracing::error!(error = %e, spans = total, "storage write failed"),
        Ok(()) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waymark_storage::{EmbeddedConfig, EmbeddedStorage};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            EmbeddedStorage::open(EmbeddedConfig::new(dir.path()))
                .await
                .unwrap(),
        );
        let metrics = Arc::new(IngestMetrics::default());
        let p = Pipeline::start(
            Arc::new(StorageSink(store.clone())),
            PipelineConfig::default(),
            metrics.clone(),
        );
        let spans = waymark_testkit::fixture_trace(waymark_testkit::now_ns());
        let id = spans[0].trace_id;
        p.submit("test", spans).await.unwrap();
        assert!(store.get_trace(id).await.unwrap().is_some());
        let stored = metrics
            .stored
            .get_or_create(&ProtocolLabel { protocol: "test" })
            .get();
        assert_eq!(stored, 2);
        assert_eq!(metrics.queue_spans.get(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_refuses_with_backpressure() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            EmbeddedStorage::open(EmbeddedConfig::new(dir.path()))
                .await
                .unwrap(),
        );
        let metrics = Arc::new(IngestMetrics::default());
        let cfg = PipelineConfig {
            queue_spans: 4,
            max_wait: Duration::from_millis(20),
            ..Default::default()
        };
        let p = Pipeline::start(Arc::new(StorageSink(store)), cfg, metrics.clone());
        // Hold all room so the next submission cannot enter.
        let held = p.room.clone().acquire_many_owned(4).await.unwrap();
        let err = p
            .submit(
                "test",
                waymark_testkit::fixture_trace(waymark_testkit::now_ns()),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SubmitError::Full { .. }), "{err}");
        assert_eq!(
            metrics
                .refused
                .get_or_create(&ProtocolLabel { protocol: "test" })
                .get(),
            2
        );
        drop(held);
        p.submit(
            "test",
            waymark_testkit::fixture_trace(waymark_testkit::now_ns()),
        )
        .await
        .unwrap();
    }
}
