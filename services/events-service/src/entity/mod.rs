//! The tables events-service owns.

pub mod event_head;
pub mod event_log;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_cursor;
