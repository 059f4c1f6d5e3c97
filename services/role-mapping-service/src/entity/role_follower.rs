//! `role_followers`: how far the holdings of a directory with a role
//! mapping follow its change log.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "role_followers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    /// The sequence number of the directory's last event applied.
    pub after_sequence: i64,
    /// The mapping version every user was last decided under; a different
    /// current version means deciding every user again.
    pub mapping_version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
