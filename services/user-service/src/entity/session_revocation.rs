//! `session_revocations`: the outbox of session revocations that
//! session-service has not confirmed yet. A row is written in the same
//! transaction as the user change that calls for it, and deleted once
//! session-service has revoked the user's sessions (and, for a deleted
//! user, group-service has removed it from its groups).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "session_revocations")]
pub struct Model {
    /// UUIDv7, so that ids sort in the order the revocations were stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub directory_id: String,
    pub user_id: String,
    /// What session-service is told, e.g. "user deactivated".
    pub reason: String,
    /// Whether group-service must also remove the user from every group
    /// (the user was deleted).
    pub remove_memberships: bool,
    pub created: TimeDateTimeWithTimeZone,
    /// Failed deliveries so far; each one makes the next wait longer.
    pub attempts: i32,
    /// No delivery starts before this instant: the end of a retry's
    /// backoff, or of the lease of whoever claimed the row. Milliseconds
    /// since the Unix epoch, so that it compares as a number on SQLite too,
    /// where timestamps are text.
    pub deliver_after: i64,
    /// The token of whoever claimed the row last. Only that claimant may
    /// reschedule it; once its lease has run out anyone may claim it anew.
    pub claim: Option<String>,
    /// Why the last delivery failed.
    pub last_error: Option<String>,
    /// The W3C `traceparent` of the request that stored the row: a delivery
    /// retried later continues that request's trace.
    pub traceparent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
