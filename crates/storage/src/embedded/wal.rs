//! The write-ahead log: numbered segment files of checksummed records.
//!
//! Segment `wal/{seq:016x}.wal` starts with the 8-byte header `WMWAL\0\0`
//! followed by the version byte (currently 1), then records:
//! `len: u32 LE | crc32c(payload): u32 LE | payload`. A record whose header
//! or payload is cut short, or whose checksum does not match, ends the
//! segment: replay truncates the file there and logs it.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{StorageError, StorageErrorKind};

pub const WAL_MAGIC: &[u8; 7] = b"WMWAL\0\0";
pub const WAL_VERSION: u8 = 1;
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

/// An open segment being appended to.
pub struct SegmentWriter {
    pub seq: u64,
    file: File,
    pub len: u64,
    buf: Vec<u8>,
}

impl SegmentWriter {
    pub fn create(dir: &Path, seq: u64) -> Result<Self, StorageError> {
        let path = segment_path(dir, seq);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(format!("creating {}", path.display()), e))?;
        let mut header = WAL_MAGIC.to_vec();
        header.push(WAL_VERSION);
        file.write_all(&header)
            .map_err(|e| io_err("writing wal header", e))?;
        file.sync_all()
            .map_err(|e| io_err("syncing wal header", e))?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            seq,
            file,
            len: HEADER_LEN,
            buf: Vec::new(),
        })
    }

    /// Queues a record; it reaches the file on [`SegmentWriter::write_out`].
    pub fn append(&mut self, payload: &[u8]) {
        self.buf
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        self.buf.extend_from_slice(payload);
    }

    /// Writes queued records with one system call and optionally fsyncs.
    pub fn write_out(&mut self, sync: bool) -> Result<(), StorageError> {
        if !self.buf.is_empty() {
            self.file
                .write_all(&self.buf)
                .map_err(|e| io_err("appending to wal", e))?;
            self.len += self.buf.len() as u64;
            self.buf.clear();
        }
        if sync {
            self.file
                .sync_data()
                .map_err(|e| io_err("syncing wal", e))?;
        }
        Ok(())
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(format!("syncing directory {}", dir.display()), e))
}

/// The outcome of reading one segment.
pub struct Replay {
    pub records: Vec<Vec<u8>>,
    /// Bytes cut off the end because they did not form a whole, valid record.
    pub truncated_bytes: u64,
}

/// Reads every valid record of a segment, truncating a torn or corrupt tail
/// unless `read_only` (a reader beside a live writer must not truncate: the
/// "torn" tail may be a record being written).
pub fn replay_segment(dir: &Path, seq: u64, read_only: bool) -> Result<Replay, StorageError> {
    let path = segment_path(dir, seq);
    let mut file = OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(&path)
        .map_err(|e| io_err(format!("opening {}", path.display()), e))?;
    let total = file
        .metadata()
        .map_err(|e| io_err("reading wal metadata", e))?
        .len();
    let mut reader = BufReader::new(&mut file);
    let mut header = [0u8; HEADER_LEN as usize];
    let mut records = Vec::new();
    let mut good_end = 0u64;
    if reader.read_exact(&mut header).is_ok()
        && &header[..7] == WAL_MAGIC
        && header[7] == WAL_VERSION
    {
        good_end = HEADER_LEN;
        loop {
            let mut rh = [0u8; 8];
            if reader.read_exact(&mut rh).is_err() {
                break;
            }
            let len = u32::from_le_bytes(rh[..4].try_into().unwrap());
            let crc = u32::from_le_bytes(rh[4..].try_into().unwrap());
            if len > MAX_RECORD_LEN || good_end + 8 + len as u64 > total {
                break;
            }
            let mut payload = vec![0u8; len as usize];
            if reader.read_exact(&mut payload).is_err() || crc32c::crc32c(&payload) != crc {
                break;
            }
            good_end += 8 + len as u64;
            records.push(payload);
        }
    } else if total >= HEADER_LEN {
        return Err(StorageError::new(
            StorageErrorKind::Corrupt,
            format!(
                "{} is not a waymark wal segment of version {WAL_VERSION}",
                path.display()
            ),
        ));
    }
    drop(reader);
    let truncated_bytes = total - good_end;
    if truncated_bytes > 0 && !read_only {
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
    Ok(Replay {
        records,
        truncated_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        f.set_len(good_len + 10).unwrap();
        let r = replay_segment(dir.path(), 1, false).unwrap();
        assert_eq!(r.records, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(r.truncated_bytes, 10);
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
    fn corrupt_record_ends_segment() {
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
        assert_eq!(r.truncated_bytes, 12);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![7]);
    }
}
