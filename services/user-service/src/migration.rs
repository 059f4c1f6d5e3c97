//! user-service's schema, tracked in its own migrations table so that it can
//! share a database with the other services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, json_binary, string, string_null, text_null, timestamp_with_time_zone,
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUsers)]
    }

    fn migration_table_name() -> DynIden {
        "user_service_migrations".into_iden()
    }
}

struct CreateUsers;

impl MigrationName for CreateUsers {
    fn name(&self) -> &str {
        "m0001_create_users"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUsers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(string("id").primary_key())
                    .col(string("directory_id"))
                    .col(string("user_name"))
                    .col(string("user_name_folded"))
                    .col(string_null("external_id"))
                    .col(boolean("active"))
                    .col(string_null("display_name"))
                    .col(json_binary("resource"))
                    .col(text_null("password_hash"))
                    .col(big_integer("version"))
                    .col(timestamp_with_time_zone("created"))
                    .col(timestamp_with_time_zone("last_modified"))
                    .to_owned(),
            )
            .await?;
        // userName is unique per directory, ignoring case (RFC 7643 §4.1.1).
        manager
            .create_index(
                Index::create()
                    .name("users_unique_user_name")
                    .table("users")
                    .col("directory_id")
                    .col("user_name_folded")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Okta and Entra look users up by externalId.
        manager
            .create_index(
                Index::create()
                    .name("users_by_external_id")
                    .table("users")
                    .col("directory_id")
                    .col("external_id")
                    .to_owned(),
            )
            .await?;
        // Listing pages through a directory in id order.
        manager
            .create_index(
                Index::create()
                    .name("users_by_directory")
                    .table("users")
                    .col("directory_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("users").to_owned()).await
    }
}
