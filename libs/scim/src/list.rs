//! List queries (RFC 7644 §3.4.2): the query parameters of a GET on a
//! resource endpoint, and the ListResponse that answers it.

use serde_json::{Value, json};

use crate::error::{ScimError, ScimType};
use crate::path::AttrPath;
use crate::schema::{Attribute, AttributeType, ResourceSchema, Returned};

/// The schema URN of a ListResponse.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The page size when the client names none.
pub const DEFAULT_COUNT: u32 = 100;
/// The largest page served; larger requests are cut down to it.
pub const MAX_COUNT: u32 = 1000;

/// The query parameters of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The filter text, unparsed; `None` when absent or blank.
    pub filter: Option<String>,
    /// The 1-based index of the first result.
    pub start_index: u64,
    /// How many results to return at most.
    pub count: u32,
    /// `attributes`, comma-separated; see [`crate::attributes::Projection`].
    pub attributes: Option<String>,
    /// `excludedAttributes`, comma-separated.
    pub excluded_attributes: Option<String>,
    /// `sortBy`: an attribute path; see [`SortSpec::parse`].
    pub sort_by: Option<String>,
    /// `sortOrder`; see [`ListQuery::descending`] and [`SortSpec::parse`].
    pub sort_order: Option<String>,
    /// `cursor` (RFC 9865): `Some("")` asks for the first page of a cursor
    /// walk, `Some(text)` for the page a `nextCursor` or `previousCursor`
    /// named (see [`Cursor::parse`]); `None` pages by `startIndex`.
    pub cursor: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            filter: None,
            start_index: 1,
            count: DEFAULT_COUNT,
            attributes: None,
            excluded_attributes: None,
            sort_by: None,
            sort_order: None,
            cursor: None,
        }
    }
}

impl ListQuery {
    /// Reads the query from raw (already URL-decoded) query pairs; names
    /// match in any case and a repeated parameter's last value wins.
    ///
    /// `startIndex` below 1 means 1 (RFC 7644 §3.4.2.4); `count` below 0
    /// means 0 and above [`MAX_COUNT`] means [`MAX_COUNT`]; either one not an
    /// integer is 400 `invalidValue`. Any parameter the RFC does not define
    /// for a list request is 400 `invalidValue`, so that a misspelt one is
    /// not silently ignored, except the IdPs' own that
    /// [`crate::dialect`] lists. `cursor` and `startIndex` are two ways to
    /// page, so both at once is 400 `invalidValue` (RFC 9865 §2).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ListQuery, ScimError> {
        let mut query = ListQuery::default();
        let text = |value: &str| Some(value.to_owned()).filter(|v| !v.trim().is_empty());
        let mut start_index_given = false;
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "filter" => query.filter = text(value),
                "startindex" => {
                    let n = integer("startIndex", value)?;
                    query.start_index = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
                    start_index_given = true;
                }
                "cursor" => query.cursor = Some(value.trim().to_owned()),
                "count" => {
                    let n = integer("count", value)?;
                    query.count = u32::try_from(n.clamp(0, i128::from(MAX_COUNT))).unwrap_or(MAX_COUNT);
                }
                "attributes" => query.attributes = text(value),
                "excludedattributes" => query.excluded_attributes = text(value),
                "sortby" => query.sort_by = text(value),
                "sortorder" => query.sort_order = text(value),
                _ if crate::dialect::ignores_query_parameter(name) => {}
                _ => return Err(ScimError::invalid_value(format!("unsupported query parameter {name}"))),
            }
        }
        if start_index_given && query.cursor.is_some() {
            return Err(ScimError::invalid_value(
                "startIndex and cursor are two ways to page; send one of them",
            ));
        }
        Ok(query)
    }
}

