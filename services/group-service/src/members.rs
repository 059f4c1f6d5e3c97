//! Member rows: who may become a member, and membership changes written in
//! chunks, so that adding or removing N members costs O(N) whatever the
//! group's size, and `member_count` follows from the rows each statement
//! touched rather than from counting the group.

use std::collections::{BTreeSet, HashMap};

use idmesh_proto::v1::LookupUsersRequest;
use idmesh_proto::v1::user_service_client::UserServiceClient;
use idmesh_runtime::auth::AuthChannel;
use scim::ScimError;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};
use time::OffsetDateTime;

use crate::Error;
use crate::entity::{deleted_member, group, group_member};
use crate::filter::GroupFilters;
use scim::members::{MemberChange, NewMember};

/// Rows per INSERT and ids per `IN (...)` list: well below SQLite's and
/// PostgreSQL's limits on bound parameters.
const CHUNK: usize = 1_000;
/// The most ids one UserService.LookupUsers call may name.
const LOOKUP_BATCH: usize = 10_000;
/// How many offending ids an error message names.
const NAMED_IN_ERRORS: usize = 5;

/// What each id that may be added is: `group_member::USER` or
/// `group_member::GROUP`.
pub(crate) type Candidates = HashMap<String, &'static str>;

/// What a write does with a member id that is neither a user nor a group
/// of the directory (or a group deleted since it was resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// Adds the members that exist and leaves the others out, reported by
    /// [`report_skipped`]. The SCIM writes (CreateGroup, UpdateGroup,
    /// PatchGroup) do this: an IdP whose one user failed to provision
    /// resends the same group PATCH every cycle, and failing it whole would
    /// keep every other member out for good (Entra ID quarantines a job
    /// that keeps failing).
    Skip,
    /// Fails the whole request with 400 `invalidValue` naming them, nothing
    /// applied: PatchMembers and ReplaceMembers, whose callers name ids
    /// they mean to exist.
    Reject,
}

/// The class of the PostgreSQL advisory locks (the two-key form, a space
/// of its own) that order writes adding users to groups against the
/// removal of a deleted user; the second key is the directory's.
const MEMBER_LOCK_CLASS: i32 = 0x4944_4d47;

/// The metric counting member ids left out of SCIM group writes.
pub(crate) const SKIPPED_METRIC: &str = "idmesh_group_members_skipped_total";

/// Finds what the ids to add are: groups of the directory (from our own
/// table) or users of it (from user-service), and the ids that are neither.
/// The group itself is 400 `invalidValue` whatever the policy, and nothing
/// of the request has been written yet.
pub(crate) async fn resolve<'a>(
    db: &DatabaseConnection,
    users: &UserServiceClient<AuthChannel>,
    directory_id: &str,
    group_id: &str,
    ids: impl Iterator<Item = &'a String>,
) -> Result<(Candidates, Vec<String>), Error> {
    let mut wanted: BTreeSet<&str> = ids.map(String::as_str).collect();
    if wanted.contains(group_id) {
        return Err(ScimError::invalid_value(format!("members: group {group_id} cannot be a member of itself")).into());
    }
    let mut found = Candidates::with_capacity(wanted.len());
    let all: Vec<&str> = wanted.iter().copied().collect();
    for chunk in all.chunks(CHUNK) {
        let groups: Vec<String> = group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::DirectoryId.eq(directory_id))
            .filter(group::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        for id in groups {
            wanted.remove(id.as_str());
            found.insert(id, group_member::GROUP);
        }
    }
    let rest: Vec<String> = wanted.iter().map(|id| (*id).to_owned()).collect();
    for batch in rest.chunks(LOOKUP_BATCH) {
        let response = users
            .clone()
            .lookup_users(LookupUsersRequest {
                directory_id: directory_id.to_owned(),
                ids: batch.to_vec(),
            })
            .await
            .map_err(Error::UserService)?;
        for user in response.into_inner().users {
            if wanted.remove(user.id.as_str()) {
                found.insert(user.id, group_member::USER);
            }
        }
    }
    Ok((found, wanted.into_iter().map(str::to_owned).collect()))
}

