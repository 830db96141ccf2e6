//! Every setting of the server modes in one table ([`SETTINGS`]): its key
//! in the YAML file, its flag and `WAYMARK_*` variable, its kind, default
//! and documentation. The binary builds its flags from the table, the
//! overrides are applied to the file's YAML by key before it is read into
//! [`Config`] (so a flag and a file key are read by the same code), and
//! `docs/configuration.md` is generated from it (a test fails when the two
//! differ). Adding a setting means a field in its config struct and one
//! entry here.

use std::net::SocketAddr;

use serde_yaml_ng::{Mapping, Value};

use crate::Config;

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// Dotted path in the YAML file (`storage.retention`).
    pub key: &'static str,
    /// Long flag without the dashes; `None` for settings only the file sets.
    pub flag: Option<&'static str>,
    /// The environment variable, when it is not `WAYMARK_` plus the flag
    /// in upper case.
    pub env: Option<&'static str>,
    pub kind: Kind,
    pub default: Default,
    /// The value is a secret: its environment value is never shown.
    pub secret: bool,
    /// One line for `-h`.
    pub help: &'static str,
    /// The full description, for `--help` and the documentation.
    pub doc: &'static str,
}

/// What values a setting takes. Flags are checked against it, so a bad
/// value is refused naming the flag.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Text,
    Path,
    Bool,
    /// A non-negative integer.
    Count,
    /// An integer in an inclusive range.
    Range(i64, i64),
    Float,
    /// 0 to 100, a trailing `%` allowed.
    Percent,
    /// `500ms`, `90s`, `2m`, `36h`, `7d`, `2w`.
    Duration,
    /// `host:port` with a numeric host.
    Address,
    /// Comma-separated on the command line, a YAML list in the file.
    List,
    OneOf(&'static [&'static str]),
}

/// How the default is documented.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    /// A value in the setting's own syntax; a test checks that it is what
    /// [`Config::default`] holds.
    Value(&'static str),
    /// A value plus a remark, for instance its size in MiB.
    ValueNoted(&'static str, &'static str),
    /// Words, when the default is not one value (derived, or none).
    Described(&'static str),
}

impl Setting {
    /// The environment variable that sets it, if any.
    pub fn env_var(&self) -> Option<String> {
        match (self.env, self.flag) {
            (Some(e), _) => Some(e.to_string()),
            (None, Some(f)) => Some(format!(
                "WAYMARK_{}",
                f.to_ascii_uppercase().replace('-', "_")
            )),
            (None, None) => None,
        }
    }

    /// The default as the documentation and `--help` show it.
    pub fn default_text(&self) -> String {
        match self.default {
            Default::Value(v) if matches!(self.kind, Kind::List) => format!("`[{v}]`"),
            Default::Value(v) => format!("`{v}`"),
            Default::ValueNoted(v, note) => format!("`{v}` {note}"),
            Default::Described(d) => d.to_string(),
        }
    }

    /// Checks a value given on the command line or in the environment and
    /// turns it into the YAML value the file would hold.
    pub fn parse(&self, raw: &str) -> Result<Value, String> {
        let raw = raw.trim();
        match self.kind {
            Kind::Text | Kind::Path => Ok(Value::String(raw.to_string())),
            Kind::Bool => match raw {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("{raw:?} is not true or false")),
            },
            Kind::Count => raw
                .parse::<u64>()
                .map(|n| Value::Number(n.into()))
                .map_err(|_| format!("{raw:?} is not a non-negative integer")),
            Kind::Range(lo, hi) => match raw.parse::<i64>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(Value::Number(n.into())),
                _ => Err(format!("{raw:?} is not an integer from {lo} to {hi}")),
            },
            Kind::Float => raw
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| Value::Number(f.into()))
                .ok_or_else(|| format!("{raw:?} is not a number")),
            Kind::Percent => match raw.trim_end_matches('%').parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => Ok(Value::Number(v.into())),
                _ => Err(format!("{raw:?} is not a percentage between 0 and 100")),
            },
            Kind::Duration => {
                crate::config::parse_duration(raw).map(|_| Value::String(raw.to_string()))
            }
            Kind::Address => raw
                .parse::<SocketAddr>()
                .map(|_| Value::String(raw.to_string()))
                .map_err(|_| format!("{raw:?} is not an address such as 0.0.0.0:4317")),
            Kind::List => Ok(Value::Sequence(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            )),
            Kind::OneOf(choices) => {
                if choices.contains(&raw) {
                    Ok(Value::String(raw.to_string()))
                } else {
                    Err(format!("{raw:?} is not one of {}", choices.join(", ")))
                }
            }
        }
    }
}

