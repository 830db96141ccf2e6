//! Sends queued spans to collectors over OTLP gRPC. A batch is removed from
//! the queue only after a collector acknowledged it; on failure the same
//! batch is retried with exponential backoff, moving to the next collector
//! address (every address of every configured name, re-resolved on each
//! connection: DNS round-robin).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use waymark_otlp::to_request;
use waymark_proto::otlp::collector::trace_service_client::TraceServiceClient;

use crate::queue::DiskQueue;

/// Settings of the forwarder.
#[derive(Clone, Debug)]
pub struct ForwarderConfig {
    /// Collector OTLP gRPC endpoints, `host:port`.
    pub collectors: Vec<String>,
    /// Most queue records merged into one export.
    pub batch_records: usize,
    /// Compress exports with gzip.
    pub gzip: bool,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Timeout of one export call.
    pub timeout: Duration,
    /// Move to the next collector address this often, so agents spread
    /// over collectors (a headless Service's pod addresses, say) and follow
    /// them when they are scaled; a connection is otherwise kept.
    pub rebalance_every: Duration,
}

impl Default for ForwarderConfig {
    fn default() -> Self {
        ForwarderConfig {
            collectors: vec!["127.0.0.1:4317".into()],
            batch_records: 64,
            gzip: false,
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            rebalance_every: Duration::from_secs(300),
        }
    }
}

/// Counters of the forwarder.
#[derive(Default, Debug)]
pub struct ForwarderStats {
    pub forwarded_spans: AtomicU64,
    pub retries: AtomicU64,
    pub rejected_spans: AtomicU64,
}

pub struct Forwarder {
    cfg: ForwarderConfig,
    queue: Arc<DiskQueue>,
    pub stats: Arc<ForwarderStats>,
}

async fn resolve(names: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for n in names {
        match tokio::net::lookup_host(n.as_str()).await {
            Ok(addrs) => out.extend(addrs),
            Err(e) => tracing::warn!(collector = %n, error = %e, "cannot resolve collector"),
        }
    }
    out
}

impl Forwarder {
    pub fn new(cfg: ForwarderConfig, queue: Arc<DiskQueue>) -> Self {
        Forwarder {
            cfg,
            queue,
            stats: Arc::new(ForwarderStats::default()),
        }
    }

    async fn connect(&self, turn: usize) -> Option<TraceServiceClient<Channel>> {
        let addrs = resolve(&self.cfg.collectors).await;
        if addrs.is_empty() {
            return None;
        }
        let addr = addrs[turn % addrs.len()];
        let ch = Channel::from_shared(format!("http://{addr}"))
            .ok()?
            .connect_timeout(Duration::from_secs(3))
            .timeout(self.cfg.timeout)
            .connect()
            .await
            .map_err(|e| tracing::warn!(collector = %addr, error = %e, "collector unreachable"))
            .ok()?;
        let mut c = TraceServiceClient::new(ch).max_encoding_message_size(64 << 20);
        if self.cfg.gzip {
            c = c.send_compressed(CompressionEncoding::Gzip);
        }
        Some(c)
    }

    /// Runs until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut client: Option<TraceServiceClient<Channel>> = None;
        // Agents start at different addresses of the collector list.
        let mut turn = std::process::id() as usize
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as usize)
                .unwrap_or(0);
        let mut connected_at = std::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let batch = tokio::select! {
                _ = &mut stop => return,
                b = self.queue.read(self.cfg.batch_records, Duration::from_secs(1)) => b,
            };
            let batch = match batch {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "reading the agent queue failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let upto = batch.last().expect("non-empty").0;
            let spans: Vec<_> = batch.into_iter().flat_map(|(_, s)| s).collect();
            let n = spans.len() as u64;
            let request = to_request(&spans);
            // Retry this batch until a collector takes it (or we stop).
            loop {
                if client.is_some() && connected_at.elapsed() >= self.cfg.rebalance_every {
                    client = None;
                    turn = turn.wrapping_add(1);
                }
                if client.is_none() {
                    client = self.connect(turn).await;
                    connected_at = std::time::Instant::now();
                }
                let result = match client.as_mut() {
                    Some(c) => c.export(request.clone()).await.map(|r| r.into_inner()),
                    None => Err(tonic::Status::unavailable("no collector reachable")),
                };
                match result {
                    Ok(resp) => {
                        let rejected = resp
                            .partial_success
                            .map(|p| p.rejected_spans.max(0) as u64)
                            .unwrap_or(0);
                        if rejected > 0 {
                            // Invalid spans will never be accepted: drop them, counted.
                            self.stats
                                .rejected_spans
                                .fetch_add(rejected, Ordering::Relaxed);
                            tracing::warn!(spans = rejected, "collector rejected spans as invalid");
                        }
                        self.stats
                            .forwarded_spans
                            .fetch_add(n - rejected.min(n), Ordering::Relaxed);
                        if let Err(e) = self.queue.ack_async(upto).await {
                            tracing::error!(error = %e, "recording delivery failed; spans may be sent again");
                        }
                        backoff = Duration::from_millis(100);
                        break;
                    }
                    Err(status) => {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(code = ?status.code(), message = status.message(), "export failed; retrying");
                        if status.code() == tonic::Code::InvalidArgument {
                            // The collector refuses this batch outright: it can
                            // never succeed, so count and drop it.
                            self.stats.rejected_spans.fetch_add(n, Ordering::Relaxed);
                            tracing::error!(spans = n, error = %status, "collector refused a batch as invalid; dropping it");
                            let _ = self.queue.ack_async(upto).await;
                            break;
                        }
                        client = None;
                        turn = turn.wrapping_add(1);
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(self.cfg.max_backoff);
                    }
                }
            }
        }
    }
}
