//! A pool: one page-sized, page-aligned unit holding blocks of one class.

/// Bytes of the pool header before rounding to the geometry's alignment.
pub(crate) const POOL_HEADER_SIZE: usize = 64;
