//! Which groups members are in: the queries behind ListGroupsOfMember.
//!
//! The direct groups come from `group_members` through the index led by
//! member_id (migration m0004); with ancestors, one recursive query climbs
//! from them through groups that are members of groups, so a caller such as
//! role-mapping-service learns a user's whole nesting in one call instead of
//! one call per level.

use idmesh_proto::v1::Membership;
use idmesh_store::direct::{self, Sql};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select, Statement, Value,
};

use crate::Error;
use crate::entity::group_member;
use scim::ScimError;

/// Levels climbed above the direct groups when ancestors are asked for.
pub const MAX_ANCESTOR_DEPTH: u32 = 16;
/// Most memberships one call answers: about 10 MB, within the gRPC message
/// limit.
pub const MAX_ANSWERED: usize = 100_000;

/// The name of the group of the membership row `$row`, looked up by
/// primary key; empty if the group is gone meanwhile, as the general path
/// answers it.
macro_rules! name_of_group {
    ($row:literal) => {
        concat!(
            "COALESCE((SELECT g.display_name FROM groups g WHERE g.id = ",
            $row,
            ".group_id), '') AS group_display_name"
        )
    };
}

/// [`GROUPS_OF_ONE`], written once with each backend's placeholders for
/// the member and the directory.
macro_rules! groups_of_one {
    ($member:literal, $directory:literal) => {
        concat!(
            "SELECT m.member_id, m.group_id, ",
            name_of_group!("m"),
            " FROM group_members m WHERE m.member_id = ",
            $member,
            " AND m.directory_id = ",
            $directory,
            " ORDER BY m.group_id LIMIT 100001"
        )
    };
}

/// The direct groups of one member with their names, ordered by group, in
/// one statement run straight through sqlx: what the gateway asks for each
/// user it answers. Each name is a lookup by primary key rather than a
/// join: PostgreSQL plans every execution afresh
/// ([`idmesh_store::PLAN_CACHE_MODE`]), and a join with `groups` cost it
/// more to plan than to run (docs/benchmarks.md). Its generic plan reads
/// by index on any table (a test reads it), so it runs on the
/// plan-cached pool ([`idmesh_store::connect_plan_cached`]).
/// Parameters: the member, the directory. The `LIMIT` is
/// [`MAX_ANSWERED`] + 1.
pub(crate) const GROUPS_OF_ONE: Sql = Sql {
    name: "SELECT group_members",
    postgres: groups_of_one!("$1", "$2"),
    sqlite: groups_of_one!("?", "?"),
};

/// The recursion of [`GROUPS_ABOVE_ONE`] and [`MEMBERSHIPS_ABOVE_ONE`]
/// ([`with_ancestors`]'s, for one member), written once with each
/// backend's placeholders for the member, the directory and the directory
/// again.
macro_rules! reached_from_one {
    ($member:literal, $directory:literal, $directory_again:literal) => {
        concat!(
            "WITH RECURSIVE reached (member_id, group_id, depth) AS ( \
               SELECT member_id, group_id, 0 FROM group_members WHERE member_id = ",
            $member,
            " AND directory_id = ",
            $directory,
            " UNION \
               SELECT m.member_id, m.group_id, r.depth + 1 FROM group_members m \
               JOIN reached r ON m.member_id = r.group_id WHERE m.directory_id = ",
            $directory_again,
            " AND r.depth < 16 ) "
        )
    };
}

/// What [`GROUPS_ABOVE_ONE`] selects from the rows reached, on both
/// backends.
macro_rules! reached_with_names {
    () => {
        concat!(
            "SELECT d.member_id, d.group_id, ",
            name_of_group!("d"),
            " FROM (SELECT DISTINCT member_id, group_id FROM reached) d \
             ORDER BY d.member_id, d.group_id LIMIT 100001"
        )
    };
}

