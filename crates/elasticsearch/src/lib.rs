//! Elasticsearch and OpenSearch storage in Jaeger's index layout, so that
//! Waymark reads the indices Jaeger wrote and Jaeger reads Waymark's.
//!
//! * [`client`]: the HTTP client (reqwest with rustls): several URLs in
//!   turn, basic auth (password from a file), API key or bearer token, a
//!   CA file, client certificates, timeouts, gzip;
//! * [`store`]: [`EsStorage`], the `Storage` implementation: `_bulk`
//!   writes that retry only the items refused for now, Jaeger's reads
//!   (trace ids by aggregation, then spans), dependencies from the
//!   dependencies indices or computed from spans;
//! * [`document`]: Jaeger's span, service and dependencies documents as
//!   serde types, and the conversion between a span document and the span
//!   model (through the shared Jaeger mapping of
//!   [`waymark_model::jaeger`]), including Jaeger's "tags as fields";
//! * [`index`]: index names: daily or hourly dated indices with an optional
//!   prefix and date separator, or the `-write`/`-read` aliases; the indices
//!   covering a time range for reads;
//! * [`templates`]: the index templates for Elasticsearch 7 (legacy),
//!   8 and 9 (composable) and OpenSearch 1–3, and the cluster [`Version`]
//!   read from `GET /` that chooses between them;
//! * [`bulk`]: `_bulk` NDJSON bodies, and per-item outcomes of a `_bulk`
//!   response (success, conflict, retryable, permanent);
//! * [`cleaner`]: deleting dated indices older than a cutoff;
//! * [`sampling`]: adaptive sampling's state (throughput, probabilities,
//!   the leader lease) in the cluster, shared by every collector.
//!
//! See `docs/elasticsearch.md` for what is verified how.

pub mod bulk;
pub mod cleaner;
pub mod client;
pub mod document;
pub mod index;
pub mod rollover;
pub mod sampling;
pub mod store;
pub mod templates;
mod time;

pub use bulk::{BulkBody, BulkError, BulkResponse, ItemError, ItemOutcome, OpType};
pub use client::{ClientConfig, EsClient, EsError};
pub use document::{
    DependenciesDocument, DocumentError, ServiceDocument, SpanDocument, TagsAsFields,
};
pub use index::{IndexConfig, IndexKind, Rollover};
pub use store::{EsConfig, EsStorage, Refresh};
pub use templates::{IndexTemplate, TemplateFlavour, TemplateOptions, Version, index_template};
