//! `api_keys`: the credentials of gRPC callers, stored only as SHA-256
//! hashes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret; unique.
    pub secret_hash: String,
    /// Scope names separated by spaces (a scope name has none).
    pub scopes: String,
    /// Directory ids separated by spaces; empty for a key not limited to
    /// directories.
    pub directory_ids: String,
    pub created: TimeDateTimeWithTimeZone,
    pub expires_at: Option<TimeDateTimeWithTimeZone>,
    pub revoked_at: Option<TimeDateTimeWithTimeZone>,
}

impl Model {
    /// Whether the key still authenticates at `now`.
    pub fn is_live(&self, now: TimeDateTimeWithTimeZone) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
