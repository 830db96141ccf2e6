//! Wiring: builds storage, the pipeline, receivers and APIs from a
//! [`Config`] and runs them until shutdown. The binary parses flags into a
//! `Config` and calls [`run`]; tests call [`start`] to get a running server
//! on ephemeral ports.
//!
//! Start-up order matters for probes: the admin port answers `/health` at
//! once, `/ready` turns 200 only when storage has replayed its WAL and every
//! listener is serving.

pub mod config;
pub mod settings;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use waymark_api::admin::{AdminState, StorageGauges};
use waymark_api::{ApiMetrics, ApiState};
use waymark_pipeline::{IngestMetrics, Pipeline};
use waymark_query::{QueryOptions, QueryService};
use waymark_receivers::jaeger::grpc::JaegerGrpcReceiver;
use waymark_receivers::jaeger::http::JaegerHttpReceiver;
use waymark_receivers::jaeger::udp::JaegerUdpReceiver;
use waymark_receivers::otlp::grpc::OtlpGrpcReceiver;
use waymark_receivers::otlp::http::OtlpHttpReceiver;
use waymark_receivers::thrift::Protocol;
use waymark_receivers::zipkin::http::ZipkinReceiver;
use waymark_receivers::{Receiver, ReceiverContext};
use waymark_storage::{EmbeddedConfig, EmbeddedStorage, Storage};

pub use config::Config;

/// Which components run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Receivers, storage, query API and UI in one process.
    AllInOne,
    /// Receivers and the storage writer; no query API.
    Collector,
    /// The query API over a store written by a collector; read-only.
    Query,
    /// A per-node agent: receivers write into a durable disk queue that is
    /// forwarded to collectors over OTLP gRPC.
    Agent,
}

impl Mode {
    fn ingests(self) -> bool {
        matches!(self, Mode::AllInOne | Mode::Collector | Mode::Agent)
    }
    fn queries(self) -> bool {
        matches!(self, Mode::AllInOne | Mode::Query)
    }
}

/// Addresses the running server actually bound (ports resolved).
#[derive(Clone, Debug)]
pub struct Bound {
    pub admin: SocketAddr,
    pub otlp_grpc: Option<SocketAddr>,
    pub otlp_http: Option<SocketAddr>,
    pub zipkin: Option<SocketAddr>,
    pub jaeger_compact: Option<SocketAddr>,
    pub jaeger_binary: Option<SocketAddr>,
    pub jaeger_http: Option<SocketAddr>,
    pub sampling: Option<SocketAddr>,
    pub jaeger_grpc: Option<SocketAddr>,
    pub query: Option<SocketAddr>,
    pub query_grpc: Option<SocketAddr>,
}

/// A started server.
pub struct Running {
    pub bound: Bound,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<std::io::Result<()>>)>,
    storage: Option<Arc<dyn Storage>>,
    embedded: Option<Arc<EmbeddedStorage>>,
    serving: Arc<AtomicBool>,
}

/// Datagrams queued per UDP receiver before new ones are dropped (counted).
const UDP_QUEUE_PACKETS: usize = 1_000;

async fn bind_udp(what: &str, addr: SocketAddr) -> anyhow::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::bind(addr).await.with_context(|| {
        format!("cannot listen on udp {addr} for {what}: is another process using the port?")
    })
}

async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for {what}: is another process using the port?")
    })
}

