//! [`EsStorage`]: the [`Storage`] trait over an Elasticsearch or OpenSearch
//! cluster, in Jaeger's index layout.
//!
//! * Writes: each batch becomes `_bulk` requests of at most
//!   `bulk_max_actions` documents and `bulk_max_bytes` bytes: one span
//!   document per span (its `_id` derived from its content, so a retried
//!   batch overwrites rather than duplicates), plus a service document per
//!   service/operation pair not written recently. Items that failed with a
//!   retryable status (429, 5xx, rejected execution) are sent again, alone,
//!   with exponential backoff; conflicts count as written; any other failure
//!   fails the batch with the cluster's reason. `write` returns once every
//!   document was acknowledged, so the caller's bounded queue is the only
//!   buffer: a cluster that pushes back slows ingestion down (clients get
//!   503 / `UNAVAILABLE`) instead of growing memory.
//! * Reads follow Jaeger's reader: trace ids by a terms aggregation ordered
//!   by the latest start time, then the traces' spans by id, over the dated
//!   indices of the time range (widened by a clock-skew margin). What
//!   matches is decided once more by [`TraceQuery::matches_span`] and
//!   ordered by [`rank_traces`], so the backend answers exactly as the
//!   embedded engine does; the cluster query narrows the candidates.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{Value, json};
use waymark_model::{Span, SpanKind, Trace, TraceId};
use waymark_storage::{
    DependencyLink, Operation, Result, RetentionReport, Storage, StorageError, StorageErrorKind,
    StorageStats, TraceHit, TraceQuery, rank_traces,
};

use crate::bulk::{BulkBody, BulkError, BulkResponse, ItemOutcome, OpType, span_document_id};
use crate::client::{ClientConfig, EsClient, EsError};
use crate::document::{
    DependenciesDocument, ServiceDocument, SpanDocument, TagsAsFields, stored_trace_ids,
};
use crate::index::{IndexConfig, IndexKind};
use crate::templates::{TemplateOptions, Version, index_template};
use waymark_model::now_unix_nanos as now_ns;

/// When a write becomes visible to searches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Refresh {
    /// At the cluster's next refresh (1 s by default): fastest.
    #[default]
    Interval,
    /// `_bulk?refresh=wait_for`: `write` returns once the documents are
    /// searchable. For tests that read right after writing.
    WaitFor,
}

/// Settings of the Elasticsearch backend.
#[derive(Clone, Debug, PartialEq)]
pub struct EsConfig {
    pub client: ClientConfig,
    pub indices: IndexConfig,
    pub tags_as_fields: TagsAsFields,
    pub templates: TemplateOptions,
    /// Put the index templates at start-up (Jaeger's `--es.create-index-templates`).
    pub create_templates: bool,
    /// How far back reads without a time range look: trace by id,
    /// services, operations (Jaeger's `--es.max-span-age`).
    pub max_span_age: Duration,
    /// Most documents one search returns (the index's
    /// `max_result_window`); larger results are paged.
    pub max_doc_count: usize,
    pub bulk_max_actions: usize,
    pub bulk_max_bytes: usize,
    /// Attempts for items the cluster refused for now (429, 5xx).
    pub max_retries: u32,
    /// First pause before a retry; doubles up to 5 s.
    pub retry_backoff: Duration,
    pub refresh: Refresh,
    /// Reads of a trace look this much beyond the query's time range, for
    /// spans whose clocks were off.
    pub clock_skew_margin: Duration,
    /// Delete dated indices older than the retention period (otherwise
    /// `waymark es-cleaner` or ILM/ISM do it).
    pub delete_expired_indices: bool,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            client: ClientConfig::default(),
            indices: IndexConfig::default(),
            tags_as_fields: TagsAsFields::default(),
            templates: TemplateOptions::default(),
            create_templates: true,
            max_span_age: Duration::from_secs(72 * 3600),
            max_doc_count: 10_000,
            bulk_max_actions: 1_000,
            bulk_max_bytes: 5 << 20,
            max_retries: 8,
            retry_backoff: Duration::from_millis(100),
            refresh: Refresh::Interval,
            clock_skew_margin: Duration::from_secs(3600),
            delete_expired_indices: false,
        }
    }
}

/// One document of a bulk request, kept so that it can be sent again.
struct Item {
    index: String,
    id: String,
    doc: Vec<u8>,
    /// For service documents: the cache key to remember once written.
    service_key: Option<(String, String)>,
}

