//! Workload fields, declared once.
//!
//! Every field of [`Workload`](super::workload::Workload) is written in one
//! place, the [`fields!`](crate::fields) invocation in `workload.rs`: its
//! name, type, default, documentation and the [`Rule`] its values obey.
//! Everything else is derived from that declaration: the struct and its
//! serde form (the JSON a parent hands to a child cell), `Default`, reading
//! a field from TOML or from `--set`/`--sweep` text ([`FieldValue`]),
//! printing it back in the same form, range checks with errors that name
//! the field and what it accepts, and the table `poolbench list` prints.
//! Adding a field means adding one entry there (and using it).

use std::fmt::{self, Display};

/// How a field's values are read and written as text.
pub trait FieldValue: Sized {
    /// Reads a value from TOML: a workload file's value, or `--set` text
    /// parsed as a TOML scalar (or, failing that, taken as a string).
    fn from_toml(v: toml::Value) -> Result<Self, String>;
    /// The compact form [`FieldValue::from_toml`] reads back (labels,
    /// sweep keys, `poolbench list`).
    fn show(&self) -> String;
}

/// What values a field accepts, and how they are checked.
pub trait Rule<T: ?Sized> {
    /// The accepted values, for errors and `poolbench list`.
    fn accepted(&self) -> String;
    /// `Err(why)` for a value outside the rule.
    fn check(&self, v: &T) -> Result<(), String>;
}

/// An inclusive numeric range.
pub struct Range<T>(pub T, pub T);

impl<T: PartialOrd + Display + Copy> Rule<T> for Range<T> {
    fn accepted(&self) -> String {
        format!("{}..={}", self.0, self.1)
    }
    fn check(&self, v: &T) -> Result<(), String> {
        if *v >= self.0 && *v <= self.1 {
            Ok(())
        } else {
            Err("out of range".into())
        }
    }
}

/// An optional value: unset, or inside the range.
pub struct OptRange<T>(pub T, pub T);

impl<T: PartialOrd + Display + Copy> Rule<Option<T>> for OptRange<T> {
    fn accepted(&self) -> String {
        format!("{}..={}", self.0, self.1)
    }
    fn check(&self, v: &Option<T>) -> Result<(), String> {
        match v {
            Some(v) => Range(self.0, self.1).check(v),
            None => Ok(()),
        }
    }
}

/// A rule written as a function, with its accepted values spelled out.
pub struct Custom<T: ?Sized + 'static> {
    pub accepted: &'static str,
    pub check: fn(&T) -> Result<(), String>,
}

impl<T: ?Sized> Rule<T> for Custom<T> {
    fn accepted(&self) -> String {
        self.accepted.to_string()
    }
    fn check(&self, v: &T) -> Result<(), String> {
        (self.check)(v)
    }
}

/// One field as `poolbench list` and error messages describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDoc {
    /// Name in TOML files, `--set` and `--sweep`.
    pub name: &'static str,
    /// What the field does (its doc comment).
    pub help: String,
    /// The values it accepts.
    pub accepted: String,
    /// Its default, in the compact form.
    pub default: String,
}

/// A doc comment's lines as one sentence.
pub fn help_text(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}

