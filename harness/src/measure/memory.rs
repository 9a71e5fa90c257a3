//! Memory measurement: RSS over time, peak RSS, and requested-live bytes.
//!
//! - [`rss_bytes`] reads the resident set from `/proc/self/statm` (pages ×
//!   page size); [`peak_rss_bytes`] is `getrusage(RUSAGE_SELF).ru_maxrss`.
//!   Each cell runs in its own child process, so both describe one cell.
//! - [`LiveCounters`] hold each worker's requested-live bytes in its own
//!   cache line; the owner publishes with a relaxed store (a plain store on
//!   x86-64, no read-modify-write), and a handed-off block leaves the
//!   sender's count when it is sent.
//! - [`Sampler`] is a thread that every 5 ms records RSS and the sum of the
//!   live counters. Its sample count is bounded: when the buffer fills, every
//!   other sample is dropped and the interval doubles, so a long cell keeps
//!   an even timeline of at most [`MAX_SAMPLES`] points at constant memory.
//!
//! The driver takes the "at peak" snapshot (our subjects' `Stats`, the
//! references' own statistics, RSS) at the end of the measured phase, when
//! every worker has finished its actions and every handed-off block has been
//! freed but the blocks still in slots are live; see `driver.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
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

/// Peak resident set size of this process in bytes (`ru_maxrss`).
pub fn peak_rss_bytes() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    // Linux reports kilobytes.
    ru.ru_maxrss.max(0) as u64 * 1024
}

#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// Per-worker requested-live bytes, one cache line each.
pub struct LiveCounters {
    slots: Box<[Padded]>,
}

impl LiveCounters {
    pub fn new(threads: usize) -> LiveCounters {
        LiveCounters {
            slots: (0..threads).map(|_| Padded::default()).collect(),
        }
    }

    /// Publishes worker `thread`'s live bytes (only that worker calls this).
    #[inline]
    pub fn publish(&self, thread: usize, bytes: u64) {
        self.slots[thread].0.store(bytes, Ordering::Relaxed);
    }

    /// Sum over workers.
    pub fn total(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// What the sampler saw.
#[derive(Clone, Debug, Default)]
pub struct Sampled {
    pub timeline: Vec<RssSample>,
    /// Largest sampled sum of the live counters.
    pub requested_peak: u64,
}

/// The RSS sampler thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Sampled>>,
}

impl Sampler {
    /// Starts sampling; `t_s` counts from `origin`.
    pub fn start(origin: Instant, live: Arc<LiveCounters>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let mut out = Sampled {
                    timeline: Vec::with_capacity(MAX_SAMPLES),
                    requested_peak: 0,
                };
                let mut interval = INTERVAL;
                loop {
                    out.requested_peak = out.requested_peak.max(live.total());
                    if out.timeline.len() == MAX_SAMPLES {
                        let mut keep = 0;
                        out.timeline.retain(|_| {
                            keep += 1;
                            keep % 2 == 1
                        });
                        interval *= 2;
                    }
                    out.timeline.push(RssSample {
                        t_s: origin.elapsed().as_secs_f64(),
                        rss_bytes: rss_bytes(),
                    });
                    if flag.load(Ordering::Acquire) {
                        return out;
                    }
                    std::thread::park_timeout(interval);
                }
            })
            .ok();
        Sampler { stop, handle }
    }

    /// Stops the thread (after one last sample) and returns what it saw; an
    /// empty result if the thread could not be started.
    pub fn finish(mut self) -> Sampled {
        self.stop.store(true, Ordering::Release);
        match self.handle.take() {
            Some(h) => {
                h.thread().unpark();
                h.join().unwrap_or_default()
            }
            None => Sampled::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_and_sampled() {
        assert!(rss_bytes() > 0);
        assert!(peak_rss_bytes() > 0);
        let live = Arc::new(LiveCounters::new(2));
        live.publish(0, 100);
        live.publish(1, 23);
        assert_eq!(live.total(), 123);
        let s = Sampler::start(Instant::now(), live.clone()).finish();
        assert!(!s.timeline.is_empty() && s.timeline.len() <= MAX_SAMPLES);
        assert_eq!(s.requested_peak, 123);
        assert!(s.timeline.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    }
}
