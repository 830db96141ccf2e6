//! Removing old data: the dated indices whose whole period is older than a
//! cutoff (what `waymark es-cleaner` and, when enabled, retention do).

use reqwest::Method;

use crate::client::{EsClient, EsError};
use crate::index::{IndexConfig, IndexKind, Rollover};
use crate::time::{NANOS_PER_DAY, NANOS_PER_HOUR, unix_nanos_of};

/// The end of the period an index name covers (exclusive), when `name` is
/// a dated index of `kind` under `cfg`; `None` for anything else (aliases,
/// rollover indices, other applications' indices).
pub fn period_end(cfg: &IndexConfig, kind: IndexKind, name: &str) -> Option<u64> {
    let rest = name.strip_prefix(&format!("{}-", cfg.base_name(kind)))?;
    let sep = &cfg.date_separator;
    let parts: Vec<&str> = if sep.is_empty() {
        return None;
    } else {
        rest.split(sep.as_str()).collect()
    };
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (cfg.rollover(kind), parts.as_slice()) {
        (Rollover::Day, [y, m, d]) => {
            let start = unix_nanos_of(i64::from(num(y, 4)?), num(m, 2)?, num(d, 2)?, 0)?;
            Some(start + NANOS_PER_DAY)
        }
        (Rollover::Hour, [y, m, d, h]) => {
            let start = unix_nanos_of(i64::from(num(y, 4)?), num(m, 2)?, num(d, 2)?, num(h, 2)?)?;
            Some(start + NANOS_PER_HOUR)
        }
        _ => None,
    }
}

/// The indices that match `<prefix>jaeger-*`, with their document counts.
pub async fn list_indices(
    client: &EsClient,
    cfg: &IndexConfig,
) -> Result<Vec<(String, u64)>, EsError> {
    let pattern = format!("{}jaeger-*", cfg.prefix_with_separator());
    let v = client
        .json(
            Method::GET,
            &format!(
                "/_cat/indices/{pattern}?format=json&h=index,docs.count&expand_wildcards=open"
            ),
            None,
        )
        .await?;
    let mut out: Vec<(String, u64)> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let name = i["index"].as_str()?.to_string();
            // _cat answers numbers as strings.
            let docs = i["docs.count"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .or_else(|| i["docs.count"].as_u64())
                .unwrap_or(0);
            Some((name, docs))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The dated indices (of every kind) whose period ended at or before
/// `cutoff_ns`, oldest first.
pub fn expired(cfg: &IndexConfig, names: &[String], cutoff_ns: u64) -> Vec<String> {
    let mut out: Vec<(u64, String)> = names
        .iter()
        .filter_map(|n| {
            IndexKind::ALL
                .iter()
                .find_map(|k| period_end(cfg, *k, n))
                .filter(|end| *end <= cutoff_ns)
                .map(|end| (end, n.clone()))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

/// What a clean-up deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub indices: Vec<String>,
    /// Documents in the deleted span indices.
    pub spans: u64,
}

/// Deletes the expired dated indices.
pub async fn delete_indices_before(
    client: &EsClient,
    cfg: &IndexConfig,
    cutoff_ns: u64,
) -> Result<Deleted, EsError> {
    let listed = list_indices(client, cfg).await?;
    let names: Vec<String> = listed.iter().map(|(n, _)| n.clone()).collect();
    let doomed = expired(cfg, &names, cutoff_ns);
    let spans = listed
        .iter()
        .filter(|(n, _)| doomed.contains(n) && period_end(cfg, IndexKind::Span, n).is_some())
        .map(|(_, d)| d)
        .sum();
    // Deleting in groups keeps URLs short.
    for group in doomed.chunks(20) {
        client
            .json(Method::DELETE, &format!("/{}", group.join(",")), None)
            .await?;
        tracing::info!(indices = ?group, "deleted expired indices");
    }
    Ok(Deleted {
        indices: doomed,
        spans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_whole_expired_dated_indices() {
        let cfg = IndexConfig::default();
        let cutoff = unix_nanos_of(2026, 11, 20, 0).unwrap();
        let all = names(&[
            "jaeger-span-2026-11-18",
            "jaeger-span-2026-11-19",
            "jaeger-span-2026-11-20",
            "jaeger-service-2026-11-19",
            "jaeger-dependencies-2026-11-01",
            "jaeger-span-write",
            "jaeger-span-000001",
            "jaeger-span-2026-13-01",
            "jaeger-spanx-2026-11-01",
        ]);
        assert_eq!(
            expired(&cfg, &all, cutoff),
            names(&[
                "jaeger-dependencies-2026-11-01",
                "jaeger-span-2026-11-18",
                "jaeger-service-2026-11-19",
                "jaeger-span-2026-11-19",
            ])
        );
    }

    #[test]
    fn prefixes_separators_and_hours() {
        let cfg = IndexConfig {
            prefix: "prod".into(),
            date_separator: ".".into(),
            span_rollover: Rollover::Hour,
            ..IndexConfig::default()
        };
        let cutoff = unix_nanos_of(2026, 11, 20, 5).unwrap();
        let all = names(&[
            "prod-jaeger-span-2026.11.20.04",
            "prod-jaeger-span-2026.11.20.05",
            "prod-jaeger-service-2026.11.19",
            "jaeger-span-2026.11.01.00",
        ]);
        assert_eq!(
            expired(&cfg, &all, cutoff),
            names(&[
                "prod-jaeger-service-2026.11.19",
                "prod-jaeger-span-2026.11.20.04"
            ])
        );
    }
}
