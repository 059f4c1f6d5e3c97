//! A user as the service reads it back: every column but `resource_folded`,
//! which only SQL filters read, with the document as the JSON text it is
//! stored as.
//!
//! A GET, and a List for each user of its page, hands that text to its
//! answer as it is, instead of parsing the document (and its folded copy)
//! into values and serialising it again; a rewrite parses it where its
//! cost belongs, on the CPU pool for a PATCH.
//! For a user of 1,000 large e-mail addresses that is three passes over a
//! megabyte fewer on an async worker, and one megabyte fewer for the
//! database to turn into text (docs/benchmarks.md).

use idmesh_api::document;
use idmesh_api::meta::Meta;
use idmesh_proto::v1::User;
use idmesh_store::direct::{self, Sql};
use idmesh_store::list::ListedRow;
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{DatabaseConnection, DbErr, FromQueryResult, QuerySelect, Select, SelectModel, Selector};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::entity::user;

#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub(crate) struct StoredUser {
    pub id: String,
    pub directory_id: String,
    pub user_name: String,
    pub user_name_folded: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    /// The SCIM document as JSON text.
    pub resource: String,
    pub password_hash: Option<String>,
    pub version: i64,
    pub created: OffsetDateTime,
    pub last_modified: OffsetDateTime,
}

/// What a direct read of users selects: [`StoredUser`]'s columns.
macro_rules! select_stored_users {
    () => {
        "SELECT id, directory_id, user_name, user_name_folded, external_id, active, display_name, \
         CAST(resource AS TEXT) AS resource, password_hash, version, created, last_modified FROM users "
    };
}

/// One user by id, through the primary key alone: the read of every GET,
/// PUT and PATCH, run through sqlx directly ([`idmesh_store::direct`]).
/// [`StoredUser::find`] checks the directory on the row it reads. Named in
/// the statement, the directory gave PostgreSQL three more indexes to
/// weigh in planning each execution, about a fifth of the statement's
/// cost, and a generic plan to choose among them by a tie
/// (docs/benchmarks.md). By primary key alone its generic plan is right
/// on any table (a test reads it), so it runs on the plan-cached pool
/// ([`idmesh_store::connect_plan_cached`]).
pub(crate) const FIND: Sql = Sql {
    name: "SELECT users",
    postgres: concat!(select_stored_users!(), "WHERE id = $1"),
    sqlite: concat!(select_stored_users!(), "WHERE id = ?"),
};

/// One user by directory and folded userName, through the unique index
/// on the two: a lookup by `userName eq`, as IdPs send before they create
/// a user. Planned at each execution: the generic plan PostgreSQL makes
/// for it on an empty, never-analysed table walks the directory's index
/// and filters on the name.
pub(crate) const FIND_BY_USER_NAME: Sql = Sql {
    name: "SELECT users",
    postgres: concat!(
        select_stored_users!(),
        "WHERE directory_id = $1 AND user_name_folded = $2"
    ),
    sqlite: concat!(
        select_stored_users!(),
        "WHERE directory_id = ? AND user_name_folded = ?"
    ),
};

impl StoredUser {
    /// The user `id` of `directory_id`, if there is one: a user of
    /// another directory is not found.
    pub async fn find(db: &DatabaseConnection, directory_id: &str, id: &str) -> Result<Option<StoredUser>, DbErr> {
        let rows: Vec<StoredUser> = direct::fetch_all(db, &FIND, &[id]).await?;
        Ok(rows.into_iter().find(|user| user.directory_id == directory_id))
    }

    /// The user of `directory_id` whose folded userName is
    /// `user_name_folded`, if there is one (there is at most one).
    pub async fn find_by_user_name(
        db: &DatabaseConnection,
        directory_id: &str,
        user_name_folded: &str,
    ) -> Result<Option<StoredUser>, DbErr> {
        let rows: Vec<StoredUser> =
            direct::fetch_all(db, &FIND_BY_USER_NAME, &[directory_id, user_name_folded]).await?;
        Ok(rows.into_iter().next())
    }

