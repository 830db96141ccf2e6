//! Free-space watermark of the data directory's file system.
//!
//! Like Elasticsearch's flood stage: once the free space falls below the
//! watermark, writes are refused (reads keep working) so that the room left
//! is there for what frees space: writing the head as a compact block,
//! after which its WAL segments are deleted. Writes resume once the free
//! space is a little above the watermark again, so that a disk hovering at
//! the line does not flap between the two states on every request.

use std::path::Path;

/// The watermark: writes stop below `max(min_free_bytes, min_free_percent
/// of the file system)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watermark {
    pub min_free_bytes: u64,
    pub min_free_percent: f64,
}

impl Default for Watermark {
    fn default() -> Self {
        Watermark {
            min_free_bytes: 16 << 20,
            min_free_percent: 1.0,
        }
    }
}

/// Free and total bytes of a file system, as an unprivileged writer sees
/// them (`f_bavail`: root's reserved blocks do not count as free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    pub free: u64,
    pub total: u64,
}

impl DiskSpace {
    pub fn of(path: &Path) -> std::io::Result<DiskSpace> {
        let s = rustix::fs::statvfs(path)?;
        Ok(DiskSpace {
            free: s.f_bavail.saturating_mul(s.f_frsize),
            total: s.f_blocks.saturating_mul(s.f_frsize),
        })
    }
}

impl Watermark {
    /// Free bytes below which writes are refused on a file system of
    /// `total` bytes.
    pub fn threshold(&self, total: u64) -> u64 {
        let pct = (total as f64 * self.min_free_percent / 100.0) as u64;
        self.min_free_bytes.max(pct)
    }

    /// The state after a reading: `low` is the current state, so that
    /// leaving it needs a margin (a sixteenth of the threshold, at least
    /// 1 MiB) above the line.
    pub fn is_low(&self, space: DiskSpace, low: bool) -> bool {
        let t = self.threshold(space.total);
        if t == 0 {
            return false;
        }
        if low {
            space.free < t + (t / 16).max(1 << 20)
        } else {
            space.free < t
        }
    }

    /// Why writes are refused, for the client and `/ready`.
    pub fn reason(&self, space: DiskSpace, dir: &Path) -> String {
        format!(
            "disk almost full: {} free of {} on {}, below the {} kept free for block writes \
             (--storage-min-free-bytes / --storage-min-free-percent); writes are refused until \
             there is room, reads keep working",
            mib(space.free),
            mib(space.total),
            dir.display(),
            mib(self.threshold(space.total))
        )
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_the_larger_of_bytes_and_percent() {
        let w = Watermark {
            min_free_bytes: 16 << 20,
            min_free_percent: 1.0,
        };
        assert_eq!(w.threshold(48 << 20), 16 << 20);
        assert_eq!(w.threshold(1 << 40), (1u64 << 40) / 100);
    }

    #[test]
    fn leaving_the_low_state_needs_a_margin() {
        let w = Watermark {
            min_free_bytes: 16 << 20,
            min_free_percent: 0.0,
        };
        let at = |free| DiskSpace {
            free,
            total: 100 << 20,
        };
        assert!(!w.is_low(at(17 << 20), false));
        assert!(w.is_low(at(15 << 20), false));
        assert!(w.is_low(at(16 << 20), true));
        assert!(!w.is_low(at(18 << 20), true));
        let off = Watermark {
            min_free_bytes: 0,
            min_free_percent: 0.0,
        };
        assert!(!off.is_low(at(0), true));
    }

    #[test]
    fn reads_a_real_file_system() {
        let d = tempfile::tempdir().unwrap();
        let s = DiskSpace::of(d.path()).unwrap();
        assert!(s.total > 0 && s.free <= s.total);
    }
}
