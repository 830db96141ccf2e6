//! Immutable blocks: one object per block, written once, read with ranged
//! reads, so the same code serves a local directory and object storage.
//!
//! ```text
//! header  "WMBK" | version u8 | 3 zero bytes
//! pages   zstd(page) ...                  whole traces, oldest first
//! index   zstd(postcard(BlockIndex))      meta, page table, trace-id table
//! footer  index_offset u64 | index_len u32 | crc32c(index) u32 |
//!         version u8 | 3 zero bytes | "WMBK"
//! ```
//! A page, once inflated, is `version u8 | header_len u32 | header | blobs`:
//! the header (postcard) holds the page's resource and scope tables and a
//! directory of `(trace id, offset, length)` into the blobs, each blob the
//! rows of one trace. Reading one trace decodes the header and one blob.
//! Traces are laid out by start time so that a search walking pages newest
//! first can stop early. Every page carries a CRC32C in the page table.
//! See `docs/storage-format.md`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use waymark_model::{Span, SpanId, SpanKind, TraceId};

use crate::codec;
use crate::{StorageError, StorageErrorKind, TraceHit, TraceQuery};

pub const BLOCK_MAGIC: &[u8; 4] = b"WMBK";
/// Version 2 added [`BlockIndex::orphans`]; version 1 blocks are still
/// read (with no orphans).
pub const BLOCK_VERSION: u8 = 2;
pub const FOOTER_LEN: u64 = 24;

/// What a block holds, small enough to keep in memory for every block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockMeta {
    pub id: String,
    pub created_unix_ms: u64,
    /// Smallest and largest span start time, ns.
    pub min_time: u64,
    pub max_time: u64,
    pub span_count: u64,
    pub trace_count: u64,
    pub services: Vec<String>,
    /// (service index, operation name, kind)
    pub operations: Vec<(u32, String, SpanKind)>,
    /// (parent service index, child service index, calls, errors)
    pub dependencies: Vec<(u32, u32, u64, u64)>,
    /// The WAL segments whose records this block contains (inclusive); on
    /// start-up, segments covered by a block are not replayed.
    pub wal_first_segment: u64,
    pub wal_last_segment: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageRef {
    pub offset: u64,
    pub len: u32,
    /// Length once inflated.
    pub raw_len: u32,
    pub crc: u32,
    pub span_count: u32,
    pub min_start: u64,
    pub max_start: u64,
    pub max_duration: u64,
    /// Indexes into `BlockMeta::services` of the services with spans here.
    pub services: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockIndex {
    pub meta: BlockMeta,
    pub pages: Vec<PageRef>,
    /// Sorted ascending; `trace_pages[i]` is the page holding all spans of
    /// `trace_ids[i]` in this block.
    pub trace_ids: Vec<TraceId>,
    pub trace_pages: Vec<u32>,
    /// Spans whose parent is not in this block (it came earlier or later):
    /// the calls `meta.dependencies` cannot count, resolved at query time
    /// by finding the parent's service. Version 2.
    pub orphans: Vec<Orphan>,
}

/// A span of this block whose parent span is elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    pub trace_id: TraceId,
    pub parent_span_id: SpanId,
    /// Index into `BlockMeta::services`.
    pub service: u32,
    pub start_ns: u64,
    pub error: bool,
}

/// The index as version 1 wrote it.
#[derive(Serialize, Deserialize)]
struct BlockIndexV1 {
    meta: BlockMeta,
    pages: Vec<PageRef>,
    trace_ids: Vec<TraceId>,
    trace_pages: Vec<u32>,
}

impl BlockIndex {
    pub fn page_of(&self, id: &TraceId) -> Option<u32> {
        self.trace_ids
            .binary_search(id)
            .ok()
            .map(|i| self.trace_pages[i])
    }

    pub fn service_index(&self, name: &str) -> Option<u32> {
        self.meta
            .services
            .iter()
            .position(|s| s == name)
            .map(|i| i as u32)
    }

    /// Pages that may hold spans matching `q`.
    pub fn candidate_pages(&self, q: &TraceQuery) -> Vec<u32> {
        self.candidates(q).map(|(i, _)| i).collect()
    }

