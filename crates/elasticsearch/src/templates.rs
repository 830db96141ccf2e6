//! Index templates for Jaeger's indices, and the cluster [`Version`] that
//! chooses their flavour.
//!
//! The mappings are Jaeger's: ids, names and tag keys/values are `keyword`s
//! (`ignore_above: 256`), times are `long`s except `startTimeMillis` (a
//! date, for range queries), tags, process tags, references and logs (and
//! the fields of a log) are `nested` with `dynamic: false`, and the
//! flattened `tag.*`/`process.tag.*` fields become keywords through dynamic
//! templates. The flavours differ only in the envelope:
//!
//! * Elasticsearch 7 and OpenSearch 1–3: legacy templates, `PUT
//!   /_template/<name>`, with `index_patterns`, `settings`, `mappings` and
//!   (with aliases) `aliases` at the top;
//! * Elasticsearch 8 and 9: composable templates, `PUT
//!   /_index_template/<name>`, with `index_patterns`, `priority` and the rest
//!   under `template`.
//!
//! With aliases in use the template also names the read alias and the
//! rollover write alias: through an ILM policy on Elasticsearch, through
//! ISM's `plugins.index_state_management.rollover_alias` on OpenSearch.

use serde_json::{Map, Value, json};

use crate::index::{IndexConfig, IndexKind};

/// Which product a cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    Elasticsearch,
    OpenSearch,
}

/// A cluster's version, from its `GET /` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub distribution: Distribution,
    /// `version.number` as the cluster wrote it (`8.15.0`, `2.17.1`).
    pub number: String,
    pub major: u32,
    pub minor: u32,
}

/// The shape of index template a cluster takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateFlavour {
    /// Elasticsearch 7: `_template`.
    Elasticsearch7,
    /// Elasticsearch 8 and later: `_index_template`.
    Elasticsearch8,
    /// OpenSearch 1 and later: `_template`, ISM settings.
    OpenSearch,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("not a cluster information response: {0}")]
    Malformed(String),
    #[error(
        "unsupported version {number} of {distribution:?} (supported: Elasticsearch 7-9, OpenSearch 1-3)"
    )]
    Unsupported {
        distribution: Distribution,
        number: String,
    },
}

impl Version {
    /// Reads the body of `GET /`. OpenSearch says so in
    /// `version.distribution` (and in its tagline, checked too, for
    /// clusters that hide the distribution); an OpenSearch cluster in
    /// compatibility mode reports `7.10.2` as its number and is still
    /// OpenSearch.
    pub fn from_root_response(body: &[u8]) -> Result<Version, VersionError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| VersionError::Malformed(format!("not JSON: {e}")))?;
        let number = v
            .pointer("/version/number")
            .and_then(Value::as_str)
            .ok_or_else(|| VersionError::Malformed("no version.number".into()))?;
        let is_opensearch = v
            .pointer("/version/distribution")
            .and_then(Value::as_str)
            .is_some_and(|d| d.eq_ignore_ascii_case("opensearch"))
            || v.get("tagline")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("OpenSearch"));
        let mut parts = number.split(['.', '-']);
        let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
        let (major, minor) = match (next(), next()) {
            (Some(major), minor) => (major, minor.unwrap_or(0)),
            _ => {
                return Err(VersionError::Malformed(format!(
                    "version.number {number:?} is not a version"
                )));
            }
        };
        Ok(Version {
            distribution: if is_opensearch {
                Distribution::OpenSearch
            } else {
                Distribution::Elasticsearch
            },
            number: number.to_string(),
            major,
            minor,
        })
    }

    /// The template flavour this cluster takes. Elasticsearch before 7 is
    /// refused; versions newer than those listed are assumed to keep the
    /// newest flavour.
    pub fn template_flavour(&self) -> Result<TemplateFlavour, VersionError> {
        match (self.distribution, self.major) {
            (Distribution::OpenSearch, 1..) => Ok(TemplateFlavour::OpenSearch),
            (Distribution::Elasticsearch, 7) => Ok(TemplateFlavour::Elasticsearch7),
            (Distribution::Elasticsearch, 8..) => Ok(TemplateFlavour::Elasticsearch8),
            (distribution, _) => Err(VersionError::Unsupported {
                distribution,
                number: self.number.clone(),
            }),
        }
    }

    /// True for the versions the issue names: Elasticsearch 7–9, OpenSearch
    /// 1–3 (others may work, untested).
    pub fn is_known(&self) -> bool {
        match self.distribution {
            Distribution::Elasticsearch => (7..=9).contains(&self.major),
            Distribution::OpenSearch => (1..=3).contains(&self.major),
        }
    }
}

/// Settings of the templates, with Jaeger's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateOptions {
    /// `--es.num-shards`, 5.
    pub shards: u32,
    /// `--es.num-replicas`, 1.
    pub replicas: u32,
    /// Composable templates' priority per kind (span, service,
    /// dependencies), 0 each.
    pub priorities: [i64; 3],
    /// The ILM policy named in the template when aliases are in use
    /// (Elasticsearch only); `None` leaves lifecycle out.
    pub ilm_policy: Option<String>,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        TemplateOptions {
            shards: 5,
            replicas: 1,
            priorities: [0; 3],
            ilm_policy: None,
        }
    }
}

