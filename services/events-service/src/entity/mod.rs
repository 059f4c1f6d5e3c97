//! The tables events-service owns.

pub mod event_head;
pub mod event_log;
