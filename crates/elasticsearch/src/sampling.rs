//! Adaptive sampling's state in the cluster, so that every collector
//! writing to it agrees on the probabilities: one index,
//! `<prefix>waymark-sampling`, holding
//!
//! * a document per collector and interval (`kind: throughput`), written
//!   with `refresh=wait_for` so the leader's search sees it;
//! * one `probabilities` document, replaced by the leader;
//! * one `lease-<name>` document per lease, taken with `_create` and renewed
//!   or taken over with optimistic concurrency (`if_seq_no` and
//!   `if_primary_term`): of two collectors racing for an expired lease, the
//!   cluster lets exactly one write win.
//!
//! The index is Waymark's own (its documents are not Jaeger's sampling
//! documents), created on first use with a mapping that indexes only what is
//! searched; throughput documents older than a day are deleted by the leader.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use waymark_storage::sampling::{
    Lease, SamplingProbabilities, SamplingStore, ThroughputBucket, check_lease_name,
};
use waymark_storage::{Result, StorageError, StorageErrorKind};

use crate::client::{EsClient, EsError};
use crate::index::IndexConfig;

/// Throughput documents are kept this long.
const KEEP_NS: u64 = 24 * 3_600 * 1_000_000_000;

pub struct EsSamplingStore {
    client: Arc<EsClient>,
    index: String,
    created: tokio::sync::OnceCell<()>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::new(StorageErrorKind::Corrupt, format!("{what}: {e}"))
}

impl EsSamplingStore {
    pub fn new(client: Arc<EsClient>, indices: &IndexConfig) -> Self {
        EsSamplingStore {
            client,
            index: format!("{}waymark-sampling", indices.prefix_with_separator()),
            created: tokio::sync::OnceCell::new(),
        }
    }

    pub fn index(&self) -> &str {
        &self.index
    }

    /// Creates the index unless it exists (a concurrent creation by another
    /// collector is fine).
    async fn ensure_index(&self) -> Result<()> {
        self.created
            .get_or_try_init(|| async {
                let body = json!({
                    "settings": {"number_of_shards": 1},
                    "mappings": {"dynamic": false, "properties": {
                        "kind": {"type": "keyword"},
                        "start_ns": {"type": "long"},
                    }},
                });
                let r = self
                    .client
                    .send(
                        Method::PUT,
                        &format!("/{}", self.index),
                        Some((serde_json::to_vec(&body).unwrap(), "application/json")),
                    )
                    .await?;
                let exists = r.status == 400 && r.reason().contains("already_exists");
                if r.is_success() || exists {
                    Ok(())
                } else {
                    Err(StorageError::from(EsError::Status {
                        method: "PUT".into(),
                        path: format!("/{}", self.index),
                        status: r.status,
                        reason: r.reason(),
                    }))
                }
            })
            .await
            .map(|_| ())
    }

    async fn get_doc(&self, id: &str) -> Result<Option<Value>> {
        let path = format!("/{}/_doc/{id}", self.index);
        let r = self.client.send(Method::GET, &path, None).await?;
        if r.status == 404 {
            return Ok(None);
        }
        if !r.is_success() {
            return Err(EsError::Status {
                method: "GET".into(),
                path,
                status: r.status,
                reason: r.reason(),
            }
            .into());
        }
        serde_json::from_slice(&r.body)
            .map(Some)
            .map_err(|e| corrupt(&path, e))
    }

    /// Writes a document; `Ok(false)` when the cluster refused it as a
    /// conflict (409).
    async fn put_doc(&self, path_and_query: &str, doc: &Value) -> Result<bool> {
        let r = self
            .client
            .send(
                Method::PUT,
                &format!("/{}/{path_and_query}", self.index),
                Some((serde_json::to_vec(doc).unwrap(), "application/json")),
            )
            .await?;
        if r.status == 409 {
            return Ok(false);
        }
        if !r.is_success() {
            return Err(EsError::Status {
                method: "PUT".into(),
                path: path_and_query.to_string(),
                status: r.status,
                reason: r.reason(),
            }
            .into());
        }
        Ok(true)
    }
}

