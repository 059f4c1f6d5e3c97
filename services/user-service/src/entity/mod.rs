//! The tables user-service owns.

pub mod session_revocation;
pub mod user;
