//! Size distributions: what a workload asks to allocate.
//!
//! A [`SizeDist`] is data (a tagged TOML table or a compact string such as
//! `16..512` or `log-uniform:16..4096`); a [`SizeSampler`] is the same
//! distribution prepared for drawing sizes without allocating, used only
//! while a tape is compiled, never in the measured loop.

use std::fmt;

use rand::distr::weighted::WeightedIndex;
use rand::distr::{Distribution, Uniform};
use rand::rngs::SmallRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::field::{from_table, Custom, FieldValue};

/// Largest block size any distribution may produce (256 MiB).
pub const MAX_BLOCK_SIZE: usize = 1 << 28;

/// Distribution of requested sizes, in bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SizeDist {
    /// Always `size`.
    Fixed {
        /// The one size requested.
        size: usize,
    },
    /// Uniform over `min..=max`.
    Uniform {
        /// Smallest size.
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Log-uniform over `min..=max`: each octave equally likely.
    LogUniform {
        /// Smallest size (at least 1).
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Density proportional to 1/size² over `min..=max`: many small
    /// blocks, a long thin tail of large ones (glibc's bench-malloc-thread).
    InverseSquare {
        /// Smallest size (at least 1).
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Sizes drawn from a table with relative weights.
    Weighted {
        /// Non-empty; weights need not sum to 1.
        table: Vec<WeightedSize>,
    },
    /// CPython-like object sizes: mostly 16–512 B (the pymalloc range,
    /// weighted towards 16–64 B) and a thin log-uniform tail of large
    /// requests above 512 B.
    Python {
        /// Fraction (0..=1) of requests in the large tail.
        #[serde(default = "python_large_fraction")]
        large_fraction: f64,
        /// Largest tail size (above 512).
        #[serde(default = "python_large_max")]
        large_max: usize,
    },
}

fn python_large_fraction() -> f64 {
    0.02
}

fn python_large_max() -> usize {
    64 * 1024
}

/// One row of a [`SizeDist::Weighted`] table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedSize {
    /// Requested size in bytes.
    pub size: usize,
    /// Relative weight (finite, not negative).
    pub weight: f64,
}

/// The small-object bands of [`SizeDist::Python`]: `(lo, hi, weight)`.
///
/// Our own shaping, after the sizes of common CPython objects (ints and
/// floats of 24–32 B, small tuples, lists and strings of 40–64 B, dicts and
/// sets above 100 B), not a measured trace.
const PYTHON_BANDS: [(usize, usize, f64); 5] = [
    (16, 32, 0.30),
    (33, 64, 0.34),
    (65, 128, 0.18),
    (129, 256, 0.12),
    (257, 512, 0.06),
];

/// The rule every size distribution obeys.
pub const SIZE_RULE: Custom<SizeDist> = Custom {
    accepted: "N (fixed), MIN..MAX (uniform), log-uniform:MIN..MAX, \
inverse-square:MIN..MAX, weighted:SIZE=WEIGHT;..., python[:LARGE_FRACTION[:LARGE_MAX]], \
or a table { kind = \"fixed\"|\"uniform\"|\"log-uniform\"|\"inverse-square\"|\"weighted\"|\"python\", ... }; \
sizes 1..=268435456",
    check: check_size,
};

impl FieldValue for SizeDist {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => SizeDist::parse(&s),
            toml::Value::Integer(n) => usize::try_from(n)
                .map(|size| SizeDist::Fixed { size })
                .map_err(|_| "a size cannot be negative".to_string()),
            v => from_table(v),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// Checks ranges and tables; `Err` says what is wrong.
pub fn check_size(d: &SizeDist) -> Result<(), String> {
    let in_range = |n: usize| (1..=MAX_BLOCK_SIZE).contains(&n);
    let check_range = |min: usize, max: usize| {
        if !in_range(min) || !in_range(max) {
            Err(String::from("sizes must be 1..=268435456"))
        } else if min > max {
            Err(format!("min {min} > max {max}"))
        } else {
            Ok(())
        }
    };
    match d {
        SizeDist::Fixed { size } => check_range(*size, *size),
        SizeDist::Uniform { min, max }
        | SizeDist::LogUniform { min, max }
        | SizeDist::InverseSquare { min, max } => check_range(*min, *max),
        SizeDist::Weighted { table } => {
            if table.is_empty() {
                return Err(String::from("the weighted table is empty"));
            }
            for row in table {
                if !in_range(row.size) {
                    return Err(String::from("sizes must be 1..=268435456"));
                }
                if !row.weight.is_finite() || row.weight < 0.0 {
                    return Err(format!("weight {} is not a finite number >= 0", row.weight));
                }
            }
            if table.iter().all(|r| r.weight == 0.0) {
                return Err(String::from("every weight is zero"));
            }
            Ok(())
        }
        SizeDist::Python {
            large_fraction,
            large_max,
        } => {
            if !large_fraction.is_finite() || !(0.0..=1.0).contains(large_fraction) {
                return Err(String::from("large_fraction is not a fraction"));
            }
            if *large_max <= allocator::geometry::SMALL_REQUEST_THRESHOLD
                || *large_max > MAX_BLOCK_SIZE
            {
                return Err(String::from("large_max must be 513..=268435456"));
            }
            Ok(())
        }
    }
}

pub(crate) fn parse_usize(s: &str, what: &str) -> Result<usize, String> {
    s.trim()
        .replace('_', "")
        .parse::<usize>()
        .map_err(|_| format!("{what} {s:?} is not a whole number"))
}

pub(crate) fn parse_f64(s: &str, what: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("{what} {s:?} is not a number"))
}

pub(crate) fn parse_range(s: &str) -> Result<(usize, usize), String> {
    let (lo, hi) = s
        .split_once("..=")
        .or_else(|| s.split_once(".."))
        .ok_or_else(|| format!("expected MIN..MAX, got {s:?}"))?;
    Ok((parse_usize(lo, "min")?, parse_usize(hi, "max")?))
}
impl SizeDist {
    /// Parses the compact form: `64` (fixed), `16..512` (uniform, both
    /// ends included; `..=` also accepted), `fixed:64`, `uniform:16..512`,
    /// `log-uniform:16..4096`, `inverse-square:4..32768`,
    /// `weighted:16=5,64=2,4096=1`, `python`, `python:0.02`,
    /// `python:0.02:65536`. Ranges are checked by [`Workload::validate`].
    pub fn parse(s: &str) -> Result<SizeDist, String> {
        let s = s.trim();
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "fixed" => Ok(SizeDist::Fixed {
                size: parse_usize(rest, "size")?,
            }),
            "uniform" => parse_range(rest).map(|(min, max)| SizeDist::Uniform { min, max }),
            "log-uniform" => parse_range(rest).map(|(min, max)| SizeDist::LogUniform { min, max }),
            "inverse-square" => {
                parse_range(rest).map(|(min, max)| SizeDist::InverseSquare { min, max })
            }
            "weighted" => {
                let table = rest
                    .split([',', ';'])
                    .filter(|e| !e.trim().is_empty())
                    .map(|e| {
                        let (size, weight) = e
                            .split_once('=')
                            .ok_or_else(|| format!("expected SIZE=WEIGHT, got {e:?}"))?;
                        Ok(WeightedSize {
                            size: parse_usize(size, "size")?,
                            weight: parse_f64(weight, "weight")?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(SizeDist::Weighted { table })
            }
            "python" => {
                let mut parts = rest.split(':').filter(|p| !p.is_empty());
                let large_fraction = parts
                    .next()
                    .map(|p| parse_f64(p, "large_fraction"))
                    .transpose()?
                    .unwrap_or_else(python_large_fraction);
                let large_max = parts
                    .next()
                    .map(|p| parse_usize(p, "large_max"))
                    .transpose()?
                    .unwrap_or_else(python_large_max);
                if let Some(extra) = parts.next() {
                    return Err(format!("unexpected {extra:?} after python:FRACTION:MAX"));
                }
                Ok(SizeDist::Python {
                    large_fraction,
                    large_max,
                })
            }
            _ if rest.is_empty() && s.contains("..") => {
                parse_range(s).map(|(min, max)| SizeDist::Uniform { min, max })
            }
            _ if rest.is_empty() => parse_usize(s, "size")
                .map(|size| SizeDist::Fixed { size })
                .map_err(|_| format!("unknown size distribution {s:?}")),
            _ => Err(format!("unknown size distribution kind {kind:?}")),
        }
    }
}

impl fmt::Display for SizeDist {
    /// The compact form [`SizeDist::parse`] reads back (weighted rows are
    /// separated by `;` so that the text survives comma-separated sweeps).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeDist::Fixed { size } => write!(f, "{size}"),
            SizeDist::Uniform { min, max } => write!(f, "{min}..{max}"),
            SizeDist::LogUniform { min, max } => write!(f, "log-uniform:{min}..{max}"),
            SizeDist::InverseSquare { min, max } => write!(f, "inverse-square:{min}..{max}"),
            SizeDist::Weighted { table } => {
                f.write_str("weighted:")?;
                for (i, row) in table.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ";" };
                    write!(f, "{sep}{}={}", row.size, row.weight)?;
                }
                Ok(())
            }
            SizeDist::Python {
                large_fraction,
                large_max,
            } => write!(f, "python:{large_fraction}:{large_max}"),
        }
    }
}