    /// Like [`BlockIndex::candidate_pages`], with each page's newest start.
    pub fn candidates(&self, q: &TraceQuery) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.candidates_vec(q).into_iter()
    }

    fn candidates_vec(&self, q: &TraceQuery) -> Vec<(u32, u64)> {
        if self.meta.max_time < q.start_min || self.meta.min_time > q.start_max {
            return Vec::new();
        }
        let svc = match &q.service {
            Some(s) => match self.service_index(s) {
                Some(i) => Some(i),
                None => return Vec::new(),
            },
            None => None,
        };
        self.pages
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.max_start >= q.start_min
                    && p.min_start <= q.start_max
                    && q.duration_min.is_none_or(|d| p.max_duration >= d)
                    && svc.is_none_or(|s| p.services.contains(&s))
            })
            .map(|(i, p)| (i as u32, p.max_start))
            .collect()
    }

    pub fn dependencies(&self) -> impl Iterator<Item = (&str, &str, u64, u64)> {
        self.meta.dependencies.iter().map(|(p, c, n, e)| {
            (
                self.meta.services[*p as usize].as_str(),
                self.meta.services[*c as usize].as_str(),
                *n,
                *e,
            )
        })
    }
}

/// Writes a block from spans. `page_target_bytes` bounds the encoded
/// (uncompressed) size of a page, except that a trace is never split.
pub fn build_block(
    id: String,
    spans: &[Span],
    wal_segments: (u64, u64),
    page_target_bytes: usize,
    zstd_level: i32,
) -> Result<(Vec<u8>, BlockIndex), StorageError> {
    // Group spans by trace, then lay traces out by their first start time.
    let mut by_trace: rustc_hash::FxHashMap<TraceId, Vec<u32>> = Default::default();
    for (i, s) in spans.iter().enumerate() {
        by_trace.entry(s.trace_id).or_default().push(i as u32);
    }
    let mut traces: Vec<(u64, TraceId, Vec<u32>)> = by_trace
        .into_iter()
        .map(|(id, mut idx)| {
            idx.sort_by_key(|i| {
                let s = &spans[*i as usize];
                (s.start_time_unix_nano, s.span_id)
            });
            (spans[idx[0] as usize].start_time_unix_nano, id, idx)
        })
        .collect();
    traces.sort_unstable_by_key(|a| (a.0, a.1));

    let mut services: Vec<String> = spans
        .iter()
        .map(|s| s.service_name().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    services.dedup();
    let svc_idx: rustc_hash::FxHashMap<&str, u32> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let ops: BTreeSet<(u32, String, SpanKind)> = spans
        .iter()
        .map(|s| (svc_idx[s.service_name()], s.name.as_str(), s.kind))
        .collect::<rustc_hash::FxHashSet<_>>()
        .into_iter()
        .map(|(i, n, k)| (i, n.to_string(), k))
        .collect();
    let mut deps = HashMap::new();
    crate::dependencies_from_spans(spans.iter(), &mut deps);
    let mut dependencies: Vec<(u32, u32, u64, u64)> = deps
        .into_iter()
        .map(|((p, c), (n, e))| (svc_idx[p.as_str()], svc_idx[c.as_str()], n, e))
        .collect();
    dependencies.sort_unstable();
    let here: rustc_hash::FxHashSet<(TraceId, SpanId)> =
        spans.iter().map(|s| (s.trace_id, s.span_id)).collect();
    let mut orphans: Vec<Orphan> = spans
        .iter()
        .filter_map(|s| {
            let parent = s.parent_span_id?;
            (!here.contains(&(s.trace_id, parent))).then(|| Orphan {
                trace_id: s.trace_id,
                parent_span_id: parent,
                service: svc_idx[s.service_name()],
                start_ns: s.start_time_unix_nano,
                error: s.status.code == waymark_model::StatusCode::Error,
            })
        })
        .collect();
    orphans.sort_unstable_by_key(|o| (o.start_ns, o.trace_id, o.parent_span_id));

    let avg =
        (spans.iter().take(64).map(estimate_size).sum::<usize>() / spans.len().clamp(1, 64)).max(1);
    let spans_per_page = (page_target_bytes / avg).max(1);

    let mut out = Vec::with_capacity(spans.len() * 64);
    out.extend_from_slice(BLOCK_MAGIC);
    out.extend_from_slice(&[BLOCK_VERSION, 0, 0, 0]);

    let mut pages = Vec::new();
    let mut trace_table: Vec<(TraceId, u32)> = Vec::with_capacity(traces.len());
    let mut page: Vec<Vec<&Span>> = Vec::new();
    let mut page_spans = 0usize;
    for (_, tid, idx) in &traces {
        if !page.is_empty() && page_spans + idx.len() > spans_per_page {
            pages.push(write_page(&mut out, &page, &svc_idx, zstd_level)?);
            page.clear();
            page_spans = 0;
        }
        trace_table.push((*tid, pages.len() as u32));
        page_spans += idx.len();
        page.push(idx.iter().map(|k| &spans[*k as usize]).collect());
    }
    if !page.is_empty() {
        pages.push(write_page(&mut out, &page, &svc_idx, zstd_level)?);
    }
    trace_table.sort_unstable();
    let (trace_ids, trace_pages): (Vec<TraceId>, Vec<u32>) = trace_table.into_iter().unzip();

    let index = BlockIndex {
        meta: BlockMeta {
            id,
            created_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            min_time: spans
                .iter()
                .map(|s| s.start_time_unix_nano)
                .min()
                .unwrap_or(0),
            max_time: spans
                .iter()
                .map(|s| s.start_time_unix_nano)
                .max()
                .unwrap_or(0),
            span_count: spans.len() as u64,
            trace_count: trace_ids.len() as u64,
            services,
            operations: ops.into_iter().collect(),
            dependencies,
            wal_first_segment: wal_segments.0,
            wal_last_segment: wal_segments.1,
        },
        pages,
        trace_ids,
        trace_pages,
        orphans,
    };
    let index_raw = postcard::to_stdvec(&index).expect("in-memory encoding cannot fail");
    let index_z = zstd::bulk::compress(&index_raw, zstd_level).map_err(|e| {
        StorageError::with_source(StorageErrorKind::Io, "compressing block index", e)
    })?;
    let index_offset = out.len() as u64;
    out.extend_from_slice(&index_z);
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&(index_z.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&index_z).to_le_bytes());
    out.extend_from_slice(&[BLOCK_VERSION, 0, 0, 0]);
    out.extend_from_slice(BLOCK_MAGIC);
    Ok((out, index))
}

