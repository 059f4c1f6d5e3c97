//! What the list responses of every resource type share: the slice of a
//! list query that the services' List calls take, and the page that comes
//! back, rendered as a SCIM ListResponse.

use idmesh_proto::v1::{PageRequest, SortRequest};
use scim::ScimError;
use scim::list::ListQuery;
use serde_json::Value;

use crate::response::ScimBody;

/// One page of resources rendered for a list response, and how many match.
#[derive(Debug)]
pub struct Page {
    pub resources: Vec<Value>,
    pub total: u64,
}

impl Page {
    /// The page as a ListResponse starting at the 1-based `start_index`.
    pub fn into_body(self, start_index: u64) -> ScimBody {
        ScimBody(scim::list::list_response(self.resources, self.total, start_index))
    }
}

/// The filter, page and sort of a List call: `query`'s filter and sort,
/// `count` resources from the 1-based `start_index` (which the
/// directory-wide search chooses itself rather than take the query's).
#[derive(Debug)]
pub struct ListSlice {
    pub filter: String,
    pub page: PageRequest,
    pub sort: Option<SortRequest>,
}

impl ListSlice {
    pub fn new(query: &ListQuery, start_index: u64, count: u32) -> Result<ListSlice, ScimError> {
        let sort = match &query.sort_by {
            Some(sort_by) => Some(SortRequest {
                sort_by: sort_by.clone(),
                descending: query.descending()?,
            }),
            None => None,
        };
        Ok(ListSlice {
            filter: query.filter.clone().unwrap_or_default(),
            page: PageRequest {
                start_index: i64::try_from(start_index).unwrap_or(i64::MAX),
                count: i32::try_from(count).unwrap_or(i32::MAX),
            },
            sort,
        })
    }
}
