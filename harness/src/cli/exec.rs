//! `poolbench exec`: any command as a workload, under each subject.
//!
//! `exec -s SUBJECTS -- COMMAND ARGS…` makes one program cell per subject
//! (and per `--threads` count, told to the program through
//! `--threads-env`), then runs them like `run` does: repeats interleaved,
//! results saved as they come, the summary and the HTML report at the end.
//! What a subject means for a program (`sharded` = our preload build with
//! `POOLBENCH_ALLOCATOR=sharded`, `system` = nothing preloaded, `pymalloc`
//! and `PYTHONMALLOC` for CPython) is `subjects::preload`'s; every library
//! is probed before anything runs. How one program cell is run and
//! measured is `program.rs`'s.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::cli::cell::ChildOptions;
use crate::cli::out::check_out_dir;
use crate::cli::run::{self, RunOptions};
use crate::cli::sweep::{self, CellSpec, Work};
use crate::cli::{BadInput, ExecArgs};
use crate::programs::external::{self, Metric, Program};
use crate::subjects::preload::Target;

/// The `exec` subcommand; returns the exit code.
pub fn command(args: &ExecArgs) -> Result<u8> {
    let timeout = run::parse_timeout(args.timeout)?;
    sweep::check_geometry(&args.geometry)?;
    let Some((cmd, rest)) = args.command.split_first() else {
        return Err(
            BadInput::new("no command given: poolbench exec [FLAGS] -- COMMAND ARGS...").into(),
        );
    };
    if !args.threads.is_empty() && args.threads_env.is_none() {
        return Err(BadInput::new(
            "--threads needs --threads-env NAME: the variable that tells the program its thread \
             count (e.g. OMP_NUM_THREADS)",
        )
        .into());
    }
    if let Some(t) = args.threads.iter().find(|t| **t == 0) {
        return Err(BadInput::new(format!(
            "--threads: `{t}` is not valid (accepted: integers >= 1)"
        ))
        .into());
    }
    let metric = args
        .metric
        .as_deref()
        .map(|m| Metric::new(m, args.metric_name.as_deref()))
        .transpose()?;
    let (path, python) = external::resolve_command(cmd)?;
    let name = args.name.clone().unwrap_or_else(|| {
        std::path::Path::new(cmd)
            .file_name()
            .map_or_else(|| cmd.clone(), |n| n.to_string_lossy().into_owned())
    });
    let names = sweep::resolve_subjects(&args.subjects)?;
    let mut refused = BTreeMap::new();
    let subjects = sweep::subjects_for(
        &args.subjects,
        &names,
        Target::Program { python },
        &args.geometry,
        &mut refused,
    )?;
    let threads = if args.threads.is_empty() {
        vec![1]
    } else {
        args.threads.clone()
    };
    let mut cells = Vec::new();
    for &t in &threads {
        let program = Program {
            name: name.clone(),
            path: path.clone(),
            args: rest.to_vec(),
            shown_args: rest.to_vec(),
            threads: t,
            threads_env: args.threads_env.clone(),
            metric: metric.clone(),
            python,
            checks: false,
            geometry: args.geometry.clone(),
            size: None,
        };
        for (subject, env) in &subjects {
            cells.push(CellSpec {
                subject: subject.clone(),
                work: Work::Program(Box::new(program.clone())),
                sweep: BTreeMap::new(),
                subject_env: env.clone(),
            });
        }
    }
    sweep::every_subject_runs(&args.subjects, &names, &cells, &refused)?;
    let exe = std::env::current_exe().context("cannot find the poolbench executable")?;
    run::probe_libraries(&exe, &cells)?;
    check_out_dir(&args.out)?;
    let opts = RunOptions {
        repeat: args.repeat,
        timeout,
        progress: !args.no_progress,
        exe,
        child: ChildOptions::default(),
        notes: Vec::new(),
    };
    let command: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let record = run::execute(&cells, &opts, command, &args.out)?;
    run::conclude(&record, cells.len(), args.json, &args.out)
}