fn estimate_size(s: &Span) -> usize {
    postcard::to_stdvec(s).map(|v| v.len()).unwrap_or(256)
}

/// Version byte at the start of an inflated page.
pub const PAGE_VERSION: u8 = 1;

#[derive(Serialize)]
struct PageHeaderRef<'a> {
    resources: Vec<&'a waymark_model::Resource>,
    scopes: Vec<&'a waymark_model::Scope>,
    traces: Vec<(TraceId, u32, u32)>,
}

#[derive(Deserialize)]
struct PageHeader {
    resources: Vec<waymark_model::Resource>,
    scopes: Vec<waymark_model::Scope>,
    traces: Vec<(TraceId, u32, u32)>,
}

/// Encodes whole traces into an (uncompressed) page.
pub fn encode_page(traces: &[Vec<&Span>]) -> Vec<u8> {
    let mut resources = codec::Interner::new();
    let mut scopes = codec::Interner::new();
    let mut blobs = Vec::new();
    let mut dir = Vec::with_capacity(traces.len());
    for t in traces {
        let rows: Vec<codec::RowRef> = t
            .iter()
            .map(|s| codec::RowRef {
                resource: resources.intern(&s.resource),
                scope: scopes.intern(&s.scope),
                span: s,
            })
            .collect();
        let blob = postcard::to_stdvec(&rows).expect("in-memory encoding cannot fail");
        dir.push((t[0].trace_id, blobs.len() as u32, blob.len() as u32));
        blobs.extend_from_slice(&blob);
    }
    let header = postcard::to_stdvec(&PageHeaderRef {
        resources: resources.items,
        scopes: scopes.items,
        traces: dir,
    })
    .expect("in-memory encoding cannot fail");
    let mut out = Vec::with_capacity(5 + header.len() + blobs.len());
    out.push(PAGE_VERSION);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&blobs);
    out
}

