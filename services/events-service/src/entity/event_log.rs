//! `event_log`: every directory's events, numbered 1, 2, 3, … per directory.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    /// The event's id, given when its change wrote it to the outbox.
    pub id: String,
    /// `idmesh.v1.EventType`, for filtering by type in SQL.
    pub event_type: i32,
    /// When the change committed, in milliseconds since the Unix epoch
    /// (a number, so that it compares as one on SQLite too).
    pub time_ms: i64,
    /// The whole `idmesh.v1.Event`, sequence included, protobuf-encoded.
    pub event: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
