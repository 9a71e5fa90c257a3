//! The statistics every figure uses, in one place.
//!
//! - [`estimate`]: the median of repeats and a distribution-free interval
//!   for it from order statistics. With `n` values, `[x(k), x(n+1-k)]`
//!   holds the true median with probability `1 − 2·P(Bin(n, ½) < k)`; the
//!   widest `k` reaching 95% is used (possible from 6 values on). With
//!   fewer, the interval is the range of the values and its `confidence`
//!   says how little that is (75% for 3 values): the report shows it as a
//!   range, not as a 95% interval.
//! - [`ratio_interval`]: a 95% percentile-bootstrap interval for the ratio
//!   of two medians (candidate / baseline), from a fixed seed so a verdict
//!   is reproducible. `compare` and the "best" marks flag a difference only
//!   when this interval excludes 1 *and* the median ratio is beyond the
//!   threshold.
//! - [`median`], [`quantile`]: the one definition used everywhere (the
//!   mean of the two middle values for an even count).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::results::Estimate;

/// The confidence an interval must reach to be called a 95% interval.
pub const LEVEL: f64 = 0.95;
/// Bootstrap resamples for ratio intervals.
const RESAMPLES: usize = 2000;

/// The median (mean of the middle two for even counts); `None` if empty
/// or if a value is not finite.
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// The `q`-quantile by linear interpolation between order statistics.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// `P(Bin(n, 1/2) < k)`.
fn binomial_below(n: u32, k: u32) -> f64 {
    let mut sum = 0.0;
    let mut c = 1.0f64; // C(n, i)
    for i in 0..k.min(n + 1) {
        if i > 0 {
            c = c * f64::from(n - i + 1) / f64::from(i);
        }
        sum += c;
    }
    sum / 2f64.powi(n as i32)
}

/// The median and its order-statistic interval (see the module docs).
pub fn estimate(values: &[f64]) -> Estimate {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let Some(m) = median(&finite) else {
        return Estimate::default();
    };
    let mut v = finite;
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len() as u32;
    // Widest symmetric pair of order statistics with coverage >= LEVEL.
    let mut k = 1;
    let mut confidence = 1.0 - 2.0 * binomial_below(n, 1);
    while k < n / 2 {
        let c = 1.0 - 2.0 * binomial_below(n, k + 1);
        if c < LEVEL {
            break;
        }
        k += 1;
        confidence = c;
    }
    Estimate {
        median: m,
        low: v[(k - 1) as usize],
        high: v[(n - k) as usize],
        n,
        confidence: if n == 1 { 0.0 } else { confidence },
    }
}

/// Relative width of an estimate's interval, `(high − low) / median`.
pub fn relative_spread(e: &Estimate) -> f64 {
    if e.median.abs() > 0.0 {
        (e.high - e.low) / e.median.abs()
    } else {
        0.0
    }
}

/// The median ratio `candidate / baseline` and its 95% percentile
/// bootstrap interval; `None` without values on both sides.
pub fn ratio_interval(baseline: &[f64], candidate: &[f64]) -> Option<(f64, f64, f64)> {
    let (mb, mc) = (median(baseline)?, median(candidate)?);
    if mb == 0.0 {
        return None;
    }
    let point = mc / mb;
    let mut rng = SmallRng::seed_from_u64(0x005e_ed0f_b007);
    let mut ratios = Vec::with_capacity(RESAMPLES);
    let resample = |v: &[f64], rng: &mut SmallRng| {
        let draw: Vec<f64> = (0..v.len())
            .map(|_| v[rng.random_range(0..v.len())])
            .collect();
        median(&draw).unwrap_or(f64::NAN)
    };
    for _ in 0..RESAMPLES {
        let b = resample(baseline, &mut rng);
        let c = resample(candidate, &mut rng);
        if b != 0.0 {
            ratios.push(c / b);
        }
    }
    let lo = quantile(&ratios, (1.0 - LEVEL) / 2.0)?;
    let hi = quantile(&ratios, 1.0 - (1.0 - LEVEL) / 2.0)?;
    Some((point, lo, hi))
}

/// Whether `candidate` differs from `baseline` beyond both the noise (the
/// ratio's interval excludes 1) and `threshold` (the median ratio is off 1
/// by more than it). Returns the median ratio when it does.
pub fn differs(baseline: &[f64], candidate: &[f64], threshold: f64) -> Option<f64> {
    let (point, lo, hi) = ratio_interval(baseline, candidate)?;
    let beyond_noise = lo > 1.0 || hi < 1.0;
    let beyond_threshold = (point - 1.0).abs() > threshold;
    (beyond_noise && beyond_threshold).then_some(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
        assert_eq!(quantile(&[0.0, 10.0], 0.25), Some(2.5));
    }

    #[test]
    fn intervals_reach_95_percent_from_six_values() {
        let e = estimate(&[5.0, 1.0, 3.0]);
        assert_eq!((e.median, e.low, e.high, e.n), (3.0, 1.0, 5.0, 3));
        assert!((e.confidence - 0.75).abs() < 1e-12);
        let six: Vec<f64> = (1..=6).map(f64::from).collect();
        let e = estimate(&six);
        assert!(e.confidence >= LEVEL, "{e:?}");
        assert_eq!((e.low, e.high), (1.0, 6.0));
        let many: Vec<f64> = (1..=20).map(f64::from).collect();
        let e = estimate(&many);
        assert!(
            e.confidence >= LEVEL && e.low > 1.0 && e.high < 20.0,
            "{e:?}"
        );
        assert_eq!(estimate(&[7.0]).confidence, 0.0);
    }

    #[test]
    fn identical_samples_never_differ_and_separated_ones_do() {
        let a = [100.0, 104.0, 97.0, 101.0, 99.0];
        let b = [101.0, 98.0, 103.0, 100.0, 96.0];
        assert_eq!(differs(&a, &b, 0.10), None);
        let slow: Vec<f64> = a.iter().map(|v| v * 1.25).collect();
        let r = differs(&a, &slow, 0.10).expect("25% apart, no overlap");
        assert!((r - 1.25).abs() < 0.01);
        // Beyond the noise but inside the threshold: not flagged.
        let bit: Vec<f64> = a.iter().map(|v| v * 1.05).collect();
        assert_eq!(differs(&a, &bit, 0.10), None);
        // Beyond the threshold but inside the noise: not flagged.
        assert_eq!(
            differs(&[100.0, 50.0, 150.0], &[120.0, 60.0, 180.0], 0.10),
            None
        );
    }
}
