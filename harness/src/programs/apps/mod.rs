//! The application programs: real Rust programs on a `rayon` pool of the
//! cell's thread count, where work stealing makes blocks cross threads the
//! way real code does.
//!
//! Each program has a size parameter with a documented default (about half
//! a second of work on one thread of a 2020s x86-64 core in release mode),
//! a unit of work, and a result check computed independently of the run
//! (from the input's generator or from a closed form), so that neither the
//! optimiser nor a broken allocator goes unnoticed: a wrong result is
//! [`AppError::Check`], naming what mismatched. Input is generated before
//! the measured part and checked after it; only the program's own work is
//! timed (possibly in more than one segment, see each program).
//!
//! [`run`] runs one program; `cell` is the child process that runs one with
//! the subject as its global allocator and prints its metrics.

use std::time::{Duration, Instant};

use crate::subjects::{corrupt, global as switch};

mod binary_trees;
mod json;
mod measure;
mod string_sort;
mod word_count;

pub use measure::measure;

/// What the registry says about one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppInfo {
    pub name: &'static str,
    pub about: &'static str,
    /// What `size` counts.
    pub size_means: &'static str,
    /// The unit of work reported per second.
    pub unit: &'static str,
    pub default_size: u64,
    /// Smallest and largest sizes accepted.
    pub min_size: u64,
    pub max_size: u64,
}

/// Every program, in listing order.
pub const ALL: &[AppInfo] = &[
    binary_trees::INFO,
    word_count::INFO,
    string_sort::INFO,
    json::INFO,
];

impl AppInfo {
    /// The size `--quick` runs: an eighth of the work (binary-trees: two
    /// levels less), within the program's range.
    pub fn quick_size(&self) -> u64 {
        let s = if self.name == "binary-trees" {
            self.default_size.saturating_sub(2)
        } else {
            self.default_size / 8
        };
        s.clamp(self.min_size, self.max_size)
    }
}

/// The program called `name`.
pub fn info(name: &str) -> Option<&'static AppInfo> {
    ALL.iter().find(|a| a.name == name)
}

/// The programs as `poolbench list` shows them.
pub fn listing() -> String {
    let mut out = String::from("Applications (real programs on rayon; -w NAME):\n");
    for a in ALL {
        out.push_str(&format!(
            "  {:<14}{}\n  {:<14}size: {} (default {}), unit: {}\n",
            a.name, a.about, "", a.size_means, a.default_size, a.unit
        ));
    }
    out
}

/// One run of a program.
#[derive(Clone, Debug)]
pub struct AppRun {
    pub app: &'static str,
    pub size: u64,
    pub threads: usize,
    pub unit: &'static str,
    /// Units of work done in the measured part.
    pub units: u64,
    /// Time of the measured part (the sum of its segments).
    pub elapsed: Duration,
    /// Start of the first measured segment and end of the last.
    pub measured_from: Instant,
    pub measured_to: Instant,
    /// A checksum of the result: the same for every subject and thread
    /// count at one size.
    pub checksum: u64,
    /// Generating the input, and checking the result (not measured).
    pub prepare: Duration,
    pub verify: Duration,
}

impl AppRun {
    /// Units of work per second of the measured part.
    pub fn units_per_sec(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why a program did not produce a checked result.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("unknown application `{0}`; accepted: {names}", names = names())]
    Unknown(String),
    #[error("{app}: size {size} is out of range ({min}..={max})")]
    Size {
        app: &'static str,
        size: u64,
        min: u64,
        max: u64,
    },
    #[error("threads must be at least 1")]
    Threads,
    #[error("cannot build the thread pool: {0}")]
    Pool(String),
    /// The result is wrong: `what` names the mismatch.
    #[error("{app}: result check failed: {what}")]
    Check { app: &'static str, what: String },
}

fn names() -> String {
    ALL.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
}

/// Runs program `name` at `size` on a pool of `threads` and checks its
/// result.
pub fn run(name: &str, size: u64, threads: usize) -> Result<AppRun, AppError> {
    run_with_peak(name, size, threads, &mut || {})
}

/// [`run`], calling `at_peak` once at the program's natural peak: after
/// its main measured segment, while its result is live (the cell takes its
/// "at peak" snapshot there).
pub fn run_with_peak(
    name: &str,
    size: u64,
    threads: usize,
    at_peak: &mut dyn FnMut(),
) -> Result<AppRun, AppError> {
    let app = info(name).ok_or_else(|| AppError::Unknown(name.to_string()))?;
    if !(app.min_size..=app.max_size).contains(&size) {
        return Err(AppError::Size {
            app: app.name,
            size,
            min: app.min_size,
            max: app.max_size,
        });
    }
    if threads == 0 {
        return Err(AppError::Threads);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| AppError::Pool(e.to_string()))?;
    let mut m = Measure::new(at_peak);
    let result = match app.name {
        "binary-trees" => binary_trees::run(&pool, size, &mut m),
        "word-count" => word_count::run(&pool, size, &mut m),
        "string-sort" => string_sort::run(&pool, size, &mut m),
        "json" => json::run(&pool, size, &mut m),
        _ => unreachable!("every registered program is dispatched"),
    };
    let Done { units, checksum } = result.map_err(|what| AppError::Check {
        app: app.name,
        what,
    })?;
    let (measured_from, measured_to) = m.span.expect("every program times its work");
    Ok(AppRun {
        app: app.name,
        size,
        threads,
        unit: app.unit,
        units,
        elapsed: m.elapsed,
        measured_from,
        measured_to,
        checksum,
        prepare: m.prepare,
        verify: m.verify,
    })
}

/// What a program returns when its check passed.
struct Done {
    units: u64,
    checksum: u64,
}

/// The program's clock: measured segments, with the corrupting test
/// subject armed during them (and only then), and the untimed phases.
struct Measure<'a> {
    elapsed: Duration,
    span: Option<(Instant, Instant)>,
    prepare: Duration,
    verify: Duration,
    at_peak: Option<&'a mut dyn FnMut()>,
}

