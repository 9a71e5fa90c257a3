//! Self-contained HTML reports of a run, and the reports folder's index.
//!
//! Input is only the results schema ([`RunResults`]), never the harness's
//! in-memory types: a report can be regenerated from any results file,
//! and the report code does not move when the harness does.
//!
//! Pipeline: the cells are grouped per workload (and sweep point)
//! (`group`); each group gets a summary table (`table`) and four chart
//! sections (`sections`: throughput vs threads with the floor, latency
//! percentiles on HdrHistogram's "nines" axis with the clock's
//! resolution, RSS over time, fragmentation with its cross-checks);
//! charts are inline SVG drawn by `chart` with one colour per subject
//! everywhere (`palette`); the environment block (`environment`) carries
//! the machine, toolchain, commit, exact command, selfcheck and warnings.
//! All text goes through minijinja templates (`template`) with
//! auto-escaping.
//!
//! The report says how far each figure can be trusted: every median over
//! repeats carries its interval, named for what it is (`interval`: a 95%
//! CI only from 6 repeats on); "best" is marked only where
//! `summary::best_cells` finds the winner beyond the noise, as in the
//! terminal summary; cells below the floor, percentiles below the clock's
//! resolution and cells run on a busy machine are marked where they
//! appear.
//!
//! The page is self-contained: CSS inline, no script, no font or image
//! fetched from anywhere, no external URL, so it reads the same offline,
//! archived as a CI artefact, or printed (a `@media print` block keeps
//! charts whole on a page).
//!
//! To look at one without running a suite:
//! `cargo run -p harness --example fixture_report -- /tmp/r` writes the
//! report of the synthetic `fixture` run (the example needs the `fixture`
//! feature, which the crate's dev-dependency on itself turns on for
//! examples and tests; the release binary never contains it), and
//! `scripts/browser-check.sh /tmp/r/<stem>.html /tmp/r/check` renders it
//! in headless Chromium and checks the charts and the layout.

mod chart;
pub mod compare;
mod environment;
#[cfg(any(test, feature = "fixture"))]
pub mod fixture;
mod format;
mod group;
mod index;
mod interval;
mod palette;
mod sections;
pub mod summary;
mod table;
pub(crate) mod template;
mod view;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::results::RunResults;

pub use index::write_index;

pub(crate) use format::{bytes as format_bytes, ns as format_ns, ops as format_ops, pct_change};
pub(crate) use palette::color as subject_color;

use group::Group;
use view::{GroupView, Page, Swatch};

/// File stem for a run's report: its start timestamp, with characters
/// that are awkward in file names and URLs (`:`, `+`) replaced by `-`.
pub fn stem(results: &RunResults) -> String {
    let s: String = results
        .started_at
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('.').to_string();
    if s.is_empty() {
        "run".into()
    } else {
        s
    }
}

