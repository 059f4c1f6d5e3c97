//! The tables directory-service owns.

pub mod api_key;
pub mod directory;
pub mod token;
