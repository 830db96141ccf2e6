//! Waymark's configuration: a YAML file whose every key is optional (the
//! defaults run a working all-in-one), overridden by command-line flags and
//! `WAYMARK_*` environment variables in the binary. Unknown keys are an
//! error that names the key. `docs/configuration.md` documents each option.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use waymark_storage::FsyncPolicy;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the embedded store (WAL and blocks).
    pub data_dir: PathBuf,
    pub listen: ListenConfig,
    pub storage: StorageConfig,
    /// The receivers' own limits (`waymark_receivers::Limits`).
    pub limits: waymark_receivers::Limits,
    /// The pipeline's own settings (`waymark_pipeline::PipelineConfig`).
    pub pipeline: waymark_pipeline::PipelineConfig,
    pub otlp: OtlpConfig,
    pub query: QuerySettings,
    pub sampling: SamplingSettings,
    pub agent: AgentSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./waymark-data"),
            listen: ListenConfig::default(),
            storage: StorageConfig::default(),
            limits: waymark_receivers::Limits::default(),
            pipeline: waymark_pipeline::PipelineConfig::default(),
            otlp: OtlpConfig::default(),
            query: QuerySettings::default(),
            sampling: SamplingSettings::default(),
            agent: AgentSettings::default(),
        }
    }
}

/// Addresses to listen on.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    /// Zipkin's collector API (`/api/v1/spans`, `/api/v2/spans`).
    pub zipkin: SocketAddr,
    /// Jaeger agent, Thrift compact protocol over UDP.
    pub jaeger_compact: SocketAddr,
    /// Jaeger agent, Thrift binary protocol over UDP.
    pub jaeger_binary: SocketAddr,
    /// Jaeger collector HTTP (`POST /api/traces`, Thrift; `GET /api/sampling`).
    pub jaeger_http: SocketAddr,
    /// Sampling strategies for Jaeger clients (`/sampling`, legacy `/`).
    pub sampling: SocketAddr,
    /// Jaeger collector gRPC (`CollectorService/PostSpans`, `SamplingManager`).
    pub jaeger_grpc: SocketAddr,
    pub query: SocketAddr,
    /// Jaeger's gRPC query APIs (api_v2 and api_v3 `QueryService`).
    pub query_grpc: SocketAddr,
    pub admin: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            otlp_grpc: "0.0.0.0:4317".parse().unwrap(),
            otlp_http: "0.0.0.0:4318".parse().unwrap(),
            zipkin: "0.0.0.0:9411".parse().unwrap(),
            jaeger_compact: "0.0.0.0:6831".parse().unwrap(),
            jaeger_binary: "0.0.0.0:6832".parse().unwrap(),
            jaeger_http: "0.0.0.0:14268".parse().unwrap(),
            sampling: "0.0.0.0:5778".parse().unwrap(),
            jaeger_grpc: "0.0.0.0:14250".parse().unwrap(),
            query: "0.0.0.0:16686".parse().unwrap(),
            query_grpc: "0.0.0.0:16685".parse().unwrap(),
            admin: "0.0.0.0:14269".parse().unwrap(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// WAL sync policy: `always`, `batch` (group commit) or `never`.
    pub fsync: FsyncPolicy,
    /// Blocks whose newest span is older than this are deleted.
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    /// Cut a block when the in-memory head holds this many spans...
    pub head_max_spans: usize,
    /// ... or this many bytes of encoded spans ...
    pub head_max_bytes: usize,
    /// ... or when its oldest span is this old.
    #[serde(deserialize_with = "duration")]
    pub head_max_age: Duration,
    /// zstd level of block pages (1–19).
    pub zstd_level: i32,
    /// Writes are refused while the data directory's file system has less
    /// free space than the larger of this many bytes ...
    pub min_free_bytes: u64,
    /// ... and this percentage of its size.
    pub min_free_percent: f64,
    /// Where spans are stored: `embedded` (the data directory) or
    /// `elasticsearch` (Elasticsearch or OpenSearch, Jaeger's index layout).
    pub backend: StorageBackend,
    pub elasticsearch: ElasticsearchSettings,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    #[default]
    Embedded,
    Elasticsearch,
}

