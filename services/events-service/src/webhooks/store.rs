//! The webhook tables: the endpoints, where each stands in each directory's
//! log, and the attempts made.
//!
//! A cursor is delivered for by one delivery at a time: it claims the
//! cursor's lease under a token of its own, and each step it records is
//! conditional on holding the lease (its token) and on the cursor's
//! generation, which a replay moves on. So a delivery that lost its lease
//! or was overtaken by a replay stops at its next step instead of
//! overwriting the cursor, and a replay keeps the lease where it was: the
//! delivery under way finishes its step and hands over, no other starts
//! beside it.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entity::{event_head, webhook, webhook_attempt, webhook_cursor};

/// The most endpoints one directory may have (the endpoints of every
/// directory count as one more directory).
pub(crate) const MAX_PER_DIRECTORY: u64 = 50;

/// The most endpoints a deployment may have.
pub(crate) const MAX_WEBHOOKS: u64 = 10_000;

/// What a cursor's failed attempt leaves behind.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The sequence number just before the failing event: where the
    /// cursor stands until it is delivered.
    pub before: i64,
    /// Failed attempts at that event so far, this one included.
    pub attempts: i32,
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

    /// The cursors of the endpoints `ids`, by endpoint.
    pub(crate) async fn cursors_of(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<webhook_cursor::Model>>, DbErr> {
        let mut by_webhook: HashMap<String, Vec<webhook_cursor::Model>> = HashMap::new();
        for chunk in ids.chunks(500) {
            let cursors = webhook_cursor::Entity::find()
                .filter(webhook_cursor::Column::WebhookId.is_in(chunk.iter().cloned()))
                .order_by_asc(webhook_cursor::Column::DirectoryId)
                .all(&self.db)
                .await?;
            for cursor in cursors {
                by_webhook.entry(cursor.webhook_id.clone()).or_default().push(cursor);
            }
        }
        Ok(by_webhook)
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

    /// Moves the endpoint's cursor in `directory_id` to deliver from
    /// `from_sequence` on, clears its failure, moves its generation on (a
    /// delivery under way stops at its next step and hands over), and
    /// enables the endpoint.
    pub(crate) async fn replay(&self, id: &str, directory_id: &str, from_sequence: i64) -> Result<(), DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let moved = webhook_cursor::Entity::update_many()
            .col_expr(webhook_cursor::Column::DeliveredThrough, Expr::value(from_sequence - 1))
            .col_expr(webhook_cursor::Column::FailedAttempts, Expr::value(0))
            .col_expr(webhook_cursor::Column::NextAttemptMs, Expr::value(0))
            .col_expr(webhook_cursor::Column::FailingSinceMs, Expr::value(Option::<i64>::None))
            .col_expr(webhook_cursor::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(
                webhook_cursor::Column::Generation,
                Expr::col(webhook_cursor::Column::Generation).add(1),
            )
            .filter(webhook_cursor::Column::WebhookId.eq(id))
            .filter(webhook_cursor::Column::DirectoryId.eq(directory_id))
            .exec(&txn)
            .await?
            .rows_affected;
        if moved == 0 {
            webhook_cursor::Entity::insert(new_cursor(id, directory_id, from_sequence - 1))
                .exec_without_returning(&txn)
                .await?;
        }
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

    /// Claims the cursor of (`webhook_id`, `directory_id`) for `owner`
    /// until `lease_until_ms`, creating it at `start` if it does not
    /// exist: the claimed cursor, or `None` when another delivery holds it
    /// or its next attempt is not due.
    pub(crate) async fn claim(
        &self,
        webhook_id: &str,
        directory_id: &str,
        start: i64,
        owner: &str,
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
            .col_expr(webhook_cursor::Column::LeaseOwner, Expr::value(owner))
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
    /// and extending its lease, in one transaction; false when the claim
    /// no longer holds (the lease was lost, or a replay moved the cursor).
    pub(crate) async fn advance(
        &self,
        cursor: &webhook_cursor::Model,
        through: i64,
        attempts: Vec<webhook_attempt::ActiveModel>,
        lease_until_ms: i64,
    ) -> Result<bool, DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let moved = held(
            webhook_cursor::Entity::update_many()
                .col_expr(webhook_cursor::Column::DeliveredThrough, Expr::value(through))
                .col_expr(webhook_cursor::Column::FailedAttempts, Expr::value(0))
                .col_expr(webhook_cursor::Column::FailingSinceMs, Expr::value(Option::<i64>::None))
                .col_expr(webhook_cursor::Column::LastError, Expr::value(Option::<String>::None))
                .col_expr(webhook_cursor::Column::LeaseUntilMs, Expr::value(lease_until_ms)),
            cursor,
        )
        .exec(&txn)
        .await?
        .rows_affected;
        if moved > 0 {
            for chunk in attempts.chunks(500) {
                webhook_attempt::Entity::insert_many(chunk.to_vec())
                    .exec_without_returning(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(moved > 0)
    }

    /// Leaves a claimed cursor failing at `failure`'s event (the cursor
    /// moves to just before it), to be tried again at
    /// `failure.next_attempt_ms`, records the attempt, and gives the lease
    /// up; nothing when the claim no longer holds.
    pub(crate) async fn fail(
        &self,
        cursor: &webhook_cursor::Model,
        failure: Failure,
        attempt: webhook_attempt::ActiveModel,
    ) -> Result<(), DbErr> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let moved = held(
            webhook_cursor::Entity::update_many()
                .col_expr(webhook_cursor::Column::DeliveredThrough, Expr::value(failure.before))
                .col_expr(webhook_cursor::Column::FailedAttempts, Expr::value(failure.attempts))
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
                .col_expr(webhook_cursor::Column::LeaseOwner, Expr::value(Option::<String>::None)),
            cursor,
        )
        .exec(&txn)
        .await?
        .rows_affected;
        if moved > 0 {
            webhook_attempt::Entity::insert(attempt)
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await
    }

    /// Gives up the lease of a claimed cursor (even after a replay moved
    /// it on), so that the next scan may claim it at once.
    pub(crate) async fn release(&self, cursor: &webhook_cursor::Model) -> Result<(), DbErr> {
        webhook_cursor::Entity::update_many()
            .col_expr(webhook_cursor::Column::LeaseUntilMs, Expr::value(0))
            .col_expr(webhook_cursor::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .filter(webhook_cursor::Column::WebhookId.eq(&cursor.webhook_id))
            .filter(webhook_cursor::Column::DirectoryId.eq(&cursor.directory_id))
            .filter(webhook_cursor::Column::LeaseOwner.eq(cursor.lease_owner.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Removes the cursor of an endpoint that no longer exists.
    pub(crate) async fn forget(&self, cursor: &webhook_cursor::Model) -> Result<(), DbErr> {
        webhook_cursor::Entity::delete_many()
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

/// `update` limited to `cursor`, while its claim holds: the same owner of
/// the lease, the same generation.
fn held(
    update: sea_orm::UpdateMany<webhook_cursor::Entity>,
    cursor: &webhook_cursor::Model,
) -> sea_orm::UpdateMany<webhook_cursor::Entity> {
    update
        .filter(webhook_cursor::Column::WebhookId.eq(&cursor.webhook_id))
        .filter(webhook_cursor::Column::DirectoryId.eq(&cursor.directory_id))
        .filter(webhook_cursor::Column::LeaseOwner.eq(cursor.lease_owner.clone()))
        .filter(webhook_cursor::Column::Generation.eq(cursor.generation))
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
        lease_owner: Set(None),
        generation: Set(0),
    }
}
