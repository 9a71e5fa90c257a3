//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the driver
//! helper's `driver.rs`: runs each thread's plan through the subject and
//! times the whole phase (no latency histograms, handoffs freed locally),
//! so the CLI's cells produce real if coarse metrics.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crate::results::{CellMetrics, OpCounts};
use crate::subject::Subject;
use crate::workload::{Action, Workload};

#[derive(Debug, thiserror::Error)]
pub enum CellError {
    #[error("verification failed: {0}")]
    Verification(String),
    #[error("invalid cell: {0}")]
    Invalid(String),
}

fn peak_rss_bytes() -> u64 {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full `rusage` into the pointer it is given,
    // which points at a zeroed, properly aligned `rusage` we own.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: the value was zero-initialised and getrusage only wrote to it.
    let ru = unsafe { ru.assume_init() };
    ru.ru_maxrss as u64 * 1024
}

/// Runs one thread's plan; returns its op counts.
fn run_thread(subject: &Subject, workload: &Workload, thread: usize) -> Result<OpCounts, String> {
    let alloc = subject.alloc;
    let mut slots: Vec<Option<(NonNull<u8>, Layout)>> = vec![None; workload.slots()];
    let mut counts = OpCounts::default();
    let deadline = workload
        .duration_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    for (i, action) in workload.plan(thread).enumerate() {
        if i % 1024 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match action {
            Action::Alloc { slot, size, align } => {
                let layout = Layout::from_size_align(size, align).map_err(|e| e.to_string())?;
                // SAFETY: the plan never asks for a zero size.
                let p = unsafe { alloc.alloc(layout) };
                let p = NonNull::new(std::hint::black_box(p)).ok_or("allocation failed")?;
                slots[slot] = Some((p, layout));
                counts.allocs += 1;
                counts.bytes_requested += size as u64;
            }
            Action::Free { slot } | Action::Handoff { slot } => {
                if let Some((p, layout)) = slots[slot].take() {
                    // SAFETY: p came from this allocator with this layout.
                    unsafe { alloc.dealloc(p.as_ptr(), layout) };
                }
                if matches!(action, Action::Free { .. }) {
                    counts.frees_local += 1;
                } else {
                    counts.frees_remote += 1;
                }
            }
            Action::Realloc { slot, new_size } => {
                if let Some((p, layout)) = slots[slot].take() {
                    // SAFETY: p came from this allocator with this layout;
                    // new_size is non-zero.
                    let q = unsafe { alloc.realloc(p.as_ptr(), layout, new_size) };
                    let q = NonNull::new(q).ok_or("realloc failed")?;
                    let nl = Layout::from_size_align(new_size, layout.align())
                        .map_err(|e| e.to_string())?;
                    slots[slot] = Some((q, nl));
                    counts.reallocs += 1;
                    counts.bytes_requested += new_size as u64;
                }
            }
        }
    }
    for (p, layout) in slots.into_iter().flatten() {
        // SAFETY: p came from this allocator with this layout.
        unsafe { alloc.dealloc(p.as_ptr(), layout) };
    }
    Ok(counts)
}

pub fn run_cell(subject: &Subject, workload: &Workload) -> Result<CellMetrics, CellError> {
    let start = Instant::now();
    let per_thread: Vec<Result<OpCounts, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workload.threads)
            .map(|t| s.spawn(move || run_thread(subject, workload, t)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let duration_s = start.elapsed().as_secs_f64();
    let mut counts = OpCounts::default();
    for c in per_thread {
        let c = c.map_err(CellError::Invalid)?;
        counts.allocs += c.allocs;
        counts.frees_local += c.frees_local;
        counts.frees_remote += c.frees_remote;
        counts.reallocs += c.reallocs;
        counts.bytes_requested += c.bytes_requested;
    }
    let ops = counts.allocs + counts.frees_local + counts.frees_remote + counts.reallocs;
    let ops_per_sec = ops as f64 / duration_s.max(1e-9);
    let mut m = CellMetrics {
        ops,
        duration_s,
        ops_per_sec,
        ops_per_sec_repeats: vec![ops_per_sec],
        counts,
        ..Default::default()
    };
    m.memory.peak_rss_bytes = peak_rss_bytes();
    m.verification.enabled = workload.verify;
    Ok(m)
}
