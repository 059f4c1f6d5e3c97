//! The tables group-service owns.

pub mod deleted_member;
pub mod group;
pub mod group_member;