/// Where a cursor walk (RFC 9865) resumes. Pages are in id order (ids are
/// UUIDv7, so creation order), and a cursor names the id a page ends or
/// begins at rather than a position: a resource created or deleted during
/// the walk shifts no other, so none is skipped or seen twice, and a
/// resource created behind the walk is simply not met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The first page.
    Start,
    /// The page after the resource with this id (`nextCursor`).
    After(String),
    /// The page before the resource with this id (`previousCursor`).
    Before(String),
}

/// The longest id a cursor may carry.
const MAX_CURSOR_ID_LEN: usize = 64;

impl Cursor {
    /// Reads a `cursor` parameter: empty for [`Cursor::Start`], else what
    /// [`Cursor::encode`] wrote; anything else is 400 `invalidCursor`.
    pub fn parse(text: &str) -> Result<Cursor, ScimError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Cursor::Start);
        }
        let invalid = || {
            ScimError::bad_request(
                ScimType::InvalidCursor,
                format!("{text:?} is not a cursor this server issued"),
            )
        };
        let (direction, id) = text.split_once('.').ok_or_else(invalid)?;
        let well_formed = !id.is_empty()
            && id.len() <= MAX_CURSOR_ID_LEN
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !well_formed {
            return Err(invalid());
        }
        match direction {
            "n" => Ok(Cursor::After(id.to_owned())),
            "p" => Ok(Cursor::Before(id.to_owned())),
            _ => Err(invalid()),
        }
    }

    /// The cursor as the text clients send back.
    pub fn encode(&self) -> String {
        match self {
            Cursor::Start => String::new(),
            Cursor::After(id) => format!("n.{id}"),
            Cursor::Before(id) => format!("p.{id}"),
        }
    }
}

/// A ListResponse of a cursor walk (RFC 9865 §2.2): no `startIndex`,
/// `nextCursor` when there is a next page, `previousCursor` when there is
/// a previous one.
pub fn cursor_list_response(
    resources: Vec<Value>,
    total_results: u64,
    next_cursor: Option<String>,
    previous_cursor: Option<String>,
) -> Value {
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "itemsPerPage": resources.len(),
    });
    if let Some(next) = next_cursor {
        body["nextCursor"] = Value::from(next);
    }
    if let Some(previous) = previous_cursor {
        body["previousCursor"] = Value::from(previous);
    }
    body["Resources"] = Value::Array(resources);
    body
}

/// The part of one page that the next resource type of a list spanning
/// several (the directory-wide `.search`, RFC 7644 §3.4.3) answers, as its
/// own 1-based start index and count: the page starts at `start_index` and
/// holds `count` resources over all types, the earlier types hold
/// `total_before` resources, and `shown` of those are on the page already.
///
/// The types' resources follow each other: the page reaches into the next
/// type from its first resource once the earlier ones are shown, or from
/// further in when the page starts past all of them.
///
/// An earlier type that showed fewer of its resources than the page had
/// room for ended its part early (a service ends a page of large documents
/// at its byte budget): the page ends there too, so that the next one,
/// from `startIndex` plus the resources shown, misses none; the next type
/// is asked for its total only.
pub fn window_in_next_type(start_index: u64, count: u32, total_before: u64, shown: usize) -> (u64, u32) {
    let start = start_index.saturating_sub(total_before).max(1);
    let shown = u32::try_from(shown).unwrap_or(u32::MAX);
    let left_before = total_before.saturating_sub(start_index.max(1) - 1);
    let room_before = u32::try_from(left_before).unwrap_or(u32::MAX).min(count);
    let count = if shown < room_before {
        0
    } else {
        count.saturating_sub(shown)
    };
    (start, count)
}

/// The schema URN of a SearchRequest, the body of `POST .search`.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