/// Binds every listener, opens storage and starts serving.
pub async fn start(cfg: Config, mode: Mode) -> anyhow::Result<Running> {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks: Vec<(&'static str, JoinHandle<std::io::Result<()>>)> = Vec::new();

    // Admin first, so /health answers during WAL replay.
    let admin_listener = bind("the admin endpoints", cfg.listen.admin).await?;
    let mut registry = Registry::default();
    let ingest_metrics = Arc::new(IngestMetrics::default());
    ingest_metrics.register(&mut registry);
    let api_metrics = Arc::new(ApiMetrics::default());
    api_metrics.register(&mut registry);
    let gauges = StorageGauges::default();
    gauges.register(&mut registry);
    let agent_gauges = AgentGauges::default();
    if mode == Mode::Agent {
        agent_gauges.register(&mut registry);
    }
    let storage_cell: Arc<OnceLock<Arc<dyn Storage>>> = Arc::new(OnceLock::new());
    let serving = Arc::new(AtomicBool::new(false));
    let agent_ready = Arc::new(AtomicBool::new(false));
    let on_scrape: Arc<OnceLock<waymark_api::admin::ScrapeHook>> = Arc::new(OnceLock::new());
    let admin = AdminState {
        registry: Arc::new(registry),
        gauges,
        storage: storage_cell.clone(),
        serving: serving.clone(),
        ready_without_storage: agent_ready.clone(),
        on_scrape: on_scrape.clone(),
    };
    let bound_admin = admin_listener.local_addr()?;
    tasks.push((
        "admin",
        spawn_http(
            admin_listener,
            waymark_api::admin::router(admin),
            shutdown_rx.clone(),
        ),
    ));

    // Bind the rest before the (possibly long) WAL replay so port conflicts
    // fail fast.
    let grpc_listener = if mode.ingests() {
        Some(bind("OTLP gRPC", cfg.listen.otlp_grpc).await?)
    } else {
        None
    };
    let http_listener = if mode.ingests() {
        Some(bind("OTLP HTTP", cfg.listen.otlp_http).await?)
    } else {
        None
    };
    let zipkin_listener = if mode.ingests() {
        Some(bind("Zipkin", cfg.listen.zipkin).await?)
    } else {
        None
    };
    let jaeger_listeners = if mode.ingests() {
        Some((
            bind_udp("Jaeger UDP (compact)", cfg.listen.jaeger_compact).await?,
            bind_udp("Jaeger UDP (binary)", cfg.listen.jaeger_binary).await?,
            bind("Jaeger HTTP", cfg.listen.jaeger_http).await?,
            bind("sampling strategies", cfg.listen.sampling).await?,
            bind("Jaeger gRPC", cfg.listen.jaeger_grpc).await?,
        ))
    } else {
        None
    };
    let query_listener = if mode.queries() {
        Some((
            bind("the query API", cfg.listen.query).await?,
            bind("the gRPC query API", cfg.listen.query_grpc).await?,
        ))
    } else {
        None
    };

    // Where received spans go: storage, or the agent's disk queue.
    let (sink, storage, embedded): (
        Arc<dyn waymark_pipeline::SpanSink>,
        Option<Arc<dyn Storage>>,
        Option<Arc<EmbeddedStorage>>,
    ) = if mode == Mode::Agent {
        let dir = cfg
            .agent
            .queue_dir
            .clone()
            .unwrap_or_else(|| cfg.data_dir.join("agent-queue"));
        let mut qcfg = waymark_agent::QueueConfig::new(&dir);
        qcfg.max_bytes = cfg.agent.queue_max_bytes;
        // The storage watermark guards the queue's disk the same way.
        qcfg.watermark = waymark_storage::Watermark {
            min_free_bytes: cfg.storage.min_free_bytes,
            min_free_percent: cfg.storage.min_free_percent,
        };
        let queue = waymark_agent::DiskQueue::open(qcfg)
            .with_context(|| format!("opening the agent queue in {}", dir.display()))?;
        let forwarder = waymark_agent::Forwarder::new(
            waymark_agent::ForwarderConfig {
                collectors: cfg.agent.collectors.clone(),
                gzip: cfg.agent.gzip,
                ..Default::default()
            },
            queue.clone(),
        );
        let stats = forwarder.stats.clone();
        let q = queue.clone();
        let g = agent_gauges.clone();
        let _ = on_scrape.set(Arc::new(move || g.refresh(&q, &stats)));
        let stop = shutdown_rx.clone();
        tasks.push((
            "forwarder",
            tokio::spawn(async move {
                forwarder.run(waymark_receivers::wait_shutdown(stop)).await;
                Ok(())
            }),
        ));
        let (bytes, records) = queue.backlog();
        tracing::info!(queue = %dir.display(), bytes, records, collectors = ?cfg.agent.collectors, "agent queue open");
        agent_ready.store(true, Ordering::Release);
        (Arc::new(waymark_agent::QueueSink(queue)), None, None)
    } else {
        let (s, e) = open_storage(&cfg, mode, &storage_cell).await?;
        (
            Arc::new(waymark_pipeline::StorageSink(s.clone())),
            Some(s),
            e,
        )
    };

    // Adaptive sampling counts what reaches storage and keeps its state in
    // the store, so only modes that write it run it.
    let adaptive = if cfg.sampling.adaptive.enabled && mode != Mode::Agent && mode.ingests() {
        let acfg = cfg.sampling.adaptive.to_config();
        acfg.validate().map_err(|e| anyhow::anyhow!(e))?;
        let store = storage
            .as_ref()
            .and_then(|s| s.sampling_store())
            .context("adaptive sampling: this storage backend keeps no sampling state")?;
        let a = Arc::new(waymark_sampling::adaptive::Adaptive::new(
            acfg,
            store,
            collector_id(),
        ));
        // The stored probabilities are in force before the first client
        // asks (a restart hands out what was computed before it).
        if let Err(e) = a.load().await {
            tracing::warn!(error = %e, "adaptive sampling: stored probabilities not loaded");
        }
        let run = a.clone();
        let stop = shutdown_rx.clone();
        tasks.push((
            "adaptive sampling",
            tokio::spawn(async move {
                run.run(waymark_receivers::wait_shutdown(stop)).await;
                Ok(())
            }),
        ));
        Some(a)
    } else {
        None
    };
    let sink: Arc<dyn waymark_pipeline::SpanSink> = match &adaptive {
        Some(a) => Arc::new(waymark_sampling::adaptive::ObservingSink {
            inner: sink,
            adaptive: a.clone(),
        }),
        None => sink,
    };

    let mut bound = Bound {
        admin: bound_admin,
        otlp_grpc: None,
        otlp_http: None,
        zipkin: None,
        jaeger_compact: None,
        jaeger_binary: None,
        jaeger_http: None,
        sampling: None,
        jaeger_grpc: None,
        query: None,
        query_grpc: None,
    };

    if mode.ingests() {
        let pipeline = Pipeline::start(sink, cfg.pipeline.clone(), ingest_metrics.clone());
        let ctx = ReceiverContext {
            pipeline,
            limits: Arc::new(cfg.limits.clone()),
        };
        let grpc = grpc_listener.unwrap();
        let http = http_listener.unwrap();
        let zipkin = zipkin_listener.unwrap();
        bound.otlp_grpc = Some(grpc.local_addr()?);
        bound.otlp_http = Some(http.local_addr()?);
        bound.zipkin = Some(zipkin.local_addr()?);
        let (jc, jb, jh, sl, jg) = jaeger_listeners.unwrap();
        bound.sampling = Some(sl.local_addr()?);
        bound.jaeger_grpc = Some(jg.local_addr()?);
        let strategies = match &cfg.sampling.strategies_file {
            Some(p) => {
                waymark_sampling::StrategyStore::watch(p.clone(), cfg.sampling.reload_interval)
                    .with_context(|| format!("loading sampling strategies from {}", p.display()))?
            }
            None => waymark_sampling::StrategyStore::default(),
        };
        // The agent asks a collector (and falls back to its own file); the
        // other modes answer from their file.
        let provider: Arc<dyn waymark_sampling::StrategyProvider> = if mode == Mode::Agent {
            Arc::new(waymark_sampling::RemoteStrategies::new(
                cfg.agent.sampling_endpoint(),
                Duration::from_secs(60),
                strategies.clone(),
            ))
        } else if let Some(a) = &adaptive {
            Arc::new(waymark_sampling::AdaptiveStrategies {
                file: strategies.clone(),
                adaptive: a.clone(),
            })
        } else {
            Arc::new(strategies.clone())
        };
        tasks.push((
            "sampling",
            spawn_http(
                sl,
                waymark_sampling::agent_router(provider.clone()),
                shutdown_rx.clone(),
            ),
        ));
        bound.jaeger_compact = Some(jc.local_addr()?);
        bound.jaeger_binary = Some(jb.local_addr()?);
        bound.jaeger_http = Some(jh.local_addr()?);
        // The one place receivers are registered.
        let receivers: Vec<Box<dyn Receiver>> = vec![
            Box::new(OtlpGrpcReceiver {
                listener: grpc,
                ctx: ctx.clone(),
            }),
            Box::new(OtlpHttpReceiver {
                listener: http,
                ctx: ctx.clone(),
                cors_allowed_origins: cfg.otlp.cors_allowed_origins.clone(),
            }),
            Box::new(ZipkinReceiver {
                listener: zipkin,
                ctx: ctx.clone(),
            }),
            Box::new(JaegerUdpReceiver {
                socket: jc,
                protocol: Protocol::Compact,
                ctx: ctx.clone(),
                queue_packets: UDP_QUEUE_PACKETS,
            }),
            Box::new(JaegerUdpReceiver {
                socket: jb,
                protocol: Protocol::Binary,
                ctx: ctx.clone(),
                queue_packets: UDP_QUEUE_PACKETS,
            }),
            Box::new(JaegerHttpReceiver {
                listener: jh,
                ctx: ctx.clone(),
                extra: Some(waymark_sampling::collector_router(provider.clone())),
            }),
            Box::new(JaegerGrpcReceiver {
                listener: jg,
                ctx,
                extra: waymark_sampling::grpc_routes(provider),
            }),
        ];
        for r in receivers {
            let name = r.name();
            let rx = shutdown_rx.clone();
            tasks.push((name, tokio::spawn(r.run(rx))));
        }
        if let Some(storage) = &storage {
            tasks.push((
                "retention",
                spawn_retention(storage.clone(), cfg.storage.retention, shutdown_rx.clone()),
            ));
        }
    } else if let Some(embedded) = &embedded {
        tasks.push((
            "refresh",
            spawn_refresh(embedded.clone(), shutdown_rx.clone()),
        ));
    }

    if let Some((l, lg)) = query_listener {
        bound.query = Some(l.local_addr()?);
        bound.query_grpc = Some(lg.local_addr()?);
        let api = ApiState {
            query: QueryService::new(
                storage.clone().context("the query API needs storage")?,
                QueryOptions {
                    max_clock_skew_adjust_ns: cfg.query.max_clock_skew_adjustment.as_nanos() as u64,
                },
            ),
            metrics: api_metrics,
        };
        let grpc_routes = waymark_api::grpc_routes(api.query.clone(), api.metrics.clone());
        tasks.push((
            "query",
            spawn_http(l, waymark_api::query_router(api), shutdown_rx.clone()),
        ));
        let stop = shutdown_rx.clone();
        tasks.push((
            "query_grpc",
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .add_routes(grpc_routes)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(lg),
                        waymark_receivers::wait_shutdown(stop),
                    )
                    .await
                    .map_err(std::io::Error::other)
            }),
        ));
    }

    serving.store(true, Ordering::Release);
    Ok(Running {
        bound,
        shutdown,
        tasks,
        storage,
        embedded,
        serving,
    })
}

