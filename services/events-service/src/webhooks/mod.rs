//! Webhooks: endpoints that receive the log over HTTP, signed per the
//! Standard Webhooks specification ([`signing`]), in sequence order per
//! endpoint and directory, retried with backoff ([`deliver`]); registered
//! and inspected over gRPC ([`api`]); stored in events-service's database
//! ([`store`]).

mod addresses;
pub(crate) mod api;
pub(crate) mod deliver;
mod signing;
pub(crate) mod store;

/// How long an event is retried before its endpoint is disabled, unless
/// configured otherwise: three days.
pub const DEFAULT_RETRY_WINDOW: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 60 * 60);
