//! The read side above storage: fetches traces and applies Jaeger's
//! query-side adjusters (deduplicate span ids, sort, optional clock-skew
//! correction). Each adjuster that changes a span leaves a warning on it, so
//! the UI can show what was altered. `raw` reads skip all adjusters.
//!
//! Rendering (Jaeger JSON, OTLP JSON) is the API crate's job, not this one's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use waymark_model::{Span, SpanId, SpanKind, Trace, TraceId};
use waymark_storage::{DependencyLink, Operation, Storage, StorageError, TraceQuery};

/// Options of the adjusters.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    /// Largest clock-skew correction applied to a span, in ns; 0 disables
    /// the adjuster (Jaeger's default).
    pub max_clock_skew_adjust_ns: u64,
}

/// A trace with the notes adjusters left on its spans.
#[derive(Clone, Debug, Default)]
pub struct AdjustedTrace {
    pub trace: Trace,
    pub warnings: HashMap<SpanId, Vec<String>>,
}

/// Read access for the APIs.
#[derive(Clone)]
pub struct QueryService {
    storage: Arc<dyn Storage>,
    opts: QueryOptions,
}

impl QueryService {
    pub fn new(storage: Arc<dyn Storage>, opts: QueryOptions) -> Self {
        QueryService { storage, opts }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub async fn get_trace(
        &self,
        id: TraceId,
        raw: bool,
    ) -> Result<Option<AdjustedTrace>, StorageError> {
        Ok(self
            .storage
            .get_trace(id)
            .await?
            .map(|t| self.adjust(t, raw)))
    }

    pub async fn find_traces(
        &self,
        q: &TraceQuery,
        raw: bool,
    ) -> Result<Vec<AdjustedTrace>, StorageError> {
        Ok(self
            .storage
            .find_traces(q)
            .await?
            .into_iter()
            .map(|t| self.adjust(t, raw))
            .collect())
    }

    pub async fn services(&self) -> Result<Vec<String>, StorageError> {
        self.storage.services().await
    }

    pub async fn operations(
        &self,
        service: &str,
        kind: Option<SpanKind>,
    ) -> Result<Vec<Operation>, StorageError> {
        self.storage.operations(service, kind).await
    }

    pub async fn dependencies(
        &self,
        end_ns: u64,
        lookback_ns: u64,
    ) -> Result<Vec<DependencyLink>, StorageError> {
        self.storage.dependencies(end_ns, lookback_ns).await
    }

    /// Applies the adjusters unless `raw`.
    pub fn adjust(&self, trace: Trace, raw: bool) -> AdjustedTrace {
        adjust(trace, raw, &self.opts)
    }
}

/// Applies the adjusters to a trace unless `raw`.
pub fn adjust(trace: Trace, raw: bool, opts: &QueryOptions) -> AdjustedTrace {
    {
        let mut t = AdjustedTrace {
            trace,
            warnings: HashMap::new(),
        };
        if raw {
            return t;
        }
        dedupe_span_ids(&mut t);
        if opts.max_clock_skew_adjust_ns > 0 {
            adjust_clock_skew(&mut t, opts.max_clock_skew_adjust_ns);
        }
        t.trace.spans.sort_by(|a, b| {
            (a.start_time_unix_nano, a.span_id).cmp(&(b.start_time_unix_nano, b.span_id))
        });
        t
    }
}

fn warn(t: &mut AdjustedTrace, id: SpanId, msg: String) {
    t.warnings.entry(id).or_default().push(msg);
}

/// Removes exact duplicates of a span (the same span delivered twice) and
/// gives a server span that shares its id with a client span (Zipkin's
/// shared spans) an id of its own, parented to the client span.
fn dedupe_span_ids(t: &mut AdjustedTrace) {
    let mut seen: HashMap<SpanId, usize> = HashMap::new();
    let mut keep: Vec<Span> = Vec::with_capacity(t.trace.spans.len());
    let mut removed: Vec<SpanId> = Vec::new();
    let mut renamed: Vec<(SpanId, SpanId)> = Vec::new();
    let used: HashSet<SpanId> = t.trace.spans.iter().map(|s| s.span_id).collect();
    for span in std::mem::take(&mut t.trace.spans) {
        match seen.get(&span.span_id) {
            None => {
                seen.insert(span.span_id, keep.len());
                keep.push(span);
            }
            Some(&i) if keep[i] == span => removed.push(span.span_id),
            Some(&i) => {
                let mut span = span;
                let old = span.span_id;
                let (server, other) = if span.kind == SpanKind::Server {
                    (&mut span, &keep[i])
                } else {
                    // Keep the server one as the renamed span.
                    let prev = std::mem::replace(&mut keep[i], span);
                    span = prev;
                    (&mut span, &keep[i])
                };
                let mut new = derive_id(old, 1);
                let mut n = 2;
                while used.contains(&new) || seen.contains_key(&new) {
                    new = derive_id(old, n);
                    n += 1;
                }
                server.parent_span_id = Some(other.span_id);
                server.span_id = new;
                renamed.push((old, new));
                seen.insert(new, keep.len());
                keep.push(span);
            }
        }
    }
    t.trace.spans = keep;
    for id in removed {
        warn(t, id, "a duplicate of this span was removed".into());
    }
    for (old, new) in renamed {
        warn(
            t,
            new,
            format!("span id {old} was shared with another span; this span was given id {new}"),
        );
    }
}

fn derive_id(id: SpanId, n: u64) -> SpanId {
    let v = u64::from_be_bytes(id.0) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    SpanId(v.max(1).to_be_bytes())
}

/// Shifts a child span that lies outside its parent, when the two come from
/// different processes (hosts whose clocks disagree), so that it sits inside
/// the parent; its descendants move with it. Corrections larger than `max`
/// are not applied and leave a warning instead.
fn adjust_clock_skew(t: &mut AdjustedTrace, max: u64) {
    let index: HashMap<SpanId, usize> = t
        .trace
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in t.trace.spans.iter().enumerate() {
        match s.parent_span_id.filter(|p| index.contains_key(p)) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    // (span index, shift inherited from its ancestors)
    let mut stack: Vec<(usize, i128)> = roots.into_iter().map(|r| (r, 0)).collect();
    let mut notes = Vec::new();
    while let Some((i, inherited)) = stack.pop() {
        shift(&mut t.trace.spans[i], inherited);
        let parent = t.trace.spans[i].clone();
        for &c in children.get(&parent.span_id).into_iter().flatten() {
            let child = &t.trace.spans[c];
            let mut delta = inherited;
            let same_process =
                Arc::ptr_eq(&child.resource, &parent.resource) || child.resource == parent.resource;
            if !same_process {
                let cs = child.start_time_unix_nano as i128 + inherited;
                let ce = child.end_time_unix_nano as i128 + inherited;
                let (ps, pe) = (
                    parent.start_time_unix_nano as i128,
                    parent.end_time_unix_nano as i128,
                );
                if cs < ps || ce > pe {
                    let (cd, pd) = (ce - cs, pe - ps);
                    let target = if cd <= pd { ps + (pd - cd) / 2 } else { ps };
                    let fix = target - cs;
                    if fix.unsigned_abs() <= max as u128 {
                        delta += fix;
                        notes.push((
                            child.span_id,
                            format!("this span's timestamps were adjusted by {}", fmt_ns(fix)),
                        ));
                    } else {
                        notes.push((
                            child.span_id,
                            format!(
                                "clock skew of {} exceeds the maximum adjustment; not adjusted",
                                fmt_ns(fix)
                            ),
                        ));
                    }
                }
            }
            stack.push((c, delta));
        }
    }
    for (id, n) in notes {
        warn(t, id, n);
    }
}

fn shift(s: &mut Span, delta: i128) {
    if delta == 0 {
        return;
    }
    let mv = |v: u64| (v as i128 + delta).max(0) as u64;
    s.start_time_unix_nano = mv(s.start_time_unix_nano);
    s.end_time_unix_nano = mv(s.end_time_unix_nano);
    for e in &mut s.events {
        e.time_unix_nano = mv(e.time_unix_nano);
    }
}

fn fmt_ns(ns: i128) -> String {
    let abs = ns.unsigned_abs();
    let sign = if ns < 0 { "-" } else { "" };
    if abs >= 1_000_000_000 {
        format!("{sign}{:.3}s", abs as f64 / 1e9)
    } else if abs >= 1_000_000 {
        format!("{sign}{:.3}ms", abs as f64 / 1e6)
    } else {
        format!("{sign}{:.3}µs", abs as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use waymark_testkit::span;

    fn run(spans: Vec<Span>, skew: u64) -> AdjustedTrace {
        let opts = QueryOptions {
            max_clock_skew_adjust_ns: skew,
        };
        adjust(
            Trace {
                trace_id: spans[0].trace_id,
                spans,
            },
            false,
            &opts,
        )
    }

    #[test]
    fn removes_exact_duplicates_with_a_warning() {
        let s = span(1, 1, None, "a", "x", 100, 10);
        let t = run(vec![s.clone(), s.clone()], 0);
        assert_eq!(t.trace.spans.len(), 1);
        assert_eq!(t.warnings[&s.span_id].len(), 1);
    }

    #[test]
    fn shared_server_span_gets_its_own_id() {
        let mut client = span(1, 5, Some(1), "a", "call", 100, 50);
        client.kind = SpanKind::Client;
        let mut server = span(1, 5, Some(1), "b", "serve", 110, 30);
        server.kind = SpanKind::Server;
        let t = run(vec![client.clone(), server], 0);
        assert_eq!(t.trace.spans.len(), 2);
        let srv = t
            .trace
            .spans
            .iter()
            .find(|s| s.kind == SpanKind::Server)
            .unwrap();
        assert_ne!(srv.span_id, client.span_id);
        assert_eq!(srv.parent_span_id, Some(client.span_id));
        assert!(t.warnings[&srv.span_id][0].contains("shared"));
    }

    #[test]
    fn sorts_by_start_time() {
        let t = run(
            vec![
                span(1, 2, Some(1), "a", "b", 200, 1),
                span(1, 1, None, "a", "a", 100, 500),
            ],
            0,
        );
        assert_eq!(t.trace.spans[0].start_time_unix_nano, 100);
        assert!(t.warnings.is_empty());
    }

    #[test]
    fn clock_skew_moves_child_inside_parent() {
        let parent = span(1, 1, None, "a", "p", 1_000, 1_000);
        // Child from another host starts before its parent.
        let child = span(1, 2, Some(1), "b", "c", 500, 200);
        let grandchild = span(1, 3, Some(2), "b", "g", 550, 100);
        let t = run(vec![parent.clone(), child, grandchild], 10_000);
        let c = t.trace.spans.iter().find(|s| s.name == "c").unwrap();
        assert_eq!(c.start_time_unix_nano, 1_400);
        let g = t.trace.spans.iter().find(|s| s.name == "g").unwrap();
        assert_eq!(g.start_time_unix_nano, 1_450, "descendants move too");
        assert!(t.warnings[&c.span_id][0].contains("adjusted"));
        // Disabled by default.
        let t = run(vec![parent, span(1, 2, Some(1), "b", "c", 500, 200)], 0);
        assert_eq!(t.trace.spans[0].start_time_unix_nano, 500);
    }
}