impl ListQuery {
    /// Reads the body of `POST /.search` (RFC 7644 §3.4.3) with the same
    /// rules as [`ListQuery::from_pairs`]: `attributes` and
    /// `excludedAttributes` as arrays of names (or one comma-separated
    /// string), `startIndex` and `count` as numbers (or numeric strings).
    ///
    /// A body that is not a JSON object is 400 `invalidSyntax`. A member of
    /// the wrong type, a member the RFC does not define (named in the
    /// error) and a missing or wrong `schemas` (RFC 7644 §3.4.3 requires it
    /// to name [`SEARCH_REQUEST_SCHEMA`]; any case) are 400 `invalidValue`,
    /// the members being checked first so that the error names the
    /// misspelt one rather than the missing `schemas`.
    pub fn from_search_request(body: &Value) -> Result<ListQuery, ScimError> {
        let Value::Object(members) = body else {
            return Err(ScimError::invalid_syntax("a SearchRequest must be a JSON object"));
        };
        let mut names_search = false;
        let mut pairs = Vec::new();
        for (name, value) in members {
            let wrong = |expected: &str| ScimError::invalid_value(format!("SearchRequest {name} must be {expected}"));
            match name.to_ascii_lowercase().as_str() {
                "schemas" => {
                    names_search = value.as_array().is_some_and(|ids| {
                        ids.iter().any(|id| {
                            id.as_str()
                                .is_some_and(|id| id.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA))
                        })
                    });
                }
                "attributes" | "excludedattributes" => {
                    let list = match value {
                        Value::String(list) => list.clone(),
                        Value::Array(items) => items
                            .iter()
                            .map(|item| item.as_str().ok_or_else(|| wrong("an array of attribute names")))
                            .collect::<Result<Vec<_>, _>>()?
                            .join(","),
                        Value::Null => continue,
                        _ => return Err(wrong("an array of attribute names")),
                    };
                    pairs.push((name.as_str(), list));
                }
                "filter" | "sortby" | "sortorder" | "cursor" => match value {
                    Value::String(text) => pairs.push((name.as_str(), text.clone())),
                    Value::Null => {}
                    _ => return Err(wrong("a string")),
                },
                "startindex" | "count" => match value {
                    Value::Number(n) => pairs.push((name.as_str(), n.to_string())),
                    Value::String(text) => pairs.push((name.as_str(), text.clone())),
                    Value::Null => {}
                    _ => return Err(wrong("an integer")),
                },
                _ => {
                    return Err(ScimError::invalid_value(format!("SearchRequest has no member {name}")));
                }
            }
        }
        if !names_search {
            return Err(ScimError::invalid_value(format!(
                "a SearchRequest must have \"schemas\": [\"{SEARCH_REQUEST_SCHEMA}\"]"
            )));
        }
        ListQuery::from_pairs(pairs.iter().map(|(name, value)| (*name, value.as_str())))
    }

    /// Whether `sortOrder` asks for descending order: `ascending` (the
    /// default) or `descending`, in any case; anything else is 400
    /// `invalidValue`.
    pub fn descending(&self) -> Result<bool, ScimError> {
        descending(self.sort_order.as_deref())
    }
}

/// `sortBy` and `sortOrder` (RFC 7644 §3.4.2.3), checked against a resource
/// type's schema.
///
/// [`ListQuery`] keeps both as text, so that reading the query needs no
/// schema; `SortSpec::parse` is the schema-aware step. What it accepts:
///
/// - a single-valued attribute that is not complex (`userName`,
///   `meta.lastModified`, `name.familyName`, an extension attribute by its
///   URN-qualified name);
/// - a sub-attribute of a multi-valued complex attribute (`emails.value`),
///   or such an attribute by itself, which means its `value`
///   (`emails` sorts as `emails.value`); each resource then sorts by its
///   primary value, or else by its first (RFC 7644 §3.4.2.3);
/// - names in any case, resolved to their schema spelling.
///
/// Everything else is 400 `invalidValue`: an unknown attribute (unlike
/// `attributes`, where unknown names are ignored, a sort key that cannot be
/// honoured would silently return an unsorted page), a complex attribute
/// without a sub-attribute to compare (`name`), and an attribute that is
/// never returned (`password`), whose order would leak its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortSpec {
    /// The attribute sorted by, in its schema spelling; URN-qualified for an
    /// extension attribute, and with `.value` added when the client named a
    /// multi-valued complex attribute alone.
    pub path: AttrPath,
    /// The definition of the values compared (for `emails.value`, that of
    /// `value`): its type and `caseExact` say how to compare them.
    pub attribute: &'static Attribute,
    /// Whether a resource can have several values of `path`, so that it
    /// sorts by its primary one, or else its first.
    pub multi_valued: bool,
    /// `sortOrder=descending`.
    pub descending: bool,
}

