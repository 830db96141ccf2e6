//! Elasticsearch and OpenSearch storage in Jaeger's index layout, so that
//! Waymark reads the indices Jaeger wrote and Jaeger reads Waymark's.
//!
//! This first increment is pure code, with no HTTP client and no I/O:
//!
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
//!   response (success, conflict, retryable, permanent).
//!
//! The next increment adds the HTTP client: the writer (batching,
//! retrying only the retryable items, back-pressure on 429), the reader
//! (services, operations, trace by id, search, dependencies), connection
//! settings (TLS, authentication) and the `Storage` implementation. See
//! `docs/elasticsearch.md`.

pub mod bulk;
pub mod document;
pub mod index;
pub mod templates;
mod time;

pub use bulk::{BulkBody, BulkError, BulkResponse, ItemError, ItemOutcome, OpType};
pub use document::{
    DependenciesDocument, DocumentError, ServiceDocument, SpanDocument, TagsAsFields,
};
pub use index::{IndexConfig, IndexKind, Rollover};
pub use templates::{IndexTemplate, TemplateFlavour, TemplateOptions, Version, index_template};
