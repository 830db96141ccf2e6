//! Command-line interface. Every server option can come from the YAML file
//! (`--config`), a flag, or a `WAYMARK_*` environment variable; flags and
//! variables override the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use waymark_server::{Config, Mode};
use waymark_storage::FsyncPolicy;

/// Waymark: a distributed tracing backend that speaks OTLP and serves
/// Jaeger's query API. With no subcommand it runs `all-in-one`.
#[derive(Parser, Debug)]
#[command(name = "waymark", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Receivers, storage and the query API in one process (default).
    AllInOne(ServerArgs),
    /// Receivers and the storage writer, without the query API.
    Collector(ServerArgs),
    /// The query API over what a collector stores: its data directory (read-only) or the same Elasticsearch.
    Query(ServerArgs),
    /// Per-node agent: receives locally, queues on disk, forwards to collectors.
    Agent(ServerArgs),
    /// Sends generated traces to an OTLP endpoint.
    Tracegen(crate::tracegen::TracegenArgs),
    /// Starts a server, loads it and prints ingest, size and query figures.
    Bench(crate::bench::BenchArgs),
    /// Deletes Jaeger-layout Elasticsearch/OpenSearch indices older than N days.
    EsCleaner(crate::es::CleanerArgs),
    /// Manages rollover indices and aliases in Elasticsearch/OpenSearch.
    EsRollover(crate::es::RolloverArgs),
}

