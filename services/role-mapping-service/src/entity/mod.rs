//! The tables role-mapping-service owns.

pub mod profile_field;
pub mod role;
pub mod role_follower;
pub mod role_holding;
pub mod role_mapping;
pub mod role_rule;