/// Applies `policy` to the ids that are not members to be: 400 for
/// [`Unknown::Reject`], nothing for [`Unknown::Skip`].
pub(crate) fn check_unknown(policy: Unknown, unknown: &[String]) -> Result<(), Error> {
    match policy {
        Unknown::Reject if !unknown.is_empty() => Err(unknown_members(unknown.iter().map(String::as_str))),
        _ => Ok(()),
    }
}

/// Tells the operator which member ids a committed SCIM write left out: a
/// warning naming the directory, the group and the first ids, and
/// [`SKIPPED_METRIC`] counting every one.
pub(crate) fn report_skipped(directory_id: &str, group_id: &str, skipped: &[String]) {
    if skipped.is_empty() {
        return;
    }
    let named: Vec<&str> = skipped.iter().take(NAMED_IN_ERRORS).map(String::as_str).collect();
    tracing::warn!(
        directory_id,
        group_id,
        skipped = skipped.len(),
        ids = ?named,
        "group write skipped member ids that are not users or groups of the directory"
    );
    metrics::counter!(SKIPPED_METRIC).increment(u64::try_from(skipped.len()).unwrap_or(u64::MAX));
}

/// 400 `invalidValue` naming the first few of ids that are neither a user
/// nor a group of the directory.
fn unknown_members<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Error {
    let more = ids.len().saturating_sub(NAMED_IN_ERRORS);
    let named: Vec<&str> = ids.take(NAMED_IN_ERRORS).collect();
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    ScimError::invalid_value(format!(
        "members: not a user or group of this directory: {}{tail}",
        named.join(", ")
    ))
    .into()
}

/// Takes the directory's member lock until `txn` ends: shared by writes
/// that add users, exclusive for [`forget_deleted`]. On PostgreSQL an
/// advisory lock (one per directory, not per user, so that a write adding
/// thousands of users takes one lock, and a fair one: a waiting removal
/// holds off later adds); SQLite's write lock already keeps every other
/// writer out.
async fn lock_members(txn: &DatabaseTransaction, directory_id: &str, exclusive: bool) -> Result<(), Error> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let function = if exclusive {
        "pg_advisory_xact_lock"
    } else {
        "pg_advisory_xact_lock_shared"
    };
    txn.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT {function}($1, hashtext($2))::text"),
        [MEMBER_LOCK_CLASS.into(), directory_id.into()],
    ))
    .await?;
    Ok(())
}