impl SortSpec {
    /// Checks `sortBy` and `sortOrder` as [`ListQuery`] holds them: `None`
    /// when there is no `sortBy` (a `sortOrder` alone is still checked, so a
    /// misspelt one is not silently ignored).
    pub fn parse(
        sort_by: Option<&str>,
        sort_order: Option<&str>,
        schema: &ResourceSchema,
    ) -> Result<Option<SortSpec>, ScimError> {
        let descending = descending(sort_order)?;
        let Some(text) = sort_by.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(None);
        };
        let unsortable = |why: &str| ScimError::invalid_value(format!("cannot sort by {text}: {why}"));
        let path = AttrPath::parse(text).map_err(|err| unsortable(&err.detail))?;
        let extension = match path.urn.as_deref() {
            Some(urn) if !urn.eq_ignore_ascii_case(schema.core.id) => Some(
                schema
                    .extension(urn)
                    .ok_or_else(|| unsortable(&format!("{} has no schema {urn}", schema.name)))?,
            ),
            _ => None,
        };
        let top_path = AttrPath {
            sub_attr: None,
            ..path.clone()
        };
        let top = schema
            .resolve(&top_path)
            .ok_or_else(|| unsortable(&format!("{} has no attribute {}", schema.name, path.attr)))?;
        let sub = match (path.sub_attr.as_deref(), top.kind) {
            (Some(name), _) => Some(
                top.sub_attribute(name)
                    .ok_or_else(|| unsortable(&format!("{} has no sub-attribute {name}", top.name)))?,
            ),
            (None, AttributeType::Complex) if top.multi_valued => Some(
                top.sub_attribute("value")
                    .ok_or_else(|| unsortable("it is complex; name one of its sub-attributes"))?,
            ),
            (None, AttributeType::Complex) => return Err(unsortable("it is complex; name one of its sub-attributes")),
            (None, _) => None,
        };
        let attribute = sub.unwrap_or(top);
        if [top, attribute].iter().any(|def| def.returned == Returned::Never) {
            return Err(unsortable("it is never returned"));
        }
        Ok(Some(SortSpec {
            path: AttrPath {
                urn: extension.map(|ext| ext.id.to_owned()),
                attr: top.name.to_owned(),
                sub_attr: sub.map(|sub| sub.name.to_owned()),
            },
            attribute,
            multi_valued: top.multi_valued,
            descending,
        }))
    }
}

/// Reads `sortOrder`; see [`ListQuery::descending`].
fn descending(sort_order: Option<&str>) -> Result<bool, ScimError> {
    match sort_order.map(|order| order.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(order) if order == "ascending" => Ok(false),
        Some(order) if order == "descending" => Ok(true),
        Some(order) => Err(ScimError::invalid_value(format!(
            "sortOrder must be ascending or descending, not {order:?}"
        ))),
    }
}

/// A decimal integer, saturating far outside the ranges that matter.
fn integer(name: &str, value: &str) -> Result<i128, ScimError> {
    let not_integer = || ScimError::invalid_value(format!("{name} must be an integer, not {value:?}"));
    let trimmed = value.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_integer());
    }
    let magnitude = digits.bytes().fold(0_i128, |acc, b| {
        acc.saturating_mul(10).saturating_add(i128::from(b - b'0'))
    });
    Ok(if negative { -magnitude } else { magnitude })
}