/// A size distribution prepared for sampling: no allocation per sample.
#[derive(Clone, Debug)]
pub(crate) enum SizeSampler {
    Fixed(usize),
    Uniform(Uniform<usize>),
    Log(LogBand),
    InverseSquare {
        inv_lo: f64,
        inv_span: f64,
        lo: usize,
        hi: usize,
    },
    Table {
        index: WeightedIndex<f64>,
        bands: Box<[Band]>,
    },
}

/// Log-uniform over `lo..=hi`, sampled as exp of a uniform in log space.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogBand {
    ln_lo: f64,
    ln_span: f64,
    lo: usize,
    hi: usize,
}

impl LogBand {
    fn new(lo: usize, hi: usize) -> LogBand {
        let lo = lo.max(1);
        let hi = hi.max(lo);
        let ln_lo = (lo as f64).ln();
        // Sample [lo, hi + 1) and floor, so that `hi` is as likely as its
        // neighbours.
        LogBand {
            ln_lo,
            ln_span: ((hi + 1) as f64).ln() - ln_lo,
            lo,
            hi,
        }
    }

    fn sample(&self, rng: &mut SmallRng) -> usize {
        let u: f64 = rng.random();
        ((self.ln_lo + u * self.ln_span).exp() as usize).clamp(self.lo, self.hi)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Band {
    Uniform(usize, usize),
    Log(LogBand),
}

pub(crate) fn uniform(lo: usize, hi: usize) -> Uniform<usize> {
    let (lo, hi) = (lo.min(hi).max(1), hi.max(lo).max(1));
    // lo <= hi, so this cannot fail; the fallback only keeps us panic-free.
    Uniform::new_inclusive(lo, hi)
        .unwrap_or_else(|_| Uniform::new_inclusive(1usize, 1usize).expect("1..=1 is a valid range"))
}

impl SizeSampler {
    pub(crate) fn new(d: &SizeDist) -> SizeSampler {
        let clamp = |n: usize| n.clamp(1, MAX_BLOCK_SIZE);
        match d {
            SizeDist::Fixed { size } => SizeSampler::Fixed(clamp(*size)),
            SizeDist::Uniform { min, max } => {
                SizeSampler::Uniform(uniform(clamp(*min), clamp(*max)))
            }
            SizeDist::LogUniform { min, max } => {
                SizeSampler::Log(LogBand::new(clamp(*min), clamp(*max)))
            }
            SizeDist::InverseSquare { min, max } => {
                let lo = clamp(*min.min(max));
                let hi = clamp(*max.max(min));
                // Inverse CDF of a density proportional to 1/x² on
                // [lo, hi + 1): x = 1 / (1/lo - u (1/lo - 1/(hi + 1))).
                let inv_lo = 1.0 / lo as f64;
                SizeSampler::InverseSquare {
                    inv_lo,
                    inv_span: inv_lo - 1.0 / (hi + 1) as f64,
                    lo,
                    hi,
                }
            }
            SizeDist::Weighted { table } => {
                let bands: Vec<Band> = table
                    .iter()
                    .map(|r| Band::Uniform(clamp(r.size), clamp(r.size)))
                    .collect();
                let weights = table.iter().map(|r| {
                    if r.weight.is_finite() {
                        r.weight.max(0.0)
                    } else {
                        0.0
                    }
                });
                match WeightedIndex::new(weights) {
                    Ok(index) => SizeSampler::Table {
                        index,
                        bands: bands.into_boxed_slice(),
                    },
                    // Only an invalid (empty or all-zero) table gets here.
                    Err(_) => SizeSampler::Fixed(table.first().map_or(1, |r| clamp(r.size))),
                }
            }
            SizeDist::Python {
                large_fraction,
                large_max,
            } => {
                let large = if large_fraction.is_finite() {
                    large_fraction.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let small_total: f64 = PYTHON_BANDS.iter().map(|b| b.2).sum();
                let mut bands: Vec<Band> = PYTHON_BANDS
                    .iter()
                    .map(|&(lo, hi, _)| Band::Uniform(lo, hi))
                    .collect();
                let mut weights: Vec<f64> = PYTHON_BANDS
                    .iter()
                    .map(|b| b.2 / small_total * (1.0 - large))
                    .collect();
                let threshold = allocator::geometry::SMALL_REQUEST_THRESHOLD;
                bands.push(Band::Log(LogBand::new(
                    threshold + 1,
                    clamp(*large_max).max(threshold + 1),
                )));
                weights.push(large);
                match WeightedIndex::new(weights) {
                    Ok(index) => SizeSampler::Table {
                        index,
                        bands: bands.into_boxed_slice(),
                    },
                    Err(_) => SizeSampler::Fixed(64),
                }
            }
        }
    }

    #[inline]
    pub(crate) fn sample(&self, rng: &mut SmallRng) -> usize {
        match self {
            SizeSampler::Fixed(n) => *n,
            SizeSampler::Uniform(u) => u.sample(rng),
            SizeSampler::Log(b) => b.sample(rng),
            SizeSampler::InverseSquare {
                inv_lo,
                inv_span,
                lo,
                hi,
            } => {
                let u: f64 = rng.random();
                ((1.0 / (inv_lo - u * inv_span)) as usize).clamp(*lo, *hi)
            }
            SizeSampler::Table { index, bands } => match bands[index.sample(rng)] {
                Band::Uniform(lo, hi) if lo == hi => lo,
                Band::Uniform(lo, hi) => rng.random_range(lo..=hi),
                Band::Log(b) => b.sample(rng),
            },
        }
    }
}