/// Gauges and counters of the agent's queue and forwarder, refreshed at
/// each scrape.
#[derive(Clone, Default)]
struct AgentGauges {
    queue_bytes: prometheus_client::metrics::gauge::Gauge,
    queue_records: prometheus_client::metrics::gauge::Gauge,
    oldest_age_seconds: prometheus_client::metrics::gauge::Gauge,
    forwarded: prometheus_client::metrics::counter::Counter,
    retries: prometheus_client::metrics::counter::Counter,
    rejected: prometheus_client::metrics::counter::Counter,
}

impl AgentGauges {
    fn register(&self, reg: &mut Registry) {
        reg.register(
            "waymark_agent_queue_bytes",
            "Bytes waiting in the agent queue",
            self.queue_bytes.clone(),
        );
        reg.register(
            "waymark_agent_queue_records",
            "Batches waiting in the agent queue",
            self.queue_records.clone(),
        );
        reg.register(
            "waymark_agent_oldest_record_age_seconds",
            "Age of the oldest batch waiting in the agent queue (an upper bound: its segment's age)",
            self.oldest_age_seconds.clone(),
        );
        reg.register(
            "waymark_agent_forwarded_spans",
            "Spans a collector acknowledged",
            self.forwarded.clone(),
        );
        reg.register(
            "waymark_agent_export_retries",
            "Exports retried after a failure",
            self.retries.clone(),
        );
        reg.register(
            "waymark_agent_rejected_spans",
            "Spans a collector refused as invalid (dropped)",
            self.rejected.clone(),
        );
    }

