//! `webhooks`: the registered endpoints.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Empty for an endpoint of every directory.
    pub directory_id: String,
    pub url: String,
    /// The `idmesh.v1.EventType` numbers it wants, comma-separated; empty
    /// for every type.
    pub types: String,
    pub description: String,
    /// `whsec_…`: signs every delivery.
    pub secret: String,
    /// The rotated-out secret, signing beside `secret` until
    /// `previous_expires_ms`.
    pub previous_secret: Option<String>,
    pub previous_expires_ms: Option<i64>,
    pub created_ms: i64,
    /// Why deliveries stopped (410, or failing for the whole retry window).
    pub disabled_reason: Option<String>,
    pub disabled_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
