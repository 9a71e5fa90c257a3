//! How much of each block a workload writes, and where.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::field::{Custom, FieldValue};
use super::size::MAX_BLOCK_SIZE;

/// Bytes written into each block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// The whole block.
    All,
    /// At most this many bytes (from the start of the block).
    Bytes(usize),
}

impl Touch {
    /// Bytes to write into a block of `size` bytes.
    pub fn bytes_for(self, size: usize) -> usize {
        match self {
            Touch::All => size,
            Touch::Bytes(n) => n.min(size),
        }
    }
}

/// The byte limit as a number: `all` is `u64::MAX` (every block is smaller).
impl From<Touch> for u64 {
    fn from(t: Touch) -> u64 {
        match t {
            Touch::All => u64::MAX,
            Touch::Bytes(n) => n as u64,
        }
    }
}

impl fmt::Display for Touch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Touch::All => f.write_str("all"),
            Touch::Bytes(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Touch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Touch::All => s.serialize_str("all"),
            Touch::Bytes(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Touch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Touch, D::Error> {
        struct TouchVisitor;
        impl Visitor<'_> for TouchVisitor {
            type Value = Touch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a byte count")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Touch, E> {
                match v {
                    "all" => Ok(Touch::All),
                    _ => v
                        .parse::<usize>()
                        .map(Touch::Bytes)
                        .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Touch, E> {
                usize::try_from(v)
                    .map(Touch::Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Touch, E> {
                usize::try_from(v)
                    .map(Touch::Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_any(TouchVisitor)
    }
}

/// `all`, or a byte count no larger than the largest block.
pub const TOUCH_RULE: Custom<Touch> = Custom {
    accepted: "all, or a byte count 0..=268435456",
    check: |t| match t {
        Touch::Bytes(n) if *n > MAX_BLOCK_SIZE => Err("larger than any block".into()),
        _ => Ok(()),
    },
};

impl FieldValue for Touch {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) if s == "all" => Ok(Touch::All),
            v => u64::from_toml(v)
                .and_then(|n| usize::try_from(n).map_err(|_| format!("{n} is too large")))
                .map(Touch::Bytes),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_limits_the_bytes_written() {
        assert_eq!(Touch::All.bytes_for(100), 100);
        assert_eq!(Touch::Bytes(16).bytes_for(100), 16);
        assert_eq!(Touch::Bytes(16).bytes_for(8), 8);
        assert_eq!(u64::from(Touch::All), u64::MAX);
        assert_eq!(u64::from(Touch::Bytes(16)), 16);
        assert_eq!(
            Touch::from_toml(toml::Value::String("all".into())),
            Ok(Touch::All)
        );
        assert!((TOUCH_RULE.check)(&Touch::Bytes(1 << 30)).is_err());
    }
}

/// Where in a block the touched bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TouchAt {
    /// The first `touch_bytes` bytes.
    Start,
    /// Half of `touch_bytes` at the start and half at the end of the block
    /// (`touch_bytes = 2`: the first and the last byte, as sh6bench does).
    Ends,
}

/// `start` or `ends`.
pub const TOUCH_AT_RULE: Custom<TouchAt> = Custom {
    accepted: "start, ends",
    check: |_| Ok(()),
};

impl FieldValue for TouchAt {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) if s == "start" => Ok(TouchAt::Start),
            toml::Value::String(s) if s == "ends" => Ok(TouchAt::Ends),
            other => Err(format!("expected start or ends, got {other}")),
        }
    }
    fn show(&self) -> String {
        match self {
            TouchAt::Start => "start".into(),
            TouchAt::Ends => "ends".into(),
        }
    }
}