/// Options of the server modes. Each overrides the configuration file.
#[derive(Args, Debug, Clone, Default)]
pub struct ServerArgs {
    /// YAML configuration file (see docs/configuration.md).
    #[arg(long, env = "WAYMARK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded store [default: ./waymark-data].
    #[arg(long, env = "WAYMARK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// OTLP gRPC listen address [default: 0.0.0.0:4317].
    #[arg(long, env = "WAYMARK_OTLP_GRPC_LISTEN")]
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// OTLP HTTP listen address [default: 0.0.0.0:4318].
    #[arg(long, env = "WAYMARK_OTLP_HTTP_LISTEN")]
    pub otlp_http_listen: Option<SocketAddr>,
    /// Zipkin collector API listen address (/api/v1/spans, /api/v2/spans) [default: 0.0.0.0:9411].
    #[arg(long, env = "WAYMARK_ZIPKIN_LISTEN")]
    pub zipkin_listen: Option<SocketAddr>,
    /// Jaeger agent UDP, Thrift compact protocol [default: 0.0.0.0:6831].
    #[arg(long, env = "WAYMARK_JAEGER_COMPACT_LISTEN")]
    pub jaeger_compact_listen: Option<SocketAddr>,
    /// Jaeger agent UDP, Thrift binary protocol [default: 0.0.0.0:6832].
    #[arg(long, env = "WAYMARK_JAEGER_BINARY_LISTEN")]
    pub jaeger_binary_listen: Option<SocketAddr>,
    /// Jaeger collector HTTP, POST /api/traces with Thrift [default: 0.0.0.0:14268].
    #[arg(long, env = "WAYMARK_JAEGER_HTTP_LISTEN")]
    pub jaeger_http_listen: Option<SocketAddr>,
    /// Jaeger collector gRPC: PostSpans and SamplingManager [default: 0.0.0.0:14250].
    #[arg(long, env = "WAYMARK_JAEGER_GRPC_LISTEN")]
    pub jaeger_grpc_listen: Option<SocketAddr>,
    /// Sampling strategies for Jaeger clients: /sampling and legacy / [default: 0.0.0.0:5778].
    #[arg(long, env = "WAYMARK_SAMPLING_LISTEN")]
    pub sampling_listen: Option<SocketAddr>,
    /// Jaeger-format sampling strategies file, re-read when it changes [default: sample everything].
    #[arg(long, env = "WAYMARK_SAMPLING_STRATEGIES_FILE")]
    pub sampling_strategies_file: Option<PathBuf>,
    /// Adaptive sampling for services the strategies file does not list [default: false].
    #[arg(long, env = "WAYMARK_SAMPLING_ADAPTIVE")]
    pub sampling_adaptive: Option<bool>,
    /// (adaptive) Sampled traces per second wanted from each operation [default: 1].
    #[arg(long, env = "WAYMARK_ADAPTIVE_TARGET_SAMPLES_PER_SECOND")]
    pub adaptive_target_samples_per_second: Option<f64>,
    /// (adaptive) Relative distance from the target within which nothing changes [default: 0.3].
    #[arg(long, env = "WAYMARK_ADAPTIVE_DELTA_TOLERANCE")]
    pub adaptive_delta_tolerance: Option<f64>,
    /// (adaptive) How often throughput is stored and probabilities recomputed [default: 1m].
    #[arg(long, env = "WAYMARK_ADAPTIVE_CALCULATION_INTERVAL")]
    pub adaptive_calculation_interval: Option<String>,
    /// (adaptive) How much stored throughput each calculation looks at [default: 3m].
    #[arg(long, env = "WAYMARK_ADAPTIVE_LOOKBACK")]
    pub adaptive_lookback: Option<String>,
    /// (adaptive) Probability of operations not seen yet [default: 0.001].
    #[arg(long, env = "WAYMARK_ADAPTIVE_INITIAL_SAMPLING_PROBABILITY")]
    pub adaptive_initial_sampling_probability: Option<f64>,
    /// (adaptive) Lowest probability handed out [default: 0.00001].
    #[arg(long, env = "WAYMARK_ADAPTIVE_MIN_SAMPLING_PROBABILITY")]
    pub adaptive_min_sampling_probability: Option<f64>,
    /// (adaptive) Traces per second every operation is sampled at least [default: 0.0166667].
    #[arg(long, env = "WAYMARK_ADAPTIVE_MIN_SAMPLES_PER_SECOND")]
    pub adaptive_min_samples_per_second: Option<f64>,
    /// (adaptive) Largest relative increase of a probability per interval [default: 0.5].
    #[arg(long, env = "WAYMARK_ADAPTIVE_MAX_INCREASE")]
    pub adaptive_max_increase: Option<f64>,
    /// Storage backend: embedded (the data directory) or elasticsearch (Elasticsearch/OpenSearch) [default: embedded].
    #[arg(long, env = "WAYMARK_STORAGE_BACKEND")]
    pub storage_backend: Option<String>,
    /// (elasticsearch) Server URLs, comma-separated [default: http://127.0.0.1:9200].
    #[arg(long, env = "WAYMARK_ES_URLS", value_delimiter = ',')]
    pub es_urls: Option<Vec<String>>,
    /// (elasticsearch) Basic-auth username.
    #[arg(long, env = "WAYMARK_ES_USERNAME")]
    pub es_username: Option<String>,
    /// (elasticsearch) Basic-auth password (e.g. from a Secret through the environment).
    #[arg(long, env = "WAYMARK_ES_PASSWORD")]
    pub es_password: Option<String>,
    /// (elasticsearch) File holding the basic-auth password.
    #[arg(long, env = "WAYMARK_ES_PASSWORD_FILE")]
    pub es_password_file: Option<PathBuf>,
    /// (elasticsearch) File holding an API key (base64 of id:key).
    #[arg(long, env = "WAYMARK_ES_API_KEY_FILE")]
    pub es_api_key_file: Option<PathBuf>,
    /// (elasticsearch) File holding a bearer token.
    #[arg(long, env = "WAYMARK_ES_BEARER_TOKEN_FILE")]
    pub es_bearer_token_file: Option<PathBuf>,
    /// (elasticsearch) PEM file of the cluster's CA.
    #[arg(long, env = "WAYMARK_ES_CA_FILE")]
    pub es_ca_file: Option<PathBuf>,
    /// (elasticsearch) PEM client certificate.
    #[arg(long, env = "WAYMARK_ES_CLIENT_CERT_FILE")]
    pub es_client_cert_file: Option<PathBuf>,
    /// (elasticsearch) PEM key of the client certificate.
    #[arg(long, env = "WAYMARK_ES_CLIENT_KEY_FILE")]
    pub es_client_key_file: Option<PathBuf>,
    /// (elasticsearch) Accept any server certificate: testing only [default: false].
    #[arg(long, env = "WAYMARK_ES_TLS_SKIP_VERIFY")]
    pub es_tls_skip_verify: Option<bool>,
    /// (elasticsearch) Per-request timeout, e.g. 30s [default: 30s].
    #[arg(long, env = "WAYMARK_ES_TIMEOUT")]
    pub es_timeout: Option<String>,
    /// (elasticsearch) Compress request bodies with gzip [default: false].
    #[arg(long, env = "WAYMARK_ES_GZIP")]
    pub es_gzip: Option<bool>,
    /// (elasticsearch) Discover the cluster's HTTP nodes at start-up and spread requests over them [default: false].
    #[arg(long, env = "WAYMARK_ES_SNIFF")]
    pub es_sniff: Option<bool>,
    /// (elasticsearch) Index prefix, joined with - [default: none].
    #[arg(long, env = "WAYMARK_ES_INDEX_PREFIX")]
    pub es_index_prefix: Option<String>,
    /// (elasticsearch) Separator of the date parts of index names [default: -].
    #[arg(long, env = "WAYMARK_ES_INDEX_DATE_SEPARATOR")]
    pub es_index_date_separator: Option<String>,
    /// (elasticsearch) A new span index every day or hour [default: day].
    #[arg(long, env = "WAYMARK_ES_SPAN_ROLLOVER")]
    pub es_span_rollover: Option<String>,
    /// (elasticsearch) A new service index every day or hour [default: day].
    #[arg(long, env = "WAYMARK_ES_SERVICE_ROLLOVER")]
    pub es_service_rollover: Option<String>,
    /// (elasticsearch) Write to *-write and read from *-read aliases (see es-rollover) [default: false].
    #[arg(long, env = "WAYMARK_ES_USE_ALIASES")]
    pub es_use_aliases: Option<bool>,
    /// (elasticsearch) Store every tag also as a tag.<key> field [default: false].
    #[arg(long, env = "WAYMARK_ES_TAGS_AS_FIELDS_ALL")]
    pub es_tags_as_fields_all: Option<bool>,
    /// (elasticsearch) Put the index templates at start-up [default: true].
    #[arg(long, env = "WAYMARK_ES_CREATE_INDEX_TEMPLATES")]
    pub es_create_index_templates: Option<bool>,
    /// (elasticsearch) Shards of new indices [default: 5].
    #[arg(long, env = "WAYMARK_ES_SHARDS")]
    pub es_shards: Option<u32>,
    /// (elasticsearch) Replicas of new indices [default: 1].
    #[arg(long, env = "WAYMARK_ES_REPLICAS")]
    pub es_replicas: Option<u32>,
    /// (elasticsearch) How far back trace-by-id, services and operations look [default: 72h].
    #[arg(long, env = "WAYMARK_ES_MAX_SPAN_AGE")]
    pub es_max_span_age: Option<String>,
    /// (elasticsearch) Delete dated indices older than --retention from the collector [default: false].
    #[arg(long, env = "WAYMARK_ES_DELETE_EXPIRED_INDICES")]
    pub es_delete_expired_indices: Option<bool>,
    /// Query API (and UI) listen address [default: 0.0.0.0:16686].
    #[arg(long, env = "WAYMARK_QUERY_LISTEN")]
    pub query_listen: Option<SocketAddr>,
    /// Jaeger gRPC query APIs (api_v2 and api_v3 QueryService) [default: 0.0.0.0:16685].
    #[arg(long, env = "WAYMARK_QUERY_GRPC_LISTEN")]
    pub query_grpc_listen: Option<SocketAddr>,
    /// Admin listen address: /metrics, /health, /ready [default: 0.0.0.0:14269].
    #[arg(long, env = "WAYMARK_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// WAL sync policy: always, batch (group commit) or never [default: batch].
    #[arg(long, env = "WAYMARK_FSYNC")]
    pub fsync: Option<FsyncPolicy>,
    /// Delete data older than this, e.g. 72h, 7d, 2w [default: 7d].
    #[arg(long, env = "WAYMARK_RETENTION")]
    pub retention: Option<String>,
    /// Cut a block once the in-memory head is this old, e.g. 2m [default: 2m].
    #[arg(long, env = "WAYMARK_HEAD_MAX_AGE")]
    pub head_max_age: Option<String>,
    /// Cut a block once the in-memory head holds this many spans [default: 250000].
    #[arg(long, env = "WAYMARK_HEAD_MAX_SPANS")]
    pub head_max_spans: Option<usize>,
    /// Cut a block once the head holds this many bytes of encoded spans [default: 100663296].
    #[arg(long, env = "WAYMARK_HEAD_MAX_BYTES")]
    pub head_max_bytes: Option<usize>,
    /// zstd level of block pages, 1-19 [default: 3].
    #[arg(long, env = "WAYMARK_ZSTD_LEVEL", value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: Option<i32>,
    /// Refuse writes (503, reads keep working) while the data directory's disk (the agent: its queue's disk) has less free space than this many bytes or --storage-min-free-percent, whichever is larger; 0 with 0% turns it off [default: 16777216].
    #[arg(long, env = "WAYMARK_STORAGE_MIN_FREE_BYTES")]
    pub storage_min_free_bytes: Option<u64>,
    /// Free space, as a percentage of the data directory's disk, below which writes are refused [default: 1].
    #[arg(long, env = "WAYMARK_STORAGE_MIN_FREE_PERCENT", value_parser = percent)]
    pub storage_min_free_percent: Option<f64>,
    /// Largest request body in bytes, before and after decompression [default: 16777216].
    #[arg(long, env = "WAYMARK_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Most spans in one request [default: 50000].
    #[arg(long, env = "WAYMARK_MAX_SPANS_PER_REQUEST")]
    pub max_spans_per_request: Option<usize>,
    /// Most attributes on one span, event or link [default: 1024].
    #[arg(long, env = "WAYMARK_MAX_ATTRIBUTES_PER_SPAN")]
    pub max_attributes_per_span: Option<usize>,
    /// Longest string in a span, in bytes [default: 131072].
    #[arg(long, env = "WAYMARK_MAX_STRING_BYTES")]
    pub max_string_bytes: Option<usize>,
    /// Most spans queued for storage before clients are told to retry [default: 200000].
    #[arg(long, env = "WAYMARK_QUEUE_SPANS")]
    pub queue_spans: Option<usize>,
    /// Most spans merged into one storage write [default: 16384].
    #[arg(long, env = "WAYMARK_MAX_BATCH_SPANS")]
    pub max_batch_spans: Option<usize>,
    /// How long a request waits for queue room before it is refused, e.g. 500ms [default: 500ms].
    #[arg(long, env = "WAYMARK_QUEUE_MAX_WAIT")]
    pub queue_max_wait: Option<String>,
    /// Origins allowed to send OTLP/HTTP from browsers, comma-separated; * for any [default: none].
    #[arg(long, env = "WAYMARK_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Largest clock-skew correction applied when reading traces; 0s disables [default: 0s].
    #[arg(long, env = "WAYMARK_MAX_CLOCK_SKEW_ADJUSTMENT")]
    pub max_clock_skew_adjustment: Option<String>,
    /// (agent) Collector OTLP gRPC endpoints, host:port, comma-separated [default: 127.0.0.1:4317].
    #[arg(long = "collector", env = "WAYMARK_COLLECTORS", value_delimiter = ',')]
    pub collectors: Option<Vec<String>>,
    /// (agent) Directory of the durable queue [default: <data-dir>/agent-queue].
    #[arg(long, env = "WAYMARK_QUEUE_DIR")]
    pub queue_dir: Option<PathBuf>,
    /// (agent) Most bytes waiting for a collector before new spans are refused [default: 1073741824].
    #[arg(long, env = "WAYMARK_QUEUE_MAX_BYTES")]
    pub queue_max_bytes: Option<u64>,
    /// (agent) Collector Jaeger gRPC endpoint for sampling strategies [default: first collector's host:14250].
    #[arg(long, env = "WAYMARK_SAMPLING_COLLECTOR")]
    pub sampling_collector: Option<String>,
    /// (agent) Compress exports to collectors with gzip.
    #[arg(long, env = "WAYMARK_FORWARD_GZIP")]
    pub forward_gzip: Option<bool>,
    /// Log filter, e.g. info, debug, waymark_storage=debug [default: info].
    #[arg(long, env = "WAYMARK_LOG")]
    pub log_level: Option<String>,
}

