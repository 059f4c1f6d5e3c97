//! The tables user-service owns.

pub mod user;
