//! Workload files: TOML that names the fields it changes, over the
//! defaults or over a preset (`preset = "larson"`).

use std::path::Path;

use super::preset;
use super::workload::{invalid, Workload, WorkloadError};

/// Parses a workload file's text: a `preset` key picks the start, every
/// other key is a field, checked as it is read.
pub fn from_toml_str(s: &str) -> Result<Workload, WorkloadError> {
    let mut table: toml::Table =
        toml::from_str(s).map_err(|e| WorkloadError::Syntax(e.to_string()))?;
    let base = match table.remove("preset") {
        None => Workload::default(),
        Some(toml::Value::String(name)) => {
            preset::get(&name).map_err(|e| invalid("preset", format!("{name:?}"), e.to_string()))?
        }
        Some(other) => return Err(invalid("preset", other, "expected a string")),
    };
    base.merge(table)
}

/// Reads a workload file. Without a `name` field (or preset), the workload
/// is named after the file stem.
pub fn from_file(path: &Path) -> Result<Workload, WorkloadError> {
    let text = std::fs::read_to_string(path).map_err(|e| WorkloadError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let named = toml::from_str::<toml::Table>(&text)
        .map(|t| t.contains_key("name") || t.contains_key("preset"))
        .unwrap_or(true);
    let mut w = from_toml_str(&text)?;
    if !named {
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            if Workload::usable_name(stem) {
                w.name = stem.to_string();
            }
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_may_start_from_a_preset() {
        let w = from_toml_str("preset = \"larson\"\nthreads = 4").unwrap();
        let mut want = preset::get("larson").unwrap();
        want.threads = 4;
        assert_eq!(w, want);
        let e = from_toml_str("preset = \"nope\"").unwrap_err();
        assert_eq!(e.field(), Some("preset"));
        let msg = e.to_string();
        assert!(
            msg.contains("nope") && msg.contains("larson") && msg.contains("python"),
            "{msg}"
        );
        // A plain workload has no `preset` field.
        assert!(Workload::from_toml_str("preset = \"larson\"").is_err());
    }

    #[test]
    fn from_file_reads_and_names_after_the_stem() {
        let dir = std::env::temp_dir().join(format!("poolbench-wl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("my-load.toml");
        std::fs::write(&path, "threads = 2").unwrap();
        let w = from_file(&path).unwrap();
        assert_eq!((w.name.as_str(), w.threads), ("my-load", 2));
        std::fs::write(&path, "preset = \"xmalloc\"\nseed = 3").unwrap();
        let w = from_file(&path).unwrap();
        assert_eq!((w.name.as_str(), w.seed), ("xmalloc", 3));
        std::fs::remove_dir_all(&dir).unwrap();
        let e = from_file(&dir.join("absent.toml")).unwrap_err();
        assert!(matches!(e, WorkloadError::Read { .. }), "{e}");
        assert!(e.to_string().contains("absent.toml"));
    }

    #[test]
    fn duration_works_from_toml_set_and_json() {
        // TOML: setting it unsets the preset's op count.
        let w = from_toml_str("preset = \"larson\"\nduration_ms = 300").unwrap();
        assert_eq!((w.ops_per_thread, w.duration_ms), (None, Some(300)));
        let w = w.check().unwrap();
        // The JSON a parent hands a child keeps the unset op count unset.
        let json = serde_json::to_string(&*w).unwrap();
        let back: Workload = serde_json::from_str(&json).unwrap();
        assert_eq!((back.ops_per_thread, back.duration_ms), (None, Some(300)));
        back.check().unwrap();
        // --set and --sweep values go through `set`.
        let mut w = preset::get("xmalloc").unwrap();
        w.set("duration_ms", "150").unwrap();
        let json = serde_json::to_string(&*w.check().unwrap()).unwrap();
        let back: Workload = serde_json::from_str(&json).unwrap();
        assert_eq!((back.ops_per_thread, back.duration_ms), (None, Some(150)));
    }
}
