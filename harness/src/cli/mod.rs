//! The `poolbench` command line: its grammar (clap derive), its exit codes,
//! and the dispatch from a parsed command to the library.
//!
//! `main.rs` only calls [`main`]; everything a subcommand does lives in its
//! own module (`run` for `run`/`suite`, `cell` for the hidden per-cell child,
//! `report`/`compare` for those). Errors a user caused — an unknown subject,
//! preset or field, a malformed `--set`, an unreadable workload file — are
//! [`BadInput`] and exit with [`EXIT_BAD_INPUT`], the same code clap uses for
//! a malformed command line, so a script can tell "you asked for something
//! wrong" from "some cells failed" ([`EXIT_CELLS_FAILED`]).

pub mod cell;
pub mod exec;
pub mod out;
pub mod program;
pub mod repeats;
pub mod run;
pub mod selfcheck;
pub mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use cell::CrashMode;

/// Everything ran and every cell succeeded.
pub const EXIT_OK: u8 = 0;
/// The harness itself failed (I/O error writing results, report error).
pub const EXIT_ERROR: u8 = 1;
/// Bad input: unknown subject/preset/field, malformed flag or workload file.
pub const EXIT_BAD_INPUT: u8 = 2;
/// (Hidden `cell` child only) verification found a corrupt or misaligned block.
pub const EXIT_VERIFICATION: u8 = 3;
/// The run finished, results were written, and at least one cell failed.
pub const EXIT_CELLS_FAILED: u8 = 4;
/// `compare --fail-on-regression` flagged at least one regression.
pub const EXIT_REGRESSION: u8 = 5;
/// Stopped by SIGINT/SIGTERM (128 + SIGINT, the shell's convention); the
/// cells that finished were saved.
pub const EXIT_INTERRUPTED: u8 = 130;

const EXIT_CODES_HELP: &str = "\
Exit codes:
    0  success: every cell ran and passed
    1  the harness failed (e.g. could not write results or the report)
    2  bad input: unknown subject, preset or workload field, malformed flag,
       unreadable workload file (nothing was run)
    4  the run finished and its results were written, but one or more cells
       failed (crash, signal, timeout, verification, unreadable report)
    5  compare --fail-on-regression: at least one regression was flagged
  130  interrupted (Ctrl-C, SIGTERM); the cells that finished were saved";

pub use crate::error::BadInput;

/// Measure pool allocators under concurrency: a GIL'd pymalloc vs lock-free
/// per-thread heaps vs the allocators people ship.
#[derive(Debug, Parser)]
#[command(name = "poolbench", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List subjects, presets and the workload fields `--set`/`--sweep` accept.
    List,
    /// Run subjects × workloads × threads (× sweep points), each cell in its
    /// own child process; write JSON results and an HTML report.
    #[command(after_help = EXIT_CODES_HELP)]
    Run(RunArgs),
    /// The default suite: every preset × every subject × threads 1 and 2
    /// (flags narrow or change it like `run`'s).
    #[command(after_help = EXIT_CODES_HELP)]
    Suite(RunArgs),
    /// Run any command under each subject (LD_PRELOAD of our allocators,
    /// the references or any .so; CPython's own pymalloc), repeats
    /// interleaved: wall, user and sys time, peak RSS, page faults, and a
    /// figure from its output.
    #[command(after_help = EXIT_CODES_HELP)]
    Exec(ExecArgs),
    /// Verification only: every operation of every cell checks its block
    /// (tags written and checked, nothing timed); one repeat, no floor.
    #[command(after_help = EXIT_CODES_HELP)]
    Stress(RunArgs),
    /// What this machine allows: the clock's overhead, the harness floor
    /// per preset, the calibration error, the run-to-run spread.
    Selfcheck(SelfcheckArgs),
    /// Write the HTML report of an existing results file.
    Report(ReportArgs),
    /// Compare two results files and flag regressions.
    #[command(after_help = EXIT_CODES_HELP)]
    Compare(CompareArgs),
    /// Run one cell in this process and print its metrics as JSON
    /// (internal: `run` starts one child per cell).
    #[command(hide = true)]
    Cell(CellArgs),
    /// Run one application program in this process, with the subject named
    /// by `POOLBENCH_GLOBAL` as the global allocator, and print its metrics
    /// as JSON (internal).
    #[command(hide = true)]
    AppCell(AppCellArgs),
    /// Print the shared object `malloc` resolves to in this process
    /// (internal: how a preloaded library is checked).
    #[command(hide = true)]
    MallocLibrary,
    /// Run a program, wait for it, and print how it ended and what it used
    /// (internal: the parent of a program cell's program).
    #[command(hide = true)]
    TimeProgram(TimeProgramArgs),
}