fn params_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join("  "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn page(results: &RunResults) -> Page {
    let groups = Group::all(results);
    let mut subjects: Vec<&str> = results.cells.iter().map(|c| c.subject.as_str()).collect();
    subjects.sort_by_key(|s| palette::rank(s));
    subjects.dedup();
    let cores = results.environment.logical_cores;
    let best = summary::best_cells(results);
    let group_views = groups
        .iter()
        .map(|g| {
            // Parameters shared by the group's cells, minus what varies
            // (threads), from its first cell.
            let mut params = g
                .cells
                .first()
                .map(|c| c.workload_params.clone())
                .unwrap_or(serde_json::Value::Null);
            if let serde_json::Value::Object(m) = &mut params {
                m.remove("threads");
            }
            GroupView {
                id: g.id.clone(),
                title: g.title(),
                params: params_text(&params),
                summary: table::summary(g, cores, &best),
                // A program is measured from outside: no latencies, no
                // memory over time, no live bytes; its table says it all.
                sections: if table::is_program(g) {
                    Vec::new()
                } else {
                    vec![
                        sections::throughput(g),
                        sections::latency(g),
                        sections::memory(g),
                        sections::fragmentation(g),
                    ]
                },
            }
        })
        .collect();
    Page {
        title: format!("poolbench report · {}", results.started_at),
        poolbench_version: results.poolbench_version.clone(),
        started_at: results.started_at.clone(),
        finished_at: results.finished_at.clone(),
        command: format::shell_command(&results.command),
        cells_total: results.cells.len(),
        cells_failed: results
            .cells
            .iter()
            .filter(|c| c.metrics().is_none())
            .count(),
        environment: environment::environment(results),
        subjects: subjects
            .into_iter()
            .map(|s| Swatch {
                name: s.to_string(),
                color: palette::color(s).to_string(),
            })
            .collect(),
        groups: group_views,
    }
}

/// The report's HTML text.
pub fn render(results: &RunResults) -> Result<String> {
    template::render("report.html", &page(results))
}

/// Writes `<out_dir>/<stem>.html` and rebuilds `<out_dir>/index.html`;
/// returns the report's path.
pub fn write_report(results: &RunResults, out_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create reports folder {}", out_dir.display()))?;
    let html = render(results)?;
    let path = out_dir.join(format!("{}.html", stem(results)));
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    write_index(out_dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Elements that have no closing tag in HTML.
    const VOID: &[&str] = &["meta", "br", "link", "img", "input", "hr", "col", "wbr"];

    /// A light well-formedness check of the markup we emit: every
    /// non-void element is closed, in order (SVG self-closing tags count as
    /// closed). Comments, the doctype and raw `<style>` content are skipped.
    fn check_balanced(html: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find('<') {
            rest = &rest[i..];
            if rest.starts_with("<!--") {
                let end = rest.find("-->").ok_or("unterminated comment")?;
                rest = &rest[end + 3..];
                continue;
            }
            let end = rest.find('>').ok_or("unterminated tag")?;
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
                continue;
            }
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect::<String>()
                .to_ascii_lowercase();
            if tag.ends_with('/') || VOID.contains(&name.as_str()) {
                continue;
            }
            if name == "style" {
                let close = rest.find("</style>").ok_or("unterminated <style>")?;
                rest = &rest[close + "</style>".len()..];
                continue;
            }
            stack.push(name);
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed elements: {stack:?}"))
        }
    }

    /// The text of each `<section ... data-section="KIND">` in the page.
    fn sections<'a>(html: &'a str, kind: &str) -> Vec<&'a str> {
        let marker = format!("data-section=\"{kind}\"");
        html.match_indices(&marker)
            .map(|(i, _)| {
                let body = &html[i..];
                &body[..body.find("</section>").unwrap_or(body.len())]
            })
            .collect()
    }

    #[test]
    fn fixture_report_is_balanced_html() {
        let html = render(&fixture::run_results()).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        check_balanced(&html).unwrap();
    }

    #[test]
    fn balance_check_catches_errors() {
        assert!(check_balanced("<div><p></div>").is_err());
        assert!(check_balanced("<div>").is_err());
        assert!(check_balanced("<svg><line/></svg><br>").is_ok());
    }

    #[test]
    fn every_section_of_every_workload_has_its_charts() {
        let r = fixture::run_results();
        let html = render(&r).unwrap();
        let n = fixture::WORKLOADS.len();
        for (kind, min) in [
            ("throughput", 1),
            ("latency", 1),
            ("memory", 1),
            ("fragmentation", 2),
        ] {
            let secs = sections(&html, kind);
            assert_eq!(secs.len(), n, "{kind} sections");
            for s in secs {
                assert!(
                    s.matches("<svg").count() >= min,
                    "{kind} section lacks a chart"
                );
            }
        }
        // Latency: alloc and free at 1 and 4 threads, GIL wait at 4 only
        // (1 thread never waits).
        for s in sections(&html, "latency") {
            assert_eq!(s.matches("<svg").count(), 5);
        }
        // Throughput, and time per operation above the floor.
        assert_eq!(sections(&html, "throughput")[0].matches("<svg").count(), 2);
        assert_eq!(sections(&html, "summary").len(), n);
        // Every chart has a non-zero size.
        for tag in html
            .match_indices("<svg")
            .map(|(i, _)| &html[i..i + html[i..].find('>').unwrap()])
        {
            assert!(
                !tag.contains("width=\"0\"") && !tag.contains("height=\"0\""),
                "{tag}"
            );
            assert!(
                tag.contains("width=\"") && tag.contains("height=\""),
                "{tag}"
            );
        }
    }

    #[test]
    fn report_references_no_external_url() {
        let html = render(&fixture::run_results()).unwrap();
        assert!(!html.contains("http://"), "http:// in report");
        assert!(!html.contains("https://"), "https:// in report");
        assert!(!html.contains("<script"), "script in report");
        assert!(!html.contains("@import"));
        // Only in-page anchors and local clip paths.
        for (i, _) in html.match_indices("href=\"") {
            assert!(html[i + 6..].starts_with('#'), "non-anchor href");
        }
        for (i, _) in html.match_indices("url(") {
            assert!(html[i + 4..].starts_with('#'), "non-local url()");
        }
    }

    #[test]
    fn report_shows_failures_warnings_command_and_colours() {
        let r = fixture::run_results();
        let html = render(&r).unwrap();
        assert!(html.contains("block tag mismatch in slot 117"));
        assert!(html.contains("Oversubscribed"));
        assert!(html.contains("poolbench suite --subjects gil,tcache,sharded,system,jemalloc,null"));
        assert!(html.contains("class=\"best\""));
        assert!(html.contains("The floor: the null subject"));
        // The same subject has the same colour in every chart.
        let sharded = palette::color("sharded");
        assert!(html.matches(&format!("stroke=\"{sharded}\"")).count() >= 4);
        assert!(html.contains("@media print"));
    }

    #[test]
    fn throughput_shows_intervals_and_the_floor() {
        let html = render(&fixture::run_results()).unwrap();
        let thr = sections(&html, "throughput")[0];
        // A whisker for every successful cell at every thread count.
        assert_eq!(thr.matches("<g class=\"range\"").count(), 6 * 3 + 5 * 3);
        assert!(thr.contains("range of 3 repeats"));
        assert!(thr.contains(">null (floor)</text>"));
        assert!(thr.contains("time per operation above the floor"));
        assert!(thr.contains("class=\"rule\""));
        assert!(!thr.contains("95% CI"));
        let summary = sections(&html, "summary")[0];
        assert!(summary.contains("class=\"ci\">["));
        assert!(summary.contains(">floor</span>"));
    }

    #[test]
    fn latency_draws_the_clock_floor_and_names_every_missing_subject() {
        let mut r = fixture::run_results();
        let html = render(&r).unwrap();
        let lat = sections(&html, "latency")[0];
        // The band in every clocked chart (alloc, free at 1 and 4
        // threads), not in GIL wait; null's low percentiles dotted in it.
        assert_eq!(lat.matches("class=\"band\"").count(), 4);
        assert!(lat.contains("clock can&#39;t"));
        assert!(lat.contains("null: percentiles p50"));
        assert!(lat.contains("stroke-dasharray=\"2 3\""));
        // GIL waits at 1 thread: none, and the note says why.
        assert!(lat.contains(
            "No GIL wait latency at 1 thread: gil: never waited for the GIL at 1 thread."
        ));
        // The sampling of every successful cell, with its perturbation.
        assert!(lat.contains("latencies were sampled (over all its repeats)"));
        assert_eq!(lat.matches("1 in 16").count(), 18);
        assert!(lat.contains("+4.0% [+3.0%, +4.5%]"));

        // A subject without alloc samples is named, with the reason.
        let key = "larson-small/jemalloc/t1";
        let c = r.cells.iter_mut().find(|c| c.key() == key).unwrap();
        if let crate::results::Outcome::Ok(m) = &mut c.outcome {
            m.latency.remove("alloc");
        }
        let html = render(&r).unwrap();
        let lat = sections(&html, "latency")[0];
        assert!(
            lat.contains("Not in the alloc latency chart at 1 thread: jemalloc: no alloc was timed although the cell performed"),
            "{lat}"
        );
    }

    #[test]
    fn a_handful_of_samples_is_still_drawn_and_a_lone_dashed_style_keyed() {
        let mut r = fixture::run_results();
        for c in r.cells.iter_mut() {
            let crate::results::Outcome::Ok(m) = &mut c.outcome else {
                continue;
            };
            // One GIL wait: its distribution has only the 100th percentile.
            if c.subject == "gil" && c.threads == 4 {
                let w = m.latency.get_mut("gil_wait").unwrap();
                w.count = 1;
                w.distribution.retain(|p| p.percentile >= 100.0);
            }
            // Producer-consumer frees only remotely at 4 threads.
            if c.workload == "producer-consumer" && c.threads == 4 {
                m.latency.remove("free_local");
            }
        }
        let html = render(&r).unwrap();
        let lat = sections(&html, "latency")[0];
        assert!(
            lat.contains("<title>gil gil_wait, 4 threads</title>"),
            "{lat}"
        );
        let pc = sections(&html, "latency")[1];
        let free4 = &pc[pc.find("free latency, 4 threads").unwrap()..];
        let free4 = &free4[..free4.find("</svg>").unwrap()];
        assert!(free4.contains(">remote free</text>"), "{free4}");
        assert!(!free4.contains(">local free</text>"));
    }

    #[test]
    fn fragmentation_has_one_ratio_its_notes_and_the_cross_checks() {
        let html = render(&fixture::run_results()).unwrap();
        let larson = sections(&html, "fragmentation")[0];
        assert!(larson.contains("resident above baseline ÷ requested live"));
        assert!(!larson.contains("No fragmentation ratio"));
        // jemalloc's and glibc's own counters, our own ratio.
        assert!(larson.contains("resident 17.9 MiB"), "{larson}");
        assert!(larson.contains("uordblks"));
        assert!(larson.contains("bumped"));
        // Producer-consumer keeps too few bytes live below 4 threads.
        let pc = sections(&html, "fragmentation")[1];
        assert!(pc.contains(
            "No fragmentation ratio for gil at 1 thread, tcache at 1 thread, sharded at 1 thread"
        ));
        assert!(pc.contains(": 307200 bytes requested live"));
        assert!(pc.contains("(the figures are gil at 1 thread&#x27;s; the others alike"));
        assert_eq!(pc.matches("No fragmentation ratio").count(), 1);
        assert!(pc.contains("— (see the notes)"));
    }

    #[test]
    fn environment_shows_selfcheck_preload_and_busy_cells() {
        let mut r = fixture::run_results();
        let html = render(&r).unwrap();
        assert!(html.contains("<dt>LD_PRELOAD</dt><dd>not set</dd>"));
        assert!(html.contains("data-block=\"selfcheck\""));
        assert!(html.contains("<dt>calibration error</dt>"));
        assert!(html.contains("class=\"flag busy\""));
        assert!(!html.contains("warning strong"));
        r.environment.ld_preload = Some("libtcmalloc.so".into());
        let html = render(&r).unwrap();
        assert!(html.contains("<p class=\"warning strong\">LD_PRELOAD=libtcmalloc.so was set"));
    }

    fn ids(html: &str) -> Vec<&str> {
        html.match_indices(" id=\"")
            .map(|(i, _)| {
                let rest = &html[i + 5..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect()
    }

    #[test]
    fn sweeps_make_separate_sections_with_unique_ids() {
        let mut r = fixture::run_results();
        let extra: Vec<_> = r
            .cells
            .iter()
            .cloned()
            .map(|mut c| {
                c.sweep.insert("size".into(), "256".into());
                c
            })
            .collect();
        for c in r.cells.iter_mut() {
            c.sweep.insert("size".into(), "64".into());
        }
        r.cells.extend(extra);
        let html = render(&r).unwrap();
        check_balanced(&html).unwrap();
        assert_eq!(
            sections(&html, "throughput").len(),
            2 * fixture::WORKLOADS.len()
        );
        assert!(html.contains("larson-small · size=256"));
        let mut all = ids(&html);
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "duplicate ids");
    }

    #[test]
    fn degenerate_runs_still_render() {
        // No cells at all.
        let mut empty = fixture::run_results();
        empty.cells.clear();
        check_balanced(&render(&empty).unwrap()).unwrap();

        // One thread count, every cell failed but one, an unknown subject,
        // no latencies, no timeline, zero values.
        let mut odd = fixture::run_results();
        odd.cells
            .retain(|c| c.threads == 2 && c.workload == "larson-small");
        for (i, c) in odd.cells.iter_mut().enumerate() {
            if i == 0 {
                c.subject = "an-allocator-with-a-long-name".into();
                if let crate::results::Outcome::Ok(m) = &mut c.outcome {
                    m.latency.clear();
                    m.runs.clear();
                    m.ops_per_sec = Default::default();
                }
            } else {
                c.outcome = crate::results::Outcome::Failed(crate::results::Failure {
                    kind: crate::results::FailureKind::Timeout,
                    reason: "ran past the 60 s cell timeout".into(),
                    exit_code: None,
                    signal: Some(9),
                    stderr_tail: String::new(),
                });
            }
        }
        let html = render(&odd).unwrap();
        check_balanced(&html).unwrap();
        assert!(html.contains("ran past the 60 s cell timeout"));
        assert!(!html.contains("NaN") && !html.contains(" inf") && !html.contains(">inf"));
    }

    #[test]
    fn user_text_is_escaped() {
        let mut r = fixture::run_results();
        r.command.push("<script>alert(1)</script>".into());
        r.cells[0].workload = "a<b>".into();
        let html = render(&r).unwrap();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("a<b>"));
        check_balanced(&html).unwrap();
    }

    #[test]
    fn write_report_names_the_file_after_the_start_and_indexes_it() {
        let dir =
            std::env::temp_dir().join(format!("poolbench-report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let r = fixture::run_results();
        std::fs::create_dir_all(&dir).unwrap();
        r.save(&dir.join("run.json")).unwrap();
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        let path = write_report(&r, &dir).unwrap();
        assert_eq!(path, dir.join("2026-11-21T12-00-00Z.html"));
        let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(index.contains("href=\"2026-11-21T12-00-00Z.html\""));
        assert!(index.contains("broken.json"), "skipped file noted");
        assert!(
            index.contains(
                "larson-small: jemalloc 179 Mops&#x2f;s at 4 threads (ahead beyond the noise)"
            ),
            "headline figures"
        );
        check_balanced(&index).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
