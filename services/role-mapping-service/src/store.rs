//! Reading and writing role-mapping-service's tables: the role catalog, the
//! directories' role mappings and attribute mappings.
//!
//! A role's deletion and a mapping that names the role cannot cross: the
//! deletion locks the role's row before it looks for mappings using it,
//! and saving a mapping locks (shared) the rows of the roles it names
//! before it writes (on SQLite, `BEGIN IMMEDIATE` serialises both).

use std::collections::BTreeSet;

use scim::ScimError;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
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

/// The directory's role mapping; an empty one when it has none.
pub async fn load_mapping(db: &DatabaseConnection, directory_id: &str) -> Result<Mapping, Error> {
    let Some(row) = role_mapping::Entity::find_by_id(directory_id).one(db).await? else {
        return Ok(Mapping::empty());
    };
    let rows = role_rule::Entity::find()
        .filter(role_rule::Column::DirectoryId.eq(directory_id))
        .order_by_asc(role_rule::Column::Position)
        .order_by_asc(role_rule::Column::RoleIndex)
        .all(db)
        .await?;
    let mut rules: Vec<(i32, Rule)> = Vec::new();
    for row in rows {
        match rules.last_mut() {
            Some((position, rule)) if *position == row.position => rule.roles.push(row.role_key),
            _ => {
                let source = match (row.group_id, row.roles_value) {
                    (Some(group_id), _) => Source::Group(group_id),
                    (None, Some(value)) => Source::RolesValue(value),
                    (None, None) => continue,
                };
                let rule = Rule {
                    source,
                    roles: vec![row.role_key],
                    precedence: row.precedence,
                };
                rules.push((row.position, rule));
            }
        }
    }
    Ok(Mapping {
        mode: Mode::parse(&row.mode).unwrap_or(Mode::Multiple),
        rules: rules.into_iter().map(|(_, rule)| rule).collect(),
        default_role: Some(row.default_role).filter(|role| !role.is_empty()),
        version: row.version,
        revoke_sessions: row.revoke_sessions,
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
