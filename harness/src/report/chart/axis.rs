//! Value, thread-count and percentile axes with "nice" ticks.

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log10,
    Log2,
    /// Percentiles (0..100) on HdrHistogram's axis: x = -log10(1 - p/100),
    /// so 90% is 1, 99% is 2, 99.9% is 3.
    Nines,
}

impl Scale {
    fn forward(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log10 => v.log10(),
            Scale::Log2 => v.log2(),
            Scale::Nines => -(1.0 - v / 100.0).log10(),
        }
    }
}

/// A labelled tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub value: f64,
    pub label: String,
}

/// One axis: its title (with unit), scale, domain and ticks.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub title: String,
    pub scale: Scale,
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<Tick>,
}

/// Above this max/min ratio a value axis switches to log scale.
pub const LOG_RATIO: f64 = 20.0;

impl Axis {
    /// A linear axis from `lo` to `hi`, widened to "nice" round ticks
    /// (1, 2 or 5 × 10^k apart, about five of them).
    pub fn linear(title: &str, lo: f64, hi: f64, fmt: &dyn Fn(f64) -> String) -> Axis {
        let (lo, hi) = sane_range(lo, hi);
        let step = nice_step((hi - lo) / 5.0);
        let start = (lo / step).floor() * step;
        let end = (hi / step).ceil() * step;
        let mut ticks = Vec::new();
        let n = ((end - start) / step).round() as i64;
        for i in 0..=n {
            let v = start + i as f64 * step;
            // Snap float noise (0.30000000000000004) before formatting.
            let v = (v / step).round() * step;
            ticks.push(Tick {
                value: v,
                label: fmt(v),
            });
        }
        Axis {
            title: title.to_string(),
            scale: Scale::Linear,
            lo: start,
            hi: end,
            ticks,
        }
    }

    /// A log10 axis covering `lo..hi` (both > 0), widened to 1-2-5 steps,
    /// ticked at decades, plus 2× and 5× when fewer than three decades
    /// would be labelled.
    pub fn log10(title: &str, lo: f64, hi: f64, fmt: &dyn Fn(f64) -> String) -> Axis {
        let lo = if lo > 0.0 { lo } else { hi.max(1.0) / 1000.0 };
        let hi = if hi > lo { hi } else { lo * 10.0 };
        let lo = round_125(lo, false);
        let hi = round_125(hi, true);
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        let decades: Vec<f64> = (first..=last)
            .map(|e| 10f64.powi(e))
            .filter(|v| *v >= lo * 0.999 && *v <= hi * 1.001)
            .collect();
        let mults: &[f64] = if decades.len() >= 3 {
            &[1.0]
        } else {
            &[1.0, 2.0, 5.0]
        };
        let mut ticks = Vec::new();
        for e in first..=last {
            for m in mults {
                let v = m * 10f64.powi(e);
                if v >= lo * 0.999 && v <= hi * 1.001 {
                    ticks.push(Tick {
                        value: v,
                        label: fmt(v),
                    });
                }
            }
        }
        Axis {
            title: title.to_string(),
            scale: Scale::Log10,
            lo,
            hi,
            ticks,
        }
    }

    /// A value axis from the data's range: log10 when max/min exceeds
    /// [`LOG_RATIO`] (and all values are positive), else linear from zero.
    pub fn auto(title: &str, values: &[f64], fmt: &dyn Fn(f64) -> String) -> Axis {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        if finite.is_empty() {
            return Axis::linear(title, 0.0, 1.0, fmt);
        }
        if min > 0.0 && max / min > LOG_RATIO {
            let mut a = Axis::log10(title, min, max, fmt);
            a.title.push_str(" — log scale");
            a
        } else {
            Axis::linear(title, 0.0f64.min(min), max, fmt)
        }
    }

    /// A log2 axis ticked at exactly the thread counts present, so ticks
    /// are never crowded and never fractional.
    pub fn threads(title: &str, counts: &[usize]) -> Axis {
        let mut counts: Vec<usize> = counts.iter().copied().filter(|&c| c > 0).collect();
        counts.sort_unstable();
        counts.dedup();
        let (lo, hi) = match (counts.first(), counts.last()) {
            (Some(&a), Some(&b)) if a < b => (a as f64, b as f64),
            (Some(&a), _) => (a as f64 / 2.0, a as f64 * 2.0),
            _ => (1.0, 2.0),
        };
        // Half a step of padding on each side so end points are not on the frame.
        let pad = 2f64.powf(0.25);
        Axis {
            title: title.to_string(),
            scale: Scale::Log2,
            lo: lo / pad,
            hi: hi * pad,
            ticks: counts
                .iter()
                .map(|&c| Tick {
                    value: c as f64,
                    label: c.to_string(),
                })
                .collect(),
        }
    }

