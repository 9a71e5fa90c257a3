//! How a median and its interval are shown, and what the interval is
//! called.
//!
//! Every figure over repeats is an [`Estimate`]: a median and an interval
//! from `crate::stats`. With 6 repeats or more the interval is a 95%
//! confidence interval of the median and is called one ("95% CI"); with
//! fewer it is the range of the repeats, which holds the median with less
//! probability (75% for 3 repeats), and it is called a range, with that
//! probability stated, never a confidence interval. One repeat has no
//! interval at all.

use crate::results::Estimate;
use crate::stats::LEVEL;

/// Whether the estimate's interval is a 95% confidence interval.
pub fn is_ci(e: &Estimate) -> bool {
    e.n > 1 && e.confidence >= LEVEL
}

/// Whether there is an interval to show.
pub fn has_interval(e: &Estimate) -> bool {
    e.n > 1 && e.low.is_finite() && e.high.is_finite()
}

/// The interval's short name: "95% CI", "range of 3 repeats", or "one
/// repeat, no interval".
pub fn kind(e: &Estimate) -> String {
    if e.n <= 1 {
        "one repeat, no interval".into()
    } else if is_ci(e) {
        "95% CI".into()
    } else {
        format!("range of {} repeats", e.n)
    }
}

/// A sentence naming the interval and what it covers.
pub fn describe(e: &Estimate) -> String {
    if e.n <= 1 {
        "one repeat: no interval, the noise is unknown".into()
    } else if is_ci(e) {
        format!("95% confidence interval of the median over {} repeats", e.n)
    } else {
        format!(
            "the range of the {} repeats, which holds the median with {:.0}% probability (95% intervals need 6 repeats)",
            e.n,
            e.confidence * 100.0
        )
    }
}

/// The interval as `[low, high]` in the median's format, the unit written
/// once when both ends share it (`[34.7, 38.0] ns`, `[1.21, 1.23]×`);
/// empty when there is none.
pub fn text(e: &Estimate, fmt: impl Fn(f64) -> String) -> String {
    if !has_interval(e) {
        return String::new();
    }
    let (lo, hi) = (fmt(e.low), fmt(e.high));
    if let (Some((a, u)), Some((b, v))) = (lo.rsplit_once(' '), hi.rsplit_once(' ')) {
        if u == v {
            return format!("[{a}, {b}] {u}");
        }
    }
    if let (Some(a), Some(b)) = (lo.strip_suffix('×'), hi.strip_suffix('×')) {
        return format!("[{a}, {b}]×");
    }
    format!("[{lo}, {hi}]")
}

/// A tooltip: the median, the interval and its name.
pub fn title(e: &Estimate, fmt: impl Fn(f64) -> String) -> String {
    if has_interval(e) {
        format!("median {}; {}: {}", fmt(e.median), kind(e), text(e, fmt))
    } else {
        format!("{} ({})", fmt(e.median), kind(e))
    }
}

/// One description for a set of estimates (a table's or a chart's): the
/// common one when they agree, else a rule that covers both kinds.
pub fn describe_all<'a>(estimates: impl IntoIterator<Item = &'a Estimate>) -> Option<String> {
    let mut kinds: Vec<&Estimate> = estimates.into_iter().filter(|e| e.n > 0).collect();
    kinds.sort_by_key(|e| (e.n, is_ci(e)));
    kinds.dedup_by_key(|e| (e.n, is_ci(e)));
    let first = *kinds.first()?;
    Some(if kinds.len() == 1 {
        describe(first)
    } else if kinds.iter().all(|e| is_ci(e)) {
        "95% confidence interval of the median (repeats differ per cell; hover a figure for its count)".into()
    } else if kinds.iter().all(|e| !is_ci(e)) {
        "the range of the cell's repeats (fewer than 6: not a 95% interval; hover a figure for its count)".into()
    } else {
        "95% confidence interval of the median where a cell ran 6 repeats or more, else the range of its repeats (hover a figure for which)".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats;

    fn plain(v: f64) -> String {
        format!("{v}")
    }

    #[test]
    fn three_repeats_are_a_range_and_six_a_95_percent_interval() {
        let three = stats::estimate(&[1.0, 2.0, 3.0]);
        assert_eq!(kind(&three), "range of 3 repeats");
        assert!(describe(&three).contains("75% probability"));
        assert_eq!(text(&three, plain), "[1, 3]");
        assert_eq!(text(&three, |v| format!("{v} ns")), "[1, 3] ns");
        assert_eq!(text(&three, |v| format!("{v}×")), "[1, 3]×");
        let wide = stats::estimate(&[900.0, 1000.0, 1200.0]);
        assert_eq!(text(&wide, crate::report::format::ns), "[900 ns, 1.20 µs]");
        let six = stats::estimate(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(kind(&six), "95% CI");
        assert!(describe(&six).starts_with("95% confidence interval"));
        let one = stats::estimate(&[5.0]);
        assert_eq!(text(&one, plain), "");
        assert!(kind(&one).contains("no interval"));
        assert_eq!(title(&one, plain), "5 (one repeat, no interval)");
    }

    #[test]
    fn a_set_is_described_once_when_uniform() {
        let a = stats::estimate(&[1.0, 2.0, 3.0]);
        let b = stats::estimate(&[4.0, 5.0, 7.0]);
        assert_eq!(describe_all([&a, &b]), Some(describe(&a)));
        let six = stats::estimate(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mixed = describe_all([&a, &six]).unwrap();
        assert!(
            mixed.contains("where a cell ran 6 repeats or more"),
            "{mixed}"
        );
        assert_eq!(describe_all([]), None);
    }
}
