//! events-service's schema, tracked in its own migrations table so that it
//! can share a database with the other services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, blob, integer, string, string_null, text, text_null,
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateEventLog), Box::new(CreateWebhooks)]
    }

    fn migration_table_name() -> DynIden {
        "events_service_migrations".into_iden()
    }
}

struct CreateEventLog;

impl MigrationName for CreateEventLog {
    fn name(&self) -> &str {
        "m0001_create_event_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEventLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The primary key reads a directory's log in order, from any
        // sequence number.
        manager
            .create_table(
                Table::create()
                    .table("event_log")
                    .col(string("directory_id"))
                    .col(big_integer("sequence"))
                    .col(string("id"))
                    .col(integer("event_type"))
                    .col(big_integer("time_ms"))
                    .col(blob("event"))
                    .primary_key(Index::create().col("directory_id").col("sequence"))
                    .to_owned(),
            )
            .await?;
        // An event drained twice (a pull answered again after a crash,
        // before its ack) is recognised by its id and kept once.
        manager
            .create_index(
                Index::create()
                    .name("event_log_unique_id")
                    .table("event_log")
                    .col("id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // ListEvents from a time, and retention.
        manager
            .create_index(
                Index::create()
                    .name("event_log_by_time")
                    .table("event_log")
                    .col("directory_id")
                    .col("time_ms")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("event_heads")
                    .col(string("directory_id").primary_key())
                    .col(big_integer("latest"))
                    .col(big_integer("pruned_through"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("event_heads").to_owned())
            .await?;
        manager.drop_table(Table::drop().table("event_log").to_owned()).await
    }
}

struct CreateWebhooks;

impl MigrationName for CreateWebhooks {
    fn name(&self) -> &str {
        "m0002_create_webhooks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWebhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhooks")
                    .col(string("id").primary_key())
                    // Empty for an endpoint of every directory.
                    .col(string("directory_id"))
                    .col(text("url"))
                    // The event types' numbers, comma-separated; empty for
                    // every type.
                    .col(string("types"))
                    .col(string("description"))
                    .col(string("secret"))
                    .col(string_null("previous_secret"))
                    .col(big_integer_null("previous_expires_ms"))
                    .col(big_integer("created_ms"))
                    .col(text_null("disabled_reason"))
                    .col(big_integer_null("disabled_ms"))
                    .to_owned(),
            )
            .await?;
        // Where each endpoint stands in each directory's log.
        manager
            .create_table(
                Table::create()
                    .table("webhook_cursors")
                    .col(string("webhook_id"))
                    .col(string("directory_id"))
                    .col(big_integer("delivered_through"))
                    .col(integer("failed_attempts"))
                    .col(big_integer("next_attempt_ms"))
                    .col(big_integer_null("failing_since_ms"))
                    .col(text_null("last_error"))
                    // Until when one replica delivers for this cursor.
                    .col(big_integer("lease_until_ms"))
                    .col(string_null("lease_owner"))
                    .col(big_integer("generation"))
                    .primary_key(Index::create().col("webhook_id").col("directory_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_attempts")
                    .col(big_pk_auto("id"))
                    .col(string("webhook_id"))
                    .col(string("directory_id"))
                    .col(big_integer("sequence"))
                    .col(string("event_id"))
                    .col(integer("event_type"))
                    .col(integer("attempt"))
                    .col(big_integer("time_ms"))
                    .col(big_integer("duration_ms"))
                    .col(integer("status_code"))
                    .col(text_null("error"))
                    .to_owned(),
            )
            .await?;
        // ListDeliveryAttempts, newest first.
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_by_webhook")
                    .table("webhook_attempts")
                    .col("webhook_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        // Retention.
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_by_time")
                    .table("webhook_attempts")
                    .col("time_ms")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["webhook_attempts", "webhook_cursors", "webhooks"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