fn write_page(
    out: &mut Vec<u8>,
    traces: &[Vec<&Span>],
    svc_idx: &rustc_hash::FxHashMap<&str, u32>,
    level: i32,
) -> Result<PageRef, StorageError> {
    let raw = encode_page(traces);
    let z = zstd::bulk::compress(&raw, level)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Io, "compressing page", e))?;
    let all = || traces.iter().flatten();
    let mut services: Vec<u32> = all().map(|s| svc_idx[s.service_name()]).collect();
    services.sort_unstable();
    services.dedup();
    let page = PageRef {
        offset: out.len() as u64,
        len: z.len() as u32,
        raw_len: raw.len() as u32,
        crc: crc32c::crc32c(&z),
        span_count: all().count() as u32,
        min_start: all().map(|s| s.start_time_unix_nano).min().unwrap_or(0),
        max_start: all().map(|s| s.start_time_unix_nano).max().unwrap_or(0),
        max_duration: all().map(|s| s.duration_nanos()).max().unwrap_or(0),
        services,
    };
    out.extend_from_slice(&z);
    Ok(page)
}

fn corrupt(msg: impl Into<String>) -> StorageError {
    StorageError::new(StorageErrorKind::Corrupt, msg)
}

/// Parses the footer; returns the index range, its checksum and the block
/// version.
pub fn parse_footer(footer: &[u8], object_len: u64) -> Result<(u64, u32, u32, u8), StorageError> {
    if footer.len() != FOOTER_LEN as usize || &footer[20..24] != BLOCK_MAGIC {
        return Err(corrupt("block footer magic missing"));
    }
    let version = footer[16];
    if !(1..=BLOCK_VERSION).contains(&version) {
        return Err(corrupt(format!(
            "block version {version} is not supported (this build reads 1 to {BLOCK_VERSION})"
        )));
    }
    let offset = u64::from_le_bytes(footer[0..8].try_into().unwrap());
    let len = u32::from_le_bytes(footer[8..12].try_into().unwrap());
    let crc = u32::from_le_bytes(footer[12..16].try_into().unwrap());
    if offset + len as u64 + FOOTER_LEN != object_len {
        return Err(corrupt("block footer points outside the object"));
    }
    Ok((offset, len, crc, version))
}

pub fn parse_index(bytes: &[u8], crc: u32, version: u8) -> Result<BlockIndex, StorageError> {
    if crc32c::crc32c(bytes) != crc {
        return Err(corrupt("block index checksum mismatch"));
    }
    let raw = zstd::stream::decode_all(bytes)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "block index", e))?;
    decode_index(&raw, version)
}

fn decode_index(raw: &[u8], version: u8) -> Result<BlockIndex, StorageError> {
    let err = |e| StorageError::with_source(StorageErrorKind::Corrupt, "block index", e);
    if version == 1 {
        let v1: BlockIndexV1 = postcard::from_bytes(raw).map_err(err)?;
        return Ok(BlockIndex {
            meta: v1.meta,
            pages: v1.pages,
            trace_ids: v1.trace_ids,
            trace_pages: v1.trace_pages,
            orphans: Vec::new(),
        });
    }
    postcard::from_bytes(raw).map_err(err)
}

/// Verifies and inflates a page as read from the block.
pub fn inflate_page(bytes: &Bytes, page: &PageRef) -> Result<Vec<u8>, StorageError> {
    if crc32c::crc32c(bytes) != page.crc {
        return Err(corrupt("block page checksum mismatch"));
    }
    let raw = zstd::bulk::decompress(bytes, page.raw_len as usize)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "block page", e))?;
    if raw.len() != page.raw_len as usize {
        return Err(corrupt("block page inflated to an unexpected length"));
    }
    Ok(raw)
}