/// What [`MEMBERSHIPS_ABOVE_ONE`] selects from the rows reached, on both
/// backends.
macro_rules! reached_without_names {
    () => {
        "SELECT DISTINCT member_id, group_id, CAST('' AS TEXT) AS group_display_name FROM reached \
         ORDER BY member_id, group_id LIMIT 100001"
    };
}

/// [`GROUPS_OF_ONE`] and every membership of the groups above them, up to
/// [`MAX_ANCESTOR_DEPTH`] levels, each once with its group's name, ordered
/// by member, then group. Each name is looked up by primary key: joined
/// instead, the few rows PostgreSQL guesses a recursion gives made it hash
/// every group of an unanalysed table. A group gone meanwhile has an empty
/// name, as the general path answers it. Parameters: the member, the
/// directory, the directory again.
pub(crate) const GROUPS_ABOVE_ONE: Sql = Sql {
    name: "SELECT group_members",
    postgres: concat!(reached_from_one!("$1", "$2", "$3"), reached_with_names!()),
    sqlite: concat!(reached_from_one!("?", "?", "?"), reached_with_names!()),
};

/// [`GROUPS_ABOVE_ONE`] without the names, each left empty: what
/// role-mapping-service asks for each user whose roles it decides.
/// Parameters: the member, the directory, the directory again.
pub(crate) const MEMBERSHIPS_ABOVE_ONE: Sql = Sql {
    name: "SELECT group_members",
    postgres: concat!(reached_from_one!("$1", "$2", "$3"), reached_without_names!()),
    sqlite: concat!(reached_from_one!("?", "?", "?"), reached_without_names!()),
};

/// The groups `member_id` is a direct member of and, with
/// `include_ancestors`, the memberships of the groups above them, with
/// their display names unless `without_names`, ordered by member, then
/// group; `tooMany` past [`MAX_ANSWERED`]. The same answer as
/// [`memberships`] followed by a lookup of the names, in one statement:
/// the direct groups on `plan_cached`, the recursion (whose generic plan
/// is not right on an empty table) on `db`.
pub(crate) async fn groups_of_one(
    db: &DatabaseConnection,
    plan_cached: &DatabaseConnection,
    directory_id: &str,
    member_id: &str,
    include_ancestors: bool,
    without_names: bool,
) -> Result<Vec<Membership>, Error> {
    let rows: Vec<MembershipRow> = match (include_ancestors, without_names) {
        // A direct member's names are a primary-key lookup each: no
        // statement without them.
        (false, _) => direct::fetch_all(plan_cached, &GROUPS_OF_ONE, &[member_id, directory_id]).await?,
        (true, false) => direct::fetch_all(db, &GROUPS_ABOVE_ONE, &[member_id, directory_id, directory_id]).await?,
        (true, true) => direct::fetch_all(db, &MEMBERSHIPS_ABOVE_ONE, &[member_id, directory_id, directory_id]).await?,
    };
    if rows.len() > MAX_ANSWERED {
        return Err(too_many_memberships());
    }
    Ok(rows
        .into_iter()
        .map(|row| Membership {
            member_id: row.member_id,
            group_id: row.group_id,
            group_display_name: if without_names {
                String::new()
            } else {
                row.group_display_name
            },
        })
        .collect())
}

/// A row of [`GROUPS_OF_ONE`], [`GROUPS_ABOVE_ONE`] or
/// [`MEMBERSHIPS_ABOVE_ONE`].
#[derive(FromQueryResult)]
struct MembershipRow {
    member_id: String,
    group_id: String,
    group_display_name: String,
}

fn too_many_memberships() -> Error {
    ScimError::too_many(format!(
        "more than {MAX_ANSWERED} memberships; ask for fewer members at once"
    ))
    .into()
}

