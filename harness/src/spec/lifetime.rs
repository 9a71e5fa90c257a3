//! Lifetimes: when the blocks a workload allocates die.
//!
//! A [`Lifetime`] decides which slot each allocation fills and which block
//! is freed next (see `plan.rs`, which turns it into actions); like sizes,
//! it is a tagged TOML table or a compact string (`fifo:64`,
//! `random:1000`, `batch:100:lifo`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::field::{from_table, Custom, FieldValue};
use super::size::{check_size, parse_f64, parse_usize, SizeDist};

/// Most slots (live blocks) one thread's plan may keep.
pub const MAX_SLOTS: usize = 1 << 24;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FreeOrder {
    /// Reverse of allocation (stack order).
    Lifo,
    /// Allocation order (queue order).
    Fifo,
    /// A fresh random permutation each batch.
    Random,
    /// Each batch picks one of the three above at random.
    Mixed,
}

impl FreeOrder {
    const ACCEPTED: &'static str = "lifo, fifo, random, mixed";

    fn parse(s: &str) -> Option<FreeOrder> {
        Some(match s {
            "lifo" => FreeOrder::Lifo,
            "fifo" => FreeOrder::Fifo,
            "random" => FreeOrder::Random,
            "mixed" => FreeOrder::Mixed,
            _ => return None,
        })
    }
}

/// When blocks die.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Lifetime {
    /// Each block is freed right after it is allocated (one slot).
    Immediate,
    /// A FIFO window: once `window` blocks are live, each allocation is
    /// preceded by freeing the oldest.
    Fifo {
        /// Blocks live at once.
        window: usize,
    },
    /// Random slot replacement over `slots` slots (larson): the slots are
    /// filled once, then a random slot's block is freed and replaced.
    Random {
        /// Blocks live at once.
        slots: usize,
    },
    /// Allocate `count` blocks, then free all of them in `order`; repeat.
    Batch {
        /// Blocks per batch.
        count: usize,
        /// Order of the frees.
        order: FreeOrder,
    },
    /// A ring of `slots` slots (sh6bench): fill every slot in order; then,
    /// at each wrap, keep a window of `keep × slots` slots (the next one
    /// each wrap), free the slots below the window in allocation order and
    /// those above it in reverse, and fill the freed slots again. A kept
    /// block survives one more cycle.
    Ring {
        /// Slots in the ring.
        slots: usize,
        /// Fraction (0..1) of the slots kept at each wrap.
        keep: f64,
    },
    /// Short-lived blocks in a FIFO window of `window`, and with probability
    /// `fraction` a long-lived survivor instead: survivors fill `slots`
    /// slots, then each new one replaces a random older one.
    LongLived {
        /// Fraction (0..=1) of allocations that are survivors.
        fraction: f64,
        /// Survivors live at once.
        slots: usize,
        /// FIFO window of the short-lived blocks.
        window: usize,
        /// Size distribution of survivors (default: the workload's `size`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<SizeDist>,
    },
}

/// The rule every lifetime obeys.
pub const LIFETIME_RULE: Custom<Lifetime> = Custom {
    accepted: "immediate, fifo:WINDOW, random:SLOTS, batch:COUNT:lifo|fifo|random|mixed, \
ring:SLOTS:KEEP, long-lived:FRACTION:SLOTS:WINDOW, \
or a table { kind = \"immediate\"|\"fifo\"|\"random\"|\"batch\"|\"ring\"|\"long-lived\", ... }; \
counts 1..=16777216",
    check: check_lifetime,
};

