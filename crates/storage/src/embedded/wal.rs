//! The write-ahead log: numbered segment files of checksummed records.
//!
//! Segment `wal/{seq:016x}.wal` starts with the 8-byte header `WMWAL\0\0`
//! followed by the version byte, then records. Version 2 (written today):
//! `len: u32 LE | crc32c(payload): u32 LE | crc32c(len, crc): u32 LE |
//! payload`; the header's own checksum lets replay find the records that
//! follow a damaged one. Version 1 (still read) has no header checksum.
//!
//! Failure rules, which both the engine and the agent's queue rely on:
//! * a writer never appends behind a failed write or sync: the segment is
//!   cut back to its last good length where the file system allows it and
//!   the writer is marked broken; its owner must start a new segment before
//!   acknowledging anything again;
//! * a segment whose creation failed is removed, so the same number can be
//!   created again once there is room;
//! * replay keeps every record whose checksums hold. Bad bytes at the end
//!   are a torn tail (truncated); bad bytes followed by good records are
//!   corruption: reported, never truncated, and the good records are kept.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{StorageError, StorageErrorKind};

pub const WAL_MAGIC: &[u8; 7] = b"WMWAL\0\0";
/// The version new segments are written in.
pub const WAL_VERSION: u8 = 2;
const HEADER_LEN: u64 = 8;
/// A record longer than this is treated as corruption on replay.
pub const MAX_RECORD_LEN: u32 = 512 * 1024 * 1024;

fn io_err(what: impl Into<String>, e: std::io::Error) -> StorageError {
    StorageError::with_source(StorageErrorKind::Io, what, e)
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.wal"))
}

/// Sequence numbers of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| io_err(format!("listing {}", dir.display()), e))?
    {
        let entry = entry.map_err(|e| io_err("listing wal", e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".wal")
            && let Ok(seq) = u64::from_str_radix(stem, 16)
        {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Faults a test can inject into segment writes (the write path asks before
/// each `write(2)` and `fdatasync(2)`). Production code passes none.
pub trait WalFaults: Send + Sync + 'static {
    /// Called before writing `len` bytes: `Some((n, err))` writes only the
    /// first `n` bytes and then fails with `err`, as a full disk does.
    fn on_write(&self, len: usize) -> Option<(usize, std::io::Error)>;
    /// Called before a sync: `Some(err)` makes it fail.
    fn on_sync(&self) -> Option<std::io::Error>;
}

/// An open segment being appended to.
pub struct SegmentWriter {
    pub seq: u64,
    file: File,
    /// Bytes in the file that form whole records (plus the header).
    pub len: u64,
    buf: Vec<u8>,
    /// Set after a failed write or sync: nothing more may be appended.
    broken: bool,
    faults: Option<Arc<dyn WalFaults>>,
}

impl SegmentWriter {
    pub fn create(dir: &Path, seq: u64) -> Result<Self, StorageError> {
        Self::create_with(dir, seq, None)
    }

    /// Creates segment `seq` and makes its header durable (file and
    /// directory synced). On failure nothing is left behind, so the same
    /// number can be tried again.
    pub fn create_with(
        dir: &Path,
        seq: u64,
        faults: Option<Arc<dyn WalFaults>>,
    ) -> Result<Self, StorageError> {
        let path = segment_path(dir, seq);
        let open = || OpenOptions::new().create_new(true).write(true).open(&path);
        let file = match open() {
            Ok(f) => f,
            // Left by an earlier attempt that failed before its header was
            // whole: it holds no record, so it can be replaced.
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && std::fs::metadata(&path).is_ok_and(|m| m.len() < HEADER_LEN) =>
            {
                std::fs::remove_file(&path)
                    .map_err(|e| io_err(format!("removing {}", path.display()), e))?;
                open().map_err(|e| io_err(format!("creating {}", path.display()), e))?
            }
            Err(e) => return Err(io_err(format!("creating {}", path.display()), e)),
        };
        let mut w = SegmentWriter {
            seq,
            file,
            len: 0,
            buf: Vec::new(),
            broken: false,
            faults,
        };
        let mut header = WAL_MAGIC.to_vec();
        header.push(WAL_VERSION);
        let res = w
            .raw_write(&header)
            .map_err(|e| io_err(format!("writing the header of {}", path.display()), e))
            .and_then(|()| {
                w.raw_sync()
                    .map_err(|e| io_err(format!("syncing {}", path.display()), e))
            })
            .and_then(|()| sync_dir(dir));
        if let Err(e) = res {
            drop(w);
            let _ = std::fs::remove_file(&path);
            let _ = sync_dir(dir);
            return Err(e);
        }
        w.len = HEADER_LEN;
        Ok(w)
    }

    fn raw_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some((n, err)) = self.faults.as_ref().and_then(|f| f.on_write(bytes.len())) {
            self.file.write_all(&bytes[..n.min(bytes.len())])?;
            return Err(err);
        }
        self.file.write_all(bytes)
    }

    fn raw_sync(&mut self) -> std::io::Result<()> {
        if let Some(err) = self.faults.as_ref().and_then(|f| f.on_sync()) {
            return Err(err);
        }
        self.file.sync_data()
    }

    /// True once a write or sync failed: the owner must start a new segment.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Queues a record; it reaches the file on [`SegmentWriter::write_out`].
    pub fn append(&mut self, payload: &[u8]) {
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32c::crc32c(payload).to_le_bytes();
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&len);
        head[4..].copy_from_slice(&crc);
        self.buf.extend_from_slice(&head);
        self.buf
            .extend_from_slice(&crc32c::crc32c(&head).to_le_bytes());
        self.buf.extend_from_slice(payload);
    }

    /// Drops records queued since the last `write_out`.
    pub fn discard_queued(&mut self) {
        self.buf.clear();
    }

    /// Writes queued records with one system call and optionally syncs.
    /// On failure the records of this call are cut off the file again
    /// (best effort) and the writer is broken: the caller must not
    /// acknowledge them and must start a new segment.
    pub fn write_out(&mut self, sync: bool) -> Result<(), StorageError> {
        if self.broken {
            self.buf.clear();
            return Err(StorageError::new(
                StorageErrorKind::Unavailable,
                format!(
                    "wal segment {} is closed after an earlier failure",
                    self.seq
                ),
            ));
        }
        let start = self.len;
        let buf = std::mem::take(&mut self.buf);
        let mut res = Ok(());
        if !buf.is_empty() {
            res = self
                .raw_write(&buf)
                .map_err(|e| io_err("appending to wal", e));
        }
        if res.is_ok() && sync {
            res = self.raw_sync().map_err(|e| io_err("syncing wal", e));
        }
        match res {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.buf = buf;
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                // Cut the partial or unsynced records off, so that the
                // segment ends with its last acknowledged record. If even
                // that fails, replay sees them as a torn tail: nothing is
                // ever appended behind them.
                if self.file.set_len(start).is_ok() {
                    let _ = self.file.seek(SeekFrom::Start(start));
                    let _ = self.file.sync_data();
                }
                Err(e)
            }
        }
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(format!("syncing directory {}", dir.display()), e))
}