/// A template ready to be `PUT`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexTemplate {
    /// `<prefix->jaeger-span` and so on.
    pub name: String,
    /// `/_template/<name>` or `/_index_template/<name>`.
    pub path: String,
    pub body: Value,
}

/// The template for indices of `kind`.
pub fn index_template(
    kind: IndexKind,
    flavour: TemplateFlavour,
    indices: &IndexConfig,
    options: &TemplateOptions,
) -> IndexTemplate {
    let name = indices.base_name(kind);
    let mut settings = Map::new();
    settings.insert("index.number_of_shards".into(), json!(options.shards));
    settings.insert("index.number_of_replicas".into(), json!(options.replicas));
    settings.insert("index.mapping.nested_fields.limit".into(), json!(50));
    settings.insert("index.requests.cache.enable".into(), json!(true));
    let mut inner = Map::new();
    if indices.use_aliases {
        let write_alias = indices.write_alias(kind);
        match flavour {
            TemplateFlavour::OpenSearch => {
                settings.insert(
                    "plugins.index_state_management.rollover_alias".into(),
                    json!(write_alias),
                );
            }
            TemplateFlavour::Elasticsearch7 | TemplateFlavour::Elasticsearch8 => {
                if let Some(policy) = &options.ilm_policy {
                    settings.insert(
                        "lifecycle".into(),
                        json!({"name": policy, "rollover_alias": write_alias}),
                    );
                }
            }
        }
        let mut aliases = Map::new();
        aliases.insert(indices.read_alias(kind), json!({}));
        inner.insert("aliases".into(), Value::Object(aliases));
    }
    inner.insert("settings".into(), Value::Object(settings));
    inner.insert("mappings".into(), mappings(kind));
    let (path, body) = match flavour {
        TemplateFlavour::Elasticsearch8 => {
            let priority = options.priorities[match kind {
                IndexKind::Span => 0,
                IndexKind::Service => 1,
                IndexKind::Dependencies => 2,
            }];
            (
                format!("/_index_template/{name}"),
                json!({
                    "index_patterns": indices.pattern(kind),
                    "priority": priority,
                    "template": Value::Object(inner),
                }),
            )
        }
        TemplateFlavour::Elasticsearch7 | TemplateFlavour::OpenSearch => {
            // Legacy patterns start with `*`, and Jaeger leaves the prefix
            // out of the dependencies pattern.
            let pattern = match kind {
                IndexKind::Dependencies => format!("*{}-*", kind.base()),
                _ => format!("*{}", indices.pattern(kind)),
            };
            inner.insert("index_patterns".into(), json!(pattern));
            (format!("/_template/{name}"), Value::Object(inner))
        }
    };
    IndexTemplate { name, path, body }
}

fn keyword() -> Value {
    json!({"type": "keyword", "ignore_above": 256})
}

/// `{key, value, type}` keywords, nested.
fn nested_tags() -> Value {
    json!({
        "type": "nested",
        "dynamic": false,
        "properties": {"key": keyword(), "value": keyword(), "type": keyword()},
    })
}

fn keyword_template(name: &str, path: &str) -> Value {
    json!({name: {"path_match": path, "mapping": keyword()}})
}

fn mappings(kind: IndexKind) -> Value {
    match kind {
        IndexKind::Span => json!({
            "dynamic_templates": [
                keyword_template("span_tags_map", "tag.*"),
                keyword_template("process_tags_map", "process.tag.*"),
                keyword_template("scope_tags_map", "scopeTag.*"),
            ],
            "properties": {
                "traceID": keyword(),
                "spanID": keyword(),
                "parentSpanID": keyword(),
                "operationName": keyword(),
                "flags": {"type": "integer"},
                "startTime": {"type": "long"},
                "startTimeMillis": {"type": "date", "format": "epoch_millis"},
                "duration": {"type": "long"},
                "tags": nested_tags(),
                "tag": {"type": "object"},
                "scopeTags": nested_tags(),
                "scopeTag": {"type": "object"},
                "references": {
                    "type": "nested",
                    "dynamic": false,
                    "properties": {
                        "refType": keyword(),
                        "traceID": keyword(),
                        "spanID": keyword(),
                        "traceState": keyword(),
                        "flags": {"type": "integer"},
                        "tags": nested_tags(),
                    },
                },
                "logs": {
                    "type": "nested",
                    "dynamic": false,
                    "properties": {
                        "timestamp": {"type": "long"},
                        "fields": nested_tags(),
                    },
                },
                "process": {
                    "properties": {
                        "serviceName": keyword(),
                        "tags": nested_tags(),
                        "tag": {"type": "object"},
                    },
                },
            },
        }),
        IndexKind::Service => json!({
            "dynamic_templates": [
                keyword_template("span_tags_map", "tag.*"),
                keyword_template("process_tags_map", "process.tag.*"),
            ],
            "properties": {
                "serviceName": keyword(),
                "operationName": keyword(),
            },
        }),
        IndexKind::Dependencies => json!({}),
    }
}