    /// The row `model` describes, once written, its document serialised as
    /// `resource`.
    pub fn written(model: user::Model, resource: String) -> StoredUser {
        let user::Model {
            id,
            directory_id,
            user_name,
            user_name_folded,
            external_id,
            active,
            display_name,
            resource: _,
            resource_folded: _,
            password_hash,
            version,
            created,
            last_modified,
        } = model;
        StoredUser {
            id,
            directory_id,
            user_name,
            user_name_folded,
            external_id,
            active,
            display_name,
            resource,
            password_hash,
            version,
            created,
            last_modified,
        }
    }

    /// The stored document, parsed. Every stored document was validated
    /// when it was written, so one that does not parse is an internal
    /// error (and logged as one).
    pub fn document(&self) -> Result<Map<String, Value>, scim::ScimError> {
        document::parse(&self.resource).map_err(|err| {
            tracing::error!(user_id = %self.id, error = %err, "a stored user document does not parse");
            scim::ScimError::internal()
        })
    }

    pub fn into_proto(self) -> User {
        let meta = Meta {
            version: self.version,
            created: self.created,
            last_modified: self.last_modified,
        };
        User {
            id: self.id,
            directory_id: self.directory_id,
            user_name: self.user_name,
            external_id: self.external_id,
            active: self.active,
            display_name: self.display_name.unwrap_or_default(),
            resource_json: self.resource,
            meta: Some(meta.to_proto()),
        }
    }
}

/// A List reads users in the same shape, through sea-orm: every column but
/// the folded document, which its filter and sort may still read.
impl ListedRow<user::Entity> for StoredUser {
    fn select(query: Select<user::Entity>) -> Selector<SelectModel<StoredUser>> {
        query
            .select_only()
            .columns([
                user::Column::Id,
                user::Column::DirectoryId,
                user::Column::UserName,
                user::Column::UserNameFolded,
                user::Column::ExternalId,
                user::Column::Active,
                user::Column::DisplayName,
                user::Column::PasswordHash,
                user::Column::Version,
                user::Column::Created,
                user::Column::LastModified,
            ])
            .expr_as(
                Expr::col((user::Entity, user::Column::Resource)).cast_as(Alias::new("TEXT")),
                "resource",
            )
            .into_model::<StoredUser>()
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> usize {
        self.resource.len()
    }
}

impl From<user::Model> for StoredUser {
    fn from(model: user::Model) -> StoredUser {
        let resource = match &model.resource {
            Value::Object(doc) => document::to_json(doc),
            _ => String::new(),
        };
        StoredUser::written(model, resource)
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, EntityTrait};
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    idmesh_testkit::on_both_backends!(
        a_user_reads_back_as_written_without_its_folded_copy,
        crate::revocation_tests::migrated,
        |db: DatabaseConnection| async move {
            // Escapes, non-ASCII text and a number past i64 survive the
            // database's text form of the document.
            let doc = json!({
                "userName": "Zoë \"Q\" O'Brien\n",
                "emails": [{"value": "zoe@example.com", "primary": true}],
                "urn:example:counter": 18_446_744_073_709_551_615_u64,
            });
            let model = user::Model {
                id: "u1".to_owned(),
                directory_id: "d1".to_owned(),
                user_name: "Zoë \"Q\" O'Brien\n".to_owned(),
                user_name_folded: "zoë \"q\" o'brien\n".to_owned(),
                external_id: Some("e1".to_owned()),
                active: true,
                display_name: None,
                resource_folded: json!({"folded": true}),
                resource: doc.clone(),
                password_hash: Some("$argon2id$…".to_owned()),
                version: 3,
                created: datetime!(2026-12-07 01:02:03 UTC),
                last_modified: datetime!(2026-12-07 04:05:06 UTC),
            };
            user::Entity::insert(user::ActiveModel::from(model.clone()).reset_all())
                .exec_without_returning(&db)
                .await
                .expect("insert");

            let found = StoredUser::find(&db, "d1", "u1")
                .await
                .expect("read")
                .expect("the user");
            assert_eq!(Value::Object(found.document().expect("a document")), doc);
            let expected = StoredUser::from(model);
            assert_eq!(
                StoredUser {
                    resource: String::new(),
                    ..found
                },
                StoredUser {
                    resource: String::new(),
                    ..expected
                }
            );
            assert_eq!(StoredUser::find(&db, "d2", "u1").await.expect("read"), None);
        }
    );
}
