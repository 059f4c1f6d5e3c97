//! SCIM filters on groups as SQL conditions. Group attributes go to
//! `idmesh_store::filter::Target`; anything naming `members` becomes an
//! `EXISTS` over the group's member rows, since members are rows and not a
//! JSON array: `members[value eq "<id>"]`, `members.value eq "<id>"`,
//! `members[type eq "Group"]`, `members pr`. The same translation of a
//! filter over one member's sub-attributes serves PATCH removals such as
//! `members[type eq "Group"]`.

use idmesh_store::filter::{Column, ColumnKind, Target};
use scim::ScimError;
use scim::filter::{CompValue, CompareOp, Filter};
use scim::path::AttrPath;
use scim::schema::GROUP_RESOURCE;
use sea_orm::DbBackend;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use serde_json::json;

use crate::entity::group_member::MEMBER_TYPES;
use scim::members::names_members;

/// The Group attribute kept in a column of its own besides the common
/// ones: `displayName`, folded and indexed.
const GROUP_COLUMNS: &[Column] = &[Column {
    attribute: "displayName",
    name: "display_name_folded",
    kind: ColumnKind::Text,
}];

/// The columns of a member row behind `members.<sub>`. Member ids are
/// server-assigned lower-case UUIDs, so `member_id` compares as the folded
/// value the filter translation expects of a column.
const MEMBER_COLUMNS: &[Column] = &[
    Column {
        attribute: "members.value",
        name: "member_id",
        kind: ColumnKind::Text,
    },
    Column {
        attribute: "members.display",
        name: "display_folded",
        kind: ColumnKind::Text,
    },
];

/// A member sub-attribute that filters can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberAttr {
    Value,
    Type,
    Display,
}

impl MemberAttr {
    fn of(path: &AttrPath) -> Result<MemberAttr, ScimError> {
        let name = match (&path.urn, &path.sub_attr) {
            (None, None) => path.attr.to_ascii_lowercase(),
            _ => String::new(),
        };
        match name.as_str() {
            "value" => Ok(MemberAttr::Value),
            "type" => Ok(MemberAttr::Type),
            "display" => Ok(MemberAttr::Display),
            _ => Err(ScimError::invalid_filter(format!(
                "{path}: a member filter may name value, type or display"
            ))),
        }
    }
}

/// Translates filters for one database backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupFilters {
    backend: DbBackend,
}

impl GroupFilters {
    pub fn new(backend: DbBackend) -> Self {
        Self { backend }
    }

    /// Where filters and sorting find Group attributes.
    pub fn target(&self) -> Target {
        Target {
            backend: self.backend,
            schema: &GROUP_RESOURCE,
            folded_document: "resource_folded",
            columns: GROUP_COLUMNS,
            common_columns: true,
        }
    }

    /// Member rows as if they were `members` elements, for the value and
    /// display comparisons (written as `members.<sub>`).
    fn member_target(&self) -> Target {
        Target {
            columns: MEMBER_COLUMNS,
            common_columns: false,
            ..self.target()
        }
    }

    /// `filter` as a condition on `groups` rows.
    pub fn groups(&self, filter: &Filter) -> Result<SimpleExpr, ScimError> {
        match filter {
            Filter::And(left, right) => Ok(self.groups(left)?.and(self.groups(right)?)),
            Filter::Or(left, right) => Ok(self.groups(left)?.or(self.groups(right)?)),
            Filter::Not(inner) => Ok(self.groups(inner)?.not()),
            Filter::ValuePath { path, filter } if names_members(path) => Ok(has_member(self.members(filter)?)),
            Filter::Present(path) if names_members(path) => match &path.sub_attr {
                None => Ok(has_member(Expr::val(true))),
                Some(_) => Ok(has_member(self.members(&Filter::Present(relative(path)))?)),
            },
            Filter::Compare { path, op, value } if names_members(path) => {
                if path.sub_attr.is_none() {
                    return Err(ScimError::invalid_filter(format!(
                        "{path} is complex; compare one of its sub-attributes, e.g. {path}.value"
                    )));
                }
                let path = relative(path);
                // As for any multi-valued attribute, `ne` holds when no
                // member equals, and `eq null` when no member has a value.
                Ok(match (op, value) {
                    (CompareOp::Eq, CompValue::Null) => has_member(self.members(&Filter::Present(path))?).not(),
                    (CompareOp::Ne, CompValue::Null) => has_member(self.members(&Filter::Present(path))?),
                    (CompareOp::Ne, value) => has_member(self.members(&Filter::Compare {
                        path,
                        op: CompareOp::Eq,
                        value: value.clone(),
                    })?)
                    .not(),
                    (op, value) => has_member(self.members(&Filter::Compare {
                        path,
                        op: *op,
                        value: value.clone(),
                    })?),
                })
            }
            leaf => self.target().condition(leaf),
        }
    }

