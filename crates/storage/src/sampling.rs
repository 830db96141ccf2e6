//! State of adaptive sampling, kept in the store so that every collector
//! writing to it agrees on the same probabilities.
//!
//! Each collector records, per calculation interval, how many root spans it
//! saw per service and operation ([`ThroughputBucket`]). One collector at a
//! time (the holder of a lease) reads the recent buckets of all collectors,
//! computes new probabilities and stores them ([`SamplingProbabilities`]);
//! the others read the latest ones. A backend offers this through
//! [`SamplingStore`]; the embedded engine keeps it in files under
//! `<data-dir>/sampling/` ([`FileSamplingStore`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{Result, StorageError, StorageErrorKind};
use waymark_model::now_unix_nanos as now_ns;

/// Root spans one collector saw in one interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputBucket {
    /// Which collector counted (unique per process).
    pub collector: String,
    /// Start of the interval, Unix nanoseconds.
    pub start_ns: u64,
    /// Length of the interval.
    pub interval_ns: u64,
    pub operations: Vec<OperationThroughput>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationThroughput {
    pub service: String,
    pub operation: String,
    /// Root spans of this operation that reached the collector (sampled ones).
    pub count: u64,
    /// Sampling probabilities the clients reported using (`sampler.param`
    /// of probabilistic samplers), distinct values, at most a few.
    #[serde(default)]
    pub probabilities: Vec<f64>,
}

/// Probabilities computed by the leader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingProbabilities {
    /// When they were computed, Unix nanoseconds.
    pub computed_at_ns: u64,
    /// Which collector computed them.
    pub collector: String,
    pub operations: Vec<OperationProbability>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationProbability {
    pub service: String,
    pub operation: String,
    pub probability: f64,
    /// Sampled root spans per second observed for this operation.
    pub sampled_per_second: f64,
}

/// Where adaptive sampling keeps its state.
#[async_trait]
pub trait SamplingStore: Send + Sync + 'static {
    /// Records one collector's counts for one interval.
    async fn put_throughput(&self, bucket: ThroughputBucket) -> Result<()>;

    /// Buckets of all collectors whose interval started at or after
    /// `since_ns`, oldest first.
    async fn throughput_since(&self, since_ns: u64) -> Result<Vec<ThroughputBucket>>;

    /// Stores newly computed probabilities (replacing the previous ones).
    async fn put_probabilities(&self, p: SamplingProbabilities) -> Result<()>;

    /// The latest stored probabilities, if any were ever computed.
    async fn latest_probabilities(&self) -> Result<Option<SamplingProbabilities>>;

    /// Takes or renews the lease `name` for `holder` until `now_ns + ttl`.
    /// Returns true when `holder` holds it afterwards: it was free, expired,
    /// or already `holder`'s.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: u64,
        ttl: Duration,
    ) -> Result<bool>;
}

/// A lease as backends store it: who holds it, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    pub until_ns: u64,
}

impl Lease {
    /// The lease `holder` takes at `now_ns` for `ttl`.
    pub fn new(holder: &str, now_ns: u64, ttl: Duration) -> Lease {
        Lease {
            holder: holder.to_string(),
            until_ns: now_ns.saturating_add(ttl.as_nanos() as u64),
        }
    }

    /// Whether this lease keeps `holder` from taking it at `now_ns`: it is
    /// someone else's and has not expired.
    pub fn blocks(&self, holder: &str, now_ns: u64) -> bool {
        self.holder != holder && self.until_ns > now_ns
    }
}

/// Lease names end up in file names and document ids: letters, digits, `-`.
pub fn check_lease_name(name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(StorageError::new(
            StorageErrorKind::Invalid,
            format!("lease name {name:?}: use letters, digits and '-'"),
        ));
    }
    Ok(())
}

/// [`SamplingStore`] in a directory: `throughput.jsonl` (one JSON bucket
/// per line, appended and fsynced; rewritten without the buckets older than
/// `keep` when it grows), `probabilities.json` and `lease-<name>.json`
/// (replaced atomically by write + fsync + rename).
pub struct FileSamplingStore {
    dir: PathBuf,
    keep: Duration,
    read_only: bool,
    /// Serializes writers inside this process; the embedded engine has one
    /// writing process per data directory.
    lock: Mutex<()>,
}