/// `(member_id, group_id)` of every group that one of `member_ids` is a
/// direct member of, ordered by member, then group.
pub(crate) fn direct_memberships(directory_id: &str, member_ids: Vec<String>) -> Select<group_member::Entity> {
    group_member::Entity::find()
        .select_only()
        .columns([group_member::Column::MemberId, group_member::Column::GroupId])
        .filter(group_member::Column::DirectoryId.eq(directory_id))
        .filter(group_member::Column::MemberId.is_in(member_ids))
        .order_by_asc(group_member::Column::MemberId)
        .order_by_asc(group_member::Column::GroupId)
}

/// The direct memberships of `member_ids`, and with `include_ancestors`
/// those of the groups above them, each once, ordered by member, then
/// group; `tooMany` past [`MAX_ANSWERED`].
pub(crate) async fn memberships(
    db: &DatabaseConnection,
    directory_id: &str,
    member_ids: Vec<String>,
    include_ancestors: bool,
) -> Result<Vec<(String, String)>, Error> {
    let limit = u64::try_from(MAX_ANSWERED + 1).unwrap_or(u64::MAX);
    let rows: Vec<(String, String)> = if include_ancestors {
        let statement = with_ancestors(db.get_database_backend(), directory_id, member_ids, limit);
        db.query_all_raw(statement)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("", "member_id")?, row.try_get("", "group_id")?)))
            .collect::<Result<_, sea_orm::DbErr>>()?
    } else {
        direct_memberships(directory_id, member_ids)
            .limit(limit)
            .into_tuple()
            .all(db)
            .await?
    };
    if rows.len() > MAX_ANSWERED {
        return Err(too_many_memberships());
    }
    Ok(rows)
}

/// The recursive query: depth 0 is the members' own groups, each level
/// above joins the groups whose member is a group reached at the level
/// below. `UNION` keeps one row per (membership, depth), so a cycle repeats
/// at most [`MAX_ANCESTOR_DEPTH`] times and then stops.
fn with_ancestors(backend: DbBackend, directory_id: &str, member_ids: Vec<String>, limit: u64) -> Statement {
    let mut values: Vec<Value> = Vec::with_capacity(member_ids.len() + 2);
    let mut placeholder = |value: Value| {
        values.push(value);
        match backend {
            DbBackend::Postgres => format!("${}", values.len()),
            _ => "?".to_owned(),
        }
    };
    let ids: Vec<String> = member_ids.into_iter().map(|id| placeholder(id.into())).collect();
    let ids = if ids.is_empty() {
        "NULL".to_owned()
    } else {
        ids.join(", ")
    };
    let directory = placeholder(directory_id.into());
    let directory_again = placeholder(directory_id.into());
    let sql = format!(
        "WITH RECURSIVE reached (member_id, group_id, depth) AS ( \
             SELECT member_id, group_id, 0 FROM group_members \
             WHERE member_id IN ({ids}) AND directory_id = {directory} \
           UNION \
             SELECT m.member_id, m.group_id, r.depth + 1 \
             FROM group_members m JOIN reached r ON m.member_id = r.group_id \
             WHERE m.directory_id = {directory_again} AND r.depth < {MAX_ANCESTOR_DEPTH} \
         ) \
         SELECT DISTINCT member_id, group_id FROM reached ORDER BY member_id, group_id LIMIT {limit}"
    );
    Statement::from_sql_and_values(backend, sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_members_groups_are_bounded_like_every_answer() {
        let limit = format!("LIMIT {}", MAX_ANSWERED + 1);
        let depth = format!("r.depth < {MAX_ANCESTOR_DEPTH} ");
        for sql in [GROUPS_OF_ONE, GROUPS_ABOVE_ONE, MEMBERSHIPS_ABOVE_ONE] {
            assert!(sql.postgres.ends_with(&limit), "{}", sql.postgres);
            assert!(sql.sqlite.ends_with(&limit), "{}", sql.sqlite);
        }
        for sql in [GROUPS_ABOVE_ONE, MEMBERSHIPS_ABOVE_ONE] {
            assert!(sql.postgres.contains(&depth), "{}", sql.postgres);
            assert!(sql.sqlite.contains(&depth), "{}", sql.sqlite);
        }
    }
}
