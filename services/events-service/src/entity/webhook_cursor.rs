//! `webhook_cursors`: where an endpoint stands in one directory's log.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_cursors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub webhook_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    /// Every event through this sequence number is delivered or skipped.
    pub delivered_through: i64,
    /// Failed attempts at the next event.
    pub failed_attempts: i32,
    /// Not before this time (milliseconds since the Unix epoch).
    pub next_attempt_ms: i64,
    /// When the next event first failed.
    pub failing_since_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Until when one replica delivers for this cursor: a replica claims
    /// it by moving this forward while it lies in the past.
    pub lease_until_ms: i64,
    /// Which delivery holds the lease (a token of its own).
    pub lease_owner: Option<String>,
    /// Moved on by every replay, so that a delivery that began before it
    /// stops.
    pub generation: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
