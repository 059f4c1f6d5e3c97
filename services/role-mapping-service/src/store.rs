//! Reading and writing role-mapping-service's tables: the role catalog, the
//! directories' role mappings and attribute mappings.
//!
//! A role's deletion and a mapping that names the role cannot cross: the
//! deletion locks the role's row before it looks for mappings using it,
//! and saving a mapping locks (shared) the rows of the roles it names
//! before it writes (on SQLite, `BEGIN IMMEDIATE` serialises both).

use std::collections::BTreeSet;

use idmesh_store::direct::{self, Sql};
use scim::ScimError;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::Error;
use crate::entity::{profile_field, role, role_mapping, role_rule};
use crate::mapping::{Mapping, Mode, Rule, Source};
use crate::profile::{AttributeMapping, Field, FieldType};

/// Most roles in the catalog: ListRoles answers them all.
pub const MAX_ROLES: u64 = 10_000;
/// Rows per INSERT.
const INSERT_CHUNK: usize = 500;

pub async fn create_role(db: &DatabaseConnection, row: role::Model) -> Result<role::Model, Error> {
    let txn = idmesh_store::begin_write(db, idmesh_runtime::deadline::remaining()).await?;
    let count = role::Entity::find().count(&txn).await?;
    if count >= MAX_ROLES {
        return Err(ScimError::invalid_value(format!("the catalog holds at most {MAX_ROLES} roles")).into());
    }
    let key = row.key.clone();
    let created = match row.into_active_model().insert(&txn).await {
        Ok(created) => created,
        Err(err) if idmesh_store::is_unique_violation(&err) => {
            return Err(ScimError::uniqueness(format!("role {key:?} exists already")).into());
        }
        Err(err) => return Err(err.into()),
    };
    txn.commit().await?;
    Ok(created)
}

pub async fn list_roles(db: &DatabaseConnection) -> Result<Vec<role::Model>, Error> {
    Ok(role::Entity::find()
        .order_by_asc(role::Column::Key)
        .limit(MAX_ROLES)
        .all(db)
        .await?)
}

/// Deletes the role unless a mapping uses it (as a rule's role or as a
/// default role): then [`Error::RoleInUse`] names those directories.
pub async fn delete_role(db: &DatabaseConnection, key: &str) -> Result<(), Error> {
    let txn = idmesh_store::begin_write(db, idmesh_runtime::deadline::remaining()).await?;
    role::Entity::find_by_id(key)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("role {key:?} not found")))?;
    let by_rule: Vec<String> = role_rule::Entity::find()
        .select_only()
        .column(role_rule::Column::DirectoryId)
        .filter(role_rule::Column::RoleKey.eq(key))
        .distinct()
        .into_tuple()
        .all(&txn)
        .await?;
    let by_default: Vec<String> = role_mapping::Entity::find()
        .select_only()
        .column(role_mapping::Column::DirectoryId)
        .filter(role_mapping::Column::DefaultRole.eq(key))
        .into_tuple()
        .all(&txn)
        .await?;
    let directories: BTreeSet<String> = by_rule.into_iter().chain(by_default).collect();
    if !directories.is_empty() {
        return Err(Error::RoleInUse {
            role: key.to_owned(),
            directories: directories.into_iter().collect(),
        });
    }
    role::Entity::delete_by_id(key).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// A directory's mapping with its rules, one row per role of each rule, in
/// one statement straight through sqlx: every role read makes it. A
/// directory without rules gives one row whose rule columns are NULL. The
/// `LIMIT` is the most rows a saved mapping has,
/// [`MAX_RULES`](crate::mapping::MAX_RULES) ×
/// [`MAX_ROLES_PER_RULE`](crate::mapping::MAX_ROLES_PER_RULE).
const MAPPING: Sql = Sql {
    name: "SELECT role_mappings",
    postgres: "SELECT m.mode, m.default_role, m.version, m.revoke_sessions, \
               r.position, r.group_id, r.roles_value, r.role_key, r.precedence \
               FROM role_mappings m LEFT JOIN role_rules r ON r.directory_id = m.directory_id \
               WHERE m.directory_id = $1 ORDER BY r.position, r.role_index LIMIT 16000",
    sqlite: "SELECT m.mode, m.default_role, m.version, m.revoke_sessions, \
             r.position, r.group_id, r.roles_value, r.role_key, r.precedence \
             FROM role_mappings m LEFT JOIN role_rules r ON r.directory_id = m.directory_id \
             WHERE m.directory_id = ? ORDER BY r.position, r.role_index LIMIT 16000",
};

