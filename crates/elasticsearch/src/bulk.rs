//! `_bulk` request bodies and responses.
//!
//! A body is NDJSON: for each document an action line
//! (`{"index":{"_index":…,"_id":…}}`) and the document on the next line,
//! every line ending in `\n`. The response has one item per action, in the
//! same order, each with an HTTP-like `status` and, on failure, an `error`
//! object (`type`, `reason`, `caused_by`). [`BulkResponse::parse`] sorts the
//! items into outcomes so the writer retries only what may succeed later:
//!
//! * success: 2xx;
//! * conflict: 409 / `version_conflict_engine_exception`; the document is
//!   already there (documents have deterministic ids), nothing to redo;
//! * retryable: 429 (`es_rejected_execution_exception`, circuit breakers,
//!   flood-stage disk blocks), 5xx, and the error types that mean "not now"
//!   whatever their status;
//! * permanent: everything else (`mapper_parsing_exception`,
//!   `document_parsing_exception`, `illegal_argument_exception`, a missing
//!   index, other 4xx): sending it again gives the same answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::document::{SpanDocument, fnv1a64};

/// The bulk action of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OpType {
    /// Create or replace.
    #[default]
    Index,
    /// Create only; an existing `_id` is a conflict.
    Create,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Index => "index",
            OpType::Create => "create",
        }
    }
}

#[derive(Serialize)]
struct ActionMeta<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

/// A `_bulk` request body under construction.
#[derive(Clone, Debug, Default)]
pub struct BulkBody {
    buf: Vec<u8>,
    items: usize,
}

impl BulkBody {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one action and its document.
    pub fn push<T: Serialize>(
        &mut self,
        op: OpType,
        index: &str,
        id: Option<&str>,
        doc: &T,
    ) -> Result<(), serde_json::Error> {
        let doc = serde_json::to_vec(doc)?;
        self.push_raw(op, index, id, &doc);
        Ok(())
    }

    /// Appends one action and a document already encoded as one line of
    /// JSON (no newline inside).
    pub fn push_raw(&mut self, op: OpType, index: &str, id: Option<&str>, doc: &[u8]) {
        let meta = ActionMeta { index, id };
        self.buf.extend_from_slice(b"{\"");
        self.buf.extend_from_slice(op.as_str().as_bytes());
        self.buf.extend_from_slice(b"\":");
        // Serializing two borrowed strings into a Vec cannot fail.
        serde_json::to_writer(&mut self.buf, &meta).expect("action line");
        self.buf.extend_from_slice(b"}\n");
        self.buf.extend_from_slice(doc);
        self.buf.push(b'\n');
        self.items += 1;
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Size of the body in bytes.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A span document's `_id`, as Jaeger's writer makes it: trace id, span id
/// and a 64-bit FNV-1a hash of the encoded document, joined by `_`. Sending
/// the same span twice then writes one document; two different spans that
/// share ids (a Zipkin client/server pair) still get two.
pub fn span_document_id(doc: &SpanDocument, encoded: &[u8]) -> String {
    format!("{}_{}_{:x}", doc.trace_id, doc.span_id, fnv1a64(&[encoded]))
}

/// What became of one item of a bulk request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    Success,
    Conflict(ItemError),
    Retryable(ItemError),
    Permanent(ItemError),
}

impl ItemOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, ItemOutcome::Success)
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ItemOutcome::Retryable(_))
    }

    pub fn error(&self) -> Option<&ItemError> {
        match self {
            ItemOutcome::Success => None,
            ItemOutcome::Conflict(e) | ItemOutcome::Retryable(e) | ItemOutcome::Permanent(e) => {
                Some(e)
            }
        }
    }
}

/// A failed item: its status, the error type and reason (with the first
/// `caused_by` reason appended, where the cause is in the detail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemError {
    pub status: u16,
    pub index: String,
    pub error_type: String,
    pub reason: String,
}

impl std::fmt::Display for ItemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} in {}: {}",
            self.status, self.error_type, self.index, self.reason
        )
    }
}

/// One outcome per document of the request, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkResponse {
    pub took_ms: u64,
    pub items: Vec<ItemOutcome>,
}

