//! The log: each directory's events numbered 1, 2, 3, … with no gap, read
//! in order from any sequence number, and cut at the retention horizon.

use std::collections::{BTreeMap, HashSet};

use idmesh_proto::v1::{Event, EventType};
use prost::Message;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use tokio::sync::watch;

use crate::entity::{event_head, event_log};

/// How many rows one INSERT or `IN (…)` list carries.
const CHUNK: usize = 500;

/// The counter of events appended to the log.
pub(crate) const LOGGED_METRIC: &str = "idmesh_events_logged_total";

/// Which events of a directory a read wants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range<'a> {
    /// Exclusive: after it forwards, before it backwards (0: from the end).
    pub from: i64,
    /// Forwards, the newest sequence number to read (inclusive).
    pub through: Option<i64>,
    pub descending: bool,
    /// None means every type.
    pub types: &'a [i32],
    pub limit: u64,
}

/// The log, and a signal that moves whenever events were appended.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    db: DatabaseConnection,
    appended: watch::Sender<u64>,
}

/// Milliseconds since the Unix epoch of an event's time.
fn time_ms(event: &Event) -> i64 {
    event
        .time
        .as_ref()
        .and_then(idmesh_api::timestamp::from_proto)
        .map_or(0, |at| {
            i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
        })
}

impl Log {
    pub(crate) fn new(db: DatabaseConnection) -> Log {
        // Exported from the start, so that a rate over it begins at zero.
        metrics::counter!(LOGGED_METRIC).increment(0);
        Log {
            db,
            appended: watch::Sender::new(0),
        }
    }

    /// A receiver that sees a change after every append in this process.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Appends `events` to their directories' logs, in the order given,
    /// in one transaction; an event already in the log (same id) is left
    /// out. Returns how many were new.
    ///
    /// Each directory's head row is locked (in directory order, so that two
    /// appenders never wait on each other in a cycle) before its new
    /// numbers are taken, so appenders in several processes still number
    /// without gaps or duplicates.
    pub(crate) async fn append(&self, events: Vec<Event>) -> Result<usize, DbErr> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut by_directory: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for event in events {
            by_directory.entry(event.directory_id.clone()).or_default().push(event);
        }
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let mut appended = 0;
        for (directory_id, events) in by_directory {
            appended += append_to(&txn, &directory_id, events).await?;
        }
        txn.commit().await?;
        metrics::counter!(LOGGED_METRIC).increment(u64::try_from(appended).unwrap_or(u64::MAX));
        if appended > 0 {
            self.appended.send_modify(|count| *count = count.wrapping_add(1));
        }
        Ok(appended)
    }

    /// Where a directory's log stands (zeros for one without events).
    pub(crate) async fn head(&self, directory_id: &str) -> Result<event_head::Model, DbErr> {
        Ok(event_head::Entity::find_by_id(directory_id)
            .one(&self.db)
            .await?
            .unwrap_or_else(|| event_head::Model {
                directory_id: directory_id.to_owned(),
                latest: 0,
                pruned_through: 0,
            }))
    }

    /// Where every directory's log stands.
    pub(crate) async fn heads(&self) -> Result<Vec<event_head::Model>, DbErr> {
        event_head::Entity::find().all(&self.db).await
    }

    /// The oldest sequence number the directory keeps, if it keeps any.
    pub(crate) async fn oldest(&self, directory_id: &str) -> Result<Option<i64>, DbErr> {
        event_log::Entity::find()
            .select_only()
            .column(event_log::Column::Sequence)
            .filter(event_log::Column::DirectoryId.eq(directory_id))
            .order_by_asc(event_log::Column::Sequence)
            .limit(1)
            .into_tuple()
            .one(&self.db)
            .await
    }

    /// The directory's events in `range`, in its order.
    pub(crate) async fn read(&self, directory_id: &str, range: Range<'_>) -> Result<Vec<Event>, DbErr> {
        let mut query = event_log::Entity::find()
            .select_only()
            .column(event_log::Column::Event)
            .filter(event_log::Column::DirectoryId.eq(directory_id));
        query = match (range.descending, range.from) {
            (false, from) => query.filter(event_log::Column::Sequence.gt(from)),
            (true, 0) => query,
            (true, from) => query.filter(event_log::Column::Sequence.lt(from)),
        };
        if let Some(through) = range.through {
            query = query.filter(event_log::Column::Sequence.lte(through));
        }
        if !range.types.is_empty() {
            query = query.filter(event_log::Column::EventType.is_in(range.types.iter().copied()));
        }
        query = if range.descending {
            query.order_by_desc(event_log::Column::Sequence)
        } else {
            query.order_by_asc(event_log::Column::Sequence)
        };
        let rows: Vec<Vec<u8>> = query.limit(range.limit).into_tuple().all(&self.db).await?;
        rows.iter()
            .map(|bytes| {
                Event::decode(bytes.as_slice())
                    .map_err(|err| DbErr::Custom(format!("a logged event does not decode: {err}")))
            })
            .collect()
    }

    /// The sequence number of the directory's first event at or after
    /// `time_ms` (forwards), or of its last one before it (backwards).
    pub(crate) async fn at_time(
        &self,
        directory_id: &str,
        time_ms: i64,
        descending: bool,
    ) -> Result<Option<i64>, DbErr> {
        let query = event_log::Entity::find()
            .select_only()
            .column(event_log::Column::Sequence)
            .filter(event_log::Column::DirectoryId.eq(directory_id));
        let query = if descending {
            query
                .filter(event_log::Column::TimeMs.lt(time_ms))
                .order_by_desc(event_log::Column::TimeMs)
        } else {
            query
                .filter(event_log::Column::TimeMs.gte(time_ms))
                .order_by_asc(event_log::Column::TimeMs)
        };
        query.limit(1).into_tuple().one(&self.db).await
    }

    /// Removes every directory's events older than `cutoff_ms` (a prefix of
    /// each log) and remembers where each cut is; how many were removed.
    pub(crate) async fn prune(&self, cutoff_ms: i64) -> Result<u64, DbErr> {
        let cuts: Vec<(String, Option<i64>)> = event_log::Entity::find()
            .select_only()
            .column(event_log::Column::DirectoryId)
            .column_as(event_log::Column::Sequence.max(), "through")
            .filter(event_log::Column::TimeMs.lt(cutoff_ms))
            .group_by(event_log::Column::DirectoryId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut removed = 0;
        for (directory_id, through) in cuts {
            let Some(through) = through else { continue };
            let txn = idmesh_store::begin_write(&self.db, None).await?;
            removed += event_log::Entity::delete_many()
                .filter(event_log::Column::DirectoryId.eq(&directory_id))
                .filter(event_log::Column::Sequence.lte(through))
                .exec(&txn)
                .await?
                .rows_affected;
            event_head::Entity::update_many()
                .col_expr(event_head::Column::PrunedThrough, through.into())
                .filter(event_head::Column::DirectoryId.eq(&directory_id))
                .filter(event_head::Column::PrunedThrough.lt(through))
                .exec(&txn)
                .await?;
            txn.commit().await?;
        }
        Ok(removed)
    }
}