/// The Elasticsearch/OpenSearch backend.
pub struct EsStorage {
    client: Arc<EsClient>,
    sampling: Arc<crate::sampling::EsSamplingStore>,
    cfg: EsConfig,
    version: Version,
    /// Service documents written recently: (index, id).
    services_written: Mutex<HashSet<(String, String)>>,
    stored: AtomicU64,
}

const SERVICE_CACHE_MAX: usize = 100_000;

/// Most indices named in one request; wider ranges use a wildcard.
const MAX_NAMED_INDICES: u64 = 100;

fn dur_ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

fn invalid(msg: impl Into<String>) -> StorageError {
    StorageError::new(StorageErrorKind::Invalid, msg)
}

impl EsStorage {
    /// Connects, learns the cluster's version and (unless switched off)
    /// puts the index templates.
    pub async fn open(cfg: EsConfig) -> std::result::Result<EsStorage, EsError> {
        validate_prefix(&cfg.indices.prefix)?;
        let client = EsClient::new(&cfg.client)?;
        if cfg.client.sniff
            && let Err(e) = client.sniff().await
        {
            tracing::warn!(error = %e, "elasticsearch node sniffing failed; using the configured urls");
        }
        let version = client.version().await?;
        let flavour = version
            .template_flavour()
            .map_err(|e| EsError::Config(e.to_string()))?;
        tracing::info!(distribution = ?version.distribution, version = %version.number, "elasticsearch cluster");
        if cfg.create_templates {
            for kind in IndexKind::ALL {
                let t = index_template(kind, flavour, &cfg.indices, &cfg.templates);
                client.json(Method::PUT, &t.path, Some(&t.body)).await?;
            }
        }
        let client = Arc::new(client);
        let sampling = Arc::new(crate::sampling::EsSamplingStore::new(
            client.clone(),
            &cfg.indices,
        ));
        Ok(EsStorage {
            client,
            sampling,
            cfg,
            version,
            services_written: Mutex::new(HashSet::new()),
            stored: AtomicU64::new(0),
        })
    }

    pub fn version(&self) -> &Version {
        &self.version
    }

    pub fn client(&self) -> &EsClient {
        &self.client
    }

    fn items(&self, spans: &[Span]) -> Vec<Item> {
        let mut items = Vec::with_capacity(spans.len() + 8);
        let mut services: HashSet<(String, String)> = HashSet::new();
        for span in spans {
            let doc = SpanDocument::from_span(span, &self.cfg.tags_as_fields);
            let encoded = serde_json::to_vec(&doc).expect("span documents serialize");
            let start = span.start_time_unix_nano;
            items.push(Item {
                index: self.cfg.indices.write_target(IndexKind::Span, start),
                id: span_document_id(&doc, &encoded),
                doc: encoded,
                service_key: None,
            });
            let sdoc = ServiceDocument::of(&doc);
            let key = (
                self.cfg.indices.write_target(IndexKind::Service, start),
                sdoc.id(),
            );
            // The cache lock is taken only for a pair new in this batch,
            // never while documents are encoded.
            if !services.insert(key.clone()) || self.services_written.lock().contains(&key) {
                continue;
            }
            items.push(Item {
                index: key.0.clone(),
                id: key.1.clone(),
                doc: serde_json::to_vec(&sdoc).expect("service documents serialize"),
                service_key: Some(key),
            });
        }
        items
    }

