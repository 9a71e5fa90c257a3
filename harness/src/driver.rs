//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the driver
//! helper's `driver.rs`: a fixed-size alloc/free loop per thread, timed
//! as a whole, so the CLI's cells produce real (if coarse) metrics.

use std::alloc::Layout;
use std::time::Instant;

use crate::results::{CellMetrics, OpCounts};
use crate::subject::Subject;
use crate::workload::Workload;

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
    // SAFETY: rc == 0 means getrusage filled the struct (and it was zeroed anyway).
    let ru = unsafe { ru.assume_init() };
    ru.ru_maxrss as u64 * 1024
}

pub fn run_cell(subject: &Subject, workload: &Workload) -> Result<CellMetrics, CellError> {
    let layout = Layout::from_size_align(workload.size, 8)
        .map_err(|e| CellError::Invalid(format!("size: {e}")))?;
    let alloc = subject.alloc;
    let ops = workload.ops_per_thread;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workload.threads {
            s.spawn(move || {
                for _ in 0..ops / 2 {
                    // SAFETY: layout has non-zero size; the block is freed
                    // with the same layout by the same allocator.
                    unsafe {
                        let p = std::hint::black_box(alloc.alloc(layout));
                        if !p.is_null() {
                            alloc.dealloc(p, layout);
                        }
                    }
                }
            });
        }
    });
    let duration_s = start.elapsed().as_secs_f64();
    let total = (ops / 2) * 2 * workload.threads as u64;
    let ops_per_sec = total as f64 / duration_s.max(1e-9);
    let mut m = CellMetrics {
        ops: total,
        duration_s,
        ops_per_sec,
        ops_per_sec_repeats: vec![ops_per_sec],
        counts: OpCounts {
            allocs: total / 2,
            frees_local: total / 2,
            bytes_requested: total / 2 * workload.size as u64,
            ..Default::default()
        },
        ..Default::default()
    };
    m.memory.peak_rss_bytes = peak_rss_bytes();
    m.verification.enabled = workload.verify;
    Ok(m)
}
