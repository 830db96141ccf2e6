//! Shared properties for the fuzz targets in `fuzz_targets/`.
//!
//! Every target feeds arbitrary bytes to one decoder. Beyond "never panics,
//! never hangs, never allocates without bound" (libFuzzer's own checks), each
//! accepted batch must satisfy what the rest of the pipeline relies on:
//! the request limits hold for every span, and the spans survive the storage
//! codec bit for bit, so a decoder can never hand the store something it would
//! write but not read back.

use waymark_model::{AnyValue, KeyValue, Span};
use waymark_receivers::{Decoded, Limits};

/// Small limits, so that inputs of a few kilobytes reach every limit check.
pub fn limits() -> Limits {
    Limits {
        max_request_bytes: 1 << 20,
        max_spans_per_request: 64,
        max_attributes_per_span: 16,
        max_string_bytes: 256,
    }
}

/// Checks a decoder's result; errors are fine, but they must say something.
pub fn check<E: std::fmt::Display>(result: Result<Decoded, E>) {
    let limits = limits();
    let decoded = match result {
        Ok(d) => d,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an error without a message");
            return;
        }
    };
    assert!(
        decoded.spans.len() + decoded.rejected <= limits.max_spans_per_request,
        "{} spans accepted and {} rejected, over the limit of {}",
        decoded.spans.len(),
        decoded.rejected,
        limits.max_spans_per_request
    );
    assert!(decoded.errors.len() <= decoded.rejected.max(1) * 8);
    for span in &decoded.spans {
        check_span(span, &limits);
    }
    let once = waymark_storage::codec::encode_spans(&decoded.spans);
    let back = waymark_storage::codec::decode_spans(&once).expect("the codec reads what it wrote");
    assert_eq!(back.len(), decoded.spans.len());
    let twice = waymark_storage::codec::encode_spans(&back);
    assert!(once == twice, "spans changed through the storage codec");
}

fn check_span(span: &Span, limits: &Limits) {
    let max = limits.max_string_bytes;
    assert!(span.name.len() <= max, "span name over the limit");
    let lists = std::iter::once(&span.attributes)
        .chain(span.events.iter().map(|e| &e.attributes))
        .chain(span.links.iter().map(|l| &l.attributes));
    for list in lists {
        assert!(
            list.len() <= limits.max_attributes_per_span,
            "too many attributes"
        );
        check_kvs(list, max);
    }
    for e in &span.events {
        assert!(e.name.len() <= max, "event name over the limit");
    }
}

fn check_kvs(kvs: &[KeyValue], max: usize) {
    for kv in kvs {
        assert!(kv.key.len() <= max, "attribute key over the limit");
        check_value(&kv.value, max);
    }
}

fn check_value(v: &AnyValue, max: usize) {
    match v {
        AnyValue::String(s) => assert!(s.len() <= max, "string value over the limit"),
        AnyValue::Bytes(b) => assert!(b.len() <= max, "bytes value over the limit"),
        AnyValue::Array(items) => items.iter().for_each(|i| check_value(i, max)),
        AnyValue::KvList(kvs) => check_kvs(kvs, max),
        _ => {}
    }
}