impl ServerArgs {
    /// Loads the file (if any) and applies the overrides.
    pub fn to_config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                Config::from_yaml(&text)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", p.display()))?
            }
            None => Config::default(),
        };
        let dur = |what: &str, s: &str| {
            waymark_server::config::parse_duration(s).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
        };
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = self.otlp_grpc_listen {
            c.listen.otlp_grpc = v;
        }
        if let Some(v) = self.otlp_http_listen {
            c.listen.otlp_http = v;
        }
        if let Some(v) = self.zipkin_listen {
            c.listen.zipkin = v;
        }
        if let Some(v) = self.jaeger_compact_listen {
            c.listen.jaeger_compact = v;
        }
        if let Some(v) = self.jaeger_binary_listen {
            c.listen.jaeger_binary = v;
        }
        if let Some(v) = self.jaeger_http_listen {
            c.listen.jaeger_http = v;
        }
        if let Some(v) = self.jaeger_grpc_listen {
            c.listen.jaeger_grpc = v;
        }
        if let Some(v) = self.sampling_listen {
            c.listen.sampling = v;
        }
        if let Some(v) = &self.sampling_strategies_file {
            c.sampling.strategies_file = Some(v.clone());
        }
        if let Some(v) = &self.storage_backend {
            c.storage.backend = v
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--storage-backend: {e}"))?;
        }
        let rollover = |what: &str, v: &str| match v {
            "day" => Ok(waymark_server::config::RolloverFrequency::Day),
            "hour" => Ok(waymark_server::config::RolloverFrequency::Hour),
            other => Err(anyhow::anyhow!("--{what}: {other:?} is not day or hour")),
        };
        let e = &mut c.storage.elasticsearch;
        if let Some(v) = &self.es_urls {
            e.urls = v.clone();
        }
        if let Some(v) = &self.es_username {
            e.username = Some(v.clone());
        }
        if let Some(v) = &self.es_password {
            e.password = Some(v.clone());
        }
        if let Some(v) = &self.es_password_file {
            e.password_file = Some(v.clone());
        }
        if let Some(v) = &self.es_api_key_file {
            e.api_key_file = Some(v.clone());
        }
        if let Some(v) = &self.es_bearer_token_file {
            e.bearer_token_file = Some(v.clone());
        }
        if let Some(v) = &self.es_ca_file {
            e.ca_file = Some(v.clone());
        }
        if let Some(v) = &self.es_client_cert_file {
            e.client_cert_file = Some(v.clone());
        }
        if let Some(v) = &self.es_client_key_file {
            e.client_key_file = Some(v.clone());
        }
        if let Some(v) = self.es_tls_skip_verify {
            e.tls_skip_verify = v;
        }
        if let Some(v) = &self.es_timeout {
            e.timeout = dur("es-timeout", v)?;
        }
        if let Some(v) = self.es_gzip {
            e.gzip = v;
        }
        if let Some(v) = self.es_sniff {
            e.sniff = v;
        }
        if let Some(v) = &self.es_index_prefix {
            e.index_prefix = v.clone();
        }
        if let Some(v) = &self.es_index_date_separator {
            e.index_date_separator = v.clone();
        }
        if let Some(v) = &self.es_span_rollover {
            e.span_rollover = rollover("es-span-rollover", v)?;
        }
        if let Some(v) = &self.es_service_rollover {
            e.service_rollover = rollover("es-service-rollover", v)?;
        }
        if let Some(v) = self.es_use_aliases {
            e.use_aliases = v;
        }
        if let Some(v) = self.es_tags_as_fields_all {
            e.tags_as_fields_all = v;
        }
        if let Some(v) = self.es_create_index_templates {
            e.create_index_templates = v;
        }
        if let Some(v) = self.es_shards {
            e.shards = v;
        }
        if let Some(v) = self.es_replicas {
            e.replicas = v;
        }
        if let Some(v) = &self.es_max_span_age {
            e.max_span_age = dur("es-max-span-age", v)?;
        }
        if let Some(v) = self.es_delete_expired_indices {
            e.delete_expired_indices = v;
        }
        let a = &mut c.sampling.adaptive;
        if let Some(v) = self.sampling_adaptive {
            a.enabled = v;
        }
        if let Some(v) = self.adaptive_target_samples_per_second {
            a.target_samples_per_second = v;
        }
        if let Some(v) = self.adaptive_delta_tolerance {
            a.delta_tolerance = v;
        }
        if let Some(v) = &self.adaptive_calculation_interval {
            a.calculation_interval = dur("adaptive-calculation-interval", v)?;
        }
        if let Some(v) = &self.adaptive_lookback {
            a.lookback = dur("adaptive-lookback", v)?;
        }
        if let Some(v) = self.adaptive_initial_sampling_probability {
            a.initial_sampling_probability = v;
        }
        if let Some(v) = self.adaptive_min_sampling_probability {
            a.min_sampling_probability = v;
        }
        if let Some(v) = self.adaptive_min_samples_per_second {
            a.min_samples_per_second = v;
        }
        if let Some(v) = self.adaptive_max_increase {
            a.max_increase = v;
        }
        if let Some(v) = self.query_listen {
            c.listen.query = v;
        }
        if let Some(v) = self.query_grpc_listen {
            c.listen.query_grpc = v;
        }
        if let Some(v) = self.admin_listen {
            c.listen.admin = v;
        }
        if let Some(v) = self.fsync {
            c.storage.fsync = v;
        }
        if let Some(v) = &self.retention {
            c.storage.retention = dur("retention", v)?;
        }
        if let Some(v) = &self.head_max_age {
            c.storage.head_max_age = dur("head-max-age", v)?;
        }
        if let Some(v) = self.head_max_spans {
            c.storage.head_max_spans = v;
        }
        if let Some(v) = self.head_max_bytes {
            c.storage.head_max_bytes = v;
        }
        if let Some(v) = self.zstd_level {
            c.storage.zstd_level = v;
        }
        if let Some(v) = self.storage_min_free_bytes {
            c.storage.min_free_bytes = v;
        }
        if let Some(v) = self.storage_min_free_percent {
            c.storage.min_free_percent = v;
        }
        if let Some(v) = self.max_batch_spans {
            c.pipeline.max_batch_spans = v;
        }
        if let Some(v) = &self.queue_max_wait {
            c.pipeline.max_wait = dur("queue-max-wait", v)?;
        }
        if let Some(v) = self.max_request_bytes {
            c.limits.max_request_bytes = v;
        }
        if let Some(v) = self.max_spans_per_request {
            c.limits.max_spans_per_request = v;
        }
        if let Some(v) = self.max_attributes_per_span {
            c.limits.max_attributes_per_span = v;
        }
        if let Some(v) = self.max_string_bytes {
            c.limits.max_string_bytes = v;
        }
        if let Some(v) = self.queue_spans {
            c.pipeline.queue_spans = v;
        }
        if let Some(v) = &self.cors_allowed_origins {
            c.otlp.cors_allowed_origins = v.clone();
        }
        if let Some(v) = &self.collectors {
            c.agent.collectors = v.clone();
        }
        if let Some(v) = &self.queue_dir {
            c.agent.queue_dir = Some(v.clone());
        }
        if let Some(v) = self.queue_max_bytes {
            c.agent.queue_max_bytes = v;
        }
        if let Some(v) = &self.sampling_collector {
            c.agent.sampling_collector = Some(v.clone());
        }
        if let Some(v) = self.forward_gzip {
            c.agent.gzip = v;
        }
        if let Some(v) = &self.max_clock_skew_adjustment {
            c.query.max_clock_skew_adjustment = dur("max-clock-skew-adjustment", v)?;
        }
        Ok(c)
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn serve(args: ServerArgs, mode: Mode) -> anyhow::Result<()> {
    init_logging(args.log_level.as_deref());
    let cfg = args.to_config()?;
    let running = waymark_server::start(cfg, mode).await?;
    let b = &running.bound;
    tracing::info!(
        mode = ?mode,
        otlp_grpc = ?b.otlp_grpc,
        otlp_http = ?b.otlp_http,
        zipkin = ?b.zipkin,
        jaeger_udp_compact = ?b.jaeger_compact,
        jaeger_udp_binary = ?b.jaeger_binary,
        jaeger_http = ?b.jaeger_http,
        sampling = ?b.sampling,
        jaeger_grpc = ?b.jaeger_grpc,
        query = ?b.query,
        query_grpc = ?b.query_grpc,
        admin = %b.admin,
        "waymark is serving"
    );
    running.run_until(shutdown_signal()).await
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.server, Mode::AllInOne).await,
        Some(Command::AllInOne(a)) => serve(merge(cli.server, a), Mode::AllInOne).await,
        Some(Command::Collector(a)) => serve(merge(cli.server, a), Mode::Collector).await,
        Some(Command::Query(a)) => serve(merge(cli.server, a), Mode::Query).await,
        Some(Command::Agent(a)) => serve(merge(cli.server, a), Mode::Agent).await,
        Some(Command::Tracegen(a)) => {
            init_logging(cli.server.log_level.as_deref());
            crate::tracegen::run(a).await
        }
        Some(Command::Bench(a)) => {
            init_logging(cli.server.log_level.as_deref().or(Some("warn")));
            crate::bench::run(a).await
        }
        Some(Command::EsCleaner(a)) => {
            init_logging(cli.server.log_level.as_deref());
            crate::es::cleaner(a).await
        }
        Some(Command::EsRollover(a)) => {
            init_logging(cli.server.log_level.as_deref());
            crate::es::rollover(a).await
        }
    }
}

