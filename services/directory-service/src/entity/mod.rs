//! The tables directory-service owns.

pub mod directory;
pub mod token;
