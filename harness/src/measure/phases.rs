//! A cell's threads and phases.
//!
//! Before anything runs, every thread's plan is compiled into a tape
//! (`spec::tape`), and every buffer the harness needs (slot tables,
//! batches, histograms) is allocated and written; only then is the RSS
//! baseline read. Then `threads` workers and the driver's own thread go
//! through these phases, released together by a barrier at each boundary:
//!
//! 1. **warm-up**: every worker runs its tape's prefix (fill and
//!    `warmup_ops`), untimed;
//! 2. **probe**: rounds of 4096, 16384, ... cycle operations until one
//!    lasts at least [`PROBE_MIN`]; its rate sizes the measured phase: at
//!    least `ops_per_thread` and at least `min_time_ms` worth, or
//!    `duration_ms` worth;
//! 3. **measured**: that many operations per thread, untimed inside; the
//!    phase runs from the barrier that releases the workers to the barrier
//!    every worker reaches after its last remote free arrived, so
//!    throughput includes every remote free the phase caused. With
//!    `rounds > 1` the operations are split into rounds, each on freshly
//!    spawned threads that take over the workers (slot tables, tapes,
//!    positions), so blocks outlive the thread that allocated them
//!    (mstress, larson); the phase then includes the thread churn;
//! 4. **snapshot**: the driver reads memory while the workers wait;
//! 5. **latency** (when `latency_sample_one_in > 0`): a quarter as many
//!    operations again, some timed (`worker.rs`);
//! 6. **verification** (when `verify`): one cycle with every block tagged
//!    and checked;
//! 7. **drain**: every live block freed; the driver reads memory again.
//!
//! Every phase continues the tape where the previous one stopped. A worker
//! that fails (null from the subject, a bad tag) records the first error,
//! sets the abort flag, and goes on through the barriers without working,
//! so every thread ends and the error is reported as the cell's.
//!
//! The `gil` subject's workers hold the GIL for their whole life and
//! release it around every barrier and wait ([`Span`]), as CPython threads
//! do around blocking calls.

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::assemble::{self, Measured, Snapshot};
use super::clock::Clock;
use super::latency;
use super::memory::{self, MachineTimes};
use super::transport::Transport;
use super::worker::{Ctx, Mode, Padded, Worker, OFF_CYCLE};
use super::CellError;
use crate::results::RunMetrics;
use crate::spec::tape::Tape;
use crate::spec::workload::Checked;
use crate::subjects::{Span, Subject};

/// A probe round must last this long for its rate to size the phase.
pub const PROBE_MIN: Duration = Duration::from_millis(40);
/// The measured phase is sized for this much more than `min_time_ms`, so
/// that a probe that ran slower than the phase does (caches still cold,
/// a busy moment) does not make it shorter than asked.
const MIN_TIME_MARGIN: f64 = 1.3;
/// Operations per thread of the first probe round.
const PROBE_FIRST: u64 = 4096;
/// Most operations per thread of one probe round.
const PROBE_MAX: u64 = 1 << 26;

/// When a worker began and ended a phase.
type PhaseSpan = (Option<Instant>, Option<Instant>);

/// How a cell is run, beyond its workload.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub clock: Clock,
    /// `poolbench stress`: the measured phase verifies every block; no
    /// latency pass.
    pub stress: bool,
    /// Pin worker `i` to CPU `i mod cores`.
    pub pin: bool,
}

/// What the workers and the driver share.
struct Shared {
    threads: usize,
    barrier: Barrier,
    abort: AtomicBool,
    error: Mutex<Option<CellError>>,
    /// Phases ended, summed over workers (`Worker::end_phase`).
    done: AtomicU64,
    /// Operations per thread of the next probe round (0: no more).
    probe: AtomicU64,
    /// Operations per thread of the measured phase, latency and verify
    /// passes (set by the driver before the workers read them).
    measured: AtomicU64,
    latency: AtomicU64,
    verify: AtomicU64,
    /// Requested live bytes of each worker at the snapshot.
    live: Box<[Padded]>,
    drained: AtomicU64,
    stress: bool,
    pin: bool,
    record_gil: bool,
}