/// A row of [`MAPPING`].
#[derive(FromQueryResult)]
struct MappingRow {
    mode: String,
    default_role: String,
    version: i64,
    revoke_sessions: bool,
    position: Option<i32>,
    group_id: Option<String>,
    roles_value: Option<String>,
    role_key: Option<String>,
    precedence: Option<i32>,
}

/// The directory's role mapping; an empty one when it has none.
pub async fn load_mapping(db: &DatabaseConnection, directory_id: &str) -> Result<Mapping, Error> {
    let rows: Vec<MappingRow> = direct::fetch_all(db, &MAPPING, &[directory_id]).await?;
    let Some(first) = rows.first() else {
        return Ok(Mapping::empty());
    };
    let (mode, default_role, version, revoke_sessions) = (
        Mode::parse(&first.mode).unwrap_or(Mode::Multiple),
        Some(first.default_role.clone()).filter(|role| !role.is_empty()),
        first.version,
        first.revoke_sessions,
    );
    let mut rules: Vec<(i32, Rule)> = Vec::new();
    for row in rows {
        let (Some(position), Some(role_key), Some(precedence)) = (row.position, row.role_key, row.precedence) else {
            continue;
        };
        match rules.last_mut() {
            Some((last, rule)) if *last == position => rule.roles.push(role_key),
            _ => {
                let source = match (row.group_id, row.roles_value) {
                    (Some(group_id), _) => Source::Group(group_id),
                    (None, Some(value)) => Source::RolesValue(value),
                    (None, None) => continue,
                };
                let rule = Rule {
                    source,
                    roles: vec![role_key],
                    precedence,
                };
                rules.push((position, rule));
            }
        }
    }
    Ok(Mapping {
        mode,
        rules: rules.into_iter().map(|(_, rule)| rule).collect(),
        default_role,
        version,
        revoke_sessions,
    })
}

