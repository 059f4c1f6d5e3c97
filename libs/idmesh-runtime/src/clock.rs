//! Time as a parameter, so expiry can be tested without sleeping.

use std::sync::Arc;

use time::OffsetDateTime;

/// Where a service reads the current time from.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock, in UTC, to the microsecond: the precision PostgreSQL
/// stores, so a timestamp reads back as it was written.
pub fn system() -> Clock {
    Arc::new(|| {
        let now = OffsetDateTime::now_utc();
        now.replace_microsecond(now.microsecond()).unwrap_or(now)
    })
}
