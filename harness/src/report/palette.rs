//! One colour per subject, the same in every chart of every report.
//!
//! Colours are keyed by subject name, not by position, so `sharded` is the
//! same blue whether or not `gil` ran. The known subjects take the
//! Okabe–Ito colour-blind-safe palette (plus two neutrals); our pool
//! allocators get the saturated hues, the references the lighter ones, and
//! `null` (harness only) grey. An unknown name gets a stable colour from a
//! hash of the name, so it too is consistent across reports.

/// Subjects in report order (ours, then references, then `null`).
pub const ORDER: &[&str] = &[
    "gil", "locked", "tcache", "sharded", "system", "mimalloc", "jemalloc", "snmalloc", "null",
];

const KNOWN: &[(&str, &str)] = &[
    ("gil", "#D55E00"),
    ("locked", "#E69F00"),
    ("tcache", "#009E73"),
    ("sharded", "#0072B2"),
    ("system", "#000000"),
    ("mimalloc", "#CC79A7"),
    ("jemalloc", "#56B4E9"),
    ("snmalloc", "#8C6D1F"),
    ("null", "#9A9A9A"),
];

const FALLBACK: &[&str] = &[
    "#7B3294", "#1B7837", "#B2182B", "#2166AC", "#5E3C99", "#A6611A",
];

/// The subject's colour as a CSS hex string.
pub fn color(subject: &str) -> &'static str {
    if let Some((_, c)) = KNOWN.iter().find(|(n, _)| *n == subject) {
        return c;
    }
    // FNV-1a: stable across runs and platforms, unlike std's RandomState.
    let mut h: u32 = 0x811c_9dc5;
    for b in subject.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    FALLBACK[h as usize % FALLBACK.len()]
}

/// Sort key putting subjects in [`ORDER`], unknown ones after, by name.
pub fn rank(subject: &str) -> (usize, String) {
    let pos = ORDER
        .iter()
        .position(|n| *n == subject)
        .unwrap_or(ORDER.len());
    (pos, subject.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_subjects_have_distinct_colours() {
        let mut seen: Vec<&str> = ORDER.iter().map(|s| color(s)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ORDER.len());
    }

    #[test]
    fn unknown_subjects_are_stable() {
        assert_eq!(color("newalloc"), color("newalloc"));
        assert!(color("newalloc").starts_with('#'));
        assert!(rank("gil") < rank("null"));
        assert!(rank("null") < rank("aaa"));
    }
}