#[async_trait]
impl SamplingStore for EsSamplingStore {
    async fn put_throughput(&self, bucket: ThroughputBucket) -> Result<()> {
        self.ensure_index().await?;
        let mut doc = serde_json::to_value(&bucket).expect("buckets serialize");
        doc["kind"] = json!("throughput");
        let id = format!("throughput-{}-{}", bucket.collector, bucket.start_ns);
        self.put_doc(&format!("_doc/{id}?refresh=wait_for"), &doc)
            .await?;
        Ok(())
    }

    async fn throughput_since(&self, since_ns: u64) -> Result<Vec<ThroughputBucket>> {
        self.ensure_index().await?;
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let mut body = json!({
                "size": 1000,
                "query": {"bool": {"must": [
                    {"term": {"kind": "throughput"}},
                    {"range": {"start_ns": {"gte": since_ns}}},
                ]}},
                "sort": [{"start_ns": "asc"}, {"_id": "asc"}],
            });
            if let Some(a) = &after {
                body["search_after"] = a.clone();
            }
            let r = self
                .client
                .json(
                    Method::POST,
                    &format!("/{}/_search", self.index),
                    Some(&body),
                )
                .await?;
            let hits = r["hits"]["hits"].as_array().cloned().unwrap_or_default();
            for h in &hits {
                out.push(
                    serde_json::from_value(h["_source"].clone())
                        .map_err(|e| corrupt("throughput document", e))?,
                );
            }
            after = hits.last().and_then(|h| h.get("sort").cloned());
            if hits.len() < 1000 || after.is_none() {
                return Ok(out);
            }
        }
    }

    async fn put_probabilities(&self, p: SamplingProbabilities) -> Result<()> {
        self.ensure_index().await?;
        let mut doc = serde_json::to_value(&p).expect("probabilities serialize");
        doc["kind"] = json!("probabilities");
        self.put_doc("_doc/probabilities", &doc).await?;
        // The leader also keeps the throughput documents bounded.
        let cutoff = p.computed_at_ns.saturating_sub(KEEP_NS);
        let body = json!({"query": {"bool": {"must": [
            {"term": {"kind": "throughput"}},
            {"range": {"start_ns": {"lt": cutoff}}},
        ]}}});
        if let Err(e) = self
            .client
            .json(
                Method::POST,
                &format!("/{}/_delete_by_query?conflicts=proceed", self.index),
                Some(&body),
            )
            .await
        {
            tracing::warn!(error = %e, "old sampling throughput not deleted");
        }
        Ok(())
    }

    async fn latest_probabilities(&self) -> Result<Option<SamplingProbabilities>> {
        self.ensure_index().await?;
        match self.get_doc("probabilities").await? {
            Some(d) if d["found"].as_bool() != Some(false) => {
                serde_json::from_value(d["_source"].clone())
                    .map(Some)
                    .map_err(|e| corrupt("probabilities document", e))
            }
            _ => Ok(None),
        }
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: u64,
        ttl: Duration,
    ) -> Result<bool> {
        check_lease_name(name)?;
        self.ensure_index().await?;
        let id = format!("lease-{name}");
        let mut doc =
            serde_json::to_value(Lease::new(holder, now_ns, ttl)).expect("leases serialize");
        doc["kind"] = json!("lease");
        match self.get_doc(&id).await? {
            Some(d) if d["found"].as_bool() != Some(false) => {
                let current: Lease = serde_json::from_value(d["_source"].clone())
                    .map_err(|e| corrupt("lease document", e))?;
                if current.blocks(holder, now_ns) {
                    return Ok(false);
                }
                let (seq, term) = (d["_seq_no"].as_u64(), d["_primary_term"].as_u64());
                let (Some(seq), Some(term)) = (seq, term) else {
                    return Err(corrupt("lease document", "no _seq_no/_primary_term"));
                };
                self.put_doc(
                    &format!("_doc/{id}?if_seq_no={seq}&if_primary_term={term}"),
                    &doc,
                )
                .await
            }
            _ => self.put_doc(&format!("_create/{id}"), &doc).await,
        }
    }
}
