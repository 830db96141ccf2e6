//! Index rollover with aliases, as `waymark es-rollover` runs it (the
//! layout of Jaeger's `es-rollover`): writes go to `<base>-write`, reads to
//! `<base>-read`, over numbered indices `<base>-000001`, `-000002`, ...
//!
//! * `init`: the index templates (with the alias settings), and for each
//!   of spans and services a first index holding both aliases, unless the
//!   write alias exists already;
//! * `rollover`: a new write index once the current one matches the
//!   conditions (`max_age` etc.), added to the read alias;
//! * `lookback`: indices created before a cutoff leave the read alias
//!   (they stay on disk until deleted).

use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{EsClient, EsError};
use crate::index::{IndexConfig, IndexKind};
use crate::templates::{TemplateOptions, index_template};

/// The kinds that rollover manages (Jaeger's rollover leaves the
/// dependencies indices dated).
pub const ROLLOVER_KINDS: [IndexKind; 2] = [IndexKind::Span, IndexKind::Service];

fn aliased(cfg: &IndexConfig) -> IndexConfig {
    IndexConfig {
        use_aliases: true,
        ..cfg.clone()
    }
}

/// What one step did, for the command's output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
}

/// Creates templates and the first indices. Safe to run again.
pub async fn init(
    client: &EsClient,
    cfg: &IndexConfig,
    options: &TemplateOptions,
) -> Result<Report, EsError> {
    let cfg = aliased(cfg);
    let flavour = client
        .version()
        .await?
        .template_flavour()
        .map_err(|e| EsError::Config(e.to_string()))?;
    let mut report = Report::default();
    for kind in IndexKind::ALL {
        let t = index_template(kind, flavour, &cfg, options);
        client.json(Method::PUT, &t.path, Some(&t.body)).await?;
        report.lines.push(format!("template {} put", t.name));
    }
    for kind in ROLLOVER_KINDS {
        let write = cfg.write_alias(kind);
        let exists = client
            .send(Method::HEAD, &format!("/_alias/{write}"), None)
            .await?;
        if exists.status == 200 {
            report.lines.push(format!("alias {write} exists already"));
            continue;
        }
        let first = format!("{}-000001", cfg.base_name(kind));
        let body = json!({"aliases": {
            write.clone(): {"is_write_index": true},
            cfg.read_alias(kind): {},
        }});
        client
            .json(Method::PUT, &format!("/{first}"), Some(&body))
            .await?;
        report.lines.push(format!(
            "index {first} created with aliases {write} and {}",
            cfg.read_alias(kind)
        ));
    }
    Ok(report)
}

/// Rolls each write alias over to a new index when `conditions` hold
/// (e.g. `{"max_age": "1d"}`), and adds the new index to the read alias.
pub async fn rollover(
    client: &EsClient,
    cfg: &IndexConfig,
    conditions: &Value,
) -> Result<Report, EsError> {
    let cfg = aliased(cfg);
    let mut report = Report::default();
    for kind in ROLLOVER_KINDS {
        let write = cfg.write_alias(kind);
        let r = client
            .json(
                Method::POST,
                &format!("/{write}/_rollover"),
                Some(&json!({"conditions": conditions})),
            )
            .await?;
        let rolled = r["rolled_over"].as_bool().unwrap_or(false);
        let new_index = r["new_index"].as_str().unwrap_or_default().to_string();
        if rolled && !new_index.is_empty() {
            let body =
                json!({"actions": [{"add": {"index": new_index, "alias": cfg.read_alias(kind)}}]});
            client.json(Method::POST, "/_aliases", Some(&body)).await?;
            report
                .lines
                .push(format!("{write} rolled over to {new_index}"));
        } else {
            report
                .lines
                .push(format!("{write}: conditions not met, no rollover"));
        }
    }
    Ok(report)
}

