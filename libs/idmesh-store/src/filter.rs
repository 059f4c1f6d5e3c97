//! SCIM filter → SQL condition, so that filtering happens in the database
//! (DESIGN rule 5) and means the same on PostgreSQL and SQLite.
//!
//! A service says which SCIM attributes it keeps in which column; the
//! attribute's schema says whether strings compare case-exactly. Attributes
//! without a column are answered with 400 `invalidFilter` rather than being
//! filtered in memory.

use scim::ScimError;
use scim::filter::{CompValue, CompareOp, Filter};
use scim::path::AttrPath;
use scim::schema::ResourceSchema;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How an attribute is stored in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A string as received.
    Text,
    /// A string stored lower-cased (Unicode), for attributes that are not
    /// case-exact and need an index that ignores case, like `userName`.
    FoldedText,
    Boolean,
    Timestamp,
}

/// The column that holds a filterable attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterColumn {
    pub name: &'static str,
    pub kind: ColumnKind,
}

/// Translates `filter` into one SQL condition over the columns `column_for`
/// names.
pub fn to_condition(
    filter: &Filter,
    schema: &ResourceSchema,
    column_for: &dyn Fn(&AttrPath) -> Option<FilterColumn>,
) -> Result<SimpleExpr, ScimError> {
    let translate = |f: &Filter| to_condition(f, schema, column_for);
    match filter {
        Filter::And(left, right) => Ok(translate(left)?.and(translate(right)?)),
        Filter::Or(left, right) => Ok(translate(left)?.or(translate(right)?)),
        Filter::Not(inner) => Ok(translate(inner)?.not()),
        Filter::Present(path) => {
            let (column, _) = resolve(path, schema, column_for)?;
            let present = Expr::col(column.name).is_not_null();
            Ok(match column.kind {
                ColumnKind::Text | ColumnKind::FoldedText => present.and(Expr::col(column.name).ne("")),
                ColumnKind::Boolean | ColumnKind::Timestamp => present,
            })
        }
        Filter::Compare { path, op, value } => {
            let (column, case_exact) = resolve(path, schema, column_for)?;
            compare(path, column, case_exact, *op, value)
        }
        Filter::ValuePath { path, .. } => Err(ScimError::invalid_filter(format!(
            "filtering inside the multi-valued attribute {path} is not supported"
        ))),
    }
}

fn resolve(
    path: &AttrPath,
    schema: &ResourceSchema,
    column_for: &dyn Fn(&AttrPath) -> Option<FilterColumn>,
) -> Result<(FilterColumn, bool), ScimError> {
    let attribute = schema
        .resolve(path)
        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute {path} in filter")))?;
    let column =
        column_for(path).ok_or_else(|| ScimError::invalid_filter(format!("filtering on {path} is not supported")))?;
    Ok((column, attribute.case_exact))
}

fn compare(
    path: &AttrPath,
    column: FilterColumn,
    case_exact: bool,
    op: CompareOp,
    value: &CompValue,
) -> Result<SimpleExpr, ScimError> {
    let mismatch = |expected: &str| {
        ScimError::invalid_filter(format!("{path} is {expected}; the filter compares it with {value:?}"))
    };
    if *value == CompValue::Null {
        return match op {
            CompareOp::Eq => Ok(Expr::col(column.name).is_null()),
            CompareOp::Ne => Ok(Expr::col(column.name).is_not_null()),
            _ => Err(ScimError::invalid_filter(format!(
                "{path}: only eq and ne compare with null"
            ))),
        };
    }
    match column.kind {
        ColumnKind::Boolean => {
            let CompValue::Bool(b) = value else {
                return Err(mismatch("a boolean"));
            };
            match op {
                CompareOp::Eq => Ok(Expr::col(column.name).eq(*b)),
                CompareOp::Ne => Ok(Expr::col(column.name).ne(*b)),
                _ => Err(ScimError::invalid_filter(format!(
                    "{path} is a boolean: only eq, ne and pr apply"
                ))),
            }
        }
        ColumnKind::Timestamp => {
            let CompValue::Str(s) = value else {
                return Err(mismatch("a dateTime"));
            };
            let at = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                ScimError::invalid_filter(format!("{path} compares with {s:?}, which is not an RFC 3339 dateTime"))
            })?;
            ordered(path, Expr::col(column.name), op, Expr::val(at))
        }
        ColumnKind::Text | ColumnKind::FoldedText => {
            let CompValue::Str(s) = value else {
                return Err(mismatch("a string"));
            };
            let (lhs, rhs) = match (column.kind, case_exact) {
                (_, true) => (Expr::col(column.name), s.clone()),
                (ColumnKind::FoldedText, false) => (Expr::col(column.name), s.to_lowercase()),
                (_, false) => (Func::lower(Expr::col(column.name)).into(), s.to_lowercase()),
            };
            let pattern = match op {
                CompareOp::Co => format!("%{}%", escape_like(&rhs)),
                CompareOp::Sw => format!("{}%", escape_like(&rhs)),
                CompareOp::Ew => format!("%{}", escape_like(&rhs)),
                _ => return ordered(path, lhs, op, Expr::val(rhs)),
            };
            Ok(lhs.like(LikeExpr::new(pattern).escape('\\')))
        }
    }
}

/// `lhs op rhs` for the operators that compare by order (and equality).
fn ordered(path: &AttrPath, lhs: SimpleExpr, op: CompareOp, rhs: SimpleExpr) -> Result<SimpleExpr, ScimError> {
    Ok(match op {
        CompareOp::Eq => lhs.eq(rhs),
        CompareOp::Ne => lhs.ne(rhs),
        CompareOp::Gt => lhs.gt(rhs),
        CompareOp::Ge => lhs.gte(rhs),
        CompareOp::Lt => lhs.lt(rhs),
        CompareOp::Le => lhs.lte(rhs),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
            return Err(ScimError::invalid_filter(format!(
                "{path}: co, sw and ew apply to strings only"
            )));
        }
    })
}

/// Escapes LIKE's wildcards so that a filter value matches literally.
fn escape_like(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