/// Leaves out of `candidates` the users that user-service has deleted
/// since they were looked up, and returns them, for the caller's
/// [`Unknown`] policy to answer.
///
/// This closes the race between a write that adds a user and the user's
/// deletion: the write looks the user up (LookupUsers) before its
/// transaction, so the user may be deleted, and removed from every group by
/// [`forget_deleted`], before the write commits. Both take the directory's
/// member lock first (see [`lock_members`]), so one runs after the other:
/// either the removal committed first, and the write finds its tombstone
/// here, or the write committed first, and the removal finds and removes
/// the new membership. Taken before any group is locked, as
/// RemoveMemberEverywhere takes it before the groups it leaves, so the two
/// cannot deadlock.
pub(crate) async fn hold_users(
    txn: &DatabaseTransaction,
    directory_id: &str,
    candidates: &mut Candidates,
) -> Result<Vec<String>, Error> {
    let users: Vec<String> = candidates
        .iter()
        .filter(|(_, member_type)| **member_type == group_member::USER)
        .map(|(id, _)| id.clone())
        .collect();
    if users.is_empty() {
        return Ok(Vec::new());
    }
    lock_members(txn, directory_id, false).await?;
    let mut gone = Vec::new();
    for chunk in users.chunks(CHUNK) {
        let deleted: Vec<String> = deleted_member::Entity::find()
            .select_only()
            .column(deleted_member::Column::MemberId)
            .filter(deleted_member::Column::DirectoryId.eq(directory_id))
            .filter(deleted_member::Column::MemberId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        gone.extend(deleted);
    }
    for id in &gone {
        candidates.remove(id);
    }
    Ok(gone)
}

/// Records that `member_id` (a deleted user) is gone for good, so that no
/// write that looked it up earlier adds it later (see [`hold_users`]), and
/// removes it from every group of the directory; returns those groups' ids
/// and new versions.
pub(crate) async fn forget_deleted(
    txn: &DatabaseTransaction,
    directory_id: &str,
    member_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<(String, i64)>, Error> {
    lock_members(txn, directory_id, true).await?;
    deleted_member::Entity::insert(deleted_member::ActiveModel {
        directory_id: Set(directory_id.to_owned()),
        member_id: Set(member_id.to_owned()),
        deleted: Set(now),
    })
    .on_conflict(
        OnConflict::columns([deleted_member::Column::DirectoryId, deleted_member::Column::MemberId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    leave_all(txn, directory_id, member_id, now).await
}

/// Holds the groups about to be added as members in place until `txn`
/// ends: a shared lock on their rows on PostgreSQL (SQLite's write lock
/// already keeps every other writer out). A group deleted since it was
/// resolved is then not added: either its deletion committed first, and
/// it leaves `candidates` and is returned, for the caller's [`Unknown`]
/// policy to answer, or the deletion waits for this write and then finds,
/// and removes, the new membership with the others. Taken before the group
/// being written is locked, in id order, as DeleteGroup takes its locks, so
/// that the two do not deadlock.
pub(crate) async fn hold_groups(
    txn: &DatabaseTransaction,
    directory_id: &str,
    candidates: &mut Candidates,
) -> Result<Vec<String>, Error> {
    let wanted: BTreeSet<String> = candidates
        .iter()
        .filter(|(_, member_type)| **member_type == group_member::GROUP)
        .map(|(id, _)| id.clone())
        .collect();
    let wanted: Vec<String> = wanted.into_iter().collect();
    let mut gone = Vec::new();
    for chunk in wanted.chunks(CHUNK) {
        let held: BTreeSet<String> = group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::DirectoryId.eq(directory_id))
            .filter(group::Column::Id.is_in(chunk.iter().cloned()))
            .order_by_asc(group::Column::Id)
            .lock_shared()
            .into_tuple()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        gone.extend(chunk.iter().filter(|id| !held.contains(*id)).cloned());
    }
    for id in &gone {
        candidates.remove(id);
    }
    Ok(gone)
}

/// A member row a write added or removed, in the order it did so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Touched {
    Added(String),
    Removed(String),
}

/// Applies member changes to one group in order, inside the transaction
/// that holds the group's lock; returns how much its member count changed
/// and the rows it added and removed.
pub(crate) async fn apply(
    txn: &DatabaseTransaction,
    filters: GroupFilters,
    group: &group::Model,
    changes: &[MemberChange],
    candidates: &Candidates,
) -> Result<(i64, Vec<Touched>), Error> {
    let mut touched = Vec::new();
    let removed_rows = |rows: Vec<group_member::Model>| rows.into_iter().map(|row| Touched::Removed(row.member_id));
    for change in changes {
        match change {
            MemberChange::Add(added) => touched.extend(insert(txn, group, added, candidates).await?),
            MemberChange::Remove(ids) => touched.extend(remove(txn, &group.id, ids).await?),
            MemberChange::RemoveMatching(filter) => {
                let removed = group_member::Entity::delete_many()
                    .filter(group_member::Column::GroupId.eq(&group.id))
                    .filter(filters.members(filter)?)
                    .exec_with_returning(txn)
                    .await?;
                touched.extend(removed_rows(removed));
            }
            MemberChange::RemoveAll => {
                let removed = group_member::Entity::delete_many()
                    .filter(group_member::Column::GroupId.eq(&group.id))
                    .exec_with_returning(txn)
                    .await?;
                touched.extend(removed_rows(removed));
            }
        }
    }
    let added = touched.iter().filter(|t| matches!(t, Touched::Added(_))).count();
    let delta = count(added) - count(touched.len() - added);
    Ok((delta, touched))
}

fn count(rows: usize) -> i64 {
    i64::try_from(rows).unwrap_or(i64::MAX)
}

/// Inserts member rows, skipping those present; the ones that were new.
async fn insert(
    txn: &DatabaseTransaction,
    group: &group::Model,
    added: &[NewMember],
    candidates: &Candidates,
) -> Result<Vec<Touched>, Error> {
    let mut inserted = Vec::new();
    for chunk in added.chunks(CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        // Ids that are not (or no longer) candidates were left out under
        // the write's `Unknown` policy.
        for member in chunk {
            let Some(member_type) = candidates.get(&member.id) else {
                continue;
            };
            let display = member.display.clone().unwrap_or_default();
            rows.push(group_member::ActiveModel {
                directory_id: Set(group.directory_id.clone()),
                group_id: Set(group.id.clone()),
                member_id: Set(member.id.clone()),
                member_type: Set((*member_type).to_owned()),
                display_folded: Set(scim::filter::fold_text(&display)),
                display: Set(display),
            });
        }
        if rows.is_empty() {
            continue;
        }
        let new_rows = group_member::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([group_member::Column::GroupId, group_member::Column::MemberId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_with_returning(txn)
            .await?;
        inserted.extend(new_rows.into_iter().map(|row| Touched::Added(row.member_id)));
    }
    Ok(inserted)
}

/// Deletes the listed members' rows; the ones there were.
async fn remove(txn: &DatabaseTransaction, group_id: &str, ids: &[String]) -> Result<Vec<Touched>, Error> {
    let mut removed = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let rows = group_member::Entity::delete_many()
            .filter(group_member::Column::GroupId.eq(group_id))
            .filter(group_member::Column::MemberId.is_in(chunk.iter().cloned()))
            .exec_with_returning(txn)
            .await?;
        removed.extend(rows.into_iter().map(|row| Touched::Removed(row.member_id)));
    }
    Ok(removed)
}

/// Deletes every member row of a group.
pub(crate) async fn remove_all(txn: &DatabaseTransaction, group_id: &str) -> Result<u64, Error> {
    Ok(group_member::Entity::delete_many()
        .filter(group_member::Column::GroupId.eq(group_id))
        .exec(txn)
        .await?
        .rows_affected)
}

/// Removes `member_id` from every group of the directory that has it, each
/// of which gets one member fewer and a new version; returns those groups'
/// ids and new versions.
///
/// The groups are locked (in id order, so that two of these never wait on
/// each other) before their rows are read again and deleted: every writer
/// of a group's members holds its lock, so the count adjusts exactly the
/// rows deleted.
pub(crate) async fn leave_all(
    txn: &DatabaseTransaction,
    directory_id: &str,
    member_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<(String, i64)>, Error> {
    let of_member = || {
        group_member::Entity::find()
            .select_only()
            .column(group_member::Column::GroupId)
            .filter(group_member::Column::DirectoryId.eq(directory_id))
            .filter(group_member::Column::MemberId.eq(member_id))
    };
    let candidates: Vec<String> = of_member().into_tuple().all(txn).await?;
    let mut left = Vec::new();
    for chunk in candidates.chunks(CHUNK) {
        let locked: Vec<String> = group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::Id.is_in(chunk.iter().cloned()))
            .order_by_asc(group::Column::Id)
            .lock_exclusive()
            .into_tuple()
            .all(txn)
            .await?;
        let member_of: Vec<String> = of_member()
            .filter(group_member::Column::GroupId.is_in(locked))
            .into_tuple()
            .all(txn)
            .await?;
        if member_of.is_empty() {
            continue;
        }
        group_member::Entity::delete_many()
            .filter(group_member::Column::MemberId.eq(member_id))
            .filter(group_member::Column::GroupId.is_in(member_of.iter().cloned()))
            .exec(txn)
            .await?;
        group::Entity::update_many()
            .col_expr(group::Column::MemberCount, Expr::col(group::Column::MemberCount).sub(1))
            .col_expr(group::Column::Version, Expr::col(group::Column::Version).add(1))
            .col_expr(group::Column::LastModified, Expr::val(now))
            .filter(group::Column::Id.is_in(member_of.iter().cloned()))
            .exec(txn)
            .await?;
        let versions: Vec<(String, i64)> = group::Entity::find()
            .select_only()
            .columns([group::Column::Id, group::Column::Version])
            .filter(group::Column::Id.is_in(member_of))
            .into_tuple()
            .all(txn)
            .await?;
        left.extend(versions);
    }
    Ok(left)
}
