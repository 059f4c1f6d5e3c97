//! `POST /.search` at a directory's root (RFC 7644 §3.4.3): one query over
//! every resource type the directory holds, users and groups.
//!
//! The results are the users that match, then the groups that match, as
//! one list: `totalResults` is the sum, and `startIndex` and `count` page
//! across both, so a page may end with users and go on with groups. A
//! filter, sort or attribute that one resource type rejects (a 400, such as
//! `userName` for groups or `members` for users) means that type has no
//! results; only when both reject the query is it an error, the users'.

use axum::extract::{Path, State};
use scim::list::ListQuery;

use crate::AppState;
use crate::error::ApiError;
use crate::groups::page_of_groups;
use crate::listing::Page;
use crate::response::{BaseUrl, ScimBody, ScimJson};
use crate::users::page_of_users;

pub async fn search(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    ScimJson(body): ScimJson,
) -> Result<ScimBody, ApiError> {
    let query = ListQuery::from_search_request(&body)?;
    let (start, count) = (query.start_index, query.count);
    let users = match page_of_users(&state, &directory_id, &query, start, count, &base).await {
        Err(err) if !rejects_query(&err) => return Err(err),
        users => users,
    };
    let (users_total, users_shown) = users.as_ref().map_or((0, 0), |page| (page.total, page.resources.len()));
    // Groups follow the users: the page starts in them only past the last user.
    let (group_start, group_count) = match start.checked_sub(users_total) {
        Some(past_users) if past_users > 0 => (past_users, count),
        _ => (1, count.saturating_sub(u32::try_from(users_shown).unwrap_or(u32::MAX))),
    };
    let groups = page_of_groups(&state, &directory_id, &query, group_start, group_count, &base).await;
    let (resources, total) = match (users, groups) {
        (Ok(users), Ok(groups)) => {
            let mut resources = users.resources;
            resources.extend(groups.resources);
            (resources, users.total + groups.total)
        }
        (Ok(users), Err(err)) if rejects_query(&err) => (users.resources, users.total),
        (Err(_), Ok(groups)) => (groups.resources, groups.total),
        (Err(err), Err(groups_err)) if rejects_query(&groups_err) => return Err(err),
        (_, Err(err)) => return Err(err),
    };
    Ok(Page { resources, total }.into_body(start))
}

/// Whether an error says the query does not apply to a resource type, as
/// opposed to a failure of the service.
fn rejects_query(err: &ApiError) -> bool {
    err.0.status == 400
}