/// Why a bulk response was not a list of item outcomes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    /// The cluster refused the request as a whole (an error status).
    #[error("bulk request failed: {status} {error_type}: {reason}")]
    Request {
        status: u16,
        error_type: String,
        reason: String,
        /// 429 and 5xx: the whole request may be sent again later.
        retryable: bool,
    },
    #[error("bulk response is not valid: {0}")]
    Malformed(String),
    #[error("bulk response has {got} items for {sent} documents")]
    ItemCount { sent: usize, got: usize },
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    took: u64,
    #[serde(default)]
    items: Vec<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawItem {
    #[serde(rename = "_index", default)]
    index: String,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    error: Option<Value>,
}

/// Error types that mean "try again later", whatever the status says.
const RETRYABLE_TYPES: &[&str] = &[
    "es_rejected_execution_exception",
    "rejected_execution_exception",
    "circuit_breaking_exception",
    "unavailable_shards_exception",
    "no_shard_available_action_exception",
    "process_cluster_event_timeout_exception",
    "node_not_connected_exception",
    "node_disconnected_exception",
    "connect_transport_exception",
    "receive_timeout_transport_exception",
];

const CONFLICT_TYPE: &str = "version_conflict_engine_exception";

fn classify(status: u16, error_type: &str) -> fn(ItemError) -> ItemOutcome {
    if status == 409 || error_type == CONFLICT_TYPE {
        ItemOutcome::Conflict
    } else if status == 429 || status >= 500 || RETRYABLE_TYPES.contains(&error_type) {
        ItemOutcome::Retryable
    } else {
        ItemOutcome::Permanent
    }
}

/// (type, reason) of an error object, the reason followed by the first
/// `caused_by` reason when there is one. Some errors are plain strings.
fn error_parts(e: &Value) -> (String, String) {
    match e {
        Value::String(s) => (String::new(), s.clone()),
        Value::Object(o) => {
            let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
            let ty = text(o.get("type"));
            let mut reason = text(o.get("reason"));
            if let Some(cause) = o.get("caused_by") {
                let (cause_ty, cause_reason) = error_parts(cause);
                if !cause_reason.is_empty() || !cause_ty.is_empty() {
                    reason = format!("{reason} (caused by {cause_ty}: {cause_reason})");
                }
            }
            (ty, reason)
        }
        other => (String::new(), other.to_string()),
    }
}

impl BulkResponse {
    /// Reads the answer to a bulk request of `sent` documents: the HTTP
    /// status and the body.
    pub fn parse(http_status: u16, body: &[u8], sent: usize) -> Result<BulkResponse, BulkError> {
        if !(200..300).contains(&http_status) {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let (error_type, reason) = match v.get("error") {
                Some(e) => error_parts(e),
                None => (String::new(), String::from_utf8_lossy(body).into_owned()),
            };
            return Err(BulkError::Request {
                status: http_status,
                retryable: http_status == 429 || http_status >= 500,
                error_type,
                reason,
            });
        }
        let raw: RawResponse =
            serde_json::from_slice(body).map_err(|e| BulkError::Malformed(e.to_string()))?;
        if raw.items.len() != sent {
            return Err(BulkError::ItemCount {
                sent,
                got: raw.items.len(),
            });
        }
        let mut items = Vec::with_capacity(raw.items.len());
        for entry in raw.items {
            // Each item is keyed by its action: {"index": {...}}.
            let Some((_, item)) = entry.into_iter().next() else {
                return Err(BulkError::Malformed("an item names no action".into()));
            };
            let item: RawItem =
                serde_json::from_value(item).map_err(|e| BulkError::Malformed(e.to_string()))?;
            let outcome = match (&item.error, item.status) {
                (None, 200..=299) => ItemOutcome::Success,
                (error, status) => {
                    let (error_type, reason) = error.as_ref().map(error_parts).unwrap_or_default();
                    classify(status, &error_type)(ItemError {
                        status,
                        index: item.index,
                        error_type,
                        reason,
                    })
                }
            };
            items.push(outcome);
        }
        Ok(BulkResponse {
            took_ms: raw.took,
            items,
        })
    }

    /// Positions (in request order) of the items worth sending again.
    pub fn retryable(&self) -> Vec<usize> {
        self.items
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_retryable())
            .map(|(i, _)| i)
            .collect()
    }

    /// (succeeded, conflicts, retryable, permanent) counts.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for o in &self.items {
            match o {
                ItemOutcome::Success => c.0 += 1,
                ItemOutcome::Conflict(_) => c.1 += 1,
                ItemOutcome::Retryable(_) => c.2 += 1,
                ItemOutcome::Permanent(_) => c.3 += 1,
            }
        }
        c
    }
}