impl std::str::FromStr for StorageBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "embedded" => Ok(StorageBackend::Embedded),
            "elasticsearch" | "opensearch" => Ok(StorageBackend::Elasticsearch),
            other => Err(format!(
                "unknown storage backend {other:?}: use embedded or elasticsearch"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RolloverFrequency {
    #[default]
    Day,
    Hour,
}

/// `storage.elasticsearch`: the cluster and Jaeger's index options.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticsearchSettings {
    /// Server URLs, e.g. `https://elasticsearch:9200`.
    pub urls: Vec<String>,
    pub username: Option<String>,
    /// The password itself; prefer `password_file` or `WAYMARK_ES_PASSWORD`.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub api_key_file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    /// PEM CA certificate(s) of the cluster.
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    pub tls_skip_verify: bool,
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Compress request bodies with gzip.
    pub gzip: bool,
    /// Discover the cluster's HTTP nodes at start-up and use them.
    pub sniff: bool,
    /// Prepended to index names with `-`.
    pub index_prefix: String,
    /// Between the date parts of index names.
    pub index_date_separator: String,
    pub span_rollover: RolloverFrequency,
    pub service_rollover: RolloverFrequency,
    /// Write to `*-write` and read from `*-read` aliases (see `waymark es-rollover`).
    pub use_aliases: bool,
    /// Store every tag also as a `tag.<key>` field.
    pub tags_as_fields_all: bool,
    /// Tags stored as fields, besides `tags_as_fields_all`.
    pub tags_as_fields_keys: Vec<String>,
    /// Replaces `.` in tag keys stored as fields.
    pub tags_as_fields_dot_replacement: String,
    pub create_index_templates: bool,
    pub shards: u32,
    pub replicas: u32,
    /// How far back reads without a time range look.
    #[serde(deserialize_with = "duration")]
    pub max_span_age: Duration,
    pub max_doc_count: usize,
    pub bulk_max_actions: usize,
    pub bulk_max_bytes: usize,
    pub max_retries: u32,
    /// Delete dated indices older than `storage.retention` from the collector.
    pub delete_expired_indices: bool,
}

impl Default for ElasticsearchSettings {
    fn default() -> Self {
        let e = waymark_elasticsearch::EsConfig::default();
        ElasticsearchSettings {
            urls: vec!["http://127.0.0.1:9200".into()],
            username: None,
            password: None,
            password_file: None,
            api_key_file: None,
            bearer_token_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            tls_skip_verify: false,
            timeout: e.client.timeout,
            gzip: false,
            sniff: false,
            index_prefix: String::new(),
            index_date_separator: "-".into(),
            span_rollover: RolloverFrequency::Day,
            service_rollover: RolloverFrequency::Day,
            use_aliases: false,
            tags_as_fields_all: false,
            tags_as_fields_keys: Vec::new(),
            tags_as_fields_dot_replacement: e.tags_as_fields.dot_replacement.clone(),
            create_index_templates: true,
            shards: e.templates.shards,
            replicas: e.templates.replicas,
            max_span_age: e.max_span_age,
            max_doc_count: e.max_doc_count,
            bulk_max_actions: e.bulk_max_actions,
            bulk_max_bytes: e.bulk_max_bytes,
            max_retries: e.max_retries,
            delete_expired_indices: false,
        }
    }
}

impl ElasticsearchSettings {
    pub fn to_config(&self) -> waymark_elasticsearch::EsConfig {
        use waymark_elasticsearch as es;
        let roll = |r: RolloverFrequency| match r {
            RolloverFrequency::Day => es::Rollover::Day,
            RolloverFrequency::Hour => es::Rollover::Hour,
        };
        let d = es::EsConfig::default();
        es::EsConfig {
            client: es::ClientConfig {
                urls: self.urls.clone(),
                username: self.username.clone(),
                password: self.password.clone(),
                password_file: self.password_file.clone(),
                api_key_file: self.api_key_file.clone(),
                bearer_token_file: self.bearer_token_file.clone(),
                ca_file: self.ca_file.clone(),
                client_cert_file: self.client_cert_file.clone(),
                client_key_file: self.client_key_file.clone(),
                tls_skip_verify: self.tls_skip_verify,
                timeout: self.timeout,
                gzip: self.gzip,
                sniff: self.sniff,
            },
            indices: es::IndexConfig {
                prefix: self.index_prefix.clone(),
                date_separator: self.index_date_separator.clone(),
                span_rollover: roll(self.span_rollover),
                service_rollover: roll(self.service_rollover),
                dependencies_rollover: es::Rollover::Day,
                use_aliases: self.use_aliases,
            },
            tags_as_fields: es::TagsAsFields {
                all: self.tags_as_fields_all,
                keys: self.tags_as_fields_keys.iter().cloned().collect(),
                dot_replacement: self.tags_as_fields_dot_replacement.clone(),
            },
            templates: es::TemplateOptions {
                shards: self.shards,
                replicas: self.replicas,
                ..d.templates
            },
            create_templates: self.create_index_templates,
            max_span_age: self.max_span_age,
            max_doc_count: self.max_doc_count,
            bulk_max_actions: self.bulk_max_actions,
            bulk_max_bytes: self.bulk_max_bytes,
            max_retries: self.max_retries,
            delete_expired_indices: self.delete_expired_indices,
            ..d
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        let e = waymark_storage::EmbeddedConfig::new(".");
        StorageConfig {
            fsync: e.fsync,
            retention: Duration::from_secs(7 * 86_400),
            head_max_spans: e.head_max_spans,
            head_max_bytes: e.head_max_bytes,
            head_max_age: e.head_max_age,
            zstd_level: e.zstd_level,
            min_free_bytes: e.watermark.min_free_bytes,
            min_free_percent: e.watermark.min_free_percent,
            backend: StorageBackend::Embedded,
            elasticsearch: ElasticsearchSettings::default(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Origins allowed to POST to the OTLP HTTP receiver from a browser;
    /// `*` allows any. Empty (the default) sends no CORS headers.
    pub cors_allowed_origins: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySettings {
    /// Largest clock-skew correction the query side applies; `0s` (the
    /// default, as in Jaeger) turns the adjuster off.
    #[serde(deserialize_with = "duration")]
    pub max_clock_skew_adjustment: Duration,
}

impl Default for QuerySettings {
    fn default() -> Self {
        QuerySettings {
            max_clock_skew_adjustment: Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingSettings {
    /// Jaeger-format strategies file; without one every trace is sampled.
    pub strategies_file: Option<PathBuf>,
    /// How often the file is checked for changes.
    #[serde(deserialize_with = "duration")]
    pub reload_interval: Duration,
    /// Adaptive sampling for the services the file does not list.
    pub adaptive: AdaptiveSettings,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        SamplingSettings {
            strategies_file: None,
            reload_interval: Duration::from_secs(10),
            adaptive: AdaptiveSettings::default(),
        }
    }
}

/// `sampling.adaptive`: per-operation probabilities recomputed from the
/// observed throughput (see `waymark_sampling::adaptive`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveSettings {
    pub enabled: bool,
    /// Sampled traces per second wanted from each operation.
    pub target_samples_per_second: f64,
    /// Relative distance from the target within which nothing changes.
    pub delta_tolerance: f64,
    /// How often throughput is stored and probabilities recomputed.
    #[serde(deserialize_with = "duration")]
    pub calculation_interval: Duration,
    /// How much stored throughput the calculation looks at.
    #[serde(deserialize_with = "duration")]
    pub lookback: Duration,
    /// Probability of operations not seen yet.
    pub initial_sampling_probability: f64,
    /// Lowest probability handed out.
    pub min_sampling_probability: f64,
    /// Traces per second every operation is sampled at least (clients'
    /// lower-bound sampler).
    pub min_samples_per_second: f64,
    /// Largest relative increase of a probability per interval.
    pub max_increase: f64,
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        let d = waymark_sampling::adaptive::AdaptiveConfig::default();
        AdaptiveSettings {
            enabled: false,
            target_samples_per_second: d.target_samples_per_second,
            delta_tolerance: d.delta_tolerance,
            calculation_interval: d.calculation_interval,
            lookback: d.lookback,
            initial_sampling_probability: d.initial_sampling_probability,
            min_sampling_probability: d.min_sampling_probability,
            min_samples_per_second: d.min_samples_per_second,
            max_increase: d.max_increase,
        }
    }
}

impl AdaptiveSettings {
    pub fn to_config(&self) -> waymark_sampling::adaptive::AdaptiveConfig {
        waymark_sampling::adaptive::AdaptiveConfig {
            target_samples_per_second: self.target_samples_per_second,
            delta_tolerance: self.delta_tolerance,
            calculation_interval: self.calculation_interval,
            lookback: self.lookback,
            initial_sampling_probability: self.initial_sampling_probability,
            min_sampling_probability: self.min_sampling_probability,
            min_samples_per_second: self.min_samples_per_second,
            max_increase: self.max_increase,
        }
    }
}

/// Settings of `waymark agent`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// Collector OTLP gRPC endpoints (`host:port`); every address a name
    /// resolves to is used in turn.
    pub collectors: Vec<String>,
    /// Directory of the durable queue; default `<data_dir>/agent-queue`.
    pub queue_dir: Option<PathBuf>,
    /// Most bytes waiting for a collector; beyond it new spans are refused
    /// (clients get 503 / UNAVAILABLE and retry; UDP packets are counted
    /// as dropped).
    pub queue_max_bytes: u64,
    /// Compress exports to collectors with gzip.
    pub gzip: bool,
    /// The collector's Jaeger gRPC endpoint (`SamplingManager`) the agent
    /// proxies sampling requests to; default: the first collector's host on
    /// port 14250.
    pub sampling_collector: Option<String>,
}

impl AgentSettings {
    /// Where the agent fetches sampling strategies.
    pub fn sampling_endpoint(&self) -> String {
        if let Some(e) = &self.sampling_collector {
            return e.clone();
        }
        let first = self
            .collectors
            .first()
            .map(String::as_str)
            .unwrap_or("127.0.0.1:4317");
        let host = match first.rsplit_once(':') {
            Some((h, _)) => h,
            None => first,
        };
        format!("{host}:14250")
    }
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            collectors: vec!["127.0.0.1:4317".into()],
            queue_dir: None,
            queue_max_bytes: 1 << 30,
            gzip: false,
            sampling_collector: None,
        }
    }
}

/// Parses durations such as `500ms`, `2m`, `36h`, `7d`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    waymark_model::time::parse_lookback(s).map(Duration::from_nanos)
}

use waymark_model::time::deserialize_duration as duration;

impl Config {
    /// Reads a YAML file; unknown keys and bad values are errors naming the
    /// key and the line.
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(Config::from_yaml("").unwrap(), Config::default());
    }

    #[test]
    fn reads_values() {
        let c = Config::from_yaml(
            "data_dir: /var/lib/waymark\nstorage:\n  fsync: always\n  retention: 3d\nlisten:\n  query: 127.0.0.1:9000\n",
        )
        .unwrap();
        assert_eq!(c.storage.fsync, FsyncPolicy::Always);
        assert_eq!(c.storage.retention, Duration::from_secs(3 * 86_400));
        assert_eq!(c.listen.query.port(), 9000);
        assert_eq!(c.listen.otlp_grpc.port(), 4317);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_yaml("storage:\n  fsynk: always\n").unwrap_err();
        assert!(e.contains("fsynk"), "{e}");
        let e = Config::from_yaml("storage:\n  retention: forever\n").unwrap_err();
        assert!(e.contains("forever"), "{e}");
    }
}
