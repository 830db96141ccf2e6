//! Immutable blocks: one object per block, written once, read with ranged
//! reads, so the same code serves a local directory and object storage.
//!
//! ```text
//! header  "WMBK" | version u8 | 3 zero bytes
//! pages   zstd(span batch) ...            spans of whole traces, by trace id
//! index   zstd(postcard(BlockIndex))      meta, page table, trace-id table
//! footer  index_offset u64 | index_len u32 | crc32c(index) u32 |
//!         version u8 | 3 zero bytes | "WMBK"
//! ```
//! Every page carries a CRC32C in the page table. See `docs/storage-format.md`.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use waymark_model::{Span, SpanKind, TraceId};

use crate::codec;
use crate::{StorageError, StorageErrorKind, TraceHit, TraceQuery};

pub const BLOCK_MAGIC: &[u8; 4] = b"WMBK";
pub const BLOCK_VERSION: u8 = 1;
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
            .map(|(i, _)| i as u32)
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
    let mut order: Vec<u32> = (0..spans.len() as u32).collect();
    order.sort_by(|a, b| {
        let (a, b) = (&spans[*a as usize], &spans[*b as usize]);
        (a.trace_id, a.start_time_unix_nano, a.span_id).cmp(&(
            b.trace_id,
            b.start_time_unix_nano,
            b.span_id,
        ))
    });

    let mut services: Vec<String> = spans
        .iter()
        .map(|s| s.service_name().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    services.dedup();
    let svc_idx: HashMap<&str, u32> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let ops: BTreeSet<(u32, String, SpanKind)> = spans
        .iter()
        .map(|s| (svc_idx[s.service_name()], s.name.clone(), s.kind))
        .collect();
    let mut deps = HashMap::new();
    crate::dependencies_from_spans(spans.iter(), &mut deps);
    let mut dependencies: Vec<(u32, u32, u64, u64)> = deps
        .into_iter()
        .map(|((p, c), (n, e))| (svc_idx[p.as_str()], svc_idx[c.as_str()], n, e))
        .collect();
    dependencies.sort_unstable();

    let avg =
        (spans.iter().take(64).map(estimate_size).sum::<usize>() / spans.len().clamp(1, 64)).max(1);
    let spans_per_page = (page_target_bytes / avg).max(1);

    let mut out = Vec::with_capacity(spans.len() * 64);
    out.extend_from_slice(BLOCK_MAGIC);
    out.extend_from_slice(&[BLOCK_VERSION, 0, 0, 0]);

    let mut pages = Vec::new();
    let mut trace_ids = Vec::new();
    let mut trace_pages = Vec::new();
    let mut page: Vec<&Span> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let tid = spans[order[i] as usize].trace_id;
        let mut j = i;
        while j < order.len() && spans[order[j] as usize].trace_id == tid {
            j += 1;
        }
        if !page.is_empty() && page.len() + (j - i) > spans_per_page {
            pages.push(write_page(&mut out, &page, &svc_idx, zstd_level)?);
            page.clear();
        }
        trace_ids.push(tid);
        trace_pages.push(pages.len() as u32);
        page.extend(order[i..j].iter().map(|k| &spans[*k as usize]));
        i = j;
    }
    if !page.is_empty() {
        pages.push(write_page(&mut out, &page, &svc_idx, zstd_level)?);
    }

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

fn write_page(
    out: &mut Vec<u8>,
    spans: &[&Span],
    svc_idx: &HashMap<&str, u32>,
    level: i32,
) -> Result<PageRef, StorageError> {
    let raw = codec::encode_spans(spans.iter().copied());
    let z = zstd::bulk::compress(&raw, level)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Io, "compressing page", e))?;
    let mut services: Vec<u32> = spans.iter().map(|s| svc_idx[s.service_name()]).collect();
    services.sort_unstable();
    services.dedup();
    let page = PageRef {
        offset: out.len() as u64,
        len: z.len() as u32,
        crc: crc32c::crc32c(&z),
        span_count: spans.len() as u32,
        min_start: spans
            .iter()
            .map(|s| s.start_time_unix_nano)
            .min()
            .unwrap_or(0),
        max_start: spans
            .iter()
            .map(|s| s.start_time_unix_nano)
            .max()
            .unwrap_or(0),
        max_duration: spans.iter().map(|s| s.duration_nanos()).max().unwrap_or(0),
        services,
    };
    out.extend_from_slice(&z);
    Ok(page)
}

fn corrupt(msg: impl Into<String>) -> StorageError {
    StorageError::new(StorageErrorKind::Corrupt, msg)
}

/// Parses the footer; returns the index range.
pub fn parse_footer(footer: &[u8], object_len: u64) -> Result<(u64, u32, u32), StorageError> {
    if footer.len() != FOOTER_LEN as usize || &footer[20..24] != BLOCK_MAGIC {
        return Err(corrupt("block footer magic missing"));
    }
    if footer[16] != BLOCK_VERSION {
        return Err(corrupt(format!(
            "block version {} is not supported (this build reads {BLOCK_VERSION})",
            footer[16]
        )));
    }
    let offset = u64::from_le_bytes(footer[0..8].try_into().unwrap());
    let len = u32::from_le_bytes(footer[8..12].try_into().unwrap());
    let crc = u32::from_le_bytes(footer[12..16].try_into().unwrap());
    if offset + len as u64 + FOOTER_LEN != object_len {
        return Err(corrupt("block footer points outside the object"));
    }
    Ok((offset, len, crc))
}

pub fn parse_index(bytes: &[u8], crc: u32) -> Result<BlockIndex, StorageError> {
    if crc32c::crc32c(bytes) != crc {
        return Err(corrupt("block index checksum mismatch"));
    }
    let raw = zstd::stream::decode_all(bytes)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "block index", e))?;
    postcard::from_bytes(&raw)
        .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "block index", e))
}

pub fn decode_page(bytes: &Bytes, page: &PageRef) -> Result<Vec<Span>, StorageError> {
    if crc32c::crc32c(bytes) != page.crc {
        return Err(corrupt("block page checksum mismatch"));
    }
    let raw = zstd::stream::decode_all(bytes.as_ref())
        .map_err(|e| StorageError::with_source(StorageErrorKind::Corrupt, "block page", e))?;
    codec::decode_spans(&raw)
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
