//! The migration that creates a service's outbox table, for the service's
//! own migrator (under a name of its migrator's sequence).

use sea_orm_migration::prelude::*;

use crate::Outbox;

/// Creates the outbox table `table`; down drops it.
#[derive(Debug, Clone, Copy)]
pub struct CreateOutbox {
    /// The migration's name in the service's sequence, e.g.
    /// `m0006_create_event_outbox`.
    pub name: &'static str,
    pub table: &'static str,
}

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(Outbox::create_table(self.table)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Outbox::drop_table(self.table)).await
    }
}
