//! The webhook tables: the endpoints, where each stands in each directory's
//! log, and the attempts made.
//!
//! A cursor is delivered for by one replica at a time: it claims the
//! cursor's lease, and each step it records is conditional on the cursor
//! still being where the step began, so a replay (which moves the cursor)
//! stops a delivery already under way instead of being overwritten by it.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entity::{event_head, webhook, webhook_attempt, webhook_cursor};

/// The most endpoints one directory may have (the endpoints of every
/// directory count as one more directory).
pub(crate) const MAX_PER_DIRECTORY: u64 = 50;

/// The most endpoints a deployment may have: every loop of the delivery
/// scan is bounded by it.
pub(crate) const MAX_WEBHOOKS: u64 = 10_000;

/// What a cursor's failed attempt leaves behind.
#[derive(Debug)]
pub(crate) struct Failure {
    pub next_attempt_ms: i64,
    pub failing_since_ms: i64,
    pub error: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    db: DatabaseConnection,
}

impl Store {
    pub(crate) fn new(db: DatabaseConnection) -> Store {
        Store { db }
    }

    /// Saves a new endpoint and starts its cursors at the end of the logs
    /// it covers, so that it receives what is logged from now on.
    pub(crate) async fn create(&self, model: webhook::Model) -> Result<webhook::Model, DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let mut heads = event_head::Entity::find();
        if !model.directory_id.is_empty() {
            heads = heads.filter(event_head::Column::DirectoryId.eq(&model.directory_id));
        }
        let heads = heads.all(&txn).await?;
        let saved = model.into_active_model().insert(&txn).await?;
        let cursors: Vec<_> = heads
            .into_iter()
            .map(|head| new_cursor(&saved.id, &head.directory_id, head.latest))
            .collect();
        for chunk in cursors.chunks(500) {
            webhook_cursor::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(saved)
    }

    /// How many endpoints `directory_id` has ("" for those of every
    /// directory), and how many there are in all.
    pub(crate) async fn counts(&self, directory_id: &str) -> Result<(u64, u64), DbErr> {
        let of_directory = webhook::Entity::find()
            .filter(webhook::Column::DirectoryId.eq(directory_id))
            .count(&self.db)
            .await?;
        let all = webhook::Entity::find().count(&self.db).await?;
        Ok((of_directory, all))
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<webhook::Model>, DbErr> {
        webhook::Entity::find_by_id(id).one(&self.db).await
    }

    /// Every endpoint, or those of `directory_id` (not those of every
    /// directory), oldest first.
    pub(crate) async fn list(&self, directory_id: Option<&str>) -> Result<Vec<webhook::Model>, DbErr> {
        let mut query = webhook::Entity::find().order_by_asc(webhook::Column::CreatedMs);
        if let Some(directory_id) = directory_id {
            query = query.filter(webhook::Column::DirectoryId.eq(directory_id));
        }
        query.limit(MAX_WEBHOOKS).all(&self.db).await
    }

    /// An endpoint's cursors, by directory.
    pub(crate) async fn cursors(&self, webhook_id: &str) -> Result<Vec<webhook_cursor::Model>, DbErr> {
        webhook_cursor::Entity::find()
            .filter(webhook_cursor::Column::WebhookId.eq(webhook_id))
            .order_by_asc(webhook_cursor::Column::DirectoryId)
            .all(&self.db)
            .await
    }

    /// Every cursor of every endpoint.
    pub(crate) async fn all_cursors(&self) -> Result<Vec<webhook_cursor::Model>, DbErr> {
        webhook_cursor::Entity::find().all(&self.db).await
    }

    /// Removes an endpoint with its cursors and attempts; whether it was
    /// there.
    pub(crate) async fn delete(&self, id: &str) -> Result<bool, DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        webhook_attempt::Entity::delete_many()
            .filter(webhook_attempt::Column::WebhookId.eq(id))
            .exec(&txn)
            .await?;
        webhook_cursor::Entity::delete_many()
            .filter(webhook_cursor::Column::WebhookId.eq(id))
            .exec(&txn)
            .await?;
        let removed = webhook::Entity::delete_by_id(id).exec(&txn).await?.rows_affected;
        txn.commit().await?;
        Ok(removed > 0)
    }