impl FieldValue for Lifetime {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Lifetime::parse(&s),
            v => from_table(v),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Lifetime {
    /// Slots a thread's plan uses (the driver's slot table size).
    pub fn slots(&self) -> usize {
        match self {
            Lifetime::Immediate => 1,
            Lifetime::Fifo { window: n }
            | Lifetime::Random { slots: n }
            | Lifetime::Batch { count: n, .. }
            | Lifetime::Ring { slots: n, .. } => *n,
            Lifetime::LongLived { slots, window, .. } => window + slots,
        }
    }
}

/// Checks counts and fractions; `Err` says what is wrong.
pub fn check_lifetime(l: &Lifetime) -> Result<(), String> {
    let count_ok = |n: usize| (1..=MAX_SLOTS).contains(&n);
    match l {
        Lifetime::Immediate => Ok(()),
        Lifetime::Fifo { window: n } | Lifetime::Random { slots: n } => {
            if count_ok(*n) {
                Ok(())
            } else {
                Err(String::from("count out of range"))
            }
        }
        Lifetime::Batch { count, .. } => {
            if count_ok(*count) {
                Ok(())
            } else {
                Err(String::from("batch count out of range"))
            }
        }
        Lifetime::Ring { slots, keep } => {
            if !(2..=MAX_SLOTS).contains(slots) {
                return Err(String::from("ring slots out of range (2..=16777216)"));
            }
            if !keep.is_finite() || !(0.0..1.0).contains(keep) {
                return Err(String::from("keep is not a fraction below 1"));
            }
            Ok(())
        }
        Lifetime::LongLived {
            fraction,
            slots,
            window,
            size,
        } => {
            if !fraction.is_finite() || !(0.0..=1.0).contains(fraction) {
                return Err(String::from("fraction is not a fraction"));
            }
            if !count_ok(*slots) || !count_ok(*window) {
                return Err(String::from("slots or window out of range"));
            }
            if let Some(size) = size {
                check_size(size).map_err(|why| format!("survivor size: {why}"))?;
            }
            Ok(())
        }
    }
}

impl Lifetime {
    /// Parses the compact form: `immediate`, `fifo:64`, `random:1000`,
    /// `batch:100:lifo` (order `lifo`, `fifo`, `random` or `mixed`),
    /// `long-lived:0.02:2000:16` (fraction, survivor slots, short window;
    /// survivors take the workload's size distribution).
    pub fn parse(s: &str) -> Result<Lifetime, String> {
        let mut parts = s.trim().split(':');
        let kind = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        let want = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "{kind} takes {n} argument(s) after ':', got {}",
                    args.len()
                ))
            }
        };
        match kind {
            "immediate" => want(0).map(|_| Lifetime::Immediate),
            "fifo" => {
                want(1)?;
                Ok(Lifetime::Fifo {
                    window: parse_usize(args[0], "window")?,
                })
            }
            "random" => {
                want(1)?;
                Ok(Lifetime::Random {
                    slots: parse_usize(args[0], "slots")?,
                })
            }
            "batch" => {
                want(2)?;
                Ok(Lifetime::Batch {
                    count: parse_usize(args[0], "count")?,
                    order: FreeOrder::parse(args[1]).ok_or_else(|| {
                        format!("order {:?}: expected {}", args[1], FreeOrder::ACCEPTED)
                    })?,
                })
            }
            "ring" => {
                want(2)?;
                Ok(Lifetime::Ring {
                    slots: parse_usize(args[0], "slots")?,
                    keep: parse_f64(args[1], "keep")?,
                })
            }
            "long-lived" => {
                want(3)?;
                Ok(Lifetime::LongLived {
                    fraction: parse_f64(args[0], "fraction")?,
                    slots: parse_usize(args[1], "slots")?,
                    window: parse_usize(args[2], "window")?,
                    size: None,
                })
            }
            _ => Err(format!("unknown lifetime kind {kind:?}")),
        }
    }
}

impl fmt::Display for Lifetime {
    /// The compact form [`Lifetime::parse`] reads back; a long-lived
    /// lifetime with its own survivor sizes has none, and is written as a
    /// TOML inline table, which `set` also reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::Immediate => f.write_str("immediate"),
            Lifetime::Fifo { window } => write!(f, "fifo:{window}"),
            Lifetime::Random { slots } => write!(f, "random:{slots}"),
            Lifetime::Ring { slots, keep } => write!(f, "ring:{slots}:{keep}"),
            Lifetime::Batch { count, order } => {
                let order = match order {
                    FreeOrder::Lifo => "lifo",
                    FreeOrder::Fifo => "fifo",
                    FreeOrder::Random => "random",
                    FreeOrder::Mixed => "mixed",
                };
                write!(f, "batch:{count}:{order}")
            }
            Lifetime::LongLived {
                fraction,
                slots,
                window,
                size: None,
            } => write!(f, "long-lived:{fraction}:{slots}:{window}"),
            Lifetime::LongLived { .. } => match toml::Value::try_from(self) {
                Ok(v) => write!(f, "{v}"),
                Err(_) => write!(f, "{self:?}"),
            },
        }
    }
}
