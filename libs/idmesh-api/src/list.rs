//! SCIM list queries ↔ the filter, page and sort of a List call.

use idmesh_proto::v1::{PageRequest, SortRequest};
use scim::ScimError;
use scim::list::ListQuery;

/// The filter, page and sort of a List call.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    pub filter: String,
    pub page: PageRequest,
    pub sort: Option<SortRequest>,
}

impl ListRequest {
    /// `query`'s filter, sort and cursor, `count` resources from the
    /// 1-based `start_index` (which the directory-wide search chooses itself
    /// rather than take the query's) unless the query pages by cursor.
    pub fn new(query: &ListQuery, start_index: u64, count: u32) -> Result<ListRequest, ScimError> {
        let sort = match &query.sort_by {
            Some(sort_by) => Some(SortRequest {
                sort_by: sort_by.clone(),
                descending: query.descending()?,
            }),
            None => None,
        };
        Ok(ListRequest {
            filter: query.filter.clone().unwrap_or_default(),
            page: PageRequest {
                start_index: i64::try_from(start_index).unwrap_or(i64::MAX),
                count: i32::try_from(count).unwrap_or(i32::MAX),
                cursor: query.cursor.clone(),
            },
            sort,
        })
    }
}