    /// A filter over one member's sub-attributes (`value`, `type`,
    /// `display`, as inside `members[...]`) as a condition on
    /// `group_members` rows.
    pub fn members(&self, filter: &Filter) -> Result<SimpleExpr, ScimError> {
        match filter {
            Filter::And(left, right) => Ok(self.members(left)?.and(self.members(right)?)),
            Filter::Or(left, right) => Ok(self.members(left)?.or(self.members(right)?)),
            Filter::Not(inner) => Ok(self.members(inner)?.not()),
            Filter::ValuePath { path, .. } => Err(ScimError::invalid_filter(format!(
                "value filters do not nest: {path}[...] is inside members[...]"
            ))),
            Filter::Present(path) | Filter::Compare { path, .. } => match MemberAttr::of(path)? {
                MemberAttr::Type => Ok(type_condition(filter)),
                MemberAttr::Value | MemberAttr::Display => {
                    self.member_target().condition(&with_path(filter, qualified(path)))
                }
            },
        }
    }
}

/// `EXISTS` a member row of the group in hand satisfying `condition`.
fn has_member(condition: SimpleExpr) -> SimpleExpr {
    let members = Alias::new("group_members");
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(members.clone())
            .and_where(Expr::col((members, Alias::new("group_id"))).equals((Alias::new("groups"), Alias::new("id"))))
            .and_where(condition)
            .to_owned(),
    )
}

/// `members.value` → `value`, as inside `members[...]`.
fn relative(path: &AttrPath) -> AttrPath {
    AttrPath {
        urn: None,
        attr: path.sub_attr.clone().unwrap_or_default(),
        sub_attr: None,
    }
}

/// `value` → `members.value`, as the member target resolves it.
fn qualified(path: &AttrPath) -> AttrPath {
    AttrPath {
        urn: None,
        attr: "members".to_owned(),
        sub_attr: Some(path.attr.clone()),
    }
}

fn with_path(leaf: &Filter, path: AttrPath) -> Filter {
    match leaf {
        Filter::Compare { op, value, .. } => Filter::Compare {
            path,
            op: *op,
            value: value.clone(),
        },
        _ => Filter::Present(path),
    }
}

/// A leaf on `type`, decided in Rust: the column only ever holds one of
/// [`MEMBER_TYPES`], so the leaf becomes `member_type IN (those it
/// matches)`, compared exactly as `scim::filter::matches` compares
/// (ignoring case, since `type` is not caseExact).
fn type_condition(leaf: &Filter) -> SimpleExpr {
    let on_member = Filter::ValuePath {
        path: AttrPath {
            urn: None,
            attr: "members".to_owned(),
            sub_attr: None,
        },
        filter: Box::new(leaf.clone()),
    };
    let matching: Vec<&str> = MEMBER_TYPES
        .into_iter()
        .filter(|kind| scim::filter::matches(&on_member, &json!({"members": [{"type": kind}]}), &GROUP_RESOURCE))
        .collect();
    Expr::col(Alias::new("member_type")).is_in(matching)
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};

    use super::*;

    fn groups_sql(backend: DbBackend, filter: &str) -> Result<String, ScimError> {
        let filter = scim::filter::parse(filter)?;
        let condition = GroupFilters::new(backend).groups(&filter)?;
        let query = Query::select()
            .expr(Expr::val(1))
            .from(Alias::new("groups"))
            .and_where(condition)
            .to_owned();
        Ok(match backend {
            DbBackend::Postgres => query.to_string(PostgresQueryBuilder),
            _ => query.to_string(SqliteQueryBuilder),
        })
    }

    #[test]
    fn members_value_filters_become_exists_over_member_rows() {
        for filter in [r#"members[value eq "ABC"]"#, r#"members.value eq "ABC""#] {
            let sql = groups_sql(DbBackend::Postgres, filter).expect(filter);
            assert!(sql.contains(r#"EXISTS(SELECT 1 FROM "group_members""#), "{sql}");
            assert!(sql.contains(r#""group_members"."group_id" = "groups"."id""#), "{sql}");
            assert!(sql.contains(r#""member_id" = 'abc'"#), "{sql}");
        }
    }

    #[test]
    fn member_type_is_matched_ignoring_case() {
        let sql = groups_sql(DbBackend::Sqlite, r#"members[type eq "group"]"#).expect("filter");
        assert!(sql.contains(r#""member_type" IN ('Group')"#), "{sql}");
        let sql = groups_sql(DbBackend::Sqlite, r#"members[type sw "x"]"#).expect("filter");
        assert!(!sql.contains("'User'") && !sql.contains("'Group'"), "{sql}");
    }

    #[test]
    fn ne_on_members_holds_when_no_member_equals() {
        let sql = groups_sql(DbBackend::Sqlite, r#"members.value ne "a""#).expect("filter");
        assert!(sql.contains("NOT EXISTS"), "{sql}");
    }

    #[test]
    fn group_attributes_read_their_columns() {
        let sql = groups_sql(DbBackend::Postgres, r#"displayName eq "Admins" and externalId eq "X""#).expect("filter");
        assert!(sql.contains(r#""display_name_folded" = 'admins'"#), "{sql}");
        assert!(sql.contains(r#""external_id" = 'X'"#), "{sql}");
    }

    #[test]
    fn unusable_member_filters_are_invalid_filter() {
        for filter in [
            r#"members eq "a""#,
            r#"members[$ref eq "a"]"#,
            r#"members[value.x eq "a"]"#,
            r#"members.nope eq "a""#,
        ] {
            let err = groups_sql(DbBackend::Postgres, filter).expect_err(filter);
            assert_eq!(err.scim_type, Some(scim::ScimType::InvalidFilter), "{filter}: {err}");
        }
    }
}