/// Declares the workload's fields once; see the module docs. Each entry:
///
/// ```text
/// /// Doc comment: the field's help.
/// name: Type = default, rule RULE [, clears other_field];
/// ```
///
/// `clears`: setting this field unsets `other_field` (an `Option`), for
/// pairs of which only one may be set (`ops_per_thread`/`duration_ms`).
#[macro_export]
macro_rules! fields {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident : $ty:ty = $default:expr, rule $rule:expr $(, clears $other:ident)? ;
    )+) => {
        /// One concurrent allocation workload: everything a cell needs
        /// besides the subject under test. Fields are declared once (see
        /// `spec::field`); [`Workload::check`] turns it into a [`Checked`]
        /// workload, the only form plans and the driver take.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Workload {
            $( $(#[doc = $doc])+ pub $name: $ty, )+
        }

        impl Default for Workload {
            fn default() -> Self {
                Workload { $( $name: $default, )+ }
            }
        }

        impl Workload {
            /// Every field, in declaration order, with its documentation.
            pub fn fields() -> Vec<$crate::spec::field::FieldDoc> {
                let d = Workload::default();
                vec![$(
                    $crate::spec::field::FieldDoc {
                        name: stringify!($name),
                        help: $crate::spec::field::help_text(&[$($doc),+]),
                        accepted: $crate::spec::field::Rule::<$ty>::accepted(&$rule),
                        default: $crate::spec::field::FieldValue::show(&d.$name),
                    },
                )+]
            }

            /// Every field name, in declaration order.
            pub const FIELD_NAMES: &'static [&'static str] = &[$(stringify!($name)),+];

            /// Assigns one field from a TOML value (type only; ranges are
            /// [`Workload::check`]'s job).
            fn apply_field(&mut self, field: &str, value: toml::Value) -> Result<(), WorkloadError> {
                match field {
                    $(stringify!($name) => {
                        let shown = value.to_string();
                        self.$name = $crate::spec::field::FieldValue::from_toml(value)
                            .map_err(|why| invalid(field, shown, why))?;
                        $( self.$other = None; )?
                    })+
                    _ => return Err(unknown_field(field)),
                }
                Ok(())
            }

            /// A field's value in its compact form.
            fn show_field(&self, field: &str) -> Result<String, WorkloadError> {
                match field {
                    $(stringify!($name) => Ok($crate::spec::field::FieldValue::show(&self.$name)),)+
                    _ => Err(unknown_field(field)),
                }
            }

            /// Checks one field against its rule.
            fn check_field(&self, field: &str) -> Result<(), WorkloadError> {
                match field {
                    $(stringify!($name) => $crate::spec::field::Rule::<$ty>::check(&$rule, &self.$name)
                        .map_err(|why| {
                            invalid(field, $crate::spec::field::FieldValue::show(&self.$name), why)
                        }),)+
                    _ => Err(unknown_field(field)),
                }
            }

            /// Checks every field against its rule; the first failure names it.
            fn check_fields(&self) -> Result<(), WorkloadError> {
                $(
                    $crate::spec::field::Rule::<$ty>::check(&$rule, &self.$name).map_err(|why| {
                        invalid(stringify!($name), $crate::spec::field::FieldValue::show(&self.$name), why)
                    })?;
                )+
                Ok(())
            }
        }
    };
}

// ---- FieldValue for the plain types ----

fn want_integer(v: &toml::Value) -> Result<i64, String> {
    match v {
        toml::Value::Integer(n) => Ok(*n),
        toml::Value::String(s) => s
            .trim()
            .replace('_', "")
            .parse::<i64>()
            .map_err(|_| format!("expected a whole number, got {s:?}")),
        other => Err(format!("expected a whole number, got {}", other.type_str())),
    }
}

macro_rules! unsigned_field {
    ($($t:ty),*) => {$(
        impl FieldValue for $t {
            fn from_toml(v: toml::Value) -> Result<Self, String> {
                let n = want_integer(&v)?;
                <$t>::try_from(n).map_err(|_| format!("{n} is not a {}-bit unsigned number", <$t>::BITS))
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
unsigned_field!(u32, usize);

impl FieldValue for u64 {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        // TOML integers are i64; seeds above i64::MAX come as text.
        if let toml::Value::String(s) = &v {
            if let Ok(n) = s.trim().replace('_', "").parse::<u64>() {
                return Ok(n);
            }
        }
        let n = want_integer(&v)?;
        u64::try_from(n).map_err(|_| format!("{n} is negative"))
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for Option<u64> {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        u64::from_toml(v).map(Some)
    }
    fn show(&self) -> String {
        self.map_or_else(|| "unset".to_string(), |n| n.to_string())
    }
}

impl FieldValue for f64 {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Float(f) => Ok(f),
            toml::Value::Integer(n) => Ok(n as f64),
            toml::Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("expected a number, got {s:?}")),
            other => Err(format!("expected a number, got {}", other.type_str())),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for bool {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Boolean(b) => Ok(b),
            toml::Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(format!("expected true or false, got {other}")),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl FieldValue for String {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Ok(s),
            // `--set name=2024` reads as an integer; a name is text.
            toml::Value::Integer(n) => Ok(n.to_string()),
            other => Err(format!("expected a string, got {}", other.type_str())),
        }
    }
    fn show(&self) -> String {
        self.clone()
    }
}

/// Deserialises a TOML table into `T` with serde, for the tagged-table
/// forms of sizes and lifetimes.
pub fn from_table<T: serde::de::DeserializeOwned>(v: toml::Value) -> Result<T, String> {
    v.try_into::<T>()
        .map_err(|e| e.message().trim().to_string())
}

/// A value as TOML inline text, falling back to its debug form.
pub fn toml_text<T: serde::Serialize + fmt::Debug>(v: &T) -> String {
    toml::Value::try_from(v).map_or_else(|_| format!("{v:?}"), |t| t.to_string())
}