impl Shared {
    /// Records the first real error and stops every worker.
    fn attempt(&self, r: Result<(), CellError>) {
        if let Err(e) = r {
            if e != CellError::Aborted {
                let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(e);
            }
            self.abort.store(true, Ordering::Relaxed);
        }
    }

    fn wait(&self, span: &mut Span<'_>) {
        span.unlocked(|| self.barrier.wait());
    }
}

thread_local! {
    /// This worker's GIL-wait histogram (ns), present while measured.
    static GIL_WAIT: RefCell<Option<Histogram<u64>>> = const { RefCell::new(None) };
}

/// The GIL's wait hook: runs in the thread that waited.
fn record_gil_wait(ns: u64) {
    let _ = GIL_WAIT.try_with(|h| {
        if let Ok(mut h) = h.try_borrow_mut() {
            if let Some(h) = h.as_mut() {
                h.saturating_record(ns);
            }
        }
    });
}

/// Pins the calling thread to one CPU (best effort).
fn pin_to(cpu: usize) {
    // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET writes inside
    // it for any index below CPU_SETSIZE (checked by the modulo).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % libc::CPU_SETSIZE as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A worker thread's life for round `round` of `rounds`.
fn worker_round(
    w: &mut Worker<'_>,
    cx: &Ctx<'_>,
    sh: &Shared,
    subject: &dyn Subject,
    w_cfg: &Checked,
    round: u32,
) {
    if sh.pin {
        pin_to(w.id % crate::measure::env::logical_cores().max(1));
    }
    let mut span = Span::enter(subject);
    let t = sh.threads;
    if round == 0 {
        sh.attempt(w.run_prefix(cx, &mut span));
        w.end_phase(cx, &mut span, &sh.done, t, false);
        sh.wait(&mut span);
        loop {
            sh.wait(&mut span);
            let k = sh.probe.load(Ordering::Acquire);
            if k == 0 {
                break;
            }
            sh.attempt(w.run_cycle(cx, &mut span, k, Mode::Plain));
            w.end_phase(cx, &mut span, &sh.done, t, false);
            sh.wait(&mut span);
        }
    }
    if round == 0 {
        w.measured_from = w.position();
    }
    sh.wait(&mut span);
    if round == 0 {
        w.measured_span.0 = Some(Instant::now());
    }
    // Read after the barrier: the driver sets it before releasing us.
    let n = w_cfg.ops_in_round(sh.measured.load(Ordering::Acquire), round);
    if sh.record_gil {
        let _ = GIL_WAIT.try_with(|h| *h.borrow_mut() = Some(latency::new_histogram()));
    }
    let mode = if sh.stress { Mode::Verify } else { Mode::Plain };
    let cpu0 = memory::thread_cpu_ns();
    sh.attempt(w.run_cycle(cx, &mut span, n, mode));
    w.end_phase(cx, &mut span, &sh.done, t, false);
    w.measured_span.1 = Some(Instant::now());
    w.measured_cpu_ns += memory::thread_cpu_ns().saturating_sub(cpu0);
    if let Ok(Some(h)) = GIL_WAIT.try_with(|h| h.borrow_mut().take()) {
        w.recorder.add_gil_wait(&h);
    }
    sh.wait(&mut span);
    if round + 1 < w_cfg.rounds {
        return;
    }
    sh.live[w.id].0.store(w.live_bytes(), Ordering::Relaxed);
    sh.wait(&mut span); // the driver's snapshot
    sh.wait(&mut span);
    let l = sh.latency.load(Ordering::Acquire);
    if l > 0 {
        w.latency_span.0 = Some(Instant::now());
        sh.attempt(w.run_cycle(cx, &mut span, l, Mode::Timed));
        w.end_phase(cx, &mut span, &sh.done, t, true);
        w.latency_span.1 = Some(Instant::now());
    }
    sh.wait(&mut span);
    let v = sh.verify.load(Ordering::Acquire);
    if v > 0 {
        sh.attempt(w.run_cycle(cx, &mut span, v, Mode::Verify));
        w.end_phase(cx, &mut span, &sh.done, t, false);
    }
    sh.wait(&mut span);
    if !sh.abort.load(Ordering::Relaxed) {
        match w.drain(cx) {
            Ok(n) => {
                sh.drained.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => sh.attempt(Err(e)),
        }
    }
    sh.wait(&mut span);
}

/// Operations per thread of the measured phase, from the probe's rate.
fn measured_ops(w: &Checked, rate_per_thread: f64, stress: bool) -> u64 {
    let worth = |ms: u64| (rate_per_thread * ms as f64 / 1000.0).ceil() as u64;
    let n = match (w.ops_per_thread, w.duration_ms) {
        (_, Some(ms)) => worth(ms),
        (Some(ops), None) if stress => ops,
        (Some(ops), None) => ops.max((worth(w.min_time_ms) as f64 * MIN_TIME_MARGIN).ceil() as u64),
        (None, None) => 0,
    };
    n.max(u64::from(w.rounds))
}

/// Runs one cell in this process and returns what it measured.
pub fn run_cell(
    subject: &dyn Subject,
    w: &Checked,
    opts: &Options,
) -> Result<RunMetrics, CellError> {
    let threads = w.threads;
    subject.configure(Duration::from_micros(w.switch_interval_us));
    let tapes: Vec<Tape> = (0..threads)
        .map(|t| Tape::compile(w, t).map_err(|e| CellError::Invalid(e.to_string())))
        .collect::<Result<_, _>>()?;
    let remote = threads > 1 && tapes.iter().any(|t| t.cycle_counts.frees_remote > 0);
    let transport = remote.then(|| Transport::new(threads));
    let verify = (w.verify || opts.stress) && subject.verifiable();
    let one_in = if opts.stress {
        0
    } else {
        w.latency_sample_one_in
    };
    let mut workers: Vec<Worker> = tapes
        .iter()
        .enumerate()
        .map(|(id, tape)| Worker::new(id, tape, transport.as_ref(), one_in, w.seed, verify))
        .collect();
    let position: Box<[Padded]> = (0..threads).map(|_| Padded::default()).collect();
    for p in position.iter() {
        p.0.store(OFF_CYCLE, Ordering::Relaxed);
    }
    let sh = Shared {
        threads,
        barrier: Barrier::new(threads + 1),
        abort: AtomicBool::new(false),
        error: Mutex::new(None),
        done: AtomicU64::new(0),
        probe: AtomicU64::new(0),
        measured: AtomicU64::new(0),
        latency: AtomicU64::new(0),
        verify: AtomicU64::new(0),
        live: (0..threads).map(|_| Padded::default()).collect(),
        drained: AtomicU64::new(0),
        stress: opts.stress,
        pin: opts.pin,
        record_gil: subject.gil().is_some(),
    };
    let cx = Ctx {
        alloc: black_box(subject.allocator()),
        align: w.align,
        touch: w.touch_bytes.bytes_for(usize::MAX),
        passes: w.touch_passes,
        touch_ends: w.touch_at == crate::spec::touch::TouchAt::Ends,
        read_before_free: w.read_before_free,
        clock: opts.clock,
        transport: transport.as_ref(),
        abort: &sh.abort,
        position: &position,
        subject: subject.info().name,
    };
    if let Some(g) = subject.gil() {
        g.set_wait_hook(Some(record_gil_wait));
    }
    let rss_baseline = memory::rss_bytes();
    let origin = Instant::now();
    let stop_sampler = AtomicBool::new(false);
    let live_now = || -> u64 {
        tapes
            .iter()
            .zip(position.iter())
            .map(|(t, p)| match p.0.load(Ordering::Relaxed) {
                OFF_CYCLE => 0,
                pos => t.live_bytes_at(pos as usize),
            })
            .sum()
    };

    let mut m = Measured::default();
    let result = std::thread::scope(|s| -> Result<(), CellError> {
        let sampler = s.spawn(|| memory::sample(&stop_sampler, origin, &live_now));
        let round = Round {
            cx: &cx,
            sh: &sh,
            subject,
            w,
        };
        let mut handles = round.spawn(s, 0, std::mem::take(&mut workers))?;

        // Warm-up, then the probe.
        sh.barrier.wait();
        let mut k = PROBE_FIRST.min(tapes[0].cycle.len() as u64 * 4).max(1);
        let rate = loop {
            sh.probe.store(k, Ordering::Release);
            sh.barrier.wait();
            let t0 = Instant::now();
            sh.barrier.wait();
            let took = t0.elapsed();
            m.probe_ops += k;
            if took >= PROBE_MIN || k >= PROBE_MAX || sh.abort.load(Ordering::Relaxed) {
                break k as f64 / took.as_secs_f64().max(1e-9);
            }
            k *= 4;
        };
        sh.probe.store(0, Ordering::Release);
        sh.barrier.wait();
        let n = measured_ops(w, rate, opts.stress);
        sh.measured.store(n, Ordering::Release);
        m.probe_rate_per_thread = rate;
        m.ops_per_thread = n;

        // The measured phase, round by round.
        let gil_start = subject.gil().map(|g| g.gil_stats());
        let cpu_start = memory::cpu_seconds();
        let machine_start = MachineTimes::now();
        m.loadavg_start = memory::loadavg();
        sh.barrier.wait();
        let round_spawner = round;
        for round in 0..w.rounds {
            if round > 0 {
                handles = round_spawner.spawn(s, round, std::mem::take(&mut workers))?;
                sh.barrier.wait();
            }
            sh.barrier.wait();
            if round + 1 < w.rounds {
                for h in handles.drain(..) {
                    workers.push(join(h)?);
                }
                workers.sort_by_key(|wk| wk.id);
            }
        }
        let cpu_end = memory::cpu_seconds();
        m.cpu_user_s = cpu_end.0 - cpu_start.0;
        m.cpu_sys_s = cpu_end.1 - cpu_start.1;
        if let (Some(a), Some(b)) = (machine_start, MachineTimes::now()) {
            if let Some((steal, others)) = a.fractions(&b, m.cpu_user_s + m.cpu_sys_s) {
                m.steal_fraction = Some(steal);
                m.others_busy_fraction = Some(others);
            }
        }
        m.loadavg_end = memory::loadavg();
        m.gil = subject
            .gil()
            .zip(gil_start)
            .map(|(g, a)| (a, g.gil_stats()));

        // Snapshot, latency, verification, drain.
        sh.barrier.wait();
        m.snapshot = Snapshot::take(
            subject,
            sh.live.iter().map(|l| l.0.load(Ordering::Relaxed)).sum(),
        );
        let latency_ops = if one_in > 0 {
            (n / 4).max(4096 * u64::from(one_in)).min(n)
        } else {
            0
        };
        let verify_ops = if verify && !opts.stress {
            (tapes[0].cycle.len() as u64).min(n)
        } else {
            0
        };
        sh.latency.store(latency_ops, Ordering::Release);
        sh.verify.store(verify_ops, Ordering::Release);
        m.latency_ops = latency_ops;
        m.verify_ops = if opts.stress { n } else { verify_ops };
        sh.barrier.wait();
        sh.barrier.wait();
        sh.barrier.wait();
        sh.barrier.wait();
        m.rss_after_drain = memory::rss_bytes();
        m.accounting_at_end = subject.stats();
        for h in handles.drain(..) {
            workers.push(join(h)?);
        }
        workers.sort_by_key(|wk| wk.id);
        stop_sampler.store(true, Ordering::Release);
        sampler.thread().unpark();
        m.timeline = sampler.join().unwrap_or_default();
        Ok(())
    });
    if let Some(g) = subject.gil() {
        g.set_wait_hook(None);
    }
    result?;
    if let Some(e) = sh.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    // The phases' spans are the workers' own readings: from the first
    // worker's start to the last one's end.
    let span = |f: &dyn Fn(&Worker) -> PhaseSpan| {
        let start = workers.iter().filter_map(|wk| f(wk).0).min();
        let end = workers.iter().filter_map(|wk| f(wk).1).max();
        match (start, end) {
            (Some(s), Some(e)) => e.saturating_duration_since(s),
            _ => Duration::ZERO,
        }
    };
    m.duration = span(&|wk| wk.measured_span);
    m.latency_duration = span(&|wk| wk.latency_span);
    m.rss_baseline = rss_baseline;
    m.peak_rss = memory::peak_rss_bytes();
    m.drained = sh.drained.load(Ordering::Relaxed);
    Ok(assemble::run_metrics(
        subject,
        w,
        (opts.clock, opts.pin),
        &tapes,
        &workers,
        m,
    ))
}

/// What every round's threads are given.
#[derive(Clone, Copy)]
struct Round<'a> {
    cx: &'a Ctx<'a>,
    sh: &'a Shared,
    subject: &'a dyn Subject,
    w: &'a Checked,
}

impl<'a> Round<'a> {
    /// Starts one thread per worker for round `round`.
    fn spawn<'scope, 't: 'scope>(
        self,
        s: &'scope std::thread::Scope<'scope, '_>,
        round: u32,
        workers: Vec<Worker<'t>>,
    ) -> Result<Vec<std::thread::ScopedJoinHandle<'scope, Worker<'t>>>, CellError>
    where
        'a: 'scope,
    {
        workers
            .into_iter()
            .map(|mut wk| {
                std::thread::Builder::new()
                    .name(format!("worker-{}", wk.id))
                    .spawn_scoped(s, move || {
                        worker_round(&mut wk, self.cx, self.sh, self.subject, self.w, round);
                        wk
                    })
                    .map_err(|e| CellError::Invalid(format!("cannot start a worker: {e}")))
            })
            .collect()
    }
}

