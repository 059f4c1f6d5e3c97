//! directory-service's schema, tracked in its own migrations table so that it
//! can share a database with the other services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    integer_null, string, string_uniq, text, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateDirectoriesAndTokens),
            Box::new(CreateApiKeys),
            Box::new(AddDirectoryRateLimits),
            Box::new(idmesh_outbox::CreateOutbox {
                name: "m0004_create_event_outbox",
                table: crate::service::OUTBOX_TABLE,
            }),
        ]
    }

    fn migration_table_name() -> DynIden {
        "directory_service_migrations".into_iden()
    }
}

struct CreateDirectoriesAndTokens;

impl MigrationName for CreateDirectoriesAndTokens {
    fn name(&self) -> &str {
        "m0001_create_directories_and_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDirectoriesAndTokens {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("directories")
                    .col(string("id").primary_key())
                    .col(string("name"))
                    .col(timestamp_with_time_zone("created"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("directory_tokens")
                    .col(string("id").primary_key())
                    .col(string("directory_id"))
                    .col(string_uniq("secret_hash"))
                    .col(string("description"))
                    .col(timestamp_with_time_zone("created"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("directory_tokens", "directory_id")
                            .to("directories", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("directory_tokens_by_directory")
                    .table("directory_tokens")
                    .col("directory_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("directory_tokens").to_owned())
            .await?;
        manager.drop_table(Table::drop().table("directories").to_owned()).await
    }
}

struct CreateApiKeys;

impl MigrationName for CreateApiKeys {
    fn name(&self) -> &str {
        "m0002_create_api_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateApiKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .col(string("id").primary_key())
                    .col(string("name"))
                    .col(string_uniq("secret_hash"))
                    .col(text("scopes"))
                    .col(text("directory_ids"))
                    .col(timestamp_with_time_zone("created"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("api_keys").to_owned()).await
    }
}

/// A directory's own rate at the gateway: both columns set, or both null
/// for the deployment's default.
struct AddDirectoryRateLimits;

impl MigrationName for AddDirectoryRateLimits {
    fn name(&self) -> &str {
        "m0003_add_directory_rate_limits"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDirectoryRateLimits {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in ["rate_limit_per_second", "rate_limit_burst"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("directories")
                        .add_column(integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["rate_limit_per_second", "rate_limit_burst"] {
            manager
                .alter_table(Table::alter().table("directories").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
