//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the
//! workload helper's `preset.rs`. The brief gives no preset signatures;
//! the CLI assumes `all()` and `get(name)` below.

use crate::workload::{Workload, WorkloadError};

/// A named workload and what it stresses.
pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "larson",
        about: "stand-in: fixed 64-byte alloc/free",
    },
    Preset {
        name: "python",
        about: "stand-in: fixed 48-byte alloc/free",
    },
];

pub fn all() -> &'static [Preset] {
    PRESETS
}

pub fn get(name: &str) -> Result<Workload, WorkloadError> {
    let size = match name {
        "larson" => 64,
        "python" => 48,
        _ => {
            let names: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
            return Err(WorkloadError(format!(
                "unknown preset `{name}` (accepted: {})",
                names.join(", ")
            )));
        }
    };
    Ok(Workload {
        name: name.to_string(),
        threads: 1,
        ops_per_thread: 200_000,
        size,
        geometry: "classic".into(),
        seed: 1,
        warmup_ops: 1000,
        verify: false,
    })
}
