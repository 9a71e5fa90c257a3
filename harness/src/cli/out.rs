//! Where a run's files go and what they are called: the output directory,
//! checked before anything runs; results file names that never overwrite;
//! UTC timestamps.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::BadInput;

/// Creates `dir` and writes a file into it, or says why not: checked
/// before any cell runs.
pub fn check_out_dir(dir: &Path) -> Result<(), BadInput> {
    let refuse = |e: std::io::Error| {
        BadInput::new(format!(
            "--out {}: cannot write results there ({e}); nothing was run",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(refuse)?;
    let probe = dir.join(format!(".poolbench-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(refuse)?;
    std::fs::remove_file(&probe).map_err(refuse)
}

/// `dir/stem.ext`, or `dir/stem-2.ext`, ... if that exists already (two
/// runs in the same second must not overwrite each other).
pub fn unused_path(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    let mut p = dir.join(format!("{stem}.{ext}"));
    let mut n = 2;
    while p.exists() {
        p = dir.join(format!("{stem}-{n}.{ext}"));
        n += 1;
    }
    p
}

/// Civil date and time (UTC) of a Unix time in seconds.
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil: eras of 400 years from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// RFC 3339 in UTC, to the second: `2026-11-21T16:44:26Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(unix_secs(t));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The same instant for a file name: `20261121T164426Z`.
pub fn file_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(unix_secs(t));
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(0);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:00Z");
        // 2000-02-29 (leap day) 12:34:56 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(951_827_696);
        assert_eq!(rfc3339(t), "2000-02-29T12:34:56Z");
        assert_eq!(file_stamp(t), "20000229T123456Z");
        // 2026-11-21T16:44:26Z.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_279_466);
        assert_eq!(rfc3339(t), "2026-11-21T16:44:26Z");
    }

    #[test]
    fn unused_path_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("poolbench-unused-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = unused_path(&dir, "r", "json");
        std::fs::write(&a, "x").unwrap();
        let b = unused_path(&dir, "r", "json");
        assert_ne!(a, b);
        assert!(b.ends_with("r-2.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
