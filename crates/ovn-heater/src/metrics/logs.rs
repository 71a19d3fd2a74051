//! Poll-interval warnings in the daemons' logs: OVS/OVN's main loops log `Unreasonably long
//! NNNNms poll interval (...)` when one iteration took over a second, the sign of a daemon
//! that cannot keep up. Counted per daemon, per stage (lines written while the stage ran, read
//! from the log's length at the stage's start) and over the whole log, like upstream
//! ovn-heater's mine-poll-intervals.
//!
//! Must not know: which daemons these are, where their logs live.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Poll-interval warnings of one daemon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PollIntervals {
    /// How many warnings.
    pub count: u64,
    /// The longest interval warned about, in milliseconds (0 without warnings).
    pub max_ms: u64,
}

impl PollIntervals {
    fn add(&mut self, ms: u64) {
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
    }
}

/// The interval of a `Unreasonably long 1234ms poll interval` line, in milliseconds.
pub fn poll_interval_ms(line: &str) -> Option<u64> {
    let rest = &line[line.find("Unreasonably long ")? + "Unreasonably long ".len()..];
    let (ms, tail) = rest.split_once("ms")?;
    if !tail.trim_start().starts_with("poll interval") {
        return None;
    }
    ms.trim().parse().ok()
}

/// Counts the warnings in `text`.
pub fn count(text: &str) -> PollIntervals {
    let mut out = PollIntervals::default();
    for ms in text.lines().filter_map(poll_interval_ms) {
        out.add(ms);
    }
    out
}

/// The current length of `path` (0 when it does not exist yet).
pub fn length(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Counts the warnings in `path` from byte `from` to its end. A log shorter than `from` was
/// rotated or truncated: it is read from its start.
pub fn count_from(path: &Path, from: u64) -> PollIntervals {
    let Ok(mut f) = std::fs::File::open(path) else {
        return PollIntervals::default();
    };
    let from = if length(path) < from { 0 } else { from };
    if f.seek(SeekFrom::Start(from)).is_err() {
        return PollIntervals::default();
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return PollIntervals::default();
    }
    count(&String::from_utf8_lossy(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-12-05T10:00:00.001Z|00010|timeval|WARN|Unreasonably long 1834ms poll interval (1790ms user, 40ms system)
2026-12-05T10:00:00.002Z|00011|timeval|WARN|faults: 2118 minor, 0 major
2026-12-05T10:00:01.000Z|00012|poll_loop|INFO|wakeup due to [POLLIN] on fd 12
2026-12-05T10:00:02.000Z|00013|timeval|WARN|Unreasonably long 1025ms poll interval (1000ms user, 20ms system)
2026-12-05T10:00:03.000Z|00014|reconnect|INFO|Unreasonably long words without the rest
";

    #[test]
    fn parses_poll_interval_lines() {
        assert_eq!(poll_interval_ms(LOG.lines().next().unwrap()), Some(1834));
        assert_eq!(
            poll_interval_ms("x|timeval|WARN|Unreasonably long 3ms poll interval"),
            Some(3)
        );
        assert_eq!(
            poll_interval_ms("x|WARN|Unreasonably long words without the rest"),
            None
        );
        assert_eq!(poll_interval_ms("x|WARN|Unreasonably long 12ms wait"), None);
        assert_eq!(poll_interval_ms("plain line"), None);
        assert_eq!(count(LOG), PollIntervals { count: 2, max_ms: 1834 });
        assert_eq!(count(""), PollIntervals::default());
    }

    #[test]
    fn counts_only_lines_after_an_offset() {
        let dir = std::env::temp_dir().join(format!("ovn-heater-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("northd.log");
        let first_line_len = LOG.lines().next().unwrap().len() as u64 + 1;
        std::fs::write(&path, LOG).unwrap();
        assert_eq!(count_from(&path, 0).count, 2);
        assert_eq!(
            count_from(&path, first_line_len),
            PollIntervals { count: 1, max_ms: 1025 }
        );
        // Truncated below the offset: read again from the start.
        std::fs::write(&path, LOG.lines().next().unwrap()).unwrap();
        assert_eq!(count_from(&path, 10_000).count, 1);
        assert_eq!(count_from(&dir.join("missing.log"), 0).count, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
