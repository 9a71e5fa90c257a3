//! Number formatting shared by the report, the index and `compare`.
//!
//! Units are chosen per chart or column from the largest value, so one axis
//! never mixes "900 k" and "1.2 M"; labels carry their unit.

/// A throughput unit: divisor and name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unit {
    pub div: f64,
    pub name: &'static str,
}

/// ops/s, kops/s or Mops/s, whichever keeps `max` readable.
pub fn throughput_unit(max: f64) -> Unit {
    if max >= 1e6 {
        Unit {
            div: 1e6,
            name: "Mops/s",
        }
    } else if max >= 1e3 {
        Unit {
            div: 1e3,
            name: "kops/s",
        }
    } else {
        Unit {
            div: 1.0,
            name: "ops/s",
        }
    }
}

/// Three significant digits, without a trailing ".0" on large values.
pub fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Throughput in a fixed unit, e.g. "12.3 Mops/s".
pub fn ops(v: f64) -> String {
    let u = throughput_unit(v);
    format!("{} {}", sig3(v / u.div), u.name)
}

/// Nanoseconds as ns, µs, ms or s.
pub fn ns(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v >= 1e9 {
        format!("{} s", sig3(v / 1e9))
    } else if v >= 1e6 {
        format!("{} ms", sig3(v / 1e6))
    } else if v >= 1e3 {
        format!("{} µs", sig3(v / 1e3))
    } else {
        format!("{} ns", sig3(v))
    }
}

/// Bytes in binary units.
pub fn bytes(v: f64) -> String {
    const K: f64 = 1024.0;
    if !v.is_finite() {
        "—".into()
    } else if v >= K * K * K {
        format!("{} GiB", sig3(v / (K * K * K)))
    } else if v >= K * K {
        format!("{} MiB", sig3(v / (K * K)))
    } else if v >= K {
        format!("{} KiB", sig3(v / K))
    } else {
        format!("{v:.0} B")
    }
}

/// Drops trailing zeros of the number in front of an optional unit:
/// tick labels such as "10 µs" and "0.2" read better than "10.0 µs" and
/// "0.200", and on one axis the step already shows the precision.
pub fn trim(s: String) -> String {
    let (num, unit) = match s.find(' ') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s.as_str(), ""),
    };
    if !num.contains('.') {
        return s;
    }
    let num = num.trim_end_matches('0').trim_end_matches('.');
    format!("{num}{unit}")
}

/// A bare number for tick labels.
pub fn tick(v: f64) -> String {
    trim(sig3(v))
}

/// A latency tick label.
pub fn ns_tick(v: f64) -> String {
    trim(ns(v))
}

/// A percentile as `p50`, `p99.9`.
pub fn percentile(p: f64) -> String {
    let s = format!("{p:.4}");
    format!("p{}", s.trim_end_matches('0').trim_end_matches('.'))
}

/// A ratio such as a fragmentation factor: "1.37×".
pub fn times(v: f64) -> String {
    format!("{}×", sig3(v))
}

/// A signed relative change: "+12.3%", "−4.0%".
pub fn pct_change(rel: f64) -> String {
    if !rel.is_finite() {
        return "—".into();
    }
    let p = rel * 100.0;
    if p < 0.0 {
        format!("−{:.1}%", -p)
    } else {
        format!("+{p:.1}%")
    }
}

/// Shell-quotes a command line so it can be pasted back.
pub fn shell_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let safe = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if safe {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(ops(12_345_678.0), "12.3 Mops/s");
        assert_eq!(ops(950.0), "950 ops/s");
        assert_eq!(ns(1500.0), "1.50 µs");
        assert_eq!(ns(42.0), "42.0 ns");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.00 MiB");
        assert_eq!(pct_change(-0.3), "−30.0%");
        assert_eq!(pct_change(0.05), "+5.0%");
        assert_eq!(ns_tick(10_000.0), "10 µs");
        assert_eq!(tick(0.2), "0.2");
        assert_eq!(tick(120.0), "120");
        assert_eq!(ns_tick(2.5), "2.5 ns");
        assert_eq!(percentile(50.0), "p50");
        assert_eq!(percentile(99.9), "p99.9");
    }

    #[test]
    fn shell_quoting_round_trips_spaces_and_quotes() {
        let argv = ["poolbench", "run", "--workload", "a b", "it's"].map(String::from);
        assert_eq!(
            shell_command(&argv),
            "poolbench run --workload 'a b' 'it'\\''s'"
        );
    }
}
