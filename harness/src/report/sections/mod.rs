//! The chart sections of one workload: throughput, latency, memory,
//! fragmentation.
//!
//! Each builder turns a [`Group`]'s cells into a [`SectionView`] with its
//! charts, tables and notes. Choices that shape what a reader sees:
//! - throughput is plotted against threads on a log2 axis ticked at the
//!   thread counts run; every median carries its interval as a whisker
//!   (named as `interval` names it: a 95% CI only from 6 repeats on); the
//!   `null` subject is drawn dashed as the floor, and a second chart shows
//!   each subject's time per operation above that floor (what the
//!   allocator itself costs), with the floor as the zero line;
//! - latency and memory would need one chart per thread count to show
//!   everything; the report shows the extremes (1 thread and the most
//!   threads) for latency and the most threads for memory, where
//!   contention and footprint are largest; the tables carry every thread
//!   count;
//! - latency charts shade the band below the clock's resolution;
//!   percentiles inside it are not numbers and are drawn dotted inside the
//!   band, never at a value; a subject without samples of a kind is named
//!   in the notes with the reason, never silently left out;
//! - fragmentation has one definition (resident bytes above the cell's
//!   baseline over requested live bytes), shown only where the run
//!   recorded a ratio, with the run's note where it did not; our
//!   allocators' exact accounting and the references' own counters sit
//!   beside it as cross-checks.

mod fragmentation;
mod latency;
mod memory;
mod throughput;

pub use fragmentation::fragmentation;
pub use latency::latency;
pub use memory::memory;
pub use throughput::throughput;

use crate::results::Estimate;

use super::chart::Range;
use super::interval;

const MIB: f64 = 1024.0 * 1024.0;
/// Whiskers may widen a value axis to this factor beyond the medians;
/// beyond it they are cut at the frame (with an arrowhead), so one wild
/// repeat does not flatten every line.
const AXIS_SLACK: f64 = 3.0;

fn threads_text(t: usize) -> String {
    format!("{t} thread{}", if t == 1 { "" } else { "s" })
}

/// The values a value axis should cover: the medians, and the interval
/// ends within [`AXIS_SLACK`] of them.
fn axis_values(estimates: &[(f64, f64, f64)]) -> Vec<f64> {
    let medians: Vec<f64> = estimates
        .iter()
        .map(|e| e.0)
        .filter(|v| v.is_finite())
        .collect();
    let hi = medians.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lo = medians.iter().copied().fold(f64::INFINITY, f64::min);
    let span = (hi - lo).abs().max(hi.abs() * 0.05);
    let mut out = medians.clone();
    for &(_, l, h) in estimates {
        for v in [l, h] {
            let inside = if lo > 0.0 {
                v >= lo / AXIS_SLACK && v <= hi * AXIS_SLACK
            } else {
                v >= lo - AXIS_SLACK * span && v <= hi + AXIS_SLACK * span
            };
            if v.is_finite() && inside {
                out.push(v);
            }
        }
    }
    out
}

/// A whisker for an estimate at `x`, in the plotted unit (`div`).
fn whisker(
    x: f64,
    e: &Estimate,
    div: f64,
    what: &str,
    fmt: impl Fn(f64) -> String + Copy,
) -> Option<Range> {
    interval::has_interval(e).then(|| Range {
        x,
        lo: e.low / div,
        hi: e.high / div,
        title: format!("{what}: {}", interval::title(e, fmt)),
    })
}