    /// Makes `secret` the signing secret; the current one signs beside it
    /// until `previous_expires_ms`, or stops at once when that is `None`.
    pub(crate) async fn rotate(
        &self,
        id: &str,
        secret: String,
        previous_expires_ms: Option<i64>,
    ) -> Result<Option<webhook::Model>, DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let Some(current) = webhook::Entity::find_by_id(id).one(&txn).await? else {
            return Ok(None);
        };
        let previous = previous_expires_ms.map(|_| current.secret.clone());
        let mut active = current.into_active_model();
        active.secret = Set(secret);
        active.previous_secret = Set(previous);
        active.previous_expires_ms = Set(previous_expires_ms);
        let updated = active.update(&txn).await?;
        txn.commit().await?;
        Ok(Some(updated))
    }

    /// Moves the endpoint's cursor in `directory_id` back to deliver from
    /// `from_sequence` on, clears its failure and its lease, and enables
    /// the endpoint.
    pub(crate) async fn replay(&self, id: &str, directory_id: &str, from_sequence: i64) -> Result<(), DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let mut cursor = new_cursor(id, directory_id, from_sequence - 1);
        cursor.next_attempt_ms = Set(0);
        webhook_cursor::Entity::insert(cursor)
            .on_conflict(
                OnConflict::columns([webhook_cursor::Column::WebhookId, webhook_cursor::Column::DirectoryId])
                    .update_columns([
                        webhook_cursor::Column::DeliveredThrough,
                        webhook_cursor::Column::FailedAttempts,
                        webhook_cursor::Column::NextAttemptMs,
                        webhook_cursor::Column::FailingSinceMs,
                        webhook_cursor::Column::LastError,
                        webhook_cursor::Column::LeaseUntilMs,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        webhook::Entity::update_many()
            .col_expr(webhook::Column::DisabledReason, Expr::value(Option::<String>::None))
            .col_expr(webhook::Column::DisabledMs, Expr::value(Option::<i64>::None))
            .filter(webhook::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await
    }

    /// Stops deliveries to an endpoint, saying why.
    pub(crate) async fn disable(&self, id: &str, reason: &str, now_ms: i64) -> Result<(), DbErr> {
        webhook::Entity::update_many()
            .col_expr(webhook::Column::DisabledReason, Expr::value(reason))
            .col_expr(webhook::Column::DisabledMs, Expr::value(now_ms))
            .filter(webhook::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Claims the cursor of (`webhook_id`, `directory_id`) until
    /// `lease_until_ms`, creating it at `start` if it does not exist: the
    /// claimed cursor, or `None` when another replica holds it or its next
    /// attempt is not due.
    pub(crate) async fn claim(
        &self,
        webhook_id: &str,
        directory_id: &str,
        start: i64,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<webhook_cursor::Model>, DbErr> {
        webhook_cursor::Entity::insert(new_cursor(webhook_id, directory_id, start))
            .on_conflict(
                OnConflict::columns([webhook_cursor::Column::WebhookId, webhook_cursor::Column::DirectoryId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        let claimed = webhook_cursor::Entity::update_many()
            .col_expr(webhook_cursor::Column::LeaseUntilMs, Expr::value(lease_until_ms))
            .filter(webhook_cursor::Column::WebhookId.eq(webhook_id))
            .filter(webhook_cursor::Column::DirectoryId.eq(directory_id))
            .filter(webhook_cursor::Column::LeaseUntilMs.lt(now_ms))
            .filter(webhook_cursor::Column::NextAttemptMs.lte(now_ms))
            .exec(&self.db)
            .await?
            .rows_affected;
        if claimed == 0 {
            return Ok(None);
        }
        webhook_cursor::Entity::find_by_id((webhook_id.to_owned(), directory_id.to_owned()))
            .one(&self.db)
            .await
    }

    /// Records a failed attempt.
    pub(crate) async fn record(&self, attempt: webhook_attempt::ActiveModel) -> Result<(), DbErr> {
        webhook_attempt::Entity::insert(attempt)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Records the successful `attempts` and moves a claimed cursor to
    /// `through` (past delivered or skipped events), clearing its failure
    /// and extending its lease, in one transaction; false when the cursor
    /// was moved meanwhile (replayed) or removed.
    pub(crate) async fn advance(
        &self,
        cursor: &webhook_cursor::Model,
        through: i64,
        attempts: Vec<webhook_attempt::ActiveModel>,
        lease_until_ms: i64,
    ) -> Result<bool, DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        for chunk in attempts.chunks(500) {
            webhook_attempt::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        let moved = webhook_cursor::Entity::update_many()
            .col_expr(webhook_cursor::Column::DeliveredThrough, Expr::value(through))
            .col_expr(webhook_cursor::Column::FailedAttempts, Expr::value(0))
            .col_expr(webhook_cursor::Column::FailingSinceMs, Expr::value(Option::<i64>::None))
            .col_expr(webhook_cursor::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(webhook_cursor::Column::LeaseUntilMs, Expr::value(lease_until_ms))
            .filter(webhook_cursor::Column::WebhookId.eq(&cursor.webhook_id))
            .filter(webhook_cursor::Column::DirectoryId.eq(&cursor.directory_id))
            .filter(webhook_cursor::Column::DeliveredThrough.eq(cursor.delivered_through))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok(moved > 0)
    }

    /// Leaves a claimed cursor failing at its next event, to be tried
    /// again at `failure.next_attempt_ms`, and releases its lease (unless
    /// it was moved meanwhile).
    pub(crate) async fn fail(&self, cursor: &webhook_cursor::Model, failure: Failure) -> Result<(), DbErr> {
        webhook_cursor::Entity::update_many()
            .col_expr(
                webhook_cursor::Column::FailedAttempts,
                Expr::value(cursor.failed_attempts.saturating_add(1)),
            )
            .col_expr(
                webhook_cursor::Column::NextAttemptMs,
                Expr::value(failure.next_attempt_ms),
            )
            .col_expr(
                webhook_cursor::Column::FailingSinceMs,
                Expr::value(failure.failing_since_ms),
            )
            .col_expr(webhook_cursor::Column::LastError, Expr::value(failure.error))
            .col_expr(webhook_cursor::Column::LeaseUntilMs, Expr::value(0))
            .filter(webhook_cursor::Column::WebhookId.eq(&cursor.webhook_id))
            .filter(webhook_cursor::Column::DirectoryId.eq(&cursor.directory_id))
            .filter(webhook_cursor::Column::DeliveredThrough.eq(cursor.delivered_through))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Gives up a claimed cursor's lease, so that the next scan may claim
    /// it at once.
    pub(crate) async fn release(&self, cursor: &webhook_cursor::Model) -> Result<(), DbErr> {
        webhook_cursor::Entity::update_many()
            .col_expr(webhook_cursor::Column::LeaseUntilMs, Expr::value(0))
            .filter(webhook_cursor::Column::WebhookId.eq(&cursor.webhook_id))
            .filter(webhook_cursor::Column::DirectoryId.eq(&cursor.directory_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// An endpoint's attempts before attempt `before` (0: from the
    /// newest), newest first.
    pub(crate) async fn attempts(
        &self,
        webhook_id: &str,
        before: i64,
        limit: u64,
    ) -> Result<Vec<webhook_attempt::Model>, DbErr> {
        let mut query = webhook_attempt::Entity::find().filter(webhook_attempt::Column::WebhookId.eq(webhook_id));
        if before > 0 {
            query = query.filter(webhook_attempt::Column::Id.lt(before));
        }
        query
            .order_by_desc(webhook_attempt::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// Removes attempts older than `cutoff_ms`; how many.
    pub(crate) async fn prune_attempts(&self, cutoff_ms: i64) -> Result<u64, DbErr> {
        Ok(webhook_attempt::Entity::delete_many()
            .filter(webhook_attempt::Column::TimeMs.lt(cutoff_ms))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}

/// A cursor that has delivered through `through` and is not failing.
fn new_cursor(webhook_id: &str, directory_id: &str, through: i64) -> webhook_cursor::ActiveModel {
    webhook_cursor::ActiveModel {
        webhook_id: Set(webhook_id.to_owned()),
        directory_id: Set(directory_id.to_owned()),
        delivered_through: Set(through),
        failed_attempts: Set(0),
        next_attempt_ms: Set(0),
        failing_since_ms: Set(None),
        last_error: Set(None),
        lease_until_ms: Set(0),
    }
}
