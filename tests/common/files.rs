//! Local files of the tests: deterministic content to write (the same seed gives the same
//! bytes, so a failure reproduces), and the names a folder holds.
//!
//! The server sniffs content, so a `.txt` file must look like text: [`text`] and
//! [`text_of_bytes`] are printable. They give different text for the same seed; each test
//! keeps the generator its data was built with.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

/// The characters of [`text`] and [`text_of_bytes`].
const TEXT_CHARS: &[u8; 38] = b"abcdefghijklmnopqrstuvwxyz0123456789 \n";

/// Deterministic bytes (xorshift), so failures reproduce.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Printable text of `len` bytes: one character per xorshift step.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            TEXT_CHARS[(x % 38) as usize]
        })
        .collect()
}

/// Printable text of `len` bytes: one character per byte of [`bytes`]`(seed, len)`.
pub fn text_of_bytes(seed: u64, len: usize) -> Vec<u8> {
    bytes(seed, len)
        .into_iter()
        .map(|b| TEXT_CHARS[usize::from(b) % 38])
        .collect()
}

/// The names of the entries of `dir` (not recursive).
pub fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}
