//! `POST /.search` at a directory's root (RFC 7644 §3.4.3): one query over
//! every resource type the directory holds, users and groups.
//!
//! The results are the users that match, then the groups that match, as
//! one list: `totalResults` is the sum, and `startIndex` and `count` page
//! across both ([`scim::list::window_in_next_type`]), so a page may end
//! with users and go on with groups. A filter, sort or attribute that one
//! resource type rejects (a 400, such as `userName` for groups or `members`
//! for users) means that type has no results; only when every type rejects
//! the query is it an error, the first type's.

use std::future::Future;
use std::pin::Pin;

use axum::extract::{Path, State};
use axum::response::Response;
use scim::ScimError;
use scim::list::ListQuery;

use crate::AppState;
use crate::error::ApiError;
use crate::groups::Groups;
use crate::resources::{Page, page_of};
use crate::response::{BaseUrl, ScimJson};
use crate::users::Users;

type PageFuture<'a> = Pin<Box<dyn Future<Output = Result<Page, ApiError>> + Send + 'a>>;

/// Reads one resource type's part of a page: [`page_of`] for that type.
type PageOf = for<'a> fn(&'a AppState, &'a str, &'a ListQuery, u64, u32, &'a BaseUrl) -> PageFuture<'a>;

/// The resource types the root search covers, in the order it lists them.
const SEARCHED: [PageOf; 2] = [
    |state, directory_id, query, start, count, base| {
        Box::pin(page_of::<Users>(state, directory_id, query, start, count, base))
    },
    |state, directory_id, query, start, count, base| {
        Box::pin(page_of::<Groups>(state, directory_id, query, start, count, base))
    },
];

pub async fn search(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_search_request(&body)?;
    if query.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "the search over every resource type pages by startIndex; search /Users or /Groups by cursor",
        )
        .into());
    }
    let mut page = Page::default();
    let mut first_rejection = None;
    let mut answered = false;
    for page_of_type in SEARCHED {
        let (start, count) =
            scim::list::window_in_next_type(query.start_index, query.count, page.total, page.resources.len());
        match page_of_type(&state, &directory_id, &query, start, count, &base).await {
            Ok(part) => {
                answered = true;
                page.extend(part);
            }
            Err(err) if rejects_query(&err) => {
                first_rejection.get_or_insert(err);
            }
            Err(err) => return Err(err),
        }
    }
    match first_rejection {
        Some(err) if !answered => Err(err),
        _ => Ok(page.into_response(&query, query.start_index)),
    }
}

/// Whether an error says the query does not apply to a resource type, as
/// opposed to a failure of the service.
fn rejects_query(err: &ApiError) -> bool {
    err.0.status == 400
}
