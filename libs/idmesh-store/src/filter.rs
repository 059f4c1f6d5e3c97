//! SCIM filter → one SQL condition, and SCIM `sortBy` → one SQL sort key, so
//! that filtering and sorting happen in the database (DESIGN rule 5) and
//! mean the same on PostgreSQL, on SQLite and in [`scim::filter::matches`].
//!
//! A service keeps some attributes in columns of their own (indexed, like
//! `userName`) and the whole resource in a JSON column holding
//! [`scim::filter::fold`] of the document: every string of a non-caseExact
//! attribute lower-cased in Rust, so that case-insensitive comparison never
//! depends on a database's idea of case. Attributes without a column are
//! reached inside that document: `name.familyName` as a path, multi-valued
//! attributes (`emails.value`, `emails[type eq "work" and value co "@x"]`)
//! through `EXISTS` over the array's elements (`jsonb_array_elements` on
//! PostgreSQL, `json_each` on SQLite). Entra ID's
//! `emails[type eq "work"].value eq "x"` arrives here already read as
//! `emails[type eq "work" and value eq "x"]` (see [`scim::filter::parse`]),
//! so one `EXISTS` holds both conditions on the same element.
//!
//! Every predicate is two-valued (never SQL `NULL`), so `not (...)` means
//! what it means in memory: an absent attribute is `ne` anything but
//! `null`. Strings order by code point on both databases (`COLLATE "C"` on
//! PostgreSQL), as Rust orders them.

use scim::ScimError;
use scim::filter::{CompValue, CompareOp, Filter, fold_text};
use scim::path::AttrPath;
use scim::schema::{Attribute, AttributeType, COMMON_ATTRIBUTES, ResourceSchema};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, NullOrdering, SimpleExpr};
use sea_orm::{DbBackend, EntityTrait, Order, QueryOrder, Select};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// How an attribute is stored in its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A string. For an attribute that is not caseExact the column must
    /// hold the value folded by [`scim::filter::fold_text`] (as
    /// `user_name_folded` does), since filters compare it with the folded
    /// filter value.
    Text,
    Timestamp,
}

/// An attribute a service keeps in a column of its own (indexed, like
/// `userName`, or not in the document at all, like `id` and `meta.*`), and
/// that column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The attribute's path, as a filter could write it (`userName`,
    /// `meta.created`, `members.value`). It is resolved through the schema,
    /// so a filter naming the attribute in any case or with its schema URN
    /// finds the column.
    pub attribute: &'static str,
    /// The column's name.
    pub name: &'static str,
    pub kind: ColumnKind,
}

/// The columns every resource table keeps the common attributes in (RFC
/// 7643 §3.1: `id`, `externalId`, `meta.created`, `meta.lastModified`).
/// Apart from `externalId` they are not in the stored document, so
/// filtering and sorting on them needs these columns.
pub const COMMON_COLUMNS: &[Column] = &[
    Column {
        attribute: "id",
        name: "id",
        kind: ColumnKind::Text,
    },
    Column {
        attribute: "externalId",
        name: "external_id",
        kind: ColumnKind::Text,
    },
    Column {
        attribute: "meta.created",
        name: "created",
        kind: ColumnKind::Timestamp,
    },
    Column {
        attribute: "meta.lastModified",
        name: "last_modified",
        kind: ColumnKind::Timestamp,
    },
];

/// Where one resource type's attributes are stored.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub backend: DbBackend,
    pub schema: &'static ResourceSchema,
    /// The JSON column holding [`scim::filter::fold`] of the document.
    pub folded_document: &'static str,
    /// The attributes kept in columns of this table's own (an indexed
    /// `userName`), besides [`COMMON_COLUMNS`].
    pub columns: &'static [Column],
    /// Whether the rows are resources with [`COMMON_COLUMNS`]; rows that
    /// stand for something else (a group's member rows) are not. A common
    /// attribute without a column cannot be filtered on (400
    /// `invalidFilter`).
    pub common_columns: bool,
}

impl Target {
    /// `filter` as one SQL condition. Filters that cannot mean anything
    /// (unknown attributes, a string compared with a boolean, `gt` on a
    /// boolean, `co` on a dateTime, a complex attribute compared as a whole)
    /// are 400 `invalidFilter` naming the problem.
    pub fn condition(&self, filter: &Filter) -> Result<SimpleExpr, ScimError> {
        self.translate(filter, &Scope::Resource)
    }