/// Appends one directory's events under its head row's lock.
async fn append_to(txn: &DatabaseTransaction, directory_id: &str, events: Vec<Event>) -> Result<usize, DbErr> {
    event_head::Entity::insert(event_head::ActiveModel {
        directory_id: Set(directory_id.to_owned()),
        latest: Set(0),
        pruned_through: Set(0),
    })
    .on_conflict(
        OnConflict::column(event_head::Column::DirectoryId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    let head = event_head::Entity::find_by_id(directory_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("the event head of directory {directory_id}")))?;
    let mut logged = HashSet::new();
    for chunk in events.chunks(CHUNK) {
        let ids = chunk.iter().map(|event| event.id.clone());
        let found: Vec<String> = event_log::Entity::find()
            .select_only()
            .column(event_log::Column::Id)
            .filter(event_log::Column::Id.is_in(ids))
            .into_tuple()
            .all(txn)
            .await?;
        logged.extend(found);
    }
    let mut sequence = head.latest;
    let mut rows = Vec::with_capacity(events.len());
    for mut event in events {
        // Twice in one batch counts as logged after the first.
        if !logged.insert(event.id.clone()) {
            continue;
        }
        sequence += 1;
        event.sequence = sequence;
        rows.push(event_log::ActiveModel {
            directory_id: Set(directory_id.to_owned()),
            sequence: Set(sequence),
            id: Set(event.id.clone()),
            event_type: Set(event.r#type),
            time_ms: Set(time_ms(&event)),
            event: Set(event.encode_to_vec()),
        });
    }
    let appended = rows.len();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        event_log::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    if appended > 0 {
        event_head::Entity::update_many()
            .col_expr(event_head::Column::Latest, sequence.into())
            .filter(event_head::Column::DirectoryId.eq(directory_id))
            .exec(txn)
            .await?;
    }
    Ok(appended)
}

/// Whether `value` is a known event type.
pub(crate) fn is_known_type(value: i32) -> bool {
    EventType::try_from(value).is_ok_and(|t| t != EventType::Unspecified)
}