/// Replaces the directory's mapping, if its version is `expected_version`
/// when one is given. Every role the mapping names must be in the catalog.
pub async fn save_mapping(
    db: &DatabaseConnection,
    directory_id: &str,
    mut mapping: Mapping,
    expected_version: Option<i64>,
    now: OffsetDateTime,
) -> Result<Mapping, Error> {
    let txn = idmesh_store::begin_write(db, idmesh_runtime::deadline::remaining()).await?;
    let wanted = mapping.role_keys();
    let mut known: BTreeSet<String> = BTreeSet::new();
    for chunk in wanted.chunks(INSERT_CHUNK) {
        let found: Vec<String> = role::Entity::find()
            .select_only()
            .column(role::Column::Key)
            .filter(role::Column::Key.is_in(chunk.iter().cloned()))
            .lock_shared()
            .into_tuple()
            .all(&txn)
            .await?;
        known.extend(found);
    }
    let unknown: Vec<&String> = wanted.iter().filter(|key| !known.contains(*key)).collect();
    if !unknown.is_empty() {
        return Err(ScimError::invalid_value(format!("roles not in the catalog: {unknown:?}")).into());
    }
    let current = role_mapping::Entity::find_by_id(directory_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let current_version = current.as_ref().map_or(0, |row| row.version);
    if let Some(expected) = expected_version.filter(|expected| *expected != current_version) {
        return Err(scim::meta::stale_version("role mapping", expected, current_version).into());
    }
    mapping.version = current_version + 1;
    let row = role_mapping::Model {
        directory_id: directory_id.to_owned(),
        mode: mapping.mode.as_str().to_owned(),
        default_role: mapping.default_role.clone().unwrap_or_default(),
        version: mapping.version,
        last_modified: now,
        revoke_sessions: mapping.revoke_sessions,
    };
    let written = match current {
        Some(_) => role_mapping::ActiveModel::from(row).reset_all().update(&txn).await,
        None => row.into_active_model().insert(&txn).await,
    };
    match written {
        Ok(_) => {}
        // Two first mappings of one directory at once: the later one lost.
        Err(err) if idmesh_store::is_unique_violation(&err) => {
            return Err(scim::meta::stale_version("role mapping", current_version, current_version + 1).into());
        }
        Err(err) => return Err(err.into()),
    }
    role_rule::Entity::delete_many()
        .filter(role_rule::Column::DirectoryId.eq(directory_id))
        .exec(&txn)
        .await?;
    let rows: Vec<role_rule::ActiveModel> = mapping
        .rules
        .iter()
        .enumerate()
        .flat_map(|(position, rule)| {
            rule.roles.iter().enumerate().map(move |(role_index, role_key)| {
                let (group_id, roles_value) = match &rule.source {
                    Source::Group(id) => (Some(id.clone()), None),
                    Source::RolesValue(value) => (None, Some(value.clone())),
                };
                role_rule::Model {
                    directory_id: directory_id.to_owned(),
                    position: i32::try_from(position).unwrap_or(i32::MAX),
                    role_index: i32::try_from(role_index).unwrap_or(i32::MAX),
                    group_id,
                    roles_value,
                    role_key: role_key.clone(),
                    precedence: rule.precedence,
                }
                .into_active_model()
            })
        })
        .collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        role_rule::Entity::insert_many(chunk.to_vec()).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(mapping)
}

/// The directory's attribute mapping; none when it has none.
pub async fn load_attributes(db: &DatabaseConnection, directory_id: &str) -> Result<AttributeMapping, Error> {
    let rows = profile_field::Entity::find()
        .filter(profile_field::Column::DirectoryId.eq(directory_id))
        .order_by_asc(profile_field::Column::Position)
        .all(db)
        .await?;
    let fields = rows
        .into_iter()
        .map(|row| {
            let kind = FieldType::parse(&row.field_type).ok_or_else(ScimError::internal)?;
            let sources: Vec<String> = match row.sources {
                Value::Array(items) => items
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            Field::new(&row.key, kind, &sources)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AttributeMapping { fields })
}

pub async fn save_attributes(
    db: &DatabaseConnection,
    directory_id: &str,
    mapping: &AttributeMapping,
) -> Result<(), Error> {
    let txn = idmesh_store::begin_write(db, idmesh_runtime::deadline::remaining()).await?;
    profile_field::Entity::delete_many()
        .filter(profile_field::Column::DirectoryId.eq(directory_id))
        .exec(&txn)
        .await?;
    let rows: Vec<profile_field::ActiveModel> = mapping
        .fields
        .iter()
        .enumerate()
        .map(|(position, field)| {
            profile_field::Model {
                directory_id: directory_id.to_owned(),
                position: i32::try_from(position).unwrap_or(i32::MAX),
                key: field.key.clone(),
                field_type: field.kind.as_str().to_owned(),
                sources: Value::from(field.source_texts()),
            }
            .into_active_model()
        })
        .collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        profile_field::Entity::insert_many(chunk.to_vec()).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use idmesh_testkit::{Backend, ScratchDatabase};

    use super::*;
    use crate::mapping::{MAX_ROLES_PER_RULE, MAX_RULES};

    #[test]
    fn a_saved_mapping_is_read_whole() {
        let limit = format!("LIMIT {}", MAX_RULES * MAX_ROLES_PER_RULE);
        assert!(MAPPING.postgres.ends_with(&limit));
        assert!(MAPPING.sqlite.ends_with(&limit));
    }

    #[tokio::test]
    async fn a_mapping_reads_back_as_it_was_saved() {
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let database = ScratchDatabase::new(backend);
            let db = idmesh_store::connect(database.url()).await.expect("connect");
            idmesh_store::migrate::<crate::migration::Migrator>(&db)
                .await
                .expect("migrate");
            let now = OffsetDateTime::now_utc();
            assert_eq!(load_mapping(&db, "d1").await.expect("read"), Mapping::empty());
            for key in ["admin", "member", "guest"] {
                let row = role::Model {
                    key: key.to_owned(),
                    name: key.to_owned(),
                    description: String::new(),
                    created: now,
                };
                create_role(&db, row).await.expect("a role");
            }
            let rule = |source, roles: &[&str], precedence| Rule {
                source,
                roles: roles.iter().map(|role| (*role).to_owned()).collect(),
                precedence,
            };
            let mapping = Mapping {
                mode: Mode::Single,
                rules: vec![
                    rule(Source::Group("g1".to_owned()), &["admin", "member"], 2),
                    rule(Source::RolesValue("Engineer".to_owned()), &["member"], 1),
                    rule(Source::Group("g2".to_owned()), &["guest", "admin", "member"], 3),
                ],
                default_role: Some("guest".to_owned()),
                version: 0,
                revoke_sessions: true,
            };
            let saved = save_mapping(&db, "d1", mapping, None, now).await.expect("saved");
            assert_eq!(load_mapping(&db, "d1").await.expect("read"), saved, "{backend:?}");
            let bare = Mapping {
                mode: Mode::Multiple,
                rules: Vec::new(),
                default_role: None,
                revoke_sessions: false,
                ..saved.clone()
            };
            let saved = save_mapping(&db, "d1", bare, Some(saved.version), now)
                .await
                .expect("saved");
            assert_eq!(saved.version, 2);
            assert_eq!(
                load_mapping(&db, "d1").await.expect("read"),
                saved,
                "{backend:?}: no rules"
            );
            assert_eq!(
                load_mapping(&db, "d2").await.expect("read"),
                Mapping::empty(),
                "another directory's"
            );
        }
    }
}