    fn refresh(&self, q: &waymark_agent::DiskQueue, s: &waymark_agent::forwarder::ForwarderStats) {
        use std::sync::atomic::Ordering::Relaxed;
        let (bytes, records) = q.backlog();
        self.queue_bytes.set(bytes as i64);
        self.queue_records.set(records as i64);
        self.oldest_age_seconds.set(q.oldest_age().as_secs() as i64);
        for (c, v) in [
            (&self.forwarded, s.forwarded_spans.load(Relaxed)),
            (&self.retries, s.retries.load(Relaxed)),
            (&self.rejected, s.rejected_spans.load(Relaxed)),
        ] {
            c.inc_by(v.saturating_sub(c.get()));
        }
    }
}

/// Names this process in shared state (adaptive sampling's throughput and
/// lease): host, process id and start time.
fn collector_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "waymark".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{host}-{}-{started}", std::process::id())
}

/// Opens the configured backend. The embedded store is opened as the
/// writer when this process ingests, read-only for the `query` mode.
async fn open_storage(
    cfg: &Config,
    mode: Mode,
    storage_cell: &OnceLock<Arc<dyn Storage>>,
) -> anyhow::Result<(Arc<dyn Storage>, Option<Arc<EmbeddedStorage>>)> {
    if cfg.storage.backend == config::StorageBackend::Elasticsearch {
        let es = open_elasticsearch(cfg).await?;
        let storage: Arc<dyn Storage> = Arc::new(es);
        let _ = storage_cell.set(storage.clone());
        return Ok((storage, None));
    }
    let mut ecfg = EmbeddedConfig::new(&cfg.data_dir);
    ecfg.fsync = cfg.storage.fsync;
    ecfg.head_max_spans = cfg.storage.head_max_spans;
    ecfg.head_max_bytes = cfg.storage.head_max_bytes;
    ecfg.head_max_age = cfg.storage.head_max_age;
    ecfg.zstd_level = cfg.storage.zstd_level;
    ecfg.watermark = waymark_storage::Watermark {
        min_free_bytes: cfg.storage.min_free_bytes,
        min_free_percent: cfg.storage.min_free_percent,
    };
    let started = std::time::Instant::now();
    let embedded = Arc::new(if mode.ingests() {
        EmbeddedStorage::open(ecfg)
            .await
            .with_context(|| format!("opening the store in {}", cfg.data_dir.display()))?
    } else {
        // A query process may start before the collector has created the
        // store (two containers of one pod, say): wait for it, not ready,
        // instead of exiting and being restarted in a loop.
        let wal = cfg.data_dir.join("wal");
        if !wal.exists() {
            tracing::info!(data_dir = %cfg.data_dir.display(), "waiting for a collector to create the store");
            while !wal.exists() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        EmbeddedStorage::open_read_only(ecfg)
            .await
            .with_context(|| format!("opening the store in {} read-only", cfg.data_dir.display()))?
    });
    let storage: Arc<dyn Storage> = embedded.clone();
    let _ = storage_cell.set(storage.clone());
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        stored_spans = storage.stats().stored_spans,
        "storage open"
    );

    Ok((storage, Some(embedded)))
}

