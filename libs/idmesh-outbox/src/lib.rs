//! The outbox of change events a service keeps: each write records its
//! events ([`Outbox::record`]) in the write's own transaction, so an event
//! exists exactly when its change does, and events-service drains them
//! through the `idmesh.v1.OutboxService` this crate serves ([`OutboxApi`]).
//!
//! Rows are read oldest first and deleted once events-service has sequenced
//! them. Ids come from the database's own counter and are taken after the
//! write has locked its resource (a row lock on PostgreSQL, the database
//! lock on SQLite), so the events of one resource are in commit order. Two
//! transactions on different resources may commit out of id order; a row
//! that shows up late is simply drained by a later pull, since draining
//! deletes rows rather than remembering a position.

mod api;
mod backlog;
mod changes;
mod migration;

use std::sync::Arc;

use idmesh_proto::v1::{Event, OutboxEvent};
use prost::Message;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, InsertStatement, Order, Query};
use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::prelude::{Table, TableCreateStatement, TableDropStatement};
use sea_orm_migration::schema::{big_pk_auto, blob};
use tokio::sync::Notify;

pub use api::OutboxApi;
pub use backlog::{OLDEST_METRIC, PENDING_METRIC};
pub use changes::changed_attributes;
pub use migration::CreateOutbox;

/// A resource as an event carries it: SCIM JSON with `id` and `meta`, as
/// the gateway serves it, except `meta.location`, which only the gateway
/// knows.
pub fn resource_json(doc: &serde_json::Map<String, serde_json::Value>, id: &str, meta: &scim::meta::Meta) -> String {
    let mut rendered = scim::meta::render(doc, id, meta);
    if let Some(meta) = rendered.get_mut("meta").and_then(serde_json::Value::as_object_mut) {
        meta.remove("location");
    }
    rendered.to_string()
}

/// How many events one INSERT carries: well below SQLite's and
/// PostgreSQL's limits on bound parameters.
const INSERT_CHUNK: usize = 500;

/// The most events one pull answers, and one ack names.
pub const MAX_BATCH: usize = 1_000;

/// One service's outbox table.
#[derive(Debug, Clone)]
pub struct Outbox {
    table: &'static str,
    /// Wakes pulls waiting in this process when a write commits events.
    written: Arc<Notify>,
}

impl Outbox {
    /// The outbox kept in `table`: a name of the service's own, since
    /// services may share a database.
    pub fn new(table: &'static str) -> Outbox {
        Outbox {
            table,
            written: Arc::new(Notify::new()),
        }
    }

    /// The table, for [`CreateOutbox`].
    pub(crate) fn create_table(table: &'static str) -> TableCreateStatement {
        Table::create()
            .table(Alias::new(table))
            .col(big_pk_auto("id"))
            .col(blob("event"))
            .to_owned()
    }

    /// Drops the table, for [`CreateOutbox`]'s `down`.
    pub(crate) fn drop_table(table: &'static str) -> TableDropStatement {
        Table::drop().table(Alias::new(table)).to_owned()
    }

    /// Records `events` in `conn`, which must be the transaction of the
    /// change they describe. Each gets an id (UUIDv7) here; `sequence` is
    /// left for events-service.
    pub async fn record<C: ConnectionTrait>(&self, conn: &C, events: Vec<Event>) -> Result<(), DbErr> {
        for chunk in events.chunks(INSERT_CHUNK) {
            conn.execute(&self.insert(chunk)?).await?;
        }
        Ok(())
    }

    /// The INSERT that records `events` (at most a few hundred), for a
    /// caller that writes it in one statement with its change, e.g. as the
    /// outer statement of a data-modifying `WITH` on PostgreSQL.
    pub fn insert(&self, events: &[Event]) -> Result<InsertStatement, DbErr> {
        let mut insert = Query::insert();
        insert.into_table(Alias::new(self.table)).columns([Alias::new("event")]);
        for event in events {
            let event = Event {
                id: uuid::Uuid::now_v7().to_string(),
                ..event.clone()
            };
            insert
                .values([Expr::val(event.encode_to_vec())])
                .map_err(|err| DbErr::Custom(err.to_string()))?;
        }
        Ok(insert)
    }

    /// Tells waiting pulls that a transaction with events committed. Call it
    /// after the commit; a pull that misses it (another replica wrote) still
    /// finds the events when it looks again.
    pub fn written(&self) {
        self.written.notify_waiters();
    }

    /// Up to `limit` of the oldest events.
    async fn pull<C: ConnectionTrait>(&self, conn: &C, limit: usize) -> Result<Vec<OutboxEvent>, DbErr> {
        let select = Query::select()
            .columns([Alias::new("id"), Alias::new("event")])
            .from(Alias::new(self.table))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .to_owned();
        let rows = conn.query_all(&select).await?;
        rows.into_iter()
            .map(|row| {
                let outbox_id: i64 = row.try_get("", "id")?;
                let bytes: Vec<u8> = row.try_get("", "event")?;
                let event = Event::decode(bytes.as_slice())
                    .map_err(|err| DbErr::Custom(format!("outbox row {outbox_id} does not decode: {err}")))?;
                Ok(OutboxEvent {
                    outbox_id,
                    event: Some(event),
                })
            })
            .collect()
    }

    /// Deletes the events with these ids.
    async fn ack<C: ConnectionTrait>(&self, conn: &C, ids: &[i64]) -> Result<u64, DbErr> {
        let delete = Query::delete()
            .from_table(Alias::new(self.table))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
            .to_owned();
        let result = conn.execute(&delete).await?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests;