/// Global flags given before the subcommand count too; the subcommand's win.
/// A percentage, 0 to 100.
fn percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a percentage between 0 and 100")),
    }
}

fn merge(global: ServerArgs, sub: ServerArgs) -> ServerArgs {
    macro_rules! pick {
        ($($f:ident),*) => { ServerArgs { $($f: sub.$f.or(global.$f)),* } };
    }
    pick!(
        config,
        data_dir,
        otlp_grpc_listen,
        otlp_http_listen,
        zipkin_listen,
        jaeger_compact_listen,
        jaeger_binary_listen,
        jaeger_http_listen,
        jaeger_grpc_listen,
        sampling_listen,
        sampling_strategies_file,
        storage_backend,
        es_urls,
        es_username,
        es_password,
        es_password_file,
        es_api_key_file,
        es_bearer_token_file,
        es_ca_file,
        es_client_cert_file,
        es_client_key_file,
        es_tls_skip_verify,
        es_timeout,
        es_gzip,
        es_sniff,
        es_index_prefix,
        es_index_date_separator,
        es_span_rollover,
        es_service_rollover,
        es_use_aliases,
        es_tags_as_fields_all,
        es_create_index_templates,
        es_shards,
        es_replicas,
        es_max_span_age,
        es_delete_expired_indices,
        sampling_adaptive,
        adaptive_target_samples_per_second,
        adaptive_delta_tolerance,
        adaptive_calculation_interval,
        adaptive_lookback,
        adaptive_initial_sampling_probability,
        adaptive_min_sampling_probability,
        adaptive_min_samples_per_second,
        adaptive_max_increase,
        query_listen,
        query_grpc_listen,
        admin_listen,
        fsync,
        retention,
        head_max_age,
        head_max_spans,
        head_max_bytes,
        zstd_level,
        storage_min_free_bytes,
        storage_min_free_percent,
        max_batch_spans,
        queue_max_wait,
        max_request_bytes,
        max_spans_per_request,
        max_attributes_per_span,
        max_string_bytes,
        queue_spans,
        cors_allowed_origins,
        max_clock_skew_adjustment,
        collectors,
        queue_dir,
        queue_max_bytes,
        forward_gzip,
        sampling_collector,
        log_level
    )
}