fn io_err(what: String, e: std::io::Error) -> StorageError {
    StorageError::with_source(StorageErrorKind::Io, what, e)
}

impl FileSamplingStore {
    /// Opens `dir` (created unless `read_only`); buckets older than `keep`
    /// are dropped when the file is compacted.
    pub fn open(dir: impl Into<PathBuf>, keep: Duration, read_only: bool) -> Result<Self> {
        let dir = dir.into();
        if !read_only {
            std::fs::create_dir_all(&dir)
                .map_err(|e| io_err(format!("creating {}", dir.display()), e))?;
        }
        Ok(FileSamplingStore {
            dir,
            keep,
            read_only,
            lock: Mutex::new(()),
        })
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(StorageError::new(
                StorageErrorKind::Invalid,
                "the store is open read-only (query mode): sampling state is written by the collector",
            ));
        }
        Ok(())
    }

    fn throughput_path(&self) -> PathBuf {
        self.dir.join("throughput.jsonl")
    }

    /// Reads every bucket; a torn or corrupt line (a crash mid-append) is
    /// skipped, never fatal: throughput is a statistic.
    fn read_buckets(&self) -> Result<Vec<ThroughputBucket>> {
        let text = match std::fs::read_to_string(self.throughput_path()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("reading sampling throughput".into(), e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let what = || format!("writing {}", path.display());
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(what(), e))?;
        f.write_all(bytes).map_err(|e| io_err(what(), e))?;
        f.sync_all().map_err(|e| io_err(what(), e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err(what(), e))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> Result<Option<T>> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                StorageError::with_source(
                    StorageErrorKind::Corrupt,
                    format!("decoding {}", path.display()),
                    e,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("reading {}", path.display()), e)),
        }
    }
}

/// Compact the throughput file once it holds this many lines.
const COMPACT_AFTER_LINES: usize = 4096;

#[async_trait]
impl SamplingStore for FileSamplingStore {
    async fn put_throughput(&self, bucket: ThroughputBucket) -> Result<()> {
        self.writable()?;
        let _g = self.lock.lock();
        let path = self.throughput_path();
        let mut line = serde_json::to_vec(&bucket).expect("buckets serialize");
        line.push(b'\n');
        let what = || format!("appending to {}", path.display());
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(what(), e))?;
        f.write_all(&line).map_err(|e| io_err(what(), e))?;
        f.sync_data().map_err(|e| io_err(what(), e))?;
        let lines = std::fs::read(&path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if lines >= COMPACT_AFTER_LINES {
            let cutoff = now_ns().saturating_sub(self.keep.as_nanos() as u64);
            let mut out = Vec::new();
            for b in self.read_buckets()? {
                if b.start_ns >= cutoff {
                    out.extend(serde_json::to_vec(&b).expect("buckets serialize"));
                    out.push(b'\n');
                }
            }
            self.replace(&path, &out)?;
        }
        Ok(())
    }

    async fn throughput_since(&self, since_ns: u64) -> Result<Vec<ThroughputBucket>> {
        let mut v: Vec<_> = self
            .read_buckets()?
            .into_iter()
            .filter(|b| b.start_ns >= since_ns)
            .collect();
        v.sort_by_key(|b| b.start_ns);
        Ok(v)
    }

    async fn put_probabilities(&self, p: SamplingProbabilities) -> Result<()> {
        self.writable()?;
        let _g = self.lock.lock();
        let bytes = serde_json::to_vec_pretty(&p).expect("probabilities serialize");
        self.replace(&self.dir.join("probabilities.json"), &bytes)
    }

    async fn latest_probabilities(&self) -> Result<Option<SamplingProbabilities>> {
        self.read_json(&self.dir.join("probabilities.json"))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: u64,
        ttl: Duration,
    ) -> Result<bool> {
        self.writable()?;
        check_lease_name(name)?;
        let _g = self.lock.lock();
        let path = self.dir.join(format!("lease-{name}.json"));
        if let Some(l) = self.read_json::<Lease>(&path)?
            && l.blocks(holder, now_ns)
        {
            return Ok(false);
        }
        let lease = Lease::new(holder, now_ns, ttl);
        self.replace(
            &path,
            &serde_json::to_vec(&lease).expect("leases serialize"),
        )?;
        Ok(true)
    }
}