/// The setting with this key.
pub fn by_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Sets `key` (dotted) in a YAML document, creating the maps on the way.
fn set(doc: &mut Value, key: &str, value: Value) -> Result<(), String> {
    let mut cur = doc;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if !cur.is_mapping() {
            if cur.is_null() {
                *cur = Value::Mapping(Mapping::new());
            } else {
                return Err(format!(
                    "{key}: the file holds a value where a section is expected"
                ));
            }
        }
        let map = cur.as_mapping_mut().expect("a mapping");
        let k = Value::String(part.to_string());
        if parts.peek().is_none() {
            map.insert(k, value);
            return Ok(());
        }
        cur = map.entry(k).or_insert(Value::Null);
    }
    Ok(())
}

impl Config {
    /// The configuration from a YAML file's text (if any) with `overrides`
    /// (flags and environment variables, checked by [`Setting::parse`])
    /// applied in order, later ones winning.
    pub fn load(
        file: Option<&str>,
        overrides: &[(&'static Setting, Value)],
    ) -> Result<Config, String> {
        let text = file.unwrap_or("");
        // Read the file alone first: its errors then name the line.
        let from_file = Config::from_yaml(text)?;
        if overrides.is_empty() {
            return Ok(from_file);
        }
        let mut doc: Value = if text.trim().is_empty() {
            Value::Mapping(Mapping::new())
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
        };
        for (s, v) in overrides {
            set(&mut doc, s.key, v.clone())?;
        }
        serde_yaml_ng::from_value(doc).map_err(|e| e.to_string())
    }
}

/// The settings table of `docs/configuration.md`.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| key | flag / environment | default | meaning |\n|-----|--------------------|---------|---------|\n",
    );
    for s in SETTINGS {
        let flag = match (s.flag, s.env_var()) {
            (Some(f), Some(e)) => format!("`--{f}` / `{e}`"),
            _ => "—".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.key,
            flag,
            s.default_text(),
            s.doc
        ));
    }
    out
}