/// The hidden `time-program` helper.
#[derive(Debug, Clone, Args)]
pub struct TimeProgramArgs {
    /// A variable added to the program's environment; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND ARGS")]
    pub command: Vec<String>,
}

/// Flags shared by `run` and `suite`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Subjects, comma-separated, or `all` (see `poolbench list`).
    #[arg(long, short = 's', value_delimiter = ',', value_name = "NAMES")]
    pub subjects: Vec<String>,
    /// A preset name or a workload TOML file; repeatable.
    /// `run` needs at least one; `suite` defaults to every preset.
    #[arg(long = "workload", short = 'w', value_name = "PRESET|FILE.toml")]
    pub workloads: Vec<String>,
    /// Thread counts, comma-separated (default: the workload's own for
    /// `run`, 1,2 for `suite`).
    #[arg(long, short = 't', value_delimiter = ',', value_name = "N,N,...")]
    pub threads: Vec<usize>,
    /// Override a workload field in every workload; repeatable.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub sets: Vec<String>,
    /// Sweep a workload field over values; repeatable (the cells are the
    /// cross product).
    #[arg(long = "sweep", value_name = "FIELD=V1,V2,...")]
    pub sweeps: Vec<String>,
    /// Run each cell N times, each in a fresh process, interleaved with
    /// the other cells; figures are medians with their intervals (95%
    /// from 6 repeats on).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Scale operation counts down 10× for a fast, rough look.
    #[arg(long)]
    pub quick: bool,
    /// Kill a cell that runs longer than this many seconds.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub timeout: f64,
    /// Directory for the results JSON and the HTML report.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    /// Print the results JSON on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Pin worker thread i to CPU i (mod cores); recorded in the results.
    #[arg(long)]
    pub pin: bool,
    /// Do not add the `null` subject (the harness floor) to every
    /// configuration.
    #[arg(long)]
    pub no_floor: bool,
}

/// Flags of `exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Subjects, comma-separated, or `all` (the default): gil, locked,
    /// tcache, sharded (our preload build), system (nothing preloaded),
    /// mimalloc, jemalloc, snmalloc (their preload builds), pymalloc
    /// (CPython only), so:PATH, preload:NAME.
    #[arg(long, short = 's', value_delimiter = ',', value_name = "NAMES")]
    pub subjects: Vec<String>,
    /// Run each cell N times, interleaved with the other cells.
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// A regex whose first capture group, in the last line of the
    /// program's output that matches (stdout, then stderr), is a figure to
    /// record; a run without it fails.
    #[arg(long, value_name = "REGEX")]
    pub metric: Option<String>,
    /// What the --metric figure is, for the reports (default: the regex).
    #[arg(long, value_name = "NAME", requires = "metric")]
    pub metric_name: Option<String>,
    /// Thread counts, comma-separated: one cell per count, told to the
    /// program in the variable --threads-env names.
    #[arg(long, short = 't', value_delimiter = ',', value_name = "N,N,...")]
    pub threads: Vec<usize>,
    /// The environment variable that tells the program its thread count
    /// (e.g. OMP_NUM_THREADS).
    #[arg(long, value_name = "NAME")]
    pub threads_env: Option<String>,
    /// Our allocators' geometry under the program: classic, modern or tiny.
    #[arg(long, default_value = "modern", value_name = "NAME")]
    pub geometry: String,
    /// The workload's name in results (default: the command's file name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Kill a run that takes longer than this many seconds.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub timeout: f64,
    /// Directory for the results JSON and the HTML report.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    /// Print the results JSON on stdout (the summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress output.
    #[arg(long)]
    pub no_progress: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND ARGS")]
    pub command: Vec<String>,
}

/// The hidden `app-cell` child: one application program, run with the
/// subject (`POOLBENCH_GLOBAL`) as the process's global allocator.
#[derive(Debug, Clone, Args)]
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