    /// HdrHistogram's percentile axis from 50% to `nines` nines
    /// (4 → 99.99%).
    pub fn nines(title: &str, nines: u32) -> Axis {
        let mut ticks = vec![Tick {
            value: 50.0,
            label: "50%".into(),
        }];
        for n in 1..=nines {
            let p = 100.0 * (1.0 - 10f64.powi(-(n as i32)));
            ticks.push(Tick {
                value: p,
                label: format!("{}%", trim_float(p, n as usize)),
            });
        }
        Axis {
            title: title.to_string(),
            scale: Scale::Nines,
            lo: 50.0,
            hi: 100.0 * (1.0 - 10f64.powi(-(nines as i32))),
            ticks,
        }
    }

    fn span(&self) -> (f64, f64) {
        (self.scale.forward(self.lo), self.scale.forward(self.hi))
    }

    /// Position of `v` as a fraction of the axis (0 = lo, 1 = hi); `None`
    /// for values the scale cannot place (log of zero, the 100th
    /// percentile on the nines axis).
    pub(super) fn frac(&self, v: f64) -> Option<f64> {
        let (a, b) = self.span();
        let f = self.scale.forward(v);
        if !f.is_finite() {
            return None;
        }
        if (b - a).abs() < f64::EPSILON {
            return Some(0.5);
        }
        Some((f - a) / (b - a))
    }
}

fn sane_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo.is_finite() { lo } else { 0.0 };
    let hi = if hi.is_finite() { hi } else { 1.0 };
    if hi > lo {
        (lo, hi)
    } else if hi == 0.0 {
        (lo, lo + 1.0)
    } else {
        (lo.min(0.0), hi.abs() * 1.1 + 1e-12)
    }
}

/// The 1-2-5 × 10^k step nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw > 0.0 && raw.is_finite() {
        raw
    } else {
        1.0
    };
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let m = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Rounds to a 1-2-5 × 10^k value, down or up.
fn round_125(v: f64, up: bool) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0];
    if up {
        steps
            .iter()
            .map(|s| s * mag)
            .find(|s| *s >= v * 0.999)
            .unwrap_or(10.0 * mag)
    } else {
        steps
            .iter()
            .rev()
            .map(|s| s * mag)
            .find(|s| *s <= v * 1.001)
            .unwrap_or(mag)
    }
}

fn trim_float(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: f64) -> String {
        format!("{v}")
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_data() {
        let a = Axis::linear("y", 0.0, 7.3, &plain);
        assert_eq!(a.lo, 0.0);
        assert!(a.hi >= 7.3);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "2", "4", "6", "8"]);
    }

    #[test]
    fn log_ticks_are_decades_or_125() {
        let wide = Axis::log10("y", 30.0, 40_000.0, &plain);
        let v: Vec<f64> = wide.ticks.iter().map(|t| t.value).collect();
        assert_eq!(v, [100.0, 1000.0, 10_000.0]);
        let narrow = Axis::log10("y", 3.0, 90.0, &plain);
        let v: Vec<f64> = narrow.ticks.iter().map(|t| t.value).collect();
        assert_eq!(v, [2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
    }

    #[test]
    fn auto_switches_to_log_beyond_the_ratio() {
        assert_eq!(Axis::auto("y", &[1.0, 10.0], &plain).scale, Scale::Linear);
        assert_eq!(Axis::auto("y", &[1.0, 100.0], &plain).scale, Scale::Log10);
    }

    #[test]
    fn nines_axis_places_percentiles_at_integer_nines() {
        let a = Axis::nines("p", 4);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.99%"]);
        // x(50%) = log10(2), x(90%) = 1, x(99.99%) = 4.
        let f = a.frac(90.0).unwrap();
        assert!((f - (1.0 - 2f64.log10()) / (4.0 - 2f64.log10())).abs() < 1e-9);
        assert_eq!(a.frac(100.0), None);
    }
}