/// Bad bytes found inside a segment, with good records after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte range skipped.
    pub offset: u64,
    pub len: u64,
}

/// The outcome of reading one segment.
#[derive(Debug, Default)]
pub struct Replay {
    pub records: Vec<Vec<u8>>,
    /// Bytes cut off the end because they did not form a whole, valid record.
    pub truncated_bytes: u64,
    /// Damaged ranges followed by good records: corruption, kept on disk.
    pub damage: Vec<Damage>,
    /// True when the bytes cut off the end were a whole-length record
    /// whose checksum failed (a flipped byte, not a write cut short).
    pub tail_corrupt: bool,
}

impl Replay {
    /// True when something other than a torn tail was found.
    pub fn is_corrupt(&self) -> bool {
        !self.damage.is_empty() || self.tail_corrupt
    }
}

/// One record parsed at `pos`, or why not.
enum Parse {
    Record {
        payload_at: usize,
        len: usize,
    },
    /// The bytes from `pos` cannot be a record that fits in the file.
    Short,
    /// A whole-length record (or header) whose checksum fails.
    Bad,
}

fn parse_at(bytes: &[u8], pos: usize, version: u8) -> Parse {
    let head = if version == 1 { 8 } else { 12 };
    if pos + head > bytes.len() {
        return Parse::Short;
    }
    let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
    let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
    if version >= 2 {
        let hcrc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        if crc32c::crc32c(&bytes[pos..pos + 8]) != hcrc {
            // A header of zeros is what a file extended by a crash holds.
            return if bytes[pos..pos + 12].iter().all(|b| *b == 0) {
                Parse::Short
            } else {
                Parse::Bad
            };
        }
    }
    if len > MAX_RECORD_LEN {
        return Parse::Bad;
    }
    let payload_at = pos + head;
    if payload_at + len as usize > bytes.len() {
        return Parse::Short;
    }
    let payload = &bytes[payload_at..payload_at + len as usize];
    if crc32c::crc32c(payload) != crc {
        // Zeros where the payload should be: the file's size reached the
        // disk before its data did (power loss), a torn write.
        return if payload.iter().all(|b| *b == 0) {
            Parse::Short
        } else {
            Parse::Bad
        };
    }
    Parse::Record {
        payload_at,
        len: len as usize,
    }
}