/// Every setting, in the order of the documentation.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "data_dir",
        flag: Some("data-dir"),
        env: None,
        kind: Kind::Path,
        default: Default::Value("./waymark-data"),
        secret: false,
        help: "Directory of the embedded store",
        doc: "directory of the embedded store (WAL and blocks)",
    },
    Setting {
        key: "listen.otlp_grpc",
        flag: Some("otlp-grpc-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:4317"),
        secret: false,
        help: "OTLP gRPC listen address",
        doc: "OTLP gRPC receiver",
    },
    Setting {
        key: "listen.otlp_http",
        flag: Some("otlp-http-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:4318"),
        secret: false,
        help: "OTLP HTTP listen address",
        doc: "OTLP HTTP receiver",
    },
    Setting {
        key: "listen.zipkin",
        flag: Some("zipkin-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:9411"),
        secret: false,
        help: "Zipkin collector API listen address (/api/v1/spans, /api/v2/spans)",
        doc: "Zipkin collector API: `POST /api/v2/spans` (JSON, protobuf), `POST /api/v1/spans` (JSON)",
    },
    Setting {
        key: "listen.jaeger_compact",
        flag: Some("jaeger-compact-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:6831"),
        secret: false,
        help: "Jaeger agent UDP, Thrift compact protocol",
        doc: "Jaeger agent UDP, Thrift compact (`emitBatch`)",
    },
    Setting {
        key: "listen.jaeger_binary",
        flag: Some("jaeger-binary-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:6832"),
        secret: false,
        help: "Jaeger agent UDP, Thrift binary protocol",
        doc: "Jaeger agent UDP, Thrift binary (`emitBatch`)",
    },
    Setting {
        key: "listen.jaeger_http",
        flag: Some("jaeger-http-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:14268"),
        secret: false,
        help: "Jaeger collector HTTP, POST /api/traces with Thrift",
        doc: "Jaeger collector HTTP, `POST /api/traces` with a Thrift `Batch`",
    },
    Setting {
        key: "listen.jaeger_grpc",
        flag: Some("jaeger-grpc-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:14250"),
        secret: false,
        help: "Jaeger collector gRPC: PostSpans and SamplingManager",
        doc: "Jaeger collector gRPC: `jaeger.api_v2.CollectorService/PostSpans` and `SamplingManager/GetSamplingStrategy`",
    },
    Setting {
        key: "listen.sampling",
        flag: Some("sampling-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:5778"),
        secret: false,
        help: "Sampling strategies for Jaeger clients: /sampling and legacy /",
        doc: "sampling strategies for Jaeger clients: `GET /sampling?service=` (proto-JSON) and the legacy `GET /?service=`; also `GET /api/sampling?service=` on the Jaeger HTTP port",
    },
    Setting {
        key: "listen.query",
        flag: Some("query-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:16686"),
        secret: false,
        help: "Query API (and UI) listen address",
        doc: "query API",
    },
    Setting {
        key: "listen.query_grpc",
        flag: Some("query-grpc-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:16685"),
        secret: false,
        help: "Jaeger gRPC query APIs (api_v2 and api_v3 QueryService)",
        doc: "Jaeger's gRPC query APIs: `jaeger.api_v2.QueryService` and `jaeger.api_v3.QueryService`",
    },
    Setting {
        key: "listen.admin",
        flag: Some("admin-listen"),
        env: None,
        kind: Kind::Address,
        default: Default::Value("0.0.0.0:14269"),
        secret: false,
        help: "Admin listen address: /metrics, /health, /ready",
        doc: "`/metrics`, `/health`, `/ready`",
    },
    Setting {
        key: "storage.fsync",
        flag: Some("fsync"),
        env: None,
        kind: Kind::OneOf(&["always", "batch", "never"]),
        default: Default::Value("batch"),
        secret: false,
        help: "WAL sync policy: always, batch (group commit) or never",
        doc: "`always` (one fsync per write), `batch` (group commit: one fsync per group of concurrent writes, each acknowledged after the fsync covering it), `never` (acknowledged once the OS has the bytes)",
    },
    Setting {
        key: "storage.retention",
        flag: Some("retention"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("7d"),
        secret: false,
        help: "Delete data older than this, e.g. 72h, 7d, 2w",
        doc: "blocks whose newest span is older are deleted (checked every 5 minutes)",
    },
    Setting {
        key: "storage.head_max_spans",
        flag: Some("head-max-spans"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("250000"),
        secret: false,
        help: "Cut a block once the in-memory head holds this many spans",
        doc: "cut a block when the in-memory head holds this many spans",
    },
    Setting {
        key: "storage.head_max_bytes",
        flag: Some("head-max-bytes"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("100663296"),
        secret: false,
        help: "Cut a block once the head holds this many bytes of encoded spans",
        doc: "… or this many bytes of encoded spans",
    },
    Setting {
        key: "storage.head_max_age",
        flag: Some("head-max-age"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("2m"),
        secret: false,
        help: "Cut a block once the in-memory head is this old, e.g. 2m",
        doc: "… or when the head is this old",
    },
    Setting {
        key: "storage.zstd_level",
        flag: Some("zstd-level"),
        env: None,
        kind: Kind::Range(1, 19),
        default: Default::Value("3"),
        secret: false,
        help: "zstd level of block pages, 1-19",
        doc: "compression level of block pages",
    },
    Setting {
        key: "storage.min_free_bytes",
        flag: Some("storage-min-free-bytes"),
        env: None,
        kind: Kind::Count,
        default: Default::ValueNoted("16777216", "(16 MiB)"),
        secret: false,
        help: "Refuse writes (503, reads keep working) while the data directory's disk (the agent: its queue's disk) has less free space than this many bytes or --storage-min-free-percent, whichever is larger; 0 with 0% turns it off",
        doc: "free-space watermark of the data directory's disk: below the larger of this and `min_free_percent`, writes are refused with 503 / `UNAVAILABLE` and `/ready` says why, while reads keep working; the room kept free is for writing the head as a block, which frees its WAL segments. In `agent` mode the same watermark guards the queue's disk (spans are refused with 503 instead of queued). `0` with `0` turns it off",
    },
    Setting {
        key: "storage.min_free_percent",
        flag: Some("storage-min-free-percent"),
        env: None,
        kind: Kind::Percent,
        default: Default::Value("1"),
        secret: false,
        help: "Free space, as a percentage of the data directory's disk, below which writes are refused",
        doc: "the same watermark as a percentage of the disk's size",
    },
    Setting {
        key: "storage.backend",
        flag: Some("storage-backend"),
        env: None,
        kind: Kind::OneOf(&["embedded", "elasticsearch"]),
        default: Default::Value("embedded"),
        secret: false,
        help: "Storage backend: embedded (the data directory) or elasticsearch (Elasticsearch/OpenSearch)",
        doc: "`embedded` (the data directory) or `elasticsearch` (Elasticsearch 7–9 or OpenSearch 1–3 in Jaeger's index layout; see docs/elasticsearch.md). The `storage.elasticsearch.*` keys below apply to the latter",
    },
    Setting {
        key: "storage.elasticsearch.urls",
        flag: Some("es-urls"),
        env: None,
        kind: Kind::List,
        default: Default::Value("http://127.0.0.1:9200"),
        secret: false,
        help: "(elasticsearch) Server URLs, comma-separated",
        doc: "server URLs (comma-separated as a flag); requests rotate among them and skip one that cannot be reached",
    },
    Setting {
        key: "storage.elasticsearch.username",
        flag: Some("es-username"),
        env: None,
        kind: Kind::Text,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) Basic-auth username.",
        doc: "basic-auth user",
    },
    Setting {
        key: "storage.elasticsearch.password",
        flag: Some("es-password"),
        env: None,
        kind: Kind::Text,
        default: Default::Described("none"),
        secret: true,
        help: "(elasticsearch) Basic-auth password (e.g. from a Secret through the environment).",
        doc: "basic-auth password (from a Secret through the environment, say)",
    },
    Setting {
        key: "storage.elasticsearch.password_file",
        flag: Some("es-password-file"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) File holding the basic-auth password.",
        doc: "file holding the password (trailing newline ignored); not together with `password`",
    },
    Setting {
        key: "storage.elasticsearch.api_key_file",
        flag: Some("es-api-key-file"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) File holding an API key (base64 of id:key).",
        doc: "file holding an API key as Elasticsearch encodes it; sent as `Authorization: ApiKey …`",
    },
    Setting {
        key: "storage.elasticsearch.bearer_token_file",
        flag: Some("es-bearer-token-file"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) File holding a bearer token.",
        doc: "file holding a bearer token",
    },
    Setting {
        key: "storage.elasticsearch.ca_file",
        flag: Some("es-ca-file"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) PEM file of the cluster's CA.",
        doc: "PEM CA certificate(s) trusted besides the web PKI roots",
    },
    Setting {
        key: "storage.elasticsearch.client_cert_file",
        flag: Some("es-client-cert-file"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) PEM client certificate.",
        doc: "PEM client certificate and key, both or neither",
    },
    Setting {
        key: "storage.elasticsearch.client_key_file",
        flag: Some("es-client-key-file"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) PEM key of the client certificate.",
        doc: "PEM client certificate and key, both or neither",
    },
    Setting {
        key: "storage.elasticsearch.tls_skip_verify",
        flag: Some("es-tls-skip-verify"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "(elasticsearch) Accept any server certificate: testing only",
        doc: "accept any server certificate (logged as a warning; testing only)",
    },
    Setting {
        key: "storage.elasticsearch.timeout",
        flag: Some("es-timeout"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("30s"),
        secret: false,
        help: "(elasticsearch) Per-request timeout, e.g. 30s",
        doc: "per-request timeout",
    },
    Setting {
        key: "storage.elasticsearch.gzip",
        flag: Some("es-gzip"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "(elasticsearch) Compress request bodies with gzip",
        doc: "compress request bodies over 1 KiB",
    },
    Setting {
        key: "storage.elasticsearch.sniff",
        flag: Some("es-sniff"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "(elasticsearch) Discover the cluster's HTTP nodes at start-up and spread requests over them",
        doc: "ask the cluster for its HTTP nodes (`GET /_nodes/http`) at start-up and spread requests over them, with the configured URLs' scheme; the configured URLs stay when that fails",
    },
    Setting {
        key: "storage.elasticsearch.index_prefix",
        flag: Some("es-index-prefix"),
        env: None,
        kind: Kind::Text,
        default: Default::Described("none"),
        secret: false,
        help: "(elasticsearch) Index prefix, joined with -",
        doc: "prepended to index names with `-` (lowercase)",
    },
    Setting {
        key: "storage.elasticsearch.index_date_separator",
        flag: Some("es-index-date-separator"),
        env: None,
        kind: Kind::Text,
        default: Default::Value("-"),
        secret: false,
        help: "(elasticsearch) Separator of the date parts of index names",
        doc: "between year, month, day (and hour) in index names",
    },
    Setting {
        key: "storage.elasticsearch.span_rollover",
        flag: Some("es-span-rollover"),
        env: None,
        kind: Kind::OneOf(&["day", "hour"]),
        default: Default::Value("day"),
        secret: false,
        help: "(elasticsearch) A new span index every day or hour",
        doc: "`day` or `hour`: how often a new dated index starts",
    },
    Setting {
        key: "storage.elasticsearch.service_rollover",
        flag: Some("es-service-rollover"),
        env: None,
        kind: Kind::OneOf(&["day", "hour"]),
        default: Default::Value("day"),
        secret: false,
        help: "(elasticsearch) A new service index every day or hour",
        doc: "`day` or `hour`: how often a new dated index starts",
    },
    Setting {
        key: "storage.elasticsearch.use_aliases",
        flag: Some("es-use-aliases"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "(elasticsearch) Write to *-write and read from *-read aliases (see es-rollover)",
        doc: "write to `<base>-write` and read from `<base>-read` (set up by `waymark es-rollover init`)",
    },
    Setting {
        key: "storage.elasticsearch.tags_as_fields_all",
        flag: Some("es-tags-as-fields-all"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "(elasticsearch) Store every tag also as a tag.<key> field",
        doc: "also store every tag as a `tag.<key>` field",
    },
    Setting {
        key: "storage.elasticsearch.tags_as_fields_keys",
        flag: None,
        env: None,
        kind: Kind::List,
        default: Default::Value(""),
        secret: false,
        help: "",
        doc: "tags stored as fields besides `tags_as_fields_all`",
    },
    Setting {
        key: "storage.elasticsearch.tags_as_fields_dot_replacement",
        flag: None,
        env: None,
        kind: Kind::Text,
        default: Default::Value("@"),
        secret: false,
        help: "",
        doc: "replaces `.` in the keys of tags stored as fields",
    },
    Setting {
        key: "storage.elasticsearch.create_index_templates",
        flag: Some("es-create-index-templates"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("true"),
        secret: false,
        help: "(elasticsearch) Put the index templates at start-up",
        doc: "put the index templates at start-up",
    },
    Setting {
        key: "storage.elasticsearch.shards",
        flag: Some("es-shards"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("5"),
        secret: false,
        help: "(elasticsearch) Shards of new indices",
        doc: "of new indices, in the templates",
    },
    Setting {
        key: "storage.elasticsearch.replicas",
        flag: Some("es-replicas"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("1"),
        secret: false,
        help: "(elasticsearch) Replicas of new indices",
        doc: "of new indices, in the templates",
    },
    Setting {
        key: "storage.elasticsearch.max_span_age",
        flag: Some("es-max-span-age"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("72h"),
        secret: false,
        help: "(elasticsearch) How far back trace-by-id, services and operations look",
        doc: "how far back trace by id, services and operations look",
    },
    Setting {
        key: "storage.elasticsearch.max_doc_count",
        flag: None,
        env: None,
        kind: Kind::Count,
        default: Default::Value("10000"),
        secret: false,
        help: "",
        doc: "most documents one search returns; larger results are paged",
    },
    Setting {
        key: "storage.elasticsearch.bulk_max_actions",
        flag: None,
        env: None,
        kind: Kind::Count,
        default: Default::Value("1000"),
        secret: false,
        help: "",
        doc: "largest `_bulk` request",
    },
    Setting {
        key: "storage.elasticsearch.bulk_max_bytes",
        flag: None,
        env: None,
        kind: Kind::Count,
        default: Default::Value("5242880"),
        secret: false,
        help: "",
        doc: "largest `_bulk` request",
    },
    Setting {
        key: "storage.elasticsearch.max_retries",
        flag: None,
        env: None,
        kind: Kind::Count,
        default: Default::Value("8"),
        secret: false,
        help: "",
        doc: "attempts for documents refused for now (429, 5xx) before the write fails",
    },
    Setting {
        key: "storage.elasticsearch.delete_expired_indices",
        flag: Some("es-delete-expired-indices"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "(elasticsearch) Delete dated indices older than --retention from the collector",
        doc: "delete dated indices older than `storage.retention` from the collector (otherwise `waymark es-cleaner` or ILM/ISM)",
    },
    Setting {
        key: "limits.max_request_bytes",
        flag: Some("max-request-bytes"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("16777216"),
        secret: false,
        help: "Largest request body in bytes, before and after decompression",
        doc: "largest request body, as sent and after decompression (413 beyond)",
    },
    Setting {
        key: "limits.max_spans_per_request",
        flag: Some("max-spans-per-request"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("50000"),
        secret: false,
        help: "Most spans in one request",
        doc: "larger requests are refused whole (400 / `INVALID_ARGUMENT`)",
    },
    Setting {
        key: "limits.max_attributes_per_span",
        flag: Some("max-attributes-per-span"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("1024"),
        secret: false,
        help: "Most attributes on one span, event or link",
        doc: "a span, event or link with more is rejected (reported in `partial_success`)",
    },
    Setting {
        key: "limits.max_string_bytes",
        flag: Some("max-string-bytes"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("131072"),
        secret: false,
        help: "Longest string in a span, in bytes",
        doc: "a span with a longer name, key or string value is rejected",
    },
    Setting {
        key: "pipeline.queue_spans",
        flag: Some("queue-spans"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("200000"),
        secret: false,
        help: "Most spans queued for storage before clients are told to retry",
        doc: "spans queued for storage at most; beyond it clients get 503 / `UNAVAILABLE` and retry",
    },
    Setting {
        key: "pipeline.max_batch_spans",
        flag: Some("max-batch-spans"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("16384"),
        secret: false,
        help: "Most spans merged into one storage write",
        doc: "most spans merged into one storage write",
    },
    Setting {
        key: "pipeline.max_wait",
        flag: Some("queue-max-wait"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("500ms"),
        secret: false,
        help: "How long a request waits for queue room before it is refused, e.g. 500ms",
        doc: "how long a request waits for queue room before it is refused",
    },
    Setting {
        key: "pipeline.writers",
        flag: Some("pipeline-writers"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("2"),
        secret: false,
        help: "Writer tasks merging queued requests into storage writes",
        doc: "writer tasks that merge queued requests into storage writes; more overlap writes to a slow backend (Elasticsearch), the embedded engine orders them on one WAL thread anyway",
    },
    Setting {
        key: "otlp.cors_allowed_origins",
        flag: Some("cors-allowed-origins"),
        env: None,
        kind: Kind::List,
        default: Default::Described("empty"),
        secret: false,
        help: "Origins allowed to send OTLP/HTTP from browsers, comma-separated; * for any",
        doc: "origins allowed to POST OTLP/HTTP from browsers (comma-separated on the command line); `*` for any",
    },
    Setting {
        key: "query.max_clock_skew_adjustment",
        flag: Some("max-clock-skew-adjustment"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("0s"),
        secret: false,
        help: "Largest clock-skew correction applied when reading traces; 0s disables",
        doc: "largest clock-skew correction on read; `0s` disables the adjuster, as in Jaeger",
    },
    Setting {
        key: "sampling.strategies_file",
        flag: Some("sampling-strategies-file"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("none"),
        secret: false,
        help: "Jaeger-format sampling strategies file, re-read when it changes",
        doc: "Jaeger-format strategies file (`default_strategy`, `service_strategies`, `operation_strategies`; types `probabilistic` and `ratelimiting`), re-read when it changes; an invalid file is refused at start-up and, on reload, logged while the previous strategies stay in force. Without a file every trace is sampled",
    },
    Setting {
        key: "sampling.reload_interval",
        flag: None,
        env: None,
        kind: Kind::Duration,
        default: Default::Value("10s"),
        secret: false,
        help: "",
        doc: "how often the strategies file is checked for changes",
    },
    Setting {
        key: "sampling.adaptive.enabled",
        flag: Some("sampling-adaptive"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "Adaptive sampling for services the strategies file does not list",
        doc: "adaptive sampling for every service the strategies file does not list: per-operation probabilities recomputed each interval from the root spans that arrive, so each operation yields about the target of sampled traces per second. State (throughput per collector and interval, the computed probabilities, the leader lease) is kept in the store (`<data-dir>/sampling/` for the embedded engine), so collectors sharing a store agree and a restart continues where it stopped. Collector and all-in-one modes",
    },
    Setting {
        key: "sampling.adaptive.target_samples_per_second",
        flag: Some("adaptive-target-samples-per-second"),
        env: None,
        kind: Kind::Float,
        default: Default::Value("1"),
        secret: false,
        help: "(adaptive) Sampled traces per second wanted from each operation",
        doc: "sampled traces per second wanted from each operation",
    },
    Setting {
        key: "sampling.adaptive.delta_tolerance",
        flag: Some("adaptive-delta-tolerance"),
        env: None,
        kind: Kind::Float,
        default: Default::Value("0.3"),
        secret: false,
        help: "(adaptive) Relative distance from the target within which nothing changes",
        doc: "a rate within this relative distance of the target keeps its probability, in [0, 1)",
    },
    Setting {
        key: "sampling.adaptive.calculation_interval",
        flag: Some("adaptive-calculation-interval"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("1m"),
        secret: false,
        help: "(adaptive) How often throughput is stored and probabilities recomputed",
        doc: "how often throughput is stored and probabilities recomputed (at least 100ms)",
    },
    Setting {
        key: "sampling.adaptive.lookback",
        flag: Some("adaptive-lookback"),
        env: None,
        kind: Kind::Duration,
        default: Default::Value("3m"),
        secret: false,
        help: "(adaptive) How much stored throughput each calculation looks at",
        doc: "how much stored throughput one calculation looks at (at least one interval)",
    },
    Setting {
        key: "sampling.adaptive.initial_sampling_probability",
        flag: Some("adaptive-initial-sampling-probability"),
        env: None,
        kind: Kind::Float,
        default: Default::Value("0.001"),
        secret: false,
        help: "(adaptive) Probability of operations not seen yet",
        doc: "probability of operations not seen yet, in (0, 1]",
    },
    Setting {
        key: "sampling.adaptive.min_sampling_probability",
        flag: Some("adaptive-min-sampling-probability"),
        env: None,
        kind: Kind::Float,
        default: Default::Value("0.00001"),
        secret: false,
        help: "(adaptive) Lowest probability handed out",
        doc: "lowest probability handed out, in (0, 1]",
    },
    Setting {
        key: "sampling.adaptive.min_samples_per_second",
        flag: Some("adaptive-min-samples-per-second"),
        env: None,
        kind: Kind::Float,
        default: Default::Described("`0.0166667` (one a minute)"),
        secret: false,
        help: "(adaptive) Traces per second every operation is sampled at least",
        doc: "traces per second the clients' lower-bound sampler takes of every operation (`defaultLowerBoundTracesPerSecond`)",
    },
    Setting {
        key: "sampling.adaptive.max_increase",
        flag: Some("adaptive-max-increase"),
        env: None,
        kind: Kind::Float,
        default: Default::Value("0.5"),
        secret: false,
        help: "(adaptive) Largest relative increase of a probability per interval",
        doc: "largest relative increase of a probability per interval (decreases apply at once)",
    },
    Setting {
        key: "agent.collectors",
        flag: Some("collector"),
        env: Some("WAYMARK_COLLECTORS"),
        kind: Kind::List,
        default: Default::Value("127.0.0.1:4317"),
        secret: false,
        help: "(agent) Collector OTLP gRPC endpoints, host:port, comma-separated",
        doc: "(agent) collector OTLP gRPC endpoints; every address each name resolves to is used in turn: a failed export moves to the next, and the agent also moves on every 5 minutes, starting at a per-process offset, so agents spread over the pods behind a headless Service and follow scaling",
    },
    Setting {
        key: "agent.queue_dir",
        flag: Some("queue-dir"),
        env: None,
        kind: Kind::Path,
        default: Default::Described("`<data_dir>/agent-queue`"),
        secret: false,
        help: "(agent) Directory of the durable queue",
        doc: "(agent) directory of the durable queue",
    },
    Setting {
        key: "agent.queue_max_bytes",
        flag: Some("queue-max-bytes"),
        env: None,
        kind: Kind::Count,
        default: Default::Value("1073741824"),
        secret: false,
        help: "(agent) Most bytes waiting for a collector before new spans are refused",
        doc: "(agent) most bytes waiting for a collector; beyond it new spans are refused (HTTP 503 / gRPC `UNAVAILABLE`, clients retry; UDP packets counted as dropped). Queued spans are never evicted",
    },
    Setting {
        key: "agent.sampling_collector",
        flag: Some("sampling-collector"),
        env: None,
        kind: Kind::Text,
        default: Default::Described("first collector's host, port 14250"),
        secret: false,
        help: "(agent) Collector Jaeger gRPC endpoint for sampling strategies",
        doc: "(agent) the collector `SamplingManager` the agent's sampling port (5778) proxies to; answers are cached 60 s, and when the collector is unreachable the last answer, or the agent's own strategies, are served",
    },
    Setting {
        key: "agent.gzip",
        flag: Some("forward-gzip"),
        env: None,
        kind: Kind::Bool,
        default: Default::Value("false"),
        secret: false,
        help: "(agent) Compress exports to collectors with gzip.",
        doc: "(agent) gzip exports to collectors",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(s: &Setting) -> &'static str {
        match s.kind {
            Kind::Text | Kind::Path => "sample",
            Kind::Bool => match s.default {
                Default::Value("true") => "false",
                _ => "true",
            },
            Kind::Count => "7",
            Kind::Range(lo, _) => {
                if lo == 1 {
                    "2"
                } else {
                    "0"
                }
            }
            Kind::Float => "0.25",
            Kind::Percent => "5",
            Kind::Duration => "42s",
            Kind::Address => "127.0.0.1:1",
            Kind::List => "a,b",
            Kind::OneOf(c) => c[c.len() - 1],
        }
    }

    /// Each key exists in `Config` and each documented default is the
    /// real one: a table that drifts from the structs fails here.
    #[test]
    fn every_key_and_default_matches_the_config() {
        let defaults = Config::default();
        for s in SETTINGS {
            let v = s
                .parse(sample(s))
                .unwrap_or_else(|e| panic!("{}: {e}", s.key));
            let c = Config::load(None, &[(s, v)]).unwrap_or_else(|e| panic!("{}: {e}", s.key));
            assert_ne!(c, defaults, "{}: setting it changes nothing", s.key);
            if let Default::Value(d) | Default::ValueNoted(d, _) = s.default {
                let v = s
                    .parse(d)
                    .unwrap_or_else(|e| panic!("{} default: {e}", s.key));
                let c = Config::load(None, &[(s, v)]).unwrap();
                assert_eq!(
                    c, defaults,
                    "{}: documented default {d:?} is not the default",
                    s.key
                );
            }
        }
    }

    #[test]
    fn keys_flags_and_variables_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            assert!(seen.insert(s.key.to_string()), "{}", s.key);
            if let Some(f) = s.flag {
                assert!(seen.insert(format!("--{f}")), "--{f}");
            }
            if let Some(e) = s.env_var() {
                assert!(seen.insert(e.clone()), "{e}");
            }
        }
    }

    #[test]
    fn overrides_win_over_the_file_and_later_ones_win() {
        let r = by_key("storage.retention").unwrap();
        let file = "storage:\n  retention: 3d\n  fsync: always\n";
        let c = Config::load(
            Some(file),
            &[(r, r.parse("2d").unwrap()), (r, r.parse("1d").unwrap())],
        )
        .unwrap();
        assert_eq!(c.storage.retention, std::time::Duration::from_secs(86_400));
        assert_eq!(c.storage.fsync, waymark_storage::FsyncPolicy::Always);
        let e = Config::load(Some("storage:\n  retension: 3d\n"), &[]).unwrap_err();
        assert!(e.contains("retension") && e.contains("line"), "{e}");
        assert!(by_key("storage.zstd_level").unwrap().parse("20").is_err());
        assert!(
            by_key("storage.fsync")
                .unwrap()
                .parse("sometimes")
                .unwrap_err()
                .contains("always, batch, never")
        );
    }

    /// `docs/configuration.md` holds the generated table; with
    /// `WAYMARK_BLESS=1` this test rewrites it.
    #[test]
    fn docs_match_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let text = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- settings:begin -->\n", "<!-- settings:end -->");
        let a = text.find(begin).expect("settings:begin marker") + begin.len();
        let b = text.find(end).expect("settings:end marker");
        let want = markdown_table();
        if text[a..b] != want {
            if std::env::var_os("WAYMARK_BLESS").is_some() {
                std::fs::write(path, format!("{}{want}{}", &text[..a], &text[b..])).unwrap();
            } else {
                panic!(
                    "docs/configuration.md is out of date: run `WAYMARK_BLESS=1 cargo test -p waymark-server settings`"
                );
            }
        }
    }
}