    /// When `filter` is one string attribute kept in a text column compared
    /// `eq` with a string (`userName eq "…"`, what every IdP asks before it
    /// creates a user): that column and the value a matching row holds in
    /// it, folded unless the attribute is caseExact, as [`Target::condition`]
    /// compares it. A service can then read the row by the column's index
    /// itself. `None` for every other filter.
    pub fn column_equality(&self, filter: &Filter) -> Option<(Column, String)> {
        let Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(value),
        } = filter
        else {
            return None;
        };
        match self.reach(path, &Scope::Resource).ok()? {
            Reach::Column(column, case_exact) if column.kind == ColumnKind::Text => {
                Some((column, if case_exact { value.clone() } else { fold_text(value) }))
            }
            _ => None,
        }
    }

    /// The expression that orders resources by `path` (RFC 7644 §3.4.2.3):
    /// an attribute's value, compared as the filter compares it (folded
    /// unless caseExact); a multi-valued attribute by its primary value,
    /// else its first. `NULL` for resources without a value.
    pub fn sort_key(&self, path: &AttrPath) -> Result<SimpleExpr, ScimError> {
        let unsortable = |why: &str| ScimError::invalid_value(format!("cannot sort by {path}: {why}"));
        match self.reach(path, &Scope::Resource).map_err(|e| unsortable(&e.detail))? {
            Reach::Column(column, _) => Ok(match column.kind {
                ColumnKind::Text => self.code_point_order(Expr::col(column.name)),
                ColumnKind::Timestamp => self.instant_order(Expr::col(column.name)),
            }),
            Reach::One { at, def } => {
                let at = comparable_one(at, def, path).map_err(|e| unsortable(&e.detail))?;
                Ok(self.code_point_order(self.scalar(&at)))
            }
            Reach::Each { array, def, sub } => {
                let sub = match sub {
                    Some(sub) => Some(sub),
                    None if def.kind == AttributeType::Complex => Some(
                        def.sub_attribute("value")
                            .ok_or_else(|| unsortable("it is complex; name one of its sub-attributes"))?,
                    ),
                    None => None,
                };
                Ok(self.code_point_order(self.first_or_primary(&array, sub)))
            }
        }
    }

    /// `query` ordered by the attribute path `sort_by` ([`Target::sort_key`]);
    /// resources without a value come last in either order. A blank
    /// `sort_by` leaves the order alone. The caller adds the tie-breaker.
    pub fn sorted<E: EntityTrait>(
        &self,
        query: Select<E>,
        sort_by: &str,
        descending: bool,
    ) -> Result<Select<E>, ScimError> {
        let sort_by = sort_by.trim();
        if sort_by.is_empty() {
            return Ok(query);
        }
        let path =
            AttrPath::parse(sort_by).map_err(|err| ScimError::invalid_value(format!("sortBy: {}", err.detail)))?;
        let order = if descending { Order::Desc } else { Order::Asc };
        Ok(query.order_by_with_nulls(self.sort_key(&path)?, order, NullOrdering::Last))
    }

    fn translate(&self, filter: &Filter, scope: &Scope) -> Result<SimpleExpr, ScimError> {
        match filter {
            Filter::And(left, right) => Ok(self.translate(left, scope)?.and(self.translate(right, scope)?)),
            Filter::Or(left, right) => Ok(self.translate(left, scope)?.or(self.translate(right, scope)?)),
            Filter::Not(inner) => Ok(self.translate(inner, scope)?.not()),
            Filter::Present(path) => self.present(self.reach(path, scope)?),
            Filter::Compare { path, op, value } => self.compare(path, scope, *op, value),
            Filter::ValuePath { path, filter } => {
                let Scope::Resource = scope else {
                    return Err(ScimError::invalid_filter(format!(
                        "value filters do not nest: {path}[...] is inside another one"
                    )));
                };
                match self.reach(path, scope)? {
                    Reach::Each { array, def, sub: None } if def.kind == AttributeType::Complex => {
                        let element = Scope::Element {
                            at: Json::element(array.depth() + 1),
                            parent: def,
                        };
                        let inner = self.translate(filter, &element)?;
                        Ok(self.exists(&array, Each::Element, inner))
                    }
                    Reach::One { at, def } if def.kind == AttributeType::Complex => {
                        self.translate(filter, &Scope::Element { at, parent: def })
                    }
                    _ => Err(ScimError::invalid_filter(format!(
                        "{path}[...]: a value filter applies to a complex attribute"
                    ))),
                }
            }
        }
    }

    /// The column holding the attribute `def`, if it has one.
    fn column_of(&self, def: &'static Attribute) -> Option<Column> {
        let common = if self.common_columns { COMMON_COLUMNS } else { &[] };
        self.columns.iter().chain(common).copied().find(|column| {
            AttrPath::parse(column.attribute)
                .ok()
                .and_then(|path| self.schema.resolve(&path))
                .is_some_and(|resolved| std::ptr::eq(resolved, def))
        })
    }

    /// Where the values `path` names are stored.
    fn reach(&self, path: &AttrPath, scope: &Scope) -> Result<Reach, ScimError> {
        let unknown = || ScimError::invalid_filter(format!("unknown attribute {path} in filter"));
        match scope {
            Scope::Element { at, parent } => {
                if path.urn.is_some() || path.sub_attr.is_some() {
                    return Err(ScimError::invalid_filter(format!(
                        "{path} inside a value filter of {} must name one of its sub-attributes",
                        parent.name
                    )));
                }
                let def = parent.sub_attribute(&path.attr).ok_or_else(unknown)?;
                Ok(Reach::One {
                    at: at.key(def.name),
                    def,
                })
            }
            Scope::Resource => {
                let def = self.schema.resolve(path).ok_or_else(unknown)?;
                if let Some(column) = self.column_of(def) {
                    return Ok(Reach::Column(column, def.case_exact));
                }
                let top_path = AttrPath {
                    sub_attr: None,
                    ..path.clone()
                };
                let top = self.schema.resolve(&top_path).ok_or_else(unknown)?;
                if COMMON_ATTRIBUTES.iter().any(|common| std::ptr::eq(common, top)) {
                    return Err(ScimError::invalid_filter(format!(
                        "filtering on {path} is not supported"
                    )));
                }
                let mut at = Json::document(self.folded_document);
                if let Some(extension) = path.urn.as_deref().and_then(|urn| self.schema.extension(urn)) {
                    at = at.key(extension.id);
                }
                at = at.key(top.name);
                let sub = path.sub_attr.is_some().then_some(def);
                match (top.multi_valued, sub) {
                    (true, sub) => Ok(Reach::Each {
                        array: at,
                        def: top,
                        sub,
                    }),
                    (false, Some(sub)) => Ok(Reach::One {
                        at: at.key(sub.name),
                        def: sub,
                    }),
                    (false, None) => Ok(Reach::One { at, def: top }),
                }
            }
        }
    }

    /// `path pr`: some value is present (not null, not an empty string;
    /// an object with some present sub-attribute).
    fn present(&self, reach: Reach) -> Result<SimpleExpr, ScimError> {
        Ok(match reach {
            Reach::Column(column, _) => {
                let present = Expr::col(column.name).is_not_null();
                match column.kind {
                    ColumnKind::Text => present.and(Expr::col(column.name).ne("")),
                    ColumnKind::Timestamp => present,
                }
            }
            Reach::One { at, def } => self.present_at(&at, def.kind == AttributeType::Complex),
            Reach::Each { array, def, sub } => {
                let element = Json::element(array.depth() + 1);
                let inner = match sub {
                    Some(sub) => self.present_at(&element.key(sub.name), false),
                    None => self.present_at(&element, def.kind == AttributeType::Complex),
                };
                self.exists(&array, Each::Element, inner)
            }
        })
    }

    fn present_at(&self, at: &Json, object: bool) -> SimpleExpr {
        if object {
            let member = Json::element(at.depth() + 1);
            return self.exists(at, Each::Member, self.present_at(&member, false));
        }
        let text = self.scalar(at);
        text.clone().is_not_null().and(text.ne(""))
    }

    fn compare(
        &self,
        path: &AttrPath,
        scope: &Scope,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<SimpleExpr, ScimError> {
        let reach = self.reach(path, scope)?;
        if *value == CompValue::Null {
            let present = self.present(comparable(reach, path)?)?;
            return match op {
                CompareOp::Eq => Ok(present.not()),
                CompareOp::Ne => Ok(present),
                _ => Err(ScimError::invalid_filter(format!(
                    "{path}: only eq and ne compare with null"
                ))),
            };
        }
        // `ne` holds when no value equals, so an absent attribute is `ne` anything.
        let (positive, negate) = match op {
            CompareOp::Ne => (CompareOp::Eq, true),
            other => (other, false),
        };
        let condition = match comparable(reach, path)? {
            Reach::Column(column, case_exact) => self.compare_column(path, column, case_exact, positive, value)?,
            Reach::One { at, def } => self.compare_json(path, &at, def, positive, value)?,
            Reach::Each { array, sub, def } => {
                let element = Json::element(array.depth() + 1);
                let (at, def) = match sub {
                    Some(sub) => (element.key(sub.name), sub),
                    None => (element, def),
                };
                let inner = self.compare_json(path, &at, def, positive, value)?;
                self.exists(&array, Each::Element, inner)
            }
        };
        Ok(if negate { condition.not() } else { condition })
    }

    fn compare_column(
        &self,
        path: &AttrPath,
        column: Column,
        case_exact: bool,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<SimpleExpr, ScimError> {
        let col = Expr::col(column.name);
        let condition = match column.kind {
            ColumnKind::Timestamp => {
                let at = timestamp(path, value)?;
                let at = match self.backend {
                    DbBackend::Postgres => Expr::val(at),
                    _ => Expr::val(sqlite_instant(at)),
                };
                ordered(path, self.instant_order(col.clone()), op, at)?
            }
            ColumnKind::Text => self.compare_text(path, col.clone(), case_exact, op, value)?,
        };
        Ok(col.is_not_null().and(condition))
    }

    fn compare_json(
        &self,
        path: &AttrPath,
        at: &Json,
        def: &Attribute,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<SimpleExpr, ScimError> {
        let scalar = self.scalar(at);
        let condition = match def.kind {
            AttributeType::Boolean => {
                let expected = boolean(path, op, value)?;
                scalar.clone().eq(self.json_boolean(expected))
            }
            AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
                self.compare_text(path, scalar.clone(), def.case_exact, op, value)?
            }
            AttributeType::DateTime | AttributeType::Decimal | AttributeType::Integer | AttributeType::Complex => {
                return Err(ScimError::invalid_filter(format!(
                    "filtering on the {} attribute {path} is not supported",
                    def.kind.as_str()
                )));
            }
        };
        Ok(scalar.is_not_null().and(condition))
    }

    fn compare_text(
        &self,
        path: &AttrPath,
        lhs: SimpleExpr,
        case_exact: bool,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<SimpleExpr, ScimError> {
        let CompValue::Str(s) = value else {
            return Err(ScimError::invalid_filter(format!(
                "{path} is a string; the filter compares it with {value}"
            )));
        };
        let rhs = if case_exact { s.clone() } else { fold_text(s) };
        let pattern = match op {
            CompareOp::Co => format!("%{}%", escape_like(&rhs)),
            CompareOp::Sw => {
                let like = lhs
                    .clone()
                    .like(LikeExpr::new(format!("{}%", escape_like(&rhs))).escape('\\'));
                return Ok(match self.prefix_range(lhs, &rhs) {
                    Some(range) => range.and(like),
                    None => like,
                });
            }
            CompareOp::Ew => format!("%{}", escape_like(&rhs)),
            // Equality needs no collation, and keeps the column's index usable.
            CompareOp::Eq | CompareOp::Ne => return ordered(path, lhs, op, Expr::val(rhs)),
            _ => return ordered(path, self.code_point_order(lhs), op, Expr::val(rhs)),
        };
        Ok(lhs.like(LikeExpr::new(pattern).escape('\\')))
    }

    /// `text` from `prefix` up to the first string past all that start
    /// with it, in code point order: what `sw` selects, said so that an
    /// index on `text` answers it. SQLite plans `LIKE ?` without reading
    /// the bound pattern (`connect` turns on its planner stability
    /// guarantee), so the `LIKE` alone would read every row of the
    /// directory. `None` for an empty prefix, which every string has.
    fn prefix_range(&self, text: SimpleExpr, prefix: &str) -> Option<SimpleExpr> {
        if prefix.is_empty() {
            return None;
        }
        let text = self.code_point_order(text);
        let from = text.clone().gte(Expr::val(prefix.to_owned()));
        Some(match past_prefix(prefix) {
            Some(end) => from.and(text.lt(Expr::val(end))),
            None => from,
        })
    }

    /// A JSON scalar as an SQL value: text for strings, the backend's
    /// boolean representation for booleans, `NULL` when absent.
    fn scalar(&self, at: &Json) -> SimpleExpr {
        match self.backend {
            DbBackend::Postgres => custom(self.backend, "(? #>> '{}')", vec![self.jsonb(at)]),
            _ => match at.keys.is_empty() {
                true => at.base_expr(),
                false => custom(
                    self.backend,
                    "json_extract(?, ?)",
                    vec![at.base_expr(), Expr::val(sqlite_path(&at.keys))],
                ),
            },
        }
    }

    /// What [`Target::scalar`] yields for a JSON boolean.
    fn json_boolean(&self, value: bool) -> SimpleExpr {
        match self.backend {
            DbBackend::Postgres => Expr::val(if value { "true" } else { "false" }),
            _ => Expr::val(i32::from(value)),
        }
    }

    /// The location as a `jsonb` value (PostgreSQL).
    fn jsonb(&self, at: &Json) -> SimpleExpr {
        at.keys.iter().fold(at.base_expr(), |json, key| {
            custom(self.backend, "(? -> ?)", vec![json, Expr::val(*key)])
        })
    }

    /// `EXISTS` an element of the JSON array at `array` (or, for
    /// [`Each::Member`], a member of the object there) for which `condition`
    /// holds; `condition` reads it as `Json::element(depth + 1)`.
    fn exists(&self, array: &Json, each: Each, condition: SimpleExpr) -> SimpleExpr {
        let alias = element_alias(array.depth() + 1);
        match self.backend {
            DbBackend::Postgres => {
                let (function, kind, empty, columns) = match each {
                    Each::Element => ("jsonb_array_elements", "array", "[]", "value"),
                    Each::Member => ("jsonb_each", "object", "{}", "key, value"),
                };
                let json = self.jsonb(array);
                custom(
                    self.backend,
                    &format!(
                        "EXISTS (SELECT 1 FROM {function}(CASE jsonb_typeof(?) WHEN '{kind}' THEN ? \
                         ELSE '{empty}'::jsonb END) AS {alias}({columns}) WHERE ?)"
                    ),
                    vec![json.clone(), json, condition],
                )
            }
            _ => custom(
                self.backend,
                &format!("EXISTS (SELECT 1 FROM json_each(?, ?) AS {alias} WHERE ?)"),
                vec![array.base_expr(), Expr::val(sqlite_path(&array.keys)), condition],
            ),
        }
    }

    /// The primary element's `sub` (or the primary element itself), else
    /// the first element's.
    fn first_or_primary(&self, array: &Json, sub: Option<&Attribute>) -> SimpleExpr {
        let element = Json::element(array.depth() + 1);
        let alias = element_alias(array.depth() + 1);
        let value = match sub {
            Some(sub) => self.scalar(&element.key(sub.name)),
            None => self.scalar(&element),
        };
        let primary = self.scalar(&element.key("primary"));
        match self.backend {
            DbBackend::Postgres => {
                let json = self.jsonb(array);
                custom(
                    self.backend,
                    &format!(
                        "(SELECT ? FROM jsonb_array_elements(CASE jsonb_typeof(?) WHEN 'array' THEN ? \
                         ELSE '[]'::jsonb END) WITH ORDINALITY AS {alias}(value, n) \
                         ORDER BY COALESCE(? = 'true', FALSE) DESC, {alias}.n LIMIT 1)"
                    ),
                    vec![value, json.clone(), json, primary],
                )
            }
            _ => custom(
                self.backend,
                &format!(
                    "(SELECT ? FROM json_each(?, ?) AS {alias} ORDER BY COALESCE(? = 1, 0) DESC, {alias}.key LIMIT 1)"
                ),
                vec![value, array.base_expr(), Expr::val(sqlite_path(&array.keys)), primary],
            ),
        }
    }

    /// A timestamp column as something that orders by instant. PostgreSQL's
    /// `timestamptz` does. SQLite holds RFC 3339 text in UTC whose fraction
    /// of a second has as many digits as it needs (`…:25Z`, `…:25.25Z`), so
    /// it is compared as a fixed-width key, `YYYY-MM-DDTHH:MM:SS` and nine
    /// digits of nanoseconds, like [`sqlite_instant`] writes.
    fn instant_order(&self, column: SimpleExpr) -> SimpleExpr {
        match self.backend {
            DbBackend::Postgres => column,
            _ => custom(
                self.backend,
                "(substr(?, 1, 19) || CASE WHEN substr(?, 20, 1) = '.' \
                 THEN substr(substr(?, 21, length(?) - 21) || '000000000', 1, 9) ELSE '000000000' END)",
                vec![column; 4],
            ),
        }
    }

    /// Strings compared by code point, as Rust compares them: SQLite's
    /// default; PostgreSQL's `"C"` collation.
    fn code_point_order(&self, text: SimpleExpr) -> SimpleExpr {
        match self.backend {
            DbBackend::Postgres => custom(self.backend, "(? COLLATE \"C\")", vec![text]),
            _ => text,
        }
    }
}

/// What an `EXISTS` over JSON iterates.
#[derive(Debug, Clone, Copy)]
enum Each {
    /// The elements of an array.
    Element,
    /// The members of an object.
    Member,
}

/// What filter paths are relative to.
enum Scope {
    /// The resource.
    Resource,
    /// One value of a complex attribute, inside `parent[...]`.
    Element { at: Json, parent: &'static Attribute },
}

/// Where the values a path names are stored.
enum Reach {
    /// A column, and whether the attribute is caseExact.
    Column(Column, bool),
    /// One JSON value, maybe absent.
    One { at: Json, def: &'static Attribute },
    /// Each element of a multi-valued attribute (`def`), or each element's
    /// sub-attribute `sub`.
    Each {
        array: Json,
        def: &'static Attribute,
        sub: Option<&'static Attribute>,
    },
}

/// A complex value compares through its `value` sub-attribute
/// (`emails co "@example.com"` means `emails.value co ...`).
fn comparable(reach: Reach, path: &AttrPath) -> Result<Reach, ScimError> {
    Ok(match reach {
        Reach::One { at, def } => {
            let at = comparable_one(at, def, path)?;
            Reach::One {
                at,
                def: def
                    .sub_attribute("value")
                    .filter(|_| def.kind == AttributeType::Complex)
                    .unwrap_or(def),
            }
        }
        Reach::Each { array, def, sub: None } if def.kind == AttributeType::Complex => Reach::Each {
            array,
            def,
            sub: Some(def.sub_attribute("value").ok_or_else(|| whole_complex(path))?),
        },
        other => other,
    })
}

fn comparable_one(at: Json, def: &Attribute, path: &AttrPath) -> Result<Json, ScimError> {
    if def.kind != AttributeType::Complex {
        return Ok(at);
    }
    let value = def.sub_attribute("value").ok_or_else(|| whole_complex(path))?;
    Ok(at.key(value.name))
}

fn whole_complex(path: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!("{path} is complex; compare one of its sub-attributes"))
}

/// A place in a JSON document: the document column or an element of an
/// enclosing `EXISTS`, then object keys (schema spellings).
#[derive(Debug, Clone)]
struct Json {
    base: Base,
    keys: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy)]
enum Base {
    Column(&'static str),
    /// The element row of the `EXISTS` at this nesting depth (1-based).
    Element(usize),
}

impl Json {
    fn document(column: &'static str) -> Json {
        Json {
            base: Base::Column(column),
            keys: Vec::new(),
        }
    }

    fn element(depth: usize) -> Json {
        Json {
            base: Base::Element(depth),
            keys: Vec::new(),
        }
    }

    /// The value under `key` of the object here.
    fn key(&self, key: &'static str) -> Json {
        let mut keys = self.keys.clone();
        keys.push(key);
        Json { base: self.base, keys }
    }

    fn depth(&self) -> usize {
        match self.base {
            Base::Column(_) => 0,
            Base::Element(depth) => depth,
        }
    }

    fn base_expr(&self) -> SimpleExpr {
        match self.base {
            Base::Column(name) => Expr::col(name),
            Base::Element(depth) => Expr::cust(format!("{}.value", element_alias(depth))),
        }
    }
}

fn element_alias(depth: usize) -> String {
    format!("scim_e{depth}")
}

/// A SQLite JSON path with every key quoted: `$."urn:...:User"."department"`.
fn sqlite_path(keys: &[&str]) -> String {
    let mut path = String::from("$");
    for key in keys {
        path.push_str(".\"");
        path.push_str(key);
        path.push('"');
    }
    path
}

/// `template` with each `?` replaced by the next of `exprs`, in the
/// backend's placeholder syntax (`?` for SQLite, `$1` for PostgreSQL).
fn custom(backend: DbBackend, template: &str, exprs: Vec<SimpleExpr>) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => {
            let mut numbered = String::with_capacity(template.len() + 8);
            let mut n = 0;
            for c in template.chars() {
                if c == '?' {
                    n += 1;
                    numbered.push_str(&format!("${n}"));
                } else {
                    numbered.push(c);
                }
            }
            Expr::cust_with_exprs(numbered, exprs)
        }
        _ => Expr::cust_with_exprs(template.to_owned(), exprs),
    }
}

fn boolean(path: &AttrPath, op: CompareOp, value: &CompValue) -> Result<bool, ScimError> {
    if op != CompareOp::Eq {
        return Err(ScimError::invalid_filter(format!(
            "{path} is a boolean: only eq, ne and pr apply"
        )));
    }
    value
        .as_bool()
        .ok_or_else(|| ScimError::invalid_filter(format!("{path} is a boolean; the filter compares it with {value}")))
}

fn timestamp(path: &AttrPath, value: &CompValue) -> Result<OffsetDateTime, ScimError> {
    let CompValue::Str(s) = value else {
        return Err(ScimError::invalid_filter(format!(
            "{path} is a dateTime; the filter compares it with {value}"
        )));
    };
    let at = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        ScimError::invalid_filter(format!("{path} compares with {s:?}, which is not an RFC 3339 dateTime"))
    })?;
    // Stored times are UTC; SQLite compares them as text, so the instant
    // must be written the same way.
    Ok(at.to_offset(UtcOffset::UTC))
}

