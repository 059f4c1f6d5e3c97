//! List queries (RFC 7644 §3.4.2): the query parameters of a GET on a
//! resource endpoint, and the ListResponse that answers it.

use serde_json::{Value, json};

use crate::error::ScimError;

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
    /// `sortBy`: an attribute path, checked by the service that sorts.
    pub sort_by: Option<String>,
    /// `sortOrder`; see [`ListQuery::descending`].
    pub sort_order: Option<String>,
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
    /// not silently ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ListQuery, ScimError> {
        let mut query = ListQuery::default();
        let text = |value: &str| Some(value.to_owned()).filter(|v| !v.trim().is_empty());
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "filter" => query.filter = text(value),
                "startindex" => {
                    let n = integer("startIndex", value)?;
                    query.start_index = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
                }
                "count" => {
                    let n = integer("count", value)?;
                    query.count = u32::try_from(n.clamp(0, i128::from(MAX_COUNT))).unwrap_or(MAX_COUNT);
                }
                "attributes" => query.attributes = text(value),
                "excludedattributes" => query.excluded_attributes = text(value),
                "sortby" => query.sort_by = text(value),
                "sortorder" => query.sort_order = text(value),
                _ => return Err(ScimError::invalid_value(format!("unsupported query parameter {name}"))),
            }
        }
        Ok(query)
    }
}

/// The schema URN of a SearchRequest, the body of `POST .search`.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

impl ListQuery {
    /// Reads the body of `POST /.search` (RFC 7644 §3.4.3) with the same
    /// rules as [`ListQuery::from_pairs`]: `attributes` and
    /// `excludedAttributes` as arrays of names (or one comma-separated
    /// string), `startIndex` and `count` as numbers (or numeric strings).
    /// `schemas`, when present, must name [`SEARCH_REQUEST_SCHEMA`]; any
    /// other member is 400 `invalidValue`.
    pub fn from_search_request(body: &Value) -> Result<ListQuery, ScimError> {
        let Value::Object(members) = body else {
            return Err(ScimError::invalid_syntax("a SearchRequest must be a JSON object"));
        };
        let mut pairs = Vec::new();
        for (name, value) in members {
            let wrong = |expected: &str| ScimError::invalid_value(format!("SearchRequest {name} must be {expected}"));
            match name.to_ascii_lowercase().as_str() {
                "schemas" => {
                    let names_search = value
                        .as_array()
                        .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(SEARCH_REQUEST_SCHEMA)));
                    if !names_search {
                        return Err(ScimError::invalid_value(format!(
                            "SearchRequest schemas must be [\"{SEARCH_REQUEST_SCHEMA}\"]"
                        )));
                    }
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
                "filter" | "sortby" | "sortorder" => match value {
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
        ListQuery::from_pairs(pairs.iter().map(|(name, value)| (*name, value.as_str())))
    }

    /// Whether `sortOrder` asks for descending order: `ascending` (the
    /// default) or `descending`, in any case; anything else is 400
    /// `invalidValue`.
    pub fn descending(&self) -> Result<bool, ScimError> {
        match self
            .sort_order
            .as_deref()
            .map(|order| order.trim().to_ascii_lowercase())
        {
            None => Ok(false),
            Some(order) if order == "ascending" => Ok(false),
            Some(order) if order == "descending" => Ok(true),
            Some(order) => Err(ScimError::invalid_value(format!(
                "sortOrder must be ascending or descending, not {order:?}"
            ))),
        }
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
    use crate::error::ScimType;

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
            ListQuery::from_search_request(&serde_json::json!({})),
            Ok(ListQuery::default())
        );
    }

    #[test]
    fn malformed_search_requests_are_rejected() {
        let invalid = |body: serde_json::Value, scim_type: ScimType| {
            let err = ListQuery::from_search_request(&body).expect_err("invalid");
            assert_eq!(err.scim_type, Some(scim_type), "{body}: {err:?}");
        };
        invalid(serde_json::json!([]), ScimType::InvalidSyntax);
        invalid(serde_json::json!({"schemas": ["urn:other"]}), ScimType::InvalidValue);
        invalid(serde_json::json!({"filters": "userName pr"}), ScimType::InvalidValue);
        invalid(serde_json::json!({"count": true}), ScimType::InvalidValue);
        invalid(serde_json::json!({"attributes": [1]}), ScimType::InvalidValue);
        invalid(serde_json::json!({"startIndex": "one"}), ScimType::InvalidValue);
    }

    #[test]
    fn sort_order_is_ascending_or_descending() {
        let order = |value: &str| query(&[("sortOrder", value)]).expect("valid").descending();
        assert_eq!(order("ascending"), Ok(false));
        assert_eq!(order("DESCENDING"), Ok(true));
        assert_eq!(ListQuery::default().descending(), Ok(false));
        assert_eq!(order("up").map_err(|e| e.scim_type), Err(Some(ScimType::InvalidValue)));
    }
}