/// Removes from the read aliases the indices created before `cutoff_ms`
/// (ms since the epoch), never the current write index.
pub async fn lookback(
    client: &EsClient,
    cfg: &IndexConfig,
    cutoff_ms: u64,
) -> Result<Report, EsError> {
    let cfg = aliased(cfg);
    let mut report = Report::default();
    for kind in ROLLOVER_KINDS {
        let read = cfg.read_alias(kind);
        let write = cfg.write_alias(kind);
        // Which indices hold the aliases, and which one is written to.
        let aliases = client
            .json(Method::GET, &format!("/_alias/{read},{write}"), None)
            .await?;
        let Some(map) = aliases.as_object() else {
            continue;
        };
        let mut remove = Vec::new();
        for (index, v) in map {
            let holds_read = v["aliases"].get(&read).is_some();
            // After a rollover the old index keeps the write alias with
            // `is_write_index: false`; only the current one has it true (or
            // unset, when it is the alias's only index).
            let is_write = v["aliases"].get(&write).is_some_and(|a| {
                a.get("is_write_index")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
            });
            if !holds_read || is_write {
                continue;
            }
            let settings = client
                .json(
                    Method::GET,
                    &format!("/{index}/_settings/index.creation_date"),
                    None,
                )
                .await?;
            let created = settings[index.as_str()]["settings"]["index"]["creation_date"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok());
            if created.is_some_and(|c| c < cutoff_ms) {
                remove.push(index.clone());
            }
        }
        remove.sort();
        if remove.is_empty() {
            report
                .lines
                .push(format!("{read}: nothing older than the lookback"));
            continue;
        }
        let actions: Vec<Value> = remove
            .iter()
            .map(|i| json!({"remove": {"index": i, "alias": read}}))
            .collect();
        client
            .json(
                Method::POST,
                "/_aliases",
                Some(&json!({"actions": actions})),
            )
            .await?;
        report
            .lines
            .push(format!("{read}: removed {}", remove.join(", ")));
    }
    Ok(report)
}

/// Puts a lifecycle policy that rolls the write indices over after
/// `rollover_after` and deletes indices `delete_after` old: an ILM policy on
/// Elasticsearch (`PUT /_ilm/policy/<name>`, named in the templates by
/// `init --ilm-policy`), an ISM policy on OpenSearch
/// (`PUT /_plugins/_ism/policies/<name>`, attached to new span and service
/// indices by its `ism_template`). Durations as the cluster writes them
/// (`1d`, `12h`).
pub async fn put_policy(
    client: &EsClient,
    cfg: &IndexConfig,
    name: &str,
    rollover_after: &str,
    delete_after: &str,
) -> Result<Report, EsError> {
    let version = client.version().await?;
    let cfg = aliased(cfg);
    let (path, body) = match version.distribution {
        crate::templates::Distribution::Elasticsearch => (
            format!("/_ilm/policy/{name}"),
            json!({"policy": {"phases": {
                "hot": {"min_age": "0ms", "actions": {
                    "rollover": {"max_age": rollover_after},
                    "set_priority": {"priority": 100},
                }},
                "delete": {"min_age": delete_after, "actions": {"delete": {}}},
            }}}),
        ),
        crate::templates::Distribution::OpenSearch => {
            let patterns: Vec<String> = ROLLOVER_KINDS
                .iter()
                .map(|k| format!("{}-*", cfg.base_name(*k)))
                .collect();
            (
                format!("/_plugins/_ism/policies/{name}"),
                json!({"policy": {
                    "description": "Waymark: roll the Jaeger indices over, then delete them",
                    "default_state": "hot",
                    "states": [
                        {"name": "hot",
                         "actions": [{"rollover": {"min_index_age": rollover_after}}],
                         "transitions": [{"state_name": "delete", "conditions": {"min_index_age": delete_after}}]},
                        {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
                    ],
                    "ism_template": [{"index_patterns": patterns, "priority": 100}],
                }}),
            )
        }
    };
    client.json(Method::PUT, &path, Some(&body)).await?;
    Ok(Report {
        lines: vec![format!(
            "policy {name} put: roll over after {rollover_after}, delete after {delete_after}"
        )],
    })
}