/// Connects to Elasticsearch/OpenSearch. An unreachable or overloaded
/// cluster is waited for (the process stays alive and not ready, instead
/// of crash-looping); a configuration or credentials error stops start-up.
async fn open_elasticsearch(cfg: &Config) -> anyhow::Result<waymark_elasticsearch::EsStorage> {
    let es_cfg = cfg.storage.elasticsearch.to_config();
    let mut delay = Duration::from_secs(1);
    loop {
        match waymark_elasticsearch::EsStorage::open(es_cfg.clone()).await {
            Ok(s) => {
                tracing::info!(urls = ?cfg.storage.elasticsearch.urls, version = %s.version().number, "storage open");
                return Ok(s);
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, retry_in_s = delay.as_secs(), "elasticsearch not available yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(anyhow::anyhow!(e).context("opening the elasticsearch storage")),
        }
    }
}

fn spawn_http(
    listener: TcpListener,
    router: axum::Router,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(waymark_receivers::wait_shutdown(shutdown))
            .await
    })
}

/// Runs `work` every `every` until shutdown.
fn spawn_periodic<F, Fut>(
    every: Duration,
    shutdown: watch::Receiver<bool>,
    mut work: F,
) -> JoinHandle<std::io::Result<()>>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let stop = waymark_receivers::wait_shutdown(shutdown);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tick.tick() => work().await,
            }
        }
    })
}