fn page_header(raw: &[u8]) -> Result<(PageHeader, &[u8]), StorageError> {
    if raw.first() != Some(&PAGE_VERSION) || raw.len() < 5 {
        return Err(corrupt(format!(
            "page version {:?} is not supported (this build reads {PAGE_VERSION})",
            raw.first()
        )));
    }
    let hlen = u32::from_le_bytes(raw[1..5].try_into().unwrap()) as usize;
    let header_bytes = raw
        .get(5..5 + hlen)
        .ok_or_else(|| corrupt("page header cut short"))?;
    let header: PageHeader = postcard::from_bytes(header_bytes)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "page header", e))?;
    Ok((header, &raw[5 + hlen..]))
}

fn tables(
    h: PageHeader,
) -> (
    Vec<Arc<waymark_model::Resource>>,
    Vec<Arc<waymark_model::Scope>>,
    Vec<(TraceId, u32, u32)>,
) {
    (
        h.resources.into_iter().map(Arc::new).collect(),
        h.scopes.into_iter().map(Arc::new).collect(),
        h.traces,
    )
}

fn decode_blob(
    blobs: &[u8],
    off: u32,
    len: u32,
    resources: &[Arc<waymark_model::Resource>],
    scopes: &[Arc<waymark_model::Scope>],
    out: &mut Vec<Span>,
) -> Result<(), StorageError> {
    let blob = blobs
        .get(off as usize..off as usize + len as usize)
        .ok_or_else(|| corrupt("page blob out of range"))?;
    let rows: Vec<codec::Row> = postcard::from_bytes(blob)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "page rows", e))?;
    codec::attach(rows, resources, scopes, out)
}

/// Every span of an inflated page.
pub fn decode_page(raw: &[u8]) -> Result<Vec<Span>, StorageError> {
    let (h, blobs) = page_header(raw)?;
    let (resources, scopes, dir) = tables(h);
    let mut out = Vec::new();
    for (_, off, len) in dir {
        decode_blob(blobs, off, len, &resources, &scopes, &mut out)?;
    }
    Ok(out)
}

/// The spans of one trace in an inflated page (empty when absent).
pub fn decode_page_trace(raw: &[u8], id: &TraceId) -> Result<Vec<Span>, StorageError> {
    let (h, blobs) = page_header(raw)?;
    let (resources, scopes, dir) = tables(h);
    let mut out = Vec::new();
    for (_, off, len) in dir.iter().filter(|(t, _, _)| t == id) {
        decode_blob(blobs, *off, *len, &resources, &scopes, &mut out)?;
    }
    Ok(out)
}

/// What [`salvage`] recovered from a damaged block.
#[derive(Debug, Default)]
pub struct Salvage {
    /// Every span of every page that passed its checks.
    pub spans: Vec<Span>,
    pub good_pages: usize,
    /// Pages that failed their checksum or could not be decoded.
    pub bad_pages: usize,
}

/// The zstd frame magic, little-endian, that starts every page.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Recovers the intact pages of a damaged block. With its index (the
/// footer and index verified) each page is checked against its page-table
/// checksum; without one (a bad footer or index, a truncated file) the
/// pages are found as consecutive zstd frames after the header, and a page
/// is kept only if it inflates and decodes whole.
pub fn salvage(bytes: &[u8], index: Option<&BlockIndex>) -> Salvage {
    let mut out = Salvage::default();
    if let Some(index) = index {
        for page in &index.pages {
            let range = page.offset as usize..page.offset as usize + page.len as usize;
            let decoded = bytes
                .get(range)
                .ok_or_else(|| corrupt("page beyond the end of the block"))
                .and_then(|b| inflate_page(&Bytes::copy_from_slice(b), page))
                .and_then(|raw| decode_page(&raw));
            match decoded {
                Ok(spans) => {
                    out.good_pages += 1;
                    out.spans.extend(spans);
                }
                Err(_) => out.bad_pages += 1,
            }
        }
        return out;
    }
    let mut pos = 8usize.min(bytes.len());
    while pos + 4 <= bytes.len() {
        if bytes[pos..pos + 4] != ZSTD_MAGIC {
            // Lost track (a damaged frame): find the next frame start.
            match bytes[pos + 1..].windows(4).position(|w| w == ZSTD_MAGIC) {
                Some(skip) => {
                    pos += 1 + skip;
                    continue;
                }
                None => break,
            }
        }
        let frame_len = match zstd::zstd_safe::find_frame_compressed_size(&bytes[pos..]) {
            Ok(n) if n > 0 => n,
            _ => {
                out.bad_pages += 1;
                pos += 1;
                continue;
            }
        };
        let frame = &bytes[pos..pos + frame_len];
        // The index is a zstd frame too, and not a page; a damaged page
        // fails here as well. Both are skipped.
        if let Ok(spans) = zstd::stream::decode_all(frame)
            .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "page", e))
            .and_then(|raw| decode_page(&raw))
        {
            out.good_pages += 1;
            out.spans.extend(spans);
        }
        pos += frame_len;
    }
    out
}