fn join<'t>(h: std::thread::ScopedJoinHandle<'_, Worker<'t>>) -> Result<Worker<'t>, CellError> {
    h.join()
        .map_err(|_| CellError::Invalid("a worker thread panicked".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tape::Counts;
    use crate::spec::workload::Workload;

    fn workload(sets: &[(&str, &str)]) -> Checked {
        let mut w = Workload::default();
        for (f, v) in [
            ("ops_per_thread", "3000"),
            ("min_time_ms", "0"),
            ("warmup_ops", "100"),
            ("latency_sample_one_in", "4"),
        ]
        .iter()
        .chain(sets)
        {
            w.set(f, v).unwrap_or_else(|e| panic!("{f}={v}: {e}"));
        }
        w.check().unwrap()
    }

    fn opts() -> Options {
        Options {
            clock: Clock::monotonic(),
            stress: false,
            pin: false,
        }
    }

    fn run(subject: &str, w: &Checked) -> (Result<RunMetrics, CellError>, Box<dyn Subject>) {
        let s = crate::subjects::lookup(subject, w.geometry()).unwrap();
        (run_cell(s.as_ref(), w, &opts()), s)
    }

    /// The calls every phase must have made, from the tapes alone.
    fn expected_calls(w: &Checked, m: &RunMetrics) -> (u64, u64, u64) {
        let mut c = Counts::default();
        let probe = m.warmup_ops - Tape::compile(w, 0).unwrap().prefix.len() as u64;
        let cycle_ops =
            probe + m.ops_per_thread + m.sampling.ops_per_thread + m.verification.ops_per_thread;
        for t in 0..w.threads {
            let tape = Tape::compile(w, t).unwrap();
            c.add_times(&tape.prefix_counts, 1);
            c.add_times(&tape.counts_from(0, cycle_ops), 1);
        }
        (
            c.allocs,
            c.frees_local + c.frees_remote + m.drained_blocks,
            c.reallocs,
        )
    }

    fn calls(s: &dyn Subject) -> (u64, u64, u64) {
        let c = s.own_counters();
        (c["alloc_calls"], c["dealloc_calls"], c["realloc_calls"])
    }

    #[test]
    fn the_loop_makes_exactly_the_calls_of_the_tapes() {
        for sets in [
            vec![("lifetime", "random:64"), ("realloc_fraction", "0.1")],
            vec![
                ("threads", "3"),
                ("lifetime", "fifo:16"),
                ("remote_free_fraction", "0.5"),
                ("verify", "true"),
            ],
            vec![
                ("threads", "2"),
                ("lifetime", "batch:50:mixed"),
                ("rounds", "3"),
            ],
        ] {
            let w = workload(&sets);
            let (m, s) = run("test-counting", &w);
            let m = m.unwrap_or_else(|e| panic!("{sets:?}: {e}"));
            assert_eq!(calls(s.as_ref()), expected_calls(&w, &m), "{sets:?}");
            // Measured counts come from the tapes: N ops per thread.
            assert_eq!(m.ops, m.ops_per_thread * w.threads as u64, "{sets:?}");
            assert!(m.ops_per_thread >= 3000);
            // Everything allocated was freed.
            let (a, d, _) = calls(s.as_ref());
            assert_eq!(a, d, "{sets:?}: leaked blocks");
        }
    }

    #[test]
    fn every_op_kind_gets_latency_samples() {
        let w = workload(&[
            ("threads", "2"),
            ("lifetime", "fifo:8"),
            ("remote_free_fraction", "0.5"),
            ("realloc_fraction", "0.2"),
        ]);
        let m = run("null", &w).0.unwrap();
        for kind in ["alloc", "free_local", "free_remote", "realloc"] {
            assert!(
                m.latency.get(kind).is_some_and(|l| l.count > 0),
                "{kind}: {:?}",
                m.latency.keys()
            );
        }
        assert_eq!(m.sampling.one_in, 4);
    }

    /// A consumer has no tape: it frees only while its phase ends, and
    /// those frees are sampled too.
    #[test]
    fn consumers_frees_get_latency_samples() {
        let w = workload(&[
            ("threads", "2"),
            ("roles", "producer-consumer"),
            ("lifetime", "batch:64:fifo"),
            ("remote_free_fraction", "1.0"),
        ]);
        let m = run("null", &w).0.unwrap();
        for kind in ["alloc", "free_remote"] {
            assert!(
                m.latency.get(kind).is_some_and(|l| l.count > 0),
                "{kind}: {:?}",
                m.latency.keys()
            );
        }
    }

    #[test]
    fn the_verify_pass_catches_a_block_handed_out_twice() {
        let w = workload(&[("lifetime", "fifo:50"), ("size", "64"), ("verify", "true")]);
        let e = run("test-double", &w).0.unwrap_err();
        assert!(matches!(e, CellError::Verification(_)), "{e}");
    }

    #[test]
    fn the_verify_pass_catches_a_realloc_that_loses_its_prefix() {
        let w = workload(&[
            ("lifetime", "fifo:50"),
            ("size", "64..256"),
            ("realloc_fraction", "0.5"),
            ("verify", "true"),
        ]);
        let e = run("test-realloc", &w).0.unwrap_err();
        assert!(e.to_string().contains("prefix not kept"), "{e}");
        // Without a verify pass the same subject is not checked.
        let w = workload(&[("lifetime", "fifo:50"), ("realloc_fraction", "0.5")]);
        assert!(run("test-realloc", &w).0.is_ok());
    }

    #[test]
    fn stress_verifies_every_measured_operation() {
        let w = workload(&[
            ("lifetime", "random:32"),
            ("threads", "2"),
            ("remote_free_fraction", "0.3"),
        ]);
        let s = crate::subjects::lookup("null", w.geometry()).unwrap();
        let o = Options {
            stress: true,
            ..opts()
        };
        let m = run_cell(s.as_ref(), &w, &o).unwrap();
        assert_eq!(m.verification.ops_per_thread, m.ops_per_thread);
        assert!(m.verification.blocks_checked >= m.ops / 2);
        assert_eq!(m.sampling.ops_per_thread, 0);
    }

    #[test]
    fn a_duration_sizes_the_phase_from_the_probe() {
        let mut w = Workload::default();
        w.set("duration_ms", "20").unwrap();
        w.set("latency_sample_one_in", "0").unwrap();
        let w = w.check().unwrap();
        let m = run("null", &w).0.unwrap();
        assert!(m.ops_per_thread > 0 && m.probe_ops_per_sec > 0.0);
        let want = (m.probe_ops_per_sec * 0.020).ceil() as u64;
        assert_eq!(m.ops_per_thread, want);
    }

    #[test]
    fn the_gil_subject_runs_threads_in_spans_and_counts_its_switches() {
        let w = workload(&[
            ("threads", "2"),
            ("switch_interval_us", "200"),
            ("remote_free_fraction", "0.5"),
        ]);
        let m = run("gil", &w).0.unwrap();
        let g = m.gil.expect("gil counters");
        assert!(g.acquisitions > 0 && g.switch_interval_us == 200);
    }
}