    fn bulk_path(&self) -> &'static str {
        match self.cfg.refresh {
            Refresh::Interval => "/_bulk",
            Refresh::WaitFor => "/_bulk?refresh=wait_for",
        }
    }

    /// Sends `items` as one bulk request, again and again for the items the
    /// cluster refused for now, until all are written or a permanent error.
    async fn send_chunk(&self, mut items: Vec<Item>) -> Result<()> {
        let mut backoff = self.cfg.retry_backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut body = BulkBody::new();
            for it in &items {
                body.push_raw(OpType::Index, &it.index, Some(&it.id), &it.doc);
            }
            let sent = body.len();
            let outcome = match self
                .client
                .send(
                    Method::POST,
                    self.bulk_path(),
                    Some((body.into_bytes(), "application/x-ndjson")),
                )
                .await
            {
                Ok(r) => BulkResponse::parse(r.status, &r.body, sent).map_err(|e| match e {
                    BulkError::Request {
                        retryable: true, ..
                    } => (true, e.to_string()),
                    e => (false, e.to_string()),
                }),
                Err(e) => Err((e.is_retryable(), e.to_string())),
            };
            let retry: Vec<Item> = match outcome {
                Ok(resp) => {
                    let mut retry = Vec::new();
                    let mut permanent = Vec::new();
                    for (it, out) in items.into_iter().zip(resp.items) {
                        match out {
                            ItemOutcome::Success | ItemOutcome::Conflict(_) => {
                                if let Some(k) = it.service_key {
                                    self.remember_service(k);
                                } else {
                                    self.stored.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            ItemOutcome::Retryable(_) => retry.push(it),
                            ItemOutcome::Permanent(e) => permanent.push((it.index, e)),
                        }
                    }
                    if let Some((index, e)) = permanent.first() {
                        return Err(invalid(format!(
                            "elasticsearch refused {} document(s), e.g. in {index}: {e}",
                            permanent.len()
                        )));
                    }
                    retry
                }
                Err((true, msg)) => {
                    tracing::warn!(attempt, error = %msg, "elasticsearch bulk request refused for now");
                    items
                }
                Err((false, msg)) => return Err(StorageError::new(StorageErrorKind::Io, msg)),
            };
            if retry.is_empty() {
                return Ok(());
            }
            if attempt > self.cfg.max_retries {
                return Err(StorageError::new(
                    StorageErrorKind::Unavailable,
                    format!(
                        "elasticsearch kept refusing {} document(s) after {attempt} attempts (429 or 5xx): the cluster is overloaded",
                        retry.len()
                    ),
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            items = retry;
        }
    }

    fn remember_service(&self, key: (String, String)) {
        let mut w = self.services_written.lock();
        if w.len() >= SERVICE_CACHE_MAX {
            w.clear();
        }
        w.insert(key);
    }

    async fn search(&self, indices: &[String], body: &Value) -> Result<Value> {
        let path = format!(
            "/{}/_search?ignore_unavailable=true&allow_no_indices=true",
            indices.join(",")
        );
        Ok(self.client.json(Method::POST, &path, Some(body)).await?)
    }

    fn span_indices(&self, start_ns: u64, end_ns: u64, margin: u64) -> Vec<String> {
        self.read_targets(IndexKind::Span, start_ns, end_ns, margin)
    }

    /// The indices of a time range, or the kind's wildcard pattern when the
    /// range spans more than [`MAX_NAMED_INDICES`] of them (an open-ended
    /// search would otherwise name every day since 1970 in the URL).
    fn read_targets(
        &self,
        kind: IndexKind,
        start_ns: u64,
        end_ns: u64,
        margin: u64,
    ) -> Vec<String> {
        let period = match self.cfg.indices.rollover(kind) {
            crate::index::Rollover::Day => 86_400_000_000_000u64,
            crate::index::Rollover::Hour => 3_600_000_000_000u64,
        };
        let span = end_ns
            .saturating_add(margin)
            .saturating_sub(start_ns.saturating_sub(margin));
        if !self.cfg.indices.use_aliases && span / period >= MAX_NAMED_INDICES {
            return vec![self.cfg.indices.pattern(kind)];
        }
        self.cfg
            .indices
            .read_targets(kind, start_ns, end_ns, margin)
    }

    /// Every span matching `query` (a query clause), paged with
    /// `search_after`, at most `cap` spans.
    async fn spans_where(&self, indices: &[String], query: Value, cap: usize) -> Result<Vec<Span>> {
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let page = self.cfg.max_doc_count.min(cap - out.len()).max(1);
            let mut body = json!({
                "size": page,
                "query": query,
                "sort": [{"startTime": "asc"}, {"spanID": "asc"}],
            });
            if let Some(a) = &after {
                body["search_after"] = a.clone();
            }
            let r = self.search(indices, &body).await?;
            let hits = r["hits"]["hits"].as_array().cloned().unwrap_or_default();
            let n = hits.len();
            for h in &hits {
                out.push(self.hit_to_span(h)?);
            }
            after = hits.last().and_then(|h| h.get("sort").cloned());
            if n < page || out.len() >= cap || after.is_none() {
                return Ok(out);
            }
        }
    }

    fn hit_to_span(&self, hit: &Value) -> Result<Span> {
        let doc: SpanDocument = serde_json::from_value(hit["_source"].clone()).map_err(|e| {
            StorageError::new(
                StorageErrorKind::Corrupt,
                format!("span document {}: {e}", hit["_id"]),
            )
        })?;
        doc.to_span(&self.cfg.tags_as_fields).map_err(|e| {
            StorageError::new(
                StorageErrorKind::Corrupt,
                format!("span document {}: {e}", hit["_id"]),
            )
        })
    }

    /// The bool query narrowing a search to candidate spans.
    fn find_query(&self, q: &TraceQuery) -> Value {
        let mut must = vec![
            json!({"range": {"startTimeMillis": {"gte": q.start_min / 1_000_000, "lte": q.start_max.div_ceil(1_000_000)}}}),
        ];
        if let Some(s) = &q.service {
            must.push(json!({"term": {"process.serviceName": s}}));
        }
        if let Some(op) = &q.operation {
            must.push(json!({"term": {"operationName": op}}));
        }
        if q.duration_min.is_some() || q.duration_max.is_some() {
            let mut r = serde_json::Map::new();
            if let Some(min) = q.duration_min {
                r.insert("gte".into(), json!(min / 1_000));
            }
            if let Some(max) = q.duration_max {
                r.insert("lte".into(), json!(max.div_ceil(1_000)));
            }
            must.push(json!({"range": {"duration": r}}));
        }
        if let Some(kind) = q.span_kind
            && kind != SpanKind::Unspecified
        {
            must.push(self.tag_clause("span.kind", kind.jaeger_name()));
        }
        for (k, v) in &q.tags {
            // Jaeger's documents record an error status as error=true.
            let (k, v) = match (k.as_str(), v.as_str()) {
                ("otel.status_code", "ERROR") => ("error", "true"),
                (k, v) => (k, v),
            };
            if k == "error" && v != "true" {
                // error=false matches spans without the tag: the final check
                // decides.
                continue;
            }
            must.push(self.tag_clause(k, v));
        }
        json!({"bool": {"must": must}})
    }

    /// A tag as Jaeger searches it: in the nested span tags, process tags
    /// or log fields, or in the flattened `tag.*` fields.
    fn tag_clause(&self, key: &str, value: &str) -> Value {
        let nested = |path: &str| {
            json!({"nested": {"path": path, "query": {"bool": {"must": [
                {"term": {format!("{path}.key"): key}},
                {"term": {format!("{path}.value"): value}},
            ]}}}})
        };
        let field = self.cfg.tags_as_fields.field_name(key);
        json!({"bool": {"should": [
            nested("tags"),
            nested("process.tags"),
            nested("logs.fields"),
            {"term": {format!("tag.{field}"): value}},
            {"term": {format!("process.tag.{field}"): value}},
        ], "minimum_should_match": 1}})
    }

    async fn traces_by_ids(
        &self,
        ids: &[TraceId],
        start_ns: u64,
        end_ns: u64,
    ) -> Result<HashMap<TraceId, Vec<Span>>> {
        let mut out: HashMap<TraceId, Vec<Span>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let forms: Vec<String> = ids.iter().flat_map(stored_trace_ids).collect();
        let indices = self.span_indices(start_ns, end_ns, dur_ns(self.cfg.clock_skew_margin));
        let spans = self
            .spans_where(
                &indices,
                json!({"terms": {"traceID": forms}}),
                usize::MAX / 2,
            )
            .await?;
        for s in spans {
            out.entry(s.trace_id).or_default().push(s);
        }
        Ok(out)
    }
}

/// Index names are lowercase and cannot hold `\ / * ? " < > | , #` or spaces.
fn validate_prefix(p: &str) -> std::result::Result<(), EsError> {
    let bad = |c: char| c.is_ascii_uppercase() || " \\/*?\"<>|,#:".contains(c);
    if p.chars().any(bad) || p.starts_with(['-', '_', '+']) {
        return Err(EsError::Config(format!(
            "index prefix {p:?}: use lowercase letters, digits, '-' and '.', not starting with '-', '_' or '+'"
        )));
    }
    Ok(())
}

fn sorted_spans(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    spans
}

#[async_trait]
impl Storage for EsStorage {
    async fn write(&self, spans: Vec<Span>) -> Result<()> {
        let items = self.items(&spans);
        let mut chunk = Vec::new();
        let mut bytes = 0usize;
        for it in items {
            let size = it.doc.len() + it.index.len() + it.id.len() + 40;
            if !chunk.is_empty()
                && (chunk.len() >= self.cfg.bulk_max_actions
                    || bytes + size > self.cfg.bulk_max_bytes)
            {
                self.send_chunk(std::mem::take(&mut chunk)).await?;
                bytes = 0;
            }
            bytes += size;
            chunk.push(it);
        }
        if !chunk.is_empty() {
            self.send_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        let now = now_ns();
        let start = now.saturating_sub(dur_ns(self.cfg.max_span_age));
        let mut found = self.traces_by_ids(&[trace_id], start, now).await?;
        Ok(found.remove(&trace_id).map(|spans| Trace {
            trace_id,
            spans: sorted_spans(spans),
        }))
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        if query.start_max < query.start_min {
            return Err(invalid("the start of the time range is after its end"));
        }
        // Documents keep microseconds: compare at that granularity, so a
        // bound equal to a span's start (or duration) still matches it.
        let us = |ns: u64| ns / 1_000 * 1_000;
        let adjusted = TraceQuery {
            start_min: us(query.start_min),
            start_max: us(query.start_max),
            duration_min: query.duration_min.map(us),
            duration_max: query.duration_max.map(us),
            ..query.clone()
        };
        let query = &adjusted;
        let limit = query.limit.max(1);
        let body = json!({
            "size": 0,
            "query": self.find_query(query),
            "aggs": {"traceIDs": {
                "terms": {"field": "traceID", "size": limit, "order": {"startTime": "desc"}},
                "aggs": {"startTime": {"max": {"field": "startTime"}}},
            }},
        });
        let indices = self.span_indices(query.start_min, query.start_max, 0);
        let r = self.search(&indices, &body).await?;
        let mut ids: Vec<TraceId> = Vec::new();
        for b in r["aggregations"]["traceIDs"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(key) = b["key"].as_str() else {
                continue;
            };
            if let Ok(id) = TraceId::from_hex(&format!("{key:0>32}"))
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        let mut spans = self
            .traces_by_ids(&ids, query.start_min, query.start_max)
            .await?;
        let hits = spans.iter().filter_map(|(id, ss)| {
            ss.iter()
                .filter(|s| query.matches_span(s))
                .map(|s| s.start_time_unix_nano)
                .max()
                .map(|latest| TraceHit {
                    trace_id: *id,
                    latest_match_ns: latest,
                })
        });
        let ranked = rank_traces(hits.collect::<Vec<_>>(), limit);
        Ok(ranked
            .into_iter()
            .filter_map(|h| {
                spans.remove(&h.trace_id).map(|s| Trace {
                    trace_id: h.trace_id,
                    spans: sorted_spans(s),
                })
            })
            .collect())
    }

    async fn services(&self) -> Result<Vec<String>> {
        let now = now_ns();
        let indices = self.read_targets(
            IndexKind::Service,
            now.saturating_sub(dur_ns(self.cfg.max_span_age)),
            now,
            0,
        );
        let body = json!({"size": 0, "aggs": {"services": {"terms": {"field": "serviceName", "size": self.cfg.max_doc_count}}}});
        let r = self.search(&indices, &body).await?;
        let mut out: Vec<String> = buckets(&r, "services");
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn operations(&self, service: &str, kind: Option<SpanKind>) -> Result<Vec<Operation>> {
        let now = now_ns();
        let start = now.saturating_sub(dur_ns(self.cfg.max_span_age));
        // Service documents carry no span kind: the kinds come from the
        // spans, one aggregation per kind asked for.
        let kinds: Vec<SpanKind> = match kind {
            Some(k) if k != SpanKind::Unspecified => vec![k],
            _ => vec![
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Producer,
                SpanKind::Consumer,
                SpanKind::Internal,
            ],
        };
        let span_indices = self.span_indices(start, now, 0);
        let mut out: Vec<Operation> = Vec::new();
        for k in kinds {
            let body = json!({"size": 0,
                "query": {"bool": {"must": [
                    {"term": {"process.serviceName": service}},
                    self.tag_clause("span.kind", k.jaeger_name()),
                ]}},
                "aggs": {"ops": {"terms": {"field": "operationName", "size": self.cfg.max_doc_count}}}});
            let r = self.search(&span_indices, &body).await?;
            out.extend(
                buckets(&r, "ops")
                    .into_iter()
                    .map(|name| Operation { name, kind: k }),
            );
        }
        if kind.is_none() {
            // Operations whose spans carry no kind (or were written by a
            // tool without one) are listed from the service documents.
            let indices = self.read_targets(IndexKind::Service, start, now, 0);
            let body = json!({"size": 0,
                "query": {"term": {"serviceName": service}},
                "aggs": {"ops": {"terms": {"field": "operationName", "size": self.cfg.max_doc_count}}}});
            let r = self.search(&indices, &body).await?;
            for name in buckets(&r, "ops") {
                if !out.iter().any(|o| o.name == name) {
                    out.push(Operation {
                        name,
                        kind: SpanKind::Unspecified,
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.name, a.kind as i32).cmp(&(&b.name, b.kind as i32)));
        Ok(out)
    }

    async fn dependencies(&self, end_ns: u64, lookback_ns: u64) -> Result<Vec<DependencyLink>> {
        let start = end_ns.saturating_sub(lookback_ns);
        // Links a dependencies job stored, when there are any.
        let indices = self.read_targets(IndexKind::Dependencies, start, end_ns, 0);
        let body = json!({"size": self.cfg.max_doc_count, "query": {"range": {"timestamp": {
            "gte": crate::time::format_rfc3339_go(start),
            "lte": crate::time::format_rfc3339_go(end_ns),
        }}}});
        let r = self.search(&indices, &body).await?;
        let docs = r["hits"]["hits"].as_array().cloned().unwrap_or_default();
        let mut sums: HashMap<(String, String), (u64, u64)> = HashMap::new();
        if !docs.is_empty() {
            for h in docs {
                let d: DependenciesDocument = serde_json::from_value(h["_source"].clone())
                    .map_err(|e| {
                        StorageError::new(
                            StorageErrorKind::Corrupt,
                            format!("dependencies document: {e}"),
                        )
                    })?;
                for l in d.links() {
                    sums.entry((l.parent, l.child)).or_default().0 += l.call_count;
                }
            }
        } else {
            // Otherwise computed from the spans of the window (at most
            // 200,000 of them: a larger window wants a dependencies job).
            let spans = self
                .spans_where(
                    &self.span_indices(start, end_ns, 0),
                    json!({"range": {"startTimeMillis": {"gte": start / 1_000_000, "lte": end_ns / 1_000_000}}}),
                    200_000,
                )
                .await?;
            let in_window: Vec<&Span> = spans
                .iter()
                .filter(|s| s.start_time_unix_nano >= start && s.start_time_unix_nano <= end_ns)
                .collect();
            waymark_storage::dependencies_from_spans(in_window.iter().copied(), &mut sums);
        }
        Ok(waymark_storage::links_from_map(sums))
    }

    async fn purge_before(&self, cutoff_ns: u64) -> Result<RetentionReport> {
        if !self.cfg.delete_expired_indices || self.cfg.indices.use_aliases {
            return Ok(RetentionReport::default());
        }
        let deleted =
            crate::cleaner::delete_indices_before(&self.client, &self.cfg.indices, cutoff_ns)
                .await?;
        Ok(RetentionReport {
            blocks_deleted: deleted.indices.len() as u64,
            spans_deleted: deleted.spans,
        })
    }

    async fn flush(&self) -> Result<()> {
        let targets = [IndexKind::Span, IndexKind::Service]
            .map(|k| self.cfg.indices.pattern(k))
            .join(",");
        let path = format!("/{targets}/_refresh?ignore_unavailable=true&allow_no_indices=true");
        self.client.json(Method::POST, &path, None).await?;
        Ok(())
    }

    fn sampling_store(&self) -> Option<Arc<dyn waymark_storage::sampling::SamplingStore>> {
        Some(self.sampling.clone())
    }

    fn stats(&self) -> StorageStats {
        StorageStats {
            stored_spans: self.stored.load(Ordering::Relaxed),
            ..Default::default()
        }
    }
}

fn buckets(r: &Value, name: &str) -> Vec<String> {
    r["aggregations"][name]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["key"].as_str().map(str::to_string))
        .collect()
}