/// A ListResponse: `totalResults` is the number of matches, `itemsPerPage`
/// the number in this page, `startIndex` the 1-based index of the first.
pub fn list_response(resources: Vec<Value>, total_results: u64, start_index: u64) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total_results,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_spanning_two_types_continues_where_the_first_ends() {
        // 3 users then groups; a page of 5 from the 2nd resource: users 2-3, groups 1-3.
        assert_eq!(window_in_next_type(2, 5, 3, 2), (1, 3));
        // A page starting past every user starts inside the groups.
        assert_eq!(window_in_next_type(6, 5, 3, 0), (3, 5));
        // A page the users fill asks the groups for their total only.
        assert_eq!(window_in_next_type(1, 2, 10, 2), (1, 0));
        // Users that ended their part early (3 shown of 10 with room for
        // 10) end the page: the groups give their total only.
        assert_eq!(window_in_next_type(1, 10, 100, 3), (1, 0));
        assert_eq!(window_in_next_type(95, 10, 100, 3), (1, 0));
        assert_eq!(window_in_next_type(95, 10, 100, 6), (1, 4));
    }
    use crate::schema::{ENTERPRISE_USER_SCHEMA_ID, GROUP_RESOURCE, USER_RESOURCE, USER_SCHEMA_ID};

    fn query(pairs: &[(&str, &str)]) -> Result<ListQuery, ScimError> {
        ListQuery::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn no_parameters_means_first_page_of_default_size() {
        assert_eq!(query(&[]), Ok(ListQuery::default()));
        assert_eq!(ListQuery::default().start_index, 1);
        assert_eq!(ListQuery::default().count, DEFAULT_COUNT);
    }

    #[test]
    fn okta_user_lookup_by_filter() {
        let q = query(&[
            ("filter", r#"userName eq "dade.murphy@example.com""#),
            ("startIndex", "1"),
            ("count", "100"),
        ]);
        assert_eq!(
            q.map(|q| (q.filter, q.start_index, q.count)),
            Ok((Some(r#"userName eq "dade.murphy@example.com""#.to_owned()), 1, 100))
        );
    }

    #[test]
    fn parameter_names_ignore_case() {
        let q = query(&[("FILTER", "title pr"), ("STARTINDEX", "5"), ("Count", "7")]).expect("valid");
        assert_eq!((q.filter.as_deref(), q.start_index, q.count), (Some("title pr"), 5, 7));
    }

    #[test]
    fn start_index_below_one_means_one() {
        assert_eq!(query(&[("startIndex", "0")]).map(|q| q.start_index), Ok(1));
        assert_eq!(query(&[("startIndex", "-20")]).map(|q| q.start_index), Ok(1));
        let huge = query(&[("startIndex", "99999999999999999999999999999999999999999")]);
        assert_eq!(huge.map(|q| q.start_index), Ok(u64::MAX));
    }

    #[test]
    fn count_is_clamped() {
        assert_eq!(query(&[("count", "-1")]).map(|q| q.count), Ok(0));
        assert_eq!(query(&[("count", "0")]).map(|q| q.count), Ok(0));
        assert_eq!(query(&[("count", "5000")]).map(|q| q.count), Ok(MAX_COUNT));
        assert_eq!(query(&[("count", "+10")]).map(|q| q.count), Ok(10));
    }

    #[test]
    fn non_integer_paging_is_invalid_value_naming_the_parameter() {
        for (name, value) in [
            ("count", "ten"),
            ("count", "1.5"),
            ("startIndex", ""),
            ("startIndex", "-"),
            ("count", "1e3"),
        ] {
            let err = query(&[(name, value)]).expect_err(value);
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
            assert!(err.detail.starts_with(name), "{}", err.detail);
        }
    }

    #[test]
    fn blank_filter_is_no_filter() {
        assert_eq!(query(&[("filter", "")]).map(|q| q.filter), Ok(None));
        assert_eq!(query(&[("filter", "  ")]).map(|q| q.filter), Ok(None));
    }

    #[test]
    fn projection_and_sorting_parameters_are_kept() {
        let q = query(&[
            ("attributes", "userName,emails"),
            ("excludedAttributes", "groups"),
            ("sortBy", "userName"),
            ("sortOrder", "descending"),
        ])
        .expect("valid");
        assert_eq!(q.attributes.as_deref(), Some("userName,emails"));
        assert_eq!(q.excluded_attributes.as_deref(), Some("groups"));
        assert_eq!(q.sort_by.as_deref(), Some("userName"));
        assert_eq!(q.sort_order.as_deref(), Some("descending"));
    }

    #[test]
    fn unknown_parameter_is_rejected() {
        let err = query(&[("filter", "title pr"), ("page", "2")]).expect_err("unknown");
        assert_eq!(err.detail, "unsupported query parameter page");
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn the_entra_feature_flag_is_ignored_and_the_rest_still_checked() {
        let q = query(&[("aadOptscim062020", "true"), ("filter", "userName pr"), ("count", "5")]).expect("valid");
        assert_eq!((q.filter.as_deref(), q.count), (Some("userName pr"), 5));
        let err = query(&[("aadOptscim062020", ""), ("count", "five")]).expect_err("count is still checked");
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        let err = query(&[("aadOptscim062020", ""), ("pages", "2")]).expect_err("unknown");
        assert_eq!(err.detail, "unsupported query parameter pages");
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_invalid_cursor() {
        assert_eq!(Cursor::parse(""), Ok(Cursor::Start));
        for cursor in [
            Cursor::After("0196d5c2-7a1b-7c3d-8e4f-0123456789ab".to_owned()),
            Cursor::Before("g1".to_owned()),
        ] {
            assert_eq!(Cursor::parse(&cursor.encode()), Ok(cursor));
        }
        let long = format!("n.{}", "a".repeat(65));
        for bad in ["x", "n.", "q.abc", "n.a'b", "n.a b", long.as_str()] {
            let err = Cursor::parse(bad).expect_err(bad);
            assert_eq!(
                (err.status, err.scim_type),
                (400, Some(ScimType::InvalidCursor)),
                "{bad}"
            );
        }
    }

    #[test]
    fn cursor_and_start_index_do_not_mix() {
        let q = query(&[("cursor", ""), ("count", "2")]).expect("valid");
        assert_eq!((q.cursor.as_deref(), q.count), (Some(""), 2));
        let err = query(&[("cursor", "n.x"), ("startIndex", "1")]).expect_err("both");
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        let search = json!({"schemas": [SEARCH_REQUEST_SCHEMA], "cursor": "n.abc", "count": 5});
        let q = ListQuery::from_search_request(&search).expect("valid");
        assert_eq!(q.cursor.as_deref(), Some("n.abc"));
    }

    #[test]
    fn a_cursor_page_has_cursors_and_no_start_index() {
        let body = cursor_list_response(vec![json!({"id": "1"})], 3, Some("n.1".to_owned()), None);
        assert_eq!(
            body,
            json!({
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": 3,
                "itemsPerPage": 1,
                "nextCursor": "n.1",
                "Resources": [{"id": "1"}],
            })
        );
    }

    #[test]
    fn list_response_uses_integers() {
        let body = list_response(vec![json!({"id": "1"}), json!({"id": "2"})], 10, 3);
        assert_eq!(
            body,
            json!({
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": 10,
                "itemsPerPage": 2,
                "startIndex": 3,
                "Resources": [{"id": "1"}, {"id": "2"}],
            })
        );
    }

    #[test]
    fn empty_list_response_still_has_resources() {
        let body = list_response(Vec::new(), 0, 1);
        assert_eq!(body["Resources"], json!([]));
        assert_eq!(body["itemsPerPage"], json!(0));
    }

    #[test]
    fn search_request_reads_like_query_parameters() {
        let body = serde_json::json!({
            "schemas": [SEARCH_REQUEST_SCHEMA],
            "attributes": ["userName", "emails.value"],
            "excludedAttributes": "meta",
            "filter": "userName sw \"b\"",
            "sortBy": "name.familyName",
            "sortOrder": "Descending",
            "startIndex": 3,
            "count": "5000"
        });
        let query = ListQuery::from_search_request(&body).expect("valid");
        assert_eq!(query.attributes.as_deref(), Some("userName,emails.value"));
        assert_eq!(query.excluded_attributes.as_deref(), Some("meta"));
        assert_eq!(query.filter.as_deref(), Some("userName sw \"b\""));
        assert_eq!(query.sort_by.as_deref(), Some("name.familyName"));
        assert_eq!(query.descending(), Ok(true));
        assert_eq!((query.start_index, query.count), (3, MAX_COUNT));
        assert_eq!(
            ListQuery::from_search_request(&serde_json::json!({"schemas": [SEARCH_REQUEST_SCHEMA]})),
            Ok(ListQuery::default())
        );
    }

    #[test]
    fn search_request_paging_is_clamped_like_query_parameters() {
        let search = |members: Value| {
            let mut body = json!({"Schemas": [SEARCH_REQUEST_SCHEMA.to_lowercase()]});
            if let (Some(body), Value::Object(members)) = (body.as_object_mut(), members) {
                body.extend(members);
            }
            ListQuery::from_search_request(&body).expect("valid")
        };
        let q = search(json!({"startIndex": -4, "count": -1, "filter": null, "attributes": null}));
        assert_eq!((q.start_index, q.count, q.filter, q.attributes), (1, 0, None, None));
        let q = search(json!({"startIndex": "7", "count": 20, "filter": "  "}));
        assert_eq!((q.start_index, q.count, q.filter), (7, 20, None));
        let q = search(json!({"startIndex": u64::MAX, "count": u64::MAX}));
        assert_eq!((q.start_index, q.count), (u64::MAX, MAX_COUNT));
    }

    #[test]
    fn malformed_search_requests_are_rejected() {
        let invalid = |body: serde_json::Value, scim_type: ScimType| {
            let err = ListQuery::from_search_request(&body).expect_err("invalid");
            assert_eq!(err.scim_type, Some(scim_type), "{body}: {err:?}");
        };
        invalid(serde_json::json!([]), ScimType::InvalidSyntax);
        invalid(serde_json::json!("filter=userName pr"), ScimType::InvalidSyntax);
        invalid(serde_json::json!({}), ScimType::InvalidValue);
        invalid(serde_json::json!({"filter": "userName pr"}), ScimType::InvalidValue);
        invalid(serde_json::json!({"schemas": ["urn:other"]}), ScimType::InvalidValue);
        invalid(
            serde_json::json!({"schemas": SEARCH_REQUEST_SCHEMA}),
            ScimType::InvalidValue,
        );
        let schemas = json!([SEARCH_REQUEST_SCHEMA]);
        for (member, value) in [
            ("count", json!(true)),
            ("count", json!(2.5)),
            ("startIndex", json!("one")),
            ("startIndex", json!([1])),
            ("attributes", json!([1])),
            ("excludedAttributes", json!({"name": true})),
            ("filter", json!(["userName pr"])),
            ("sortBy", json!(1)),
            ("sortOrder", json!(false)),
        ] {
            invalid(json!({"schemas": schemas, member: value}), ScimType::InvalidValue);
        }
        for body in [
            json!({"schemas": schemas, "filters": "userName pr"}),
            json!({"filters": "userName pr"}),
        ] {
            let err = ListQuery::from_search_request(&body).expect_err("unknown member");
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
            assert!(err.detail.contains("filters"), "{}", err.detail);
        }
    }

    #[test]
    fn sort_order_is_ascending_or_descending() {
        let order = |value: &str| query(&[("sortOrder", value)]).expect("valid").descending();
        assert_eq!(order("ascending"), Ok(false));
        assert_eq!(order("DESCENDING"), Ok(true));
        assert_eq!(ListQuery::default().descending(), Ok(false));
        assert_eq!(order("up").map_err(|e| e.scim_type), Err(Some(ScimType::InvalidValue)));
    }

    fn sort(sort_by: &str, sort_order: Option<&str>) -> Result<Option<SortSpec>, ScimError> {
        SortSpec::parse(Some(sort_by), sort_order, &USER_RESOURCE)
    }

    #[test]
    fn sort_by_resolves_to_the_schema_spelling_ascending_by_default() {
        let spec = sort("USERNAME", None).expect("valid").expect("a sort");
        assert_eq!(spec.path.to_string(), "userName");
        assert_eq!(spec.attribute.name, "userName");
        assert!(!spec.attribute.case_exact, "userName compares ignoring case");
        assert!(!spec.multi_valued && !spec.descending);
        let spec = sort("name.FAMILYNAME", Some("Descending"))
            .expect("valid")
            .expect("a sort");
        assert_eq!(spec.path.to_string(), "name.familyName");
        assert!(spec.descending);
        let spec = sort("meta.lastmodified", None).expect("valid").expect("a sort");
        assert_eq!(spec.attribute.kind, AttributeType::DateTime);
        let spec = sort(&format!("{USER_SCHEMA_ID}:id"), None)
            .expect("valid")
            .expect("a sort");
        assert_eq!(spec.path.to_string(), "id");
    }

    #[test]
    fn sort_by_an_extension_attribute_needs_its_urn() {
        let path = format!("{}:Department", ENTERPRISE_USER_SCHEMA_ID.to_lowercase());
        let spec = sort(&path, None).expect("valid").expect("a sort");
        assert_eq!(spec.path.to_string(), format!("{ENTERPRISE_USER_SCHEMA_ID}:department"));
        let path = format!("{ENTERPRISE_USER_SCHEMA_ID}:manager.value");
        assert_eq!(
            sort(&path, None).expect("valid").expect("a sort").path.to_string(),
            path
        );
        let err = sort("department", None).expect_err("core has no department");
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn sort_by_a_multi_valued_attribute_sorts_by_its_primary_or_first_value() {
        let spec = sort("emails.value", None).expect("valid").expect("a sort");
        assert!(spec.multi_valued);
        assert_eq!(spec.attribute.name, "value");
        let whole = sort("Emails", None).expect("valid").expect("a sort");
        assert_eq!(whole.path.to_string(), "emails.value");
        assert_eq!(whole, spec);
        assert!(sort("emails.type", None).expect("valid").expect("a sort").multi_valued);
    }

    #[test]
    fn sort_by_what_cannot_be_sorted_is_invalid_value() {
        for sort_by in [
            "shoeSize",
            "name",
            "meta",
            "name.nickname",
            "userName.value",
            "password",
            "emails[type eq \"work\"].value",
            "urn:example:other:1.0:User:x",
            "1st",
        ] {
            let err = sort(sort_by, None).expect_err(sort_by);
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{sort_by}");
            assert!(err.detail.contains(sort_by), "{}", err.detail);
        }
        let err = SortSpec::parse(Some("members.value"), None, &GROUP_RESOURCE);
        assert_eq!(err.map(|s| s.map(|s| s.multi_valued)), Ok(Some(true)));
        assert!(sort("members", None).is_err(), "a User has no members");
    }

    #[test]
    fn sort_order_is_checked_with_or_without_sort_by() {
        assert_eq!(SortSpec::parse(None, None, &USER_RESOURCE), Ok(None));
        assert_eq!(SortSpec::parse(Some(" "), Some("ascending"), &USER_RESOURCE), Ok(None));
        for order in ["up", "asc", ""] {
            let err = SortSpec::parse(None, Some(order), &USER_RESOURCE).expect_err(order);
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
            assert!(sort("userName", Some(order)).is_err(), "{order}");
        }
    }
}