impl<'a> Measure<'a> {
    fn new(at_peak: &'a mut dyn FnMut()) -> Self {
        Measure {
            elapsed: Duration::ZERO,
            span: None,
            prepare: Duration::ZERO,
            verify: Duration::ZERO,
            at_peak: Some(at_peak),
        }
    }

    /// Runs a measured segment.
    fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let corrupting = switch::active().name == "corrupt";
        if corrupting {
            corrupt::arm();
        }
        let t0 = Instant::now();
        let r = f();
        let t1 = Instant::now();
        if corrupting {
            corrupt::disarm();
        }
        self.elapsed += t1 - t0;
        self.span = Some((self.span.map_or(t0, |s| s.0), t1));
        r
    }

    /// Generates input (untimed).
    fn prepare<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t0 = Instant::now();
        let r = f();
        self.prepare += t0.elapsed();
        r
    }

    /// Checks the result (untimed).
    fn verify<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t0 = Instant::now();
        let r = f();
        self.verify += t0.elapsed();
        r
    }

    /// The program's result is live: the peak snapshot, once.
    fn peak(&mut self) {
        if let Some(f) = self.at_peak.take() {
            f();
        }
    }
}

/// FNV-1a over `bytes`, then a SplitMix64 finaliser so that sums of
/// hashes (order-independent multiset fingerprints) spread well.
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small sizes: fast in debug mode.
    pub(super) fn small(name: &str) -> u64 {
        match name {
            "binary-trees" => 8,
            "word-count" => 20_000,
            "string-sort" => 5_000,
            "json" => 200,
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_program_passes_its_check_with_one_and_two_threads() {
        for app in ALL {
            let size = small(app.name);
            let one = run(app.name, size, 1).unwrap_or_else(|e| panic!("{e}"));
            let two = run(app.name, size, 2).unwrap_or_else(|e| panic!("{e}"));
            assert!(one.units > 0, "{}", app.name);
            assert_eq!(one.units, two.units, "{}", app.name);
            assert_eq!(one.checksum, two.checksum, "{}", app.name);
            assert!(one.measured_from <= one.measured_to);
            assert_eq!((one.app, one.unit, two.threads), (app.name, app.unit, 2));
        }
    }

    #[test]
    fn peak_hook_runs_once() {
        let mut calls = 0;
        run_with_peak("word-count", 1_000, 1, &mut || calls += 1).unwrap();
        assert_eq!(calls, 1);
    }

    #[test]
    fn registry_is_consistent() {
        for a in ALL {
            assert!(a.min_size <= a.default_size && a.default_size <= a.max_size);
            assert!(a.min_size <= small(a.name) && small(a.name) <= a.max_size);
            assert_eq!(info(a.name), Some(a));
            assert!(listing().contains(a.name));
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        let e = run("quicksort", 10, 1).unwrap_err();
        assert!(e
            .to_string()
            .contains("binary-trees, word-count, string-sort, json"));
        assert!(matches!(run("json", 0, 1), Err(AppError::Size { .. })));
        assert!(matches!(run("json", 10, 0), Err(AppError::Threads)));
    }

    #[test]
    fn hash_is_fnv_then_mixed() {
        assert_eq!(hash(b""), mix(0xcbf2_9ce4_8422_2325));
        assert_ne!(hash(b"ab"), hash(b"ba"));
    }
}