/// Scans decoded page spans for matches.
pub fn search_spans(spans: &[Span], q: &TraceQuery, out: &mut Vec<TraceHit>) {
    for s in spans {
        if q.matches_span(s) {
            out.push(TraceHit {
                trace_id: s.trace_id,
                latest_match_ns: s.start_time_unix_nano,
            });
        }
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    fn spans() -> Vec<Span> {
        let mut parent = span_of(1, None, "front");
        parent.start_time_unix_nano = 1_000;
        let mut child = span_of(2, Some(9), "back");
        child.start_time_unix_nano = 2_000;
        child.status.code = waymark_model::StatusCode::Error;
        vec![parent, child]
    }

    fn span_of(id: u64, parent: Option<u64>, service: &str) -> Span {
        Span {
            trace_id: TraceId([7; 16]),
            span_id: SpanId(id.to_be_bytes()),
            parent_span_id: parent.map(|p| SpanId(p.to_be_bytes())),
            name: "op".into(),
            resource: Arc::new(waymark_model::Resource {
                attributes: vec![waymark_model::KeyValue::new(
                    "service.name",
                    waymark_model::AnyValue::String(service.into()),
                )],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn orphans_are_the_spans_whose_parent_is_elsewhere() {
        let (_, index) = build_block("b".into(), &spans(), (0, 0), 1 << 16, 1).unwrap();
        assert_eq!(
            index.orphans,
            vec![Orphan {
                trace_id: TraceId([7; 16]),
                parent_span_id: SpanId(9u64.to_be_bytes()),
                service: index.service_index("back").unwrap(),
                start_ns: 2_000,
                error: true,
            }]
        );
    }

    #[test]
    fn version_1_indexes_are_still_read() {
        let (_, index) = build_block("b".into(), &spans(), (0, 0), 1 << 16, 1).unwrap();
        let v1 = BlockIndexV1 {
            meta: index.meta.clone(),
            pages: index.pages.clone(),
            trace_ids: index.trace_ids.clone(),
            trace_pages: index.trace_pages.clone(),
        };
        let raw = postcard::to_stdvec(&v1).unwrap();
        let back = decode_index(&raw, 1).unwrap();
        assert_eq!(back.trace_ids, index.trace_ids);
        assert_eq!(back.meta.span_count, 2);
        assert!(back.orphans.is_empty());
        // A version-2 reader does not mistake one for the other.
        assert!(decode_index(&raw, 2).is_err());
        let raw2 = postcard::to_stdvec(&index).unwrap();
        assert_eq!(decode_index(&raw2, 2).unwrap().orphans, index.orphans);
    }

    #[test]
    fn unknown_versions_are_refused_by_name() {
        let mut footer = vec![0u8; FOOTER_LEN as usize];
        footer[20..24].copy_from_slice(BLOCK_MAGIC);
        footer[16] = 3;
        let e = parse_footer(&footer, FOOTER_LEN).unwrap_err().to_string();
        assert!(e.contains("block version 3") && e.contains("1 to 2"), "{e}");
    }
}
