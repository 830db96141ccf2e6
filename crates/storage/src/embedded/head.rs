//! The head: spans written since the last block was cut, held in memory with
//! the indexes reads need. A head is appended to by the WAL writer only; once
//! cut it is frozen (immutable) until its block is registered.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;
use std::time::Instant;

use waymark_model::{Span, SpanKind, TraceId};

use crate::{Operation, TraceHit, TraceQuery};

pub struct Head {
    pub spans: Vec<Span>,
    by_trace: FxHashMap<TraceId, Vec<u32>>,
    by_service: FxHashMap<String, Vec<u32>>,
    /// service → operation name → bit set of span kinds seen.
    pub operations: FxHashMap<String, FxHashMap<String, u8>>,
    pub min_time: u64,
    pub max_time: u64,
    /// Approximate encoded size, to cut blocks of a bounded size.
    pub approx_bytes: usize,
    pub created: Instant,
    /// WAL segments whose records are all in this head (inclusive range).
    pub first_segment: u64,
    pub last_segment: u64,
}

impl Head {
    pub fn new(segment: u64) -> Self {
        Head {
            spans: Vec::new(),
            by_trace: FxHashMap::default(),
            by_service: FxHashMap::default(),
            operations: FxHashMap::default(),
            min_time: u64::MAX,
            max_time: 0,
            approx_bytes: 0,
            created: Instant::now(),
            first_segment: segment,
            last_segment: segment,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn insert(&mut self, spans: Vec<Span>, encoded_len: usize) {
        self.approx_bytes += encoded_len;
        for span in spans {
            let idx = self.spans.len() as u32;
            self.by_trace.entry(span.trace_id).or_default().push(idx);
            let service = span.service_name();
            match self.by_service.get_mut(service) {
                Some(v) => v.push(idx),
                None => {
                    self.by_service.insert(service.to_string(), vec![idx]);
                }
            }
            let ops = match self.operations.get_mut(service) {
                Some(ops) => ops,
                None => self.operations.entry(service.to_string()).or_default(),
            };
            let bit = 1u8 << (span.kind as u8);
            match ops.get_mut(span.name.as_str()) {
                Some(kinds) => *kinds |= bit,
                None => {
                    ops.insert(span.name.clone(), bit);
                }
            }
            self.min_time = self.min_time.min(span.start_time_unix_nano);
            self.max_time = self.max_time.max(span.start_time_unix_nano);
            self.spans.push(span);
        }
    }

    pub fn trace_spans(&self, id: &TraceId) -> impl Iterator<Item = &Span> {
        self.by_trace
            .get(id)
            .into_iter()
            .flatten()
            .map(|i| &self.spans[*i as usize])
    }

    pub fn search(&self, q: &TraceQuery, out: &mut Vec<TraceHit>) {
        if self.is_empty() || self.max_time < q.start_min || self.min_time > q.start_max {
            return;
        }
        let mut push = |s: &Span| {
            if q.matches_span(s) {
                out.push(TraceHit {
                    trace_id: s.trace_id,
                    latest_match_ns: s.start_time_unix_nano,
                });
            }
        };
        match &q.service {
            Some(svc) => {
                for i in self.by_service.get(svc).into_iter().flatten() {
                    push(&self.spans[*i as usize]);
                }
            }
            None => self.spans.iter().for_each(push),
        }
    }

    pub fn services(&self) -> impl Iterator<Item = &String> {
        self.operations.keys()
    }

    pub fn operations(&self, service: &str, out: &mut BTreeSet<Operation>) {
        for (name, kinds) in self.operations.get(service).into_iter().flatten() {
            for kind in ALL_KINDS {
                if kinds & (1 << (kind as u8)) != 0 {
                    out.insert(Operation {
                        name: name.clone(),
                        kind,
                    });
                }
            }
        }
    }
}

const ALL_KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

impl Head {}
