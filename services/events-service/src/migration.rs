//! events-service's schema, tracked in its own migrations table so that it
//! can share a database with the other services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob, integer, string};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateEventLog)]
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