/// The next offset after `from` where a whole valid record starts. Version 2
/// headers carry their own checksum, so every byte offset can be tried
/// cheaply; version 1 records can only be found by their stated length.
fn resync(bytes: &[u8], from: usize, version: u8, bad_len: Option<usize>) -> Option<usize> {
    if version == 1 {
        let next = from + 8 + bad_len?;
        return matches!(parse_at(bytes, next, 1), Parse::Record { .. }).then_some(next);
    }
    (from + 1..bytes.len().saturating_sub(11))
        .find(|&p| matches!(parse_at(bytes, p, version), Parse::Record { .. }))
}

/// Reads every valid record of a segment. A torn tail is truncated unless
/// `read_only` (a reader beside a live writer must not truncate: the "torn"
/// tail may be a record being written). Damage followed by good records is
/// skipped and reported in [`Replay::damage`]; the file is left as it is.
pub fn replay_segment(dir: &Path, seq: u64, read_only: bool) -> Result<Replay, StorageError> {
    let path = segment_path(dir, seq);
    let mut file = OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(&path)
        .map_err(|e| io_err(format!("opening {}", path.display()), e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_err(format!("reading {}", path.display()), e))?;
    let total = bytes.len() as u64;
    let mut out = Replay::default();
    let mut good_end = 0u64;
    let version = bytes.get(7).copied().unwrap_or(0);
    if bytes.len() >= HEADER_LEN as usize
        && &bytes[..7] == WAL_MAGIC
        && (version == 1 || version == 2)
    {
        good_end = HEADER_LEN;
        let mut pos = HEADER_LEN as usize;
        loop {
            match parse_at(&bytes, pos, version) {
                Parse::Record { payload_at, len } => {
                    out.records
                        .push(bytes[payload_at..payload_at + len].to_vec());
                    pos = payload_at + len;
                    good_end = pos as u64;
                }
                failure => {
                    let stated = (pos + 4 <= bytes.len()).then(|| {
                        u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize
                    });
                    match resync(&bytes, pos, version, stated) {
                        Some(next) => {
                            out.damage.push(Damage {
                                offset: pos as u64,
                                len: (next - pos) as u64,
                            });
                            pos = next;
                        }
                        None => {
                            out.tail_corrupt = matches!(failure, Parse::Bad);
                            break;
                        }
                    }
                }
            }
        }
    } else if total >= HEADER_LEN {
        return Err(StorageError::new(
            StorageErrorKind::Corrupt,
            format!(
                "{} is not a waymark wal segment of version 1 or 2",
                path.display()
            ),
        ));
    }
    out.truncated_bytes = total - good_end;
    if out.truncated_bytes > 0 && !read_only {
        if good_end == 0 {
            // Not even a whole header: the segment was being created.
            file.set_len(0).map_err(|e| io_err("truncating wal", e))?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| io_err("seeking wal", e))?;
            let mut header = WAL_MAGIC.to_vec();
            header.push(WAL_VERSION);
            file.write_all(&header)
                .map_err(|e| io_err("rewriting wal header", e))?;
        } else {
            file.set_len(good_end)
                .map_err(|e| io_err("truncating wal", e))?;
        }
        file.sync_all().map_err(|e| io_err("syncing wal", e))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1).unwrap();
        w.append(b"first");
        w.append(b"second");
        w.write_out(true).unwrap();
        let good_len = w.len;
        // A torn third record: header promises more than is there.
        w.append(b"third-record-that-is-cut");
        w.write_out(true).unwrap();
        let path = segment_path(dir.path(), 1);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(good_len + 14).unwrap();
        let r = replay_segment(dir.path(), 1, false).unwrap();
        assert_eq!(r.records, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(r.truncated_bytes, 14);
        assert!(!r.is_corrupt());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        // Replaying again is clean.
        assert_eq!(
            replay_segment(dir.path(), 1, false)
                .unwrap()
                .truncated_bytes,
            0
        );
    }

    #[test]
    fn flipped_last_byte_is_a_corrupt_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 7).unwrap();
        w.append(b"aaaa");
        w.append(b"bbbb");
        w.write_out(true).unwrap();
        let path = segment_path(dir.path(), 7);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let r = replay_segment(dir.path(), 7, false).unwrap();
        assert_eq!(r.records, vec![b"aaaa".to_vec()]);
        assert_eq!(r.truncated_bytes, 16);
        assert!(r.tail_corrupt);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![7]);
    }

    /// Regression: a bad record in the middle used to end the segment, and
    /// replay truncated every acknowledged record behind it.
    #[test]
    fn damage_in_the_middle_keeps_every_later_record() {
        for flip in [0usize, 5, 9, 14] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = SegmentWriter::create(dir.path(), 3).unwrap();
            let recs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 30 + i as usize]).collect();
            let mut offsets = Vec::new();
            for r in &recs {
                offsets.push(w.len + w.buf.len() as u64);
                w.append(r);
            }
            w.write_out(true).unwrap();
            let path = segment_path(dir.path(), 3);
            let mut bytes = std::fs::read(&path).unwrap();
            // Damage record 7: its length, crc, header crc or payload.
            bytes[offsets[7] as usize + flip] ^= 0x5a;
            std::fs::write(&path, &bytes).unwrap();
            let r = replay_segment(dir.path(), 3, false).unwrap();
            let mut want = recs.clone();
            want.remove(7);
            assert_eq!(r.records, want, "flip at {flip}");
            assert_eq!(r.damage.len(), 1);
            assert_eq!(r.damage[0].offset, offsets[7]);
            assert_eq!(r.truncated_bytes, 0);
            // The file is kept as it was, for inspection.
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn version_1_segments_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = WAL_MAGIC.to_vec();
        bytes.push(1);
        for p in [b"one".as_slice(), b"two", b"three"] {
            bytes.extend_from_slice(&(p.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32c::crc32c(p).to_le_bytes());
            bytes.extend_from_slice(p);
        }
        // A flipped payload byte in the middle record: skipped by its length.
        bytes[8 + 8 + 3 + 8] ^= 1;
        std::fs::write(segment_path(dir.path(), 1), &bytes).unwrap();
        let r = replay_segment(dir.path(), 1, false).unwrap();
        assert_eq!(r.records, vec![b"one".to_vec(), b"three".to_vec()]);
        assert_eq!(r.damage.len(), 1);
    }

    /// Fails writes or syncs on demand.
    #[derive(Default)]
    struct Script {
        /// 0: none; 1: cut the next write short; 2: fail the next sync.
        next: AtomicU32,
    }

    impl WalFaults for Script {
        fn on_write(&self, len: usize) -> Option<(usize, std::io::Error)> {
            (self.next.load(Ordering::SeqCst) == 1).then(|| {
                self.next.store(0, Ordering::SeqCst);
                (len / 2, std::io::Error::from_raw_os_error(28))
            })
        }
        fn on_sync(&self) -> Option<std::io::Error> {
            (self.next.load(Ordering::SeqCst) == 2).then(|| {
                self.next.store(0, Ordering::SeqCst);
                std::io::Error::from_raw_os_error(5)
            })
        }
    }

    #[test]
    fn failed_write_is_cut_off_and_breaks_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let script = Arc::new(Script::default());
        let mut w = SegmentWriter::create_with(dir.path(), 1, Some(script.clone())).unwrap();
        w.append(b"acked");
        w.write_out(true).unwrap();
        let good = w.len;
        script.next.store(1, Ordering::SeqCst);
        w.append(b"this one is cut short by a full disk");
        assert!(w.write_out(true).is_err());
        assert!(w.is_broken());
        // Nothing more reaches this segment.
        w.append(b"later");
        assert!(w.write_out(true).is_err());
        let path = segment_path(dir.path(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
        let r = replay_segment(dir.path(), 1, false).unwrap();
        assert_eq!(r.records, vec![b"acked".to_vec()]);
    }

    #[test]
    fn failed_creation_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let script = Arc::new(Script::default());
        script.next.store(1, Ordering::SeqCst);
        assert!(SegmentWriter::create_with(dir.path(), 4, Some(script.clone())).is_err());
        assert!(list_segments(dir.path()).unwrap().is_empty());
        // The same number works once the fault is gone.
        SegmentWriter::create_with(dir.path(), 4, Some(script)).unwrap();
        // And a header cut short by a crash is replaced.
        std::fs::write(segment_path(dir.path(), 5), b"WMW").unwrap();
        SegmentWriter::create(dir.path(), 5).unwrap();
    }
}