#[derive(Debug, Clone, Args)]
pub struct SelfcheckArgs {
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Where the figures are kept for later runs to record.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
    /// Repeats of each measurement.
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u32).range(2..))]
    pub repeat: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A results file written by `run` or `suite`.
    pub results: PathBuf,
    /// Directory for the HTML report.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The baseline results file.
    pub baseline: PathBuf,
    /// The results file to judge against the baseline.
    pub candidate: PathBuf,
    /// Relative change flagged, as a fraction (0.10 = 10%).
    #[arg(long, default_value_t = crate::report::compare::DEFAULT_THRESHOLD, value_name = "FRACTION")]
    pub threshold: f64,
    /// Exit with code 5 when a regression is flagged.
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Directory for the comparison's HTML page.
    #[arg(long, default_value = "reports", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CellArgs {
    /// Subject name.
    #[arg(long)]
    pub subject: String,
    /// The fully resolved workload, as JSON.
    #[arg(long)]
    pub workload_json: String,
    /// Testing the harness: make this cell fail on purpose.
    #[arg(long, value_enum)]
    pub crash: Option<CrashMode>,
    /// Verification only: the measured phase checks every block.
    #[arg(long)]
    pub stress: bool,
    /// Pin worker threads to CPUs.
    #[arg(long)]
    pub pin: bool,
}

/// Parses the process's arguments and runs the command; the binary's entry.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to stdout and exit 0; usage errors
            // exit 2, which is also our bad-input code.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    ExitCode::from(dispatch(cli.command))
}

fn dispatch(command: Command) -> u8 {
    let result = match command {
        Command::List => {
            print!("{}", crate::cli::run::list_text());
            Ok(EXIT_OK)
        }
        Command::Run(args) => crate::cli::run::run_command(&args, false, false),
        Command::Suite(args) => crate::cli::run::run_command(&args, true, false),
        Command::Stress(args) => crate::cli::run::run_command(&args, false, true),
        Command::Exec(args) => crate::cli::exec::command(&args),
        Command::Selfcheck(args) => crate::cli::selfcheck::command(&args),
        Command::Report(args) => report(&args),
        Command::Compare(args) => compare(&args),
        Command::Cell(args) => return crate::cli::cell::child_main(&args),
        Command::AppCell(args) => return crate::cli::cell::app_child_main(&args),
        Command::TimeProgram(args) => {
            return crate::cli::program::time_main(&args.env, &args.command)
        }
        Command::MallocLibrary => {
            println!(
                "{}",
                crate::measure::env::malloc_library().unwrap_or_default()
            );
            Ok(EXIT_OK)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("poolbench: error: {e:#}");
            exit_code_of(&e)
        }
    }
}

/// [`EXIT_BAD_INPUT`] for an error caused by the user, else [`EXIT_ERROR`].
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<BadInput>()) {
        EXIT_BAD_INPUT
    } else {
        EXIT_ERROR
    }
}

fn report(args: &ReportArgs) -> anyhow::Result<u8> {
    let results = crate::results::RunResults::load(&args.results)
        .map_err(|e| BadInput::new(format!("{e:#}")))?;
    let path = crate::report::write_report(&results, &args.out)?;
    println!("report: {}", path.display());
    Ok(EXIT_OK)
}

fn compare(args: &CompareArgs) -> anyhow::Result<u8> {
    use crate::report::compare::{compare, Options};
    use crate::results::RunResults;

    let opts = Options {
        threshold: args.threshold,
        fail_on_regression: args.fail_on_regression,
    };
    opts.validate()
        .map_err(|e| BadInput::new(format!("--threshold: {e:#}")))?;
    let load =
        |p: &std::path::Path| RunResults::load(p).map_err(|e| BadInput::new(format!("{e:#}")));
    let (base, new) = (load(&args.baseline)?, load(&args.candidate)?);
    let cmp = compare(&base, &new, &opts);
    print!("{}", cmp.render_terminal());

    let stem = |p: &std::path::Path| {
        p.file_stem()
            .map_or_else(|| "run".to_string(), |s| s.to_string_lossy().into_owned())
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let page = args.out.join(format!(
        "compare-{}-vs-{}.html",
        stem(&args.baseline),
        stem(&args.candidate)
    ));
    std::fs::write(&page, cmp.render_html()?)
        .with_context(|| format!("cannot write {}", page.display()))?;
    println!("comparison: {}", page.display());
    Ok(if opts.fail_on_regression && cmp.has_regression() {
        EXIT_REGRESSION
    } else {
        EXIT_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_input_anywhere_in_the_chain_maps_to_its_code() {
        let e =
            anyhow::Error::from(BadInput::new("unknown subject `x`")).context("while expanding");
        assert_eq!(exit_code_of(&e), EXIT_BAD_INPUT);
        assert_eq!(exit_code_of(&anyhow::anyhow!("disk full")), EXIT_ERROR);
    }

    #[test]
    fn repeat_zero_is_a_usage_error() {
        let e =
            Cli::try_parse_from(["poolbench", "run", "-w", "larson", "--repeat", "0"]).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT as i32);
    }
}
