//! The minijinja templates, embedded in the binary.
//!
//! Templates live in `harness/templates/` as ordinary files (so they read
//! and diff as HTML) and are compiled in with `include_str!`: a report
//! needs no files at run time. `base.html` holds the page skeleton and the
//! inlined stylesheet; the report, index and compare pages extend it. Names ending in `.html` are auto-escaped;
//! chart SVG is inserted with `|safe` because [`super::chart`] escapes its
//! own text. Undefined variables are errors, so a template typo fails the
//! tests instead of rendering an empty cell.

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

const TEMPLATES: &[(&str, &str)] = &[
    ("style.css", include_str!("../../templates/style.css")),
    ("base.html", include_str!("../../templates/base.html")),
    ("report.html", include_str!("../../templates/report.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("compare.html", include_str!("../../templates/compare.html")),
];

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .with_context(|| format!("template {name} does not parse"))?;
    }
    Ok(env)
}

/// Renders template `name` with `ctx`.
pub fn render<S: Serialize>(name: &str, ctx: &S) -> Result<String> {
    let env = environment()?;
    let tmpl = env
        .get_template(name)
        .with_context(|| format!("no template named {name}"))?;
    tmpl.render(ctx)
        .with_context(|| format!("cannot render template {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_templates_parse() {
        environment().unwrap();
    }
}
