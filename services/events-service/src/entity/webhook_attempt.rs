//! `webhook_attempts`: every delivery attempt, kept as long as events are.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: String,
    pub directory_id: String,
    pub sequence: i64,
    pub event_id: String,
    pub event_type: i32,
    /// 1 for the first attempt at the event.
    pub attempt: i32,
    pub time_ms: i64,
    pub duration_ms: i64,
    /// 0 when no answer came.
    pub status_code: i32,
    /// None when the attempt succeeded.
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