/// An instant as the key [`Target::instant_order`] compares on SQLite.
fn sqlite_instant(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{:09}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond()
    )
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

/// The least string after every string that starts with `prefix`, in code
/// point order: `prefix` up to its last character that has a successor,
/// with that character replaced by its successor. `None` when there is no
/// such string (every character is U+10FFFF).
fn past_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // At most the 2,048 surrogates, which are not characters, to skip.
        if let Some(next) = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use scim::schema::USER_RESOURCE;
    use sea_orm::DbBackend;

    use super::{Column, ColumnKind, Target, past_prefix};

    const USER_NAME: Column = Column {
        attribute: "userName",
        name: "user_name_folded",
        kind: ColumnKind::Text,
    };

    #[test]
    fn only_one_string_equality_on_a_column_names_the_column_and_its_stored_value() {
        let users = Target {
            backend: DbBackend::Sqlite,
            schema: &USER_RESOURCE,
            folded_document: "resource_folded",
            columns: &[USER_NAME],
            common_columns: true,
        };
        let equality = |filter: &str| {
            let filter = scim::filter::parse(filter).expect("a filter");
            users
                .column_equality(&filter)
                .map(|(column, value)| (column.name, value))
        };
        let folded = Some(("user_name_folded", "émile@example.com".to_owned()));
        assert_eq!(equality(r#"userName eq "Émile@Example.com""#), folded);
        assert_eq!(equality(r#"USERNAME eq "ÉMILE@EXAMPLE.COM""#), folded);
        assert_eq!(
            equality(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "Émile@Example.com""#),
            folded
        );
        assert_eq!(
            equality(r#"externalId eq "Ext-1""#),
            Some(("external_id", "Ext-1".to_owned())),
            "externalId is caseExact: kept as sent"
        );

        for other in [
            r#"userName ne "a""#,
            r#"userName sw "a""#,
            "userName eq null",
            "userName pr",
            r#"userName eq "a" and userName pr"#,
            r#"not (userName eq "a")"#,
            r#"displayName eq "a""#,
            r#"emails.value eq "a@example.com""#,
            r#"emails[type eq "work"].value eq "a@example.com""#,
            r#"meta.created eq "2026-01-01T00:00:00Z""#,
        ] {
            assert_eq!(equality(other), None, "{other}");
        }
    }

    #[test]
    fn past_a_prefix_is_its_last_character_that_has_a_successor_moved_on_by_one() {
        assert_eq!(past_prefix("ann").as_deref(), Some("ano"));
        assert_eq!(past_prefix("zé").as_deref(), Some("zê"));
        assert_eq!(past_prefix("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(
            past_prefix("\u{D7FF}").as_deref(),
            Some("\u{E000}"),
            "surrogates are skipped"
        );
        assert_eq!(past_prefix("\u{10FFFF}"), None);
    }
}
