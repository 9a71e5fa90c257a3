//! Per-operation latency: which operations are timed, per-thread
//! HdrHistograms, and their summaries in
//! [`results::Latency`](crate::results::Latency).
//!
//! **Which operations.** The latency pass times one operation in `N` on
//! average, at intervals drawn from a geometric distribution ([`Gaps`]),
//! so every operation has the same chance of being timed whatever its
//! position: a fixed stride would alias with alternating alloc/free and
//! time only one of the two. Gaps come from a precomputed table (no RNG in
//! the loop) whose length is coprime with nothing in particular: it is not
//! a multiple of any tape's cycle, so replays time different operations.
//!
//! **Clock overhead.** A sample is `stop − start`, which includes one
//! clock reading's cost; [`summarise`] subtracts the calibrated overhead
//! from every percentile, and a percentile no more than the clock's
//! resolution above it is marked `below_resolution` rather than quoted.
//!
//! Each worker owns one [`Recorder`]: a histogram per operation kind, in
//! clock ticks (no float work on the recording path; ticks keep sub-ns
//! resolution). Histograms are created before the measured phase with fixed
//! bounds, so recording never allocates. At the end the driver merges the
//! per-thread recorders ([`Recorder::merge`]) and [`summarise`] converts to
//! nanoseconds: fixed percentiles, a dense quantile-iteration distribution
//! for "nines" plots, and the histogram itself re-expressed in ns and
//! encoded with HdrHistogram's V2 deflate format (base64), so any HdrHistogram
//! tool can read it. GIL wait arrives in ns already (from the GIL's wait
//! hook) and is kept in its own histogram with a scale of 1.

use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::results::{Latency, Percentile};

/// Entries in a gap table (a prime, so no tape cycle is a multiple of it).
const GAP_TABLE: usize = 4093;

/// Geometrically distributed gaps between timed operations, mean `one_in`.
pub struct Gaps {
    table: Box<[u32]>,
    next: usize,
}

impl Gaps {
    /// A gap table for one thread (`one_in >= 1`).
    pub fn new(one_in: u32, seed: u64) -> Gaps {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x6a09_e667_f3bc_c909);
        let p = 1.0 / f64::from(one_in.max(1));
        let table = (0..GAP_TABLE)
            .map(|_| {
                if p >= 1.0 {
                    return 1;
                }
                // Inverse CDF of the geometric distribution on {1, 2, ...}.
                let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                (1.0 + (u.ln() / (1.0 - p).ln()).floor()).min(f64::from(u32::MAX)) as u32
            })
            .collect();
        Gaps { table, next: 0 }
    }

    /// The next gap (at least 1).
    #[inline(always)]
    pub fn next_gap(&mut self) -> u32 {
        let g = self.table[self.next];
        self.next += 1;
        if self.next == self.table.len() {
            self.next = 0;
        }
        g
    }
}

/// Largest value a histogram tracks (ticks or ns); larger ones saturate.
/// 2^37 ticks is about 45 s at 3 GHz: longer than any single operation.
const HIGHEST: u64 = 1 << 37;
/// HdrHistogram precision: 3 significant digits (0.1% value resolution).
const SIGFIG: u8 = 3;
/// Quantile-iteration density of `distribution` (HdrHistogram's default
/// percentile output uses 5 ticks per half distance).
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// The fixed percentiles of every [`Latency`].
pub const PERCENTILES: [f64; 8] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0];

/// The operation kinds timed separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Alloc = 0,
    FreeLocal = 1,
    FreeRemote = 2,
    Realloc = 3,
    /// Time a thread waited for the GIL (ns, from the wait hook).
    GilWait = 4,
}

impl OpKind {
    /// The key in `CellMetrics::latency`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Alloc => "alloc",
            OpKind::FreeLocal => "free_local",
            OpKind::FreeRemote => "free_remote",
            OpKind::Realloc => "realloc",
            OpKind::GilWait => "gil_wait",
        }
    }
}

/// An empty histogram with the harness's bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST, SIGFIG).expect("constant histogram bounds are valid")
}

/// One thread's histograms, one per [`OpKind`].
#[derive(Clone, Debug)]
pub struct Recorder {
    hists: [Histogram<u64>; 5],
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            hists: std::array::from_fn(|_| new_histogram()),
        }
    }

    /// Records one value (ticks; ns for `GilWait`). Never allocates.
    #[inline]
    pub fn record(&mut self, kind: OpKind, value: u64) {
        self.hists[kind as usize].saturating_record(value);
    }

    /// The histogram of one kind.
    pub fn histogram(&self, kind: OpKind) -> &Histogram<u64> {
        &self.hists[kind as usize]
    }

    /// Adds another thread's recordings into this one.
    pub fn merge(&mut self, other: &Recorder) {
        for (mine, theirs) in self.hists.iter_mut().zip(&other.hists) {
            // Same bounds on both sides, so addition cannot fail.
            mine.add(theirs).expect("histograms share bounds");
        }
    }

    /// Moves a recorded GIL-wait histogram in (the hook records it apart).
    pub fn add_gil_wait(&mut self, h: &Histogram<u64>) {
        self.hists[OpKind::GilWait as usize]
            .add(h)
            .expect("histograms share bounds");
    }
}

/// How raw readings become latencies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Nanoseconds per recorded unit (per tick; 1 for values in ns).
    pub ns_per_unit: f64,
    /// Subtracted from every value (the clock's overhead; 0 for GIL waits,
    /// which are not clock pairs around an operation).
    pub overhead_ns: f64,
    /// Values within this of the overhead are below the resolution.
    pub resolution_ns: f64,
}