/// Deletes data past the retention period, every 5 minutes.
fn spawn_retention(
    storage: Arc<dyn Storage>,
    retention: Duration,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    spawn_periodic(Duration::from_secs(300), shutdown, move || {
        let storage = storage.clone();
        async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let cutoff = now.saturating_sub(retention.as_nanos() as u64);
            if let Err(e) = storage.purge_before(cutoff).await {
                tracing::error!(error = %e, "retention pass failed");
            }
        }
    })
}

/// Picks up a collector's new blocks and WAL records (read-only mode).
fn spawn_refresh(
    storage: Arc<EmbeddedStorage>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    spawn_periodic(Duration::from_secs(2), shutdown, move || {
        let storage = storage.clone();
        async move {
            if let Err(e) = storage.refresh().await {
                tracing::warn!(error = %e, "refreshing the read-only store failed");
            }
        }
    })
}

impl Running {
    /// The store, in every mode but `agent`.
    pub fn storage(&self) -> Option<&Arc<dyn Storage>> {
        self.storage.as_ref()
    }

    /// Waits until `signal` resolves or a component fails, then shuts down
    /// in order: stop accepting, drain, close storage.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut failed: Option<anyhow::Error> = None;
        {
            let watch_tasks = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Some(i) = self.tasks.iter().position(|(_, t)| t.is_finished()) {
                        return i;
                    }
                }
            };
            tokio::select! {
                _ = signal => tracing::info!("shutting down"),
                i = watch_tasks => {
                    let (name, t) = self.tasks.remove(i);
                    let why = match t.await {
                        Ok(Ok(())) => anyhow::anyhow!("{name} stopped unexpectedly"),
                        Ok(Err(e)) => anyhow::Error::new(e).context(format!("{name} failed")),
                        Err(e) => anyhow::Error::new(e).context(format!("{name} panicked")),
                    };
                    tracing::error!(error = %why, "component stopped; shutting down");
                    failed = Some(why);
                }
            }
        }
        self.serving.store(false, Ordering::Release);
        let _ = self.shutdown.send(true);
        for (name, t) in self.tasks.drain(..) {
            match tokio::time::timeout(Duration::from_secs(10), t).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(component = name, error = %e, "stopped with an error")
                }
                Ok(Err(e)) => tracing::warn!(component = name, error = %e, "task failed"),
                Err(_) => tracing::warn!(component = name, "did not stop within 10s"),
            }
        }
        if let Some(e) = self.embedded.take() {
            tokio::task::spawn_blocking(move || e.close()).await.ok();
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
