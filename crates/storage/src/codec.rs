//! The binary encoding of a batch of spans, shared by WAL records and block
//! pages. Resources and scopes are written once per batch in tables and spans
//! refer to them by index, so a thousand spans from one service instance
//! carry its resource once.
//!
//! Layout (postcard, see `docs/storage-format.md`):
//! `version: u8 = 1`, then `resources: [Resource]`, `scopes: [Scope]`,
//! `spans: [(resource_index: varint, scope_index: varint, Span)]`.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use waymark_model::{Resource, Scope, Span};

use crate::{StorageError, StorageErrorKind};

/// Version byte of the span batch encoding.
pub const BATCH_VERSION: u8 = 1;

#[derive(Serialize)]
pub(crate) struct RowRef<'a> {
    pub resource: u32,
    pub scope: u32,
    pub span: &'a Span,
}

#[derive(Deserialize)]
pub(crate) struct Row {
    pub resource: u32,
    pub scope: u32,
    pub span: Span,
}

#[derive(Serialize)]
struct BatchRef<'a> {
    resources: Vec<&'a Resource>,
    scopes: Vec<&'a Scope>,
    spans: Vec<RowRef<'a>>,
}

#[derive(Deserialize)]
struct Batch {
    resources: Vec<Resource>,
    scopes: Vec<Scope>,
    spans: Vec<Row>,
}

/// Interns values first by pointer (cheap, the common case: spans of one
/// request share an `Arc`) and then by encoded content (spans of different
/// requests from the same service instance).
pub(crate) struct Interner<'a, T> {
    by_ptr: FxHashMap<*const T, u32>,
    by_bytes: FxHashMap<Vec<u8>, u32>,
    pub items: Vec<&'a T>,
}

impl<'a, T: Serialize> Interner<'a, T> {
    pub fn new() -> Self {
        Interner {
            by_ptr: FxHashMap::default(),
            by_bytes: FxHashMap::default(),
            items: Vec::new(),
        }
    }

    pub fn intern(&mut self, v: &'a Arc<T>) -> u32 {
        let ptr = Arc::as_ptr(v);
        if let Some(i) = self.by_ptr.get(&ptr) {
            return *i;
        }
        let bytes = postcard::to_stdvec(v.as_ref()).expect("in-memory encoding cannot fail");
        let next = self.items.len() as u32;
        let i = *self.by_bytes.entry(bytes).or_insert(next);
        if i == next {
            self.items.push(v.as_ref());
        }
        self.by_ptr.insert(ptr, i);
        i
    }
}

/// Encodes spans into a self-describing batch.
pub fn encode_spans<'a>(spans: impl IntoIterator<Item = &'a Span>) -> Vec<u8> {
    let mut resources = Interner::new();
    let mut scopes = Interner::new();
    let mut rows = Vec::new();
    for span in spans {
        rows.push(RowRef {
            resource: resources.intern(&span.resource),
            scope: scopes.intern(&span.scope),
            span,
        });
    }
    let batch = BatchRef {
        resources: resources.items,
        scopes: scopes.items,
        spans: rows,
    };
    let mut out = vec![BATCH_VERSION];
    out.extend(postcard::to_stdvec(&batch).expect("in-memory encoding cannot fail"));
    out
}

/// Resolves table indexes of decoded rows into shared resources and scopes.
pub(crate) fn attach(
    rows: Vec<Row>,
    resources: &[Arc<Resource>],
    scopes: &[Arc<Scope>],
    out: &mut Vec<Span>,
) -> Result<(), StorageError> {
    for row in rows {
        let mut span = row.span;
        span.resource = resources
            .get(row.resource as usize)
            .cloned()
            .ok_or_else(|| {
                StorageError::new(StorageErrorKind::Corrupt, "resource index out of range")
            })?;
        span.scope = scopes.get(row.scope as usize).cloned().ok_or_else(|| {
            StorageError::new(StorageErrorKind::Corrupt, "scope index out of range")
        })?;
        out.push(span);
    }
    Ok(())
}

/// Decodes a batch written by [`encode_spans`].
pub fn decode_spans(bytes: &[u8]) -> Result<Vec<Span>, StorageError> {
    let Some((&version, rest)) = bytes.split_first() else {
        return Err(StorageError::new(
            StorageErrorKind::Corrupt,
            "empty span batch",
        ));
    };
    if version != BATCH_VERSION {
        return Err(StorageError::new(
            StorageErrorKind::Corrupt,
            format!(
                "span batch version {version} is not supported (this build reads {BATCH_VERSION})"
            ),
        ));
    }
    let batch: Batch = postcard::from_bytes(rest).map_err(|e| {
        StorageError::with_source(StorageErrorKind::Corrupt, "undecodable span batch", e)
    })?;
    let resources: Vec<Arc<Resource>> = batch.resources.into_iter().map(Arc::new).collect();
    let scopes: Vec<Arc<Scope>> = batch.scopes.into_iter().map(Arc::new).collect();
    let mut out = Vec::with_capacity(batch.spans.len());
    attach(batch.spans, &resources, &scopes, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<Span> {
        let mut spans = Vec::new();
        for i in 0..20u64 {
            let mut s = Span {
                trace_id: waymark_model::TraceId([i as u8 + 1; 16]),
                span_id: waymark_model::SpanId([i as u8 + 1; 8]),
                name: format!("op-{i}"),
                start_time_unix_nano: 1_000 + i,
                end_time_unix_nano: 2_000 + i,
                ..Default::default()
            };
            s.attributes.push(waymark_model::KeyValue::new(
                "k",
                waymark_model::AnyValue::Array(vec![waymark_model::AnyValue::Int(i as i64)]),
            ));
            spans.push(s);
        }
        spans
    }

    #[test]
    fn batch_roundtrip_shares_resources() {
        let spans = fixture();
        let bytes = encode_spans(&spans);
        let back = decode_spans(&bytes).unwrap();
        assert_eq!(back, spans);
        assert!(
            Arc::ptr_eq(&back[0].resource, &back[19].resource),
            "one table entry"
        );
    }

    /// Corrupt batches are errors, never panics or huge allocations.
    #[test]
    fn mutated_batches_never_panic() {
        let good = encode_spans(&fixture());
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut b = good.clone();
            let i = (state as usize) % b.len();
            b[i] ^= (state >> 32) as u8 | 1;
            b.truncate(b.len() - (state as usize >> 40) % 8);
            let _ = decode_spans(&b);
        }
        assert!(decode_spans(&[]).is_err());
        assert!(
            decode_spans(&[2, 0, 0])
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
    }
}
