//! The tables group-service owns.

pub mod group;
pub mod group_member;
