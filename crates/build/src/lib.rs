//! den-build: the pure foundation of `den build`.
pub mod words;
