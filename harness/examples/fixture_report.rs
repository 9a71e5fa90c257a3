//! Writes the report of the synthetic fixture run (and its results file)
//! into a folder, for `scripts/browser-check.sh` and for looking at the
//! report layout without running a suite.
//!
//! `cargo run -p harness --example fixture_report -- OUT_DIR`

use std::path::PathBuf;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: fixture_report OUT_DIR")?;
    let results = harness::report::fixture::run_results();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    results.save(&out.join(format!("{}.json", harness::report::stem(&results))))?;
    let path = harness::report::write_report(&results, &out)?;
    let mut slowed = results.clone();
    for c in slowed.cells.iter_mut().filter(|c| c.subject == "sharded") {
        if let harness::results::Outcome::Ok(m) = &mut c.outcome {
            m.runs.iter_mut().for_each(|r| r.ops_per_sec *= 0.7);
            m.ops_per_sec = harness::stats::estimate(&m.rates());
        }
    }
    let cmp = harness::report::compare::compare(
        &results,
        &slowed,
        &harness::report::compare::Options::default(),
    );
    std::fs::write(out.join("compare.html"), cmp.render_html()?)?;
    print!("{}", cmp.render_terminal());
    println!("{}", path.display());
    Ok(())
}
