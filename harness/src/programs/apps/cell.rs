//! The application cell's child process: `poolbench app-cell --app NAME
//! [--size N] [--threads T]`, started with `POOLBENCH_GLOBAL=SUBJECT` (and
//! `POOLBENCH_GEOMETRY`) in its environment so that the subject serves
//! every allocation of the process (see `programs::switch`).
//!
//! It runs the program once while a sampler thread records RSS over time,
//! takes a snapshot at the program's peak (RSS, our subjects' accounting,
//! the references' own statistics) and another at the end, and prints one
//! JSON line ([`AppCellReport`]). Exit status: 0 with the report; 3 when
//! the program's result check failed (the harness's verification code),
//! with the mismatch on stderr; 2 for an unknown program or a size out of
//! range; 1 if the thread pool could not be built.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use allocator::Geometry;
use serde::{Deserialize, Serialize};

use super::{AppError, AppRun};
use crate::cli::{EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, EXIT_VERIFICATION};
use crate::memory::{self, LiveCounters, Sampler};
use crate::programs::{corrupt, switch};
use crate::results::{Accounting, GilCounters, RssSample};

/// The `app-cell` subcommand's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AppCellArgs {
    /// The program (see `poolbench list`).
    #[arg(long)]
    pub app: String,
    /// The program's size parameter (default: the program's own).
    #[arg(long)]
    pub size: Option<u64>,
    /// Threads of the rayon pool.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// What an application cell measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppCellReport {
    pub app: String,
    /// The subject serving the process (from `POOLBENCH_GLOBAL`).
    pub subject: String,
    /// Our subjects' geometry (`classic`, `modern`, `tiny`).
    pub geometry: Option<String>,
    pub threads: usize,
    pub size: u64,
    pub unit: String,
    /// Units of work done in the measured part.
    pub units: u64,
    /// Length of the measured part (the sum of its segments), seconds.
    pub elapsed_s: f64,
    pub units_per_sec: f64,
    /// The program's result checksum: equal across subjects and threads.
    pub checksum: u64,
    /// Generating the input and checking the result (not measured).
    pub prepare_s: f64,
    pub verify_s: f64,
    /// The measured part on the RSS timeline's clock (from the first
    /// segment's start to the last one's end).
    pub measured_from_s: f64,
    pub measured_to_s: f64,
    pub memory: AppMemory,
    /// GIL counters, for the `gil` subject.
    pub gil: Option<GilCounters>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppMemory {
    /// RSS sampled every 5 ms from the cell's start (input generation
    /// included; see `measured_from_s`).
    pub rss_timeline: Vec<RssSample>,
    /// RSS when the cell started, before the input was generated.
    pub rss_baseline_bytes: u64,
    /// Peak RSS of the process (getrusage `ru_maxrss`).
    pub peak_rss_bytes: u64,
    /// RSS at the program's peak (its result live) and at the end (after
    /// it freed everything and its pool was dropped).
    pub rss_at_peak_bytes: u64,
    pub rss_end_bytes: u64,
    /// Our subjects: the accounting at the program's peak and at the end.
    pub accounting_at_peak: Option<Accounting>,
    pub accounting_at_end: Option<Accounting>,
    /// Reference subjects: their own statistics, by their own names, at
    /// the program's peak (the whole process: they serve all of it).
    pub reference_stats: BTreeMap<String, u64>,
}

/// One snapshot of the subject's memory.
struct Snapshot {
    rss: u64,
    accounting: Option<Accounting>,
    reference: BTreeMap<String, u64>,
}

fn snapshot(active: &switch::Active) -> Snapshot {
    Snapshot {
        rss: memory::rss_bytes(),
        accounting: active.stats.map(|s| Accounting::from(&s.stats())),
        reference: crate::subject::reference_stats(active.name),
    }
}

fn geometry_name(g: Geometry) -> String {
    [
        ("classic", Geometry::CLASSIC),
        ("modern", Geometry::MODERN),
        ("tiny", Geometry::TINY),
    ]
    .iter()
    .find(|(_, h)| *h == g)
    .map_or_else(|| format!("{g:?}"), |(n, _)| n.to_string())
}

/// Runs the `app-cell` child; returns its exit status.
pub fn cell_main(args: &AppCellArgs) -> u8 {
    let active = switch::active();
    let Some(app) = super::info(&args.app) else {
        eprintln!("{}", AppError::Unknown(args.app.clone()));
        return EXIT_BAD_INPUT;
    };
    let size = args.size.unwrap_or(app.default_size);
    let origin = Instant::now();
    let baseline = memory::rss_bytes();
    let sampler = Sampler::start(origin, Arc::new(LiveCounters::new(0)));
    let mut at_peak = None;
    let result = super::run_with_peak(app.name, size, args.threads, &mut || {
        at_peak = Some(snapshot(&active));
    });
    let sampled = sampler.finish();
    let run: AppRun = match result {
        Ok(run) => run,
        Err(e) => {
            eprintln!("{e}");
            if active.name == "corrupt" {
                eprintln!("corrupt: {} bytes damaged", corrupt::damaged());
            }
            return match e {
                AppError::Check { .. } => EXIT_VERIFICATION,
                AppError::Pool(_) => EXIT_ERROR,
                _ => EXIT_BAD_INPUT,
            };
        }
    };
    let end = snapshot(&active);
    let peak = at_peak.unwrap_or_else(|| snapshot(&active));
    let since = |t: Instant| t.saturating_duration_since(origin).as_secs_f64();
    let report = AppCellReport {
        app: app.name.to_string(),
        subject: active.name.to_string(),
        geometry: active.geometry.map(geometry_name),
        threads: args.threads,
        size,
        unit: app.unit.to_string(),
        units: run.units,
        elapsed_s: run.elapsed.as_secs_f64(),
        units_per_sec: run.units_per_sec(),
        checksum: run.checksum,
        prepare_s: run.prepare.as_secs_f64(),
        verify_s: run.verify.as_secs_f64(),
        measured_from_s: since(run.measured_from),
        measured_to_s: since(run.measured_to),
        memory: AppMemory {
            rss_timeline: sampled.timeline,
            rss_baseline_bytes: baseline,
            peak_rss_bytes: memory::peak_rss_bytes(),
            rss_at_peak_bytes: peak.rss,
            rss_end_bytes: end.rss,
            accounting_at_peak: peak.accounting,
            accounting_at_end: end.accounting,
            reference_stats: peak.reference,
        },
        gil: active.gil.map(|g| {
            let s = g.gil_stats();
            GilCounters {
                acquisitions: s.acquisitions,
                contended: s.contended,
                switches: s.switches,
                switch_interval_us: g.switch_interval().as_micros() as u64,
            }
        }),
    };
    if active.name == "corrupt" {
        eprintln!(
            "corrupt: {} bytes damaged and the check passed",
            corrupt::damaged()
        );
    }
    match serde_json::to_string(&report) {
        Ok(line) => {
            println!("{line}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("cannot encode the report: {e}");
            EXIT_ERROR
        }
    }
}