impl Scale {
    /// Values already in ns, nothing subtracted.
    pub const NS: Scale = Scale {
        ns_per_unit: 1.0,
        overhead_ns: 0.0,
        resolution_ns: 0.0,
    };

    fn point(&self, percentile: f64, raw: u64) -> Percentile {
        let ns = raw as f64 * self.ns_per_unit - self.overhead_ns;
        Percentile {
            percentile,
            ns: ns.max(0.0),
            // One step above the overhead is within the overhead's own
            // step (a relative margin absorbs calibration rounding).
            below_resolution: self.resolution_ns > 0.0 && ns <= self.resolution_ns * (1.0 + 1e-6),
        }
    }
}

/// Summarises a histogram of raw readings (see [`Scale`]).
pub fn summarise(h: &Histogram<u64>, scale: Scale) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let ns_per_unit = scale.ns_per_unit;
    let ns = |v: u64| (v as f64 * ns_per_unit - scale.overhead_ns).max(0.0);
    let percentiles = PERCENTILES
        .iter()
        .map(|&p| scale.point(p, h.value_at_quantile(p / 100.0)))
        .collect();
    let distribution = h
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| scale.point(v.quantile_iterated_to() * 100.0, v.value_iterated_to()))
        .collect();
    Latency {
        count: h.len(),
        min_ns: ns(h.min()),
        max_ns: ns(h.max()),
        mean_ns: (h.mean() * ns_per_unit - scale.overhead_ns).max(0.0),
        stdev_ns: h.stdev() * ns_per_unit,
        percentiles,
        distribution,
        hdr_v2: encode_v2_ns(h, ns_per_unit),
    }
}

/// The histogram re-expressed in whole ns, V2-deflate encoded, base64.
/// Each recorded bucket moves to its value in ns with its count, which keeps
/// the distribution within the histogram's own 0.1% resolution.
fn encode_v2_ns(h: &Histogram<u64>, ns_per_unit: f64) -> Option<String> {
    let mut out = new_histogram();
    for v in h.iter_recorded() {
        let value = (v.value_iterated_to() as f64 * ns_per_unit).round() as u64;
        out.saturating_record_n(value, v.count_at_value());
    }
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&out, &mut bytes)
        .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn merging_two_threads_keeps_every_sample() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for v in 1..=100 {
            a.record(OpKind::Alloc, v);
        }
        for v in 1001..=1100 {
            b.record(OpKind::Alloc, v);
        }
        b.record(OpKind::FreeRemote, 7);
        a.merge(&b);
        let h = a.histogram(OpKind::Alloc);
        assert_eq!(h.len(), 200);
        assert_eq!(h.min(), 1);
        assert!(h.equivalent(h.max(), 1100));
        assert_eq!(a.histogram(OpKind::FreeRemote).len(), 1);
        assert!(a.histogram(OpKind::Realloc).is_empty());

        let scale = Scale {
            ns_per_unit: 2.0,
            ..Scale::NS
        };
        let lat = summarise(h, scale);
        assert_eq!(lat.count, 200);
        assert_eq!(lat.min_ns, 2.0);
        assert_eq!(lat.percentiles.len(), PERCENTILES.len());
        // The median sits at the top of the first thread's values.
        assert!(h.equivalent(h.value_at_quantile(0.5), 100));
        assert_eq!(lat.percentiles[0].ns, h.value_at_quantile(0.5) as f64 * 2.0);
        assert!(lat.distribution.len() > 10);
        assert!(lat
            .distribution
            .windows(2)
            .all(|w| w[0].percentile <= w[1].percentile && w[0].ns <= w[1].ns));

        // The V2 blob decodes to the same distribution, scaled to ns.
        let blob = base64::engine::general_purpose::STANDARD
            .decode(lat.hdr_v2.expect("encoded"))
            .expect("base64");
        let back: Histogram<u64> = Deserializer::new()
            .deserialize(&mut blob.as_slice())
            .expect("V2 deflate");
        assert_eq!(back.len(), 200);
        assert!(back.equivalent(back.min(), 2));
        assert!(back.equivalent(back.max(), 2200));
    }

    #[test]
    fn the_overhead_is_subtracted_and_values_near_it_are_below_resolution() {
        let mut h = new_histogram();
        for v in [30u64, 31, 32, 60, 200] {
            h.record(v).unwrap();
        }
        let lat = summarise(
            &h,
            Scale {
                ns_per_unit: 1.0,
                overhead_ns: 30.0,
                resolution_ns: 5.0,
            },
        );
        let p50 = lat.percentiles[0];
        assert!(p50.below_resolution && p50.ns < 5.0, "{p50:?}");
        let max = lat.percentiles.last().unwrap();
        assert!(
            !max.below_resolution && (max.ns - 170.0).abs() < 1.0,
            "{max:?}"
        );
        assert_eq!(lat.min_ns, 0.0);
    }

    #[test]
    fn gaps_are_geometric_with_the_asked_mean() {
        let mut g = Gaps::new(16, 7);
        let n = 4093 * 3;
        let gaps: Vec<u32> = (0..n).map(|_| g.next_gap()).collect();
        assert!(gaps.iter().all(|&x| x >= 1));
        let mean = gaps.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
        assert!((mean - 16.0).abs() < 1.5, "mean {mean}");
        // Both parities occur: alternating alloc/free are both timed.
        assert!(gaps.iter().any(|x| x % 2 == 0) && gaps.iter().any(|x| x % 2 == 1));
        assert!(Gaps::new(1, 1).table.iter().all(|&x| x == 1));
    }

    #[test]
    fn empty_histogram_summarises_to_zero_count() {
        let lat = summarise(&new_histogram(), Scale::NS);
        assert_eq!(lat.count, 0);
        assert!(lat.hdr_v2.is_none() && lat.percentiles.is_empty());
    }
}
