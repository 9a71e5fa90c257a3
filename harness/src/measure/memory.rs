//! Memory and machine measurements: RSS now, over time and at its peak;
//! CPU time; how busy the machine is.
//!
//! - [`rss_bytes`] reads the resident set from `/proc/self/statm` (pages ×
//!   page size); [`peak_rss_bytes`] is the high-water mark of the same
//!   (`VmHWM` in `/proc/self/status`). Each cell runs in its own child
//!   process, so both describe one cell. (Not `ru_maxrss`: Linux folds the
//!   high-water mark of the memory a child had before `exec` — a copy of
//!   the parent's — into it, so every cell reported the driver's peak.)
//! - [`sample`] runs on a thread of its own through a cell: every few ms it
//!   records RSS and the requested live bytes at that moment, which the
//!   caller derives from the workers' published tape positions (no counter
//!   in the measured loop). Its sample count is bounded: when the buffer
//!   fills, every other sample is dropped and the interval doubles, so a
//!   long cell keeps an even timeline of at most [`MAX_SAMPLES`] points.
//! - [`cpu_seconds`], [`MachineTimes`] and [`loadavg`] say how much CPU the
//!   cell used and how much the rest of the machine did meanwhile
//!   (`/proc/stat`, including time stolen by the hypervisor).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::results::RssSample;

/// Most RSS samples kept per cell.
pub const MAX_SAMPLES: usize = 2_000;
/// Initial sampling interval.
const INTERVAL: Duration = Duration::from_millis(5);

/// Current resident set size in bytes, 0 if it cannot be read.
pub fn rss_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

fn rusage() -> Option<libc::rusage> {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    (unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0).then_some(ru)
}

/// Peak resident set size of this process's memory in bytes: `VmHWM`
/// (see the module docs), or `ru_maxrss` where `/proc` cannot be read.
pub fn peak_rss_bytes() -> u64 {
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
    // Linux reports `ru_maxrss` in kilobytes.
    hwm.unwrap_or_else(|| rusage().map_or(0, |ru| ru.ru_maxrss.max(0) as u64 * 1024))
}

/// User and system CPU seconds this process has used.
pub fn cpu_seconds() -> (f64, f64) {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    rusage().map_or((0.0, 0.0), |ru| (secs(ru.ru_utime), secs(ru.ru_stime)))
}

/// CPU time the calling thread has used, in ns: unlike wall time it
/// does not grow while the thread waits for a core on a busy machine.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The 1-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine's CPU time by kind, summed over CPUs (`/proc/stat`, in
/// clock ticks).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineTimes {
    /// Every tick.
    pub total: u64,
    /// Ticks not idle, not waiting for I/O and not stolen.
    pub busy: u64,
    /// Ticks the hypervisor gave to someone else.
    pub steal: u64,
}

impl MachineTimes {
    /// Reads `/proc/stat` now.
    pub fn now() -> Option<MachineTimes> {
        parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Fractions of the interval from `self` to `later`: stolen, and busy
    /// with work other than `own_cpu_s` seconds of this process's.
    pub fn fractions(&self, later: &MachineTimes, own_cpu_s: f64) -> Option<(f64, f64)> {
        let total = later.total.checked_sub(self.total)? as f64;
        if total <= 0.0 {
            return None;
        }
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let steal = later.steal.saturating_sub(self.steal) as f64 / total;
        let busy = later.busy.saturating_sub(self.busy) as f64;
        let others = (busy - own_cpu_s * hz).max(0.0) / total;
        Some((steal, others))
    }
}

fn parse_proc_stat(text: &str) -> Option<MachineTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let total: u64 = (0..8).map(get).sum();
    let (idle, iowait, steal) = (get(3), get(4), get(7));
    Some(MachineTimes {
        total,
        busy: total - idle - iowait - steal,
        steal,
    })
}

/// Samples RSS and `live()` until `stop` is set (after one last sample).
/// `t_s` counts from `origin`.
pub fn sample(stop: &AtomicBool, origin: Instant, live: &dyn Fn() -> u64) -> Vec<RssSample> {
    let mut out = Vec::with_capacity(MAX_SAMPLES);
    let mut interval = INTERVAL;
    loop {
        if out.len() == MAX_SAMPLES {
            let mut keep = 0;
            out.retain(|_| {
                keep += 1;
                keep % 2 == 1
            });
            interval *= 2;
        }
        out.push(RssSample {
            t_s: origin.elapsed().as_secs_f64(),
            rss_bytes: rss_bytes(),
            live_bytes: live(),
        });
        if stop.load(Ordering::Acquire) {
            return out;
        }
        std::thread::park_timeout(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_cpu_and_load_are_read() {
        assert!(rss_bytes() > 0);
        let now = rss_bytes();
        assert!(
            peak_rss_bytes() >= now,
            "the peak is at least what is resident now"
        );
        let (u, s) = cpu_seconds();
        assert!(u >= 0.0 && s >= 0.0);
        assert!(loadavg().is_some());
        let a = MachineTimes::now().expect("/proc/stat");
        assert!(a.total > 0 && a.busy <= a.total);
    }

    #[test]
    fn proc_stat_parses_steal_and_busy() {
        let t = parse_proc_stat("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!((t.total, t.busy, t.steal), (1000, 150, 40));
        let later = MachineTimes {
            total: 2000,
            busy: 650,
            steal: 140,
        };
        let (steal, others) = t.fractions(&later, 0.0).unwrap();
        assert!((steal - 0.1).abs() < 1e-9 && (others - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_sampler_stops_and_keeps_order() {
        let stop = AtomicBool::new(false);
        let samples = std::thread::scope(|s| {
            let h = s.spawn(|| sample(&stop, Instant::now(), &|| 123));
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, Ordering::Release);
            h.thread().unpark();
            h.join().unwrap()
        });
        assert!(!samples.is_empty() && samples.len() <= MAX_SAMPLES);
        assert!(samples.iter().all(|s| s.live_bytes == 123));
        assert!(samples.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    }
}
