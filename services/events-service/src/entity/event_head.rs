//! `event_heads`: where each directory's log stands.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_heads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    /// The newest sequence number given (0 before the first event).
    pub latest: i64,
    /// The newest sequence number retention has removed (0 when none): a
    /// watch or list from before it has missed events.
    pub pruned_through: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
