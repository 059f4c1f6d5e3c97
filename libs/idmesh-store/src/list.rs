//! The one list pipeline every service's List call runs: count the
//! matching rows, sort them, and read one page, all in the database.

use scim::ScimError;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryOrder, QuerySelect, Select};

use crate::filter::Target;

/// Which page of a list, in which order (SCIM's `startIndex`, `count`,
/// `sortBy` and `sortOrder`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Window<'a> {
    /// An attribute path; blank keeps id order.
    pub sort_by: &'a str,
    pub descending: bool,
    /// 1-based; values below 1 read as 1.
    pub start_index: i64,
    /// How many rows at most; 0 (or less) reads none and counts only.
    pub count: i32,
}

impl Target {
    /// The page of `query` (already filtered) that `window` asks for,
    /// sorted by its `sort_by` with ties in `id` order, and how many rows
    /// `query` matches in all. A `sort_by` this resource type cannot sort
    /// by is 400, even when the page reads no row.
    pub async fn list<E, Err>(
        &self,
        db: &DatabaseConnection,
        query: Select<E>,
        id: E::Column,
        window: Window<'_>,
    ) -> Result<(Vec<E::Model>, u64), Err>
    where
        E: EntityTrait,
        E::Model: Send + Sync,
        Err: From<ScimError> + From<DbErr>,
    {
        let total = query.clone().count(db).await?;
        let sorted = self.sorted(query, window.sort_by, window.descending)?;
        let Some((offset, limit)) = page_window(window.start_index, window.count) else {
            return Ok((Vec::new(), total));
        };
        let rows = sorted.order_by_asc(id).offset(offset).limit(limit).all(db).await?;
        Ok((rows, total))
    }
}

/// The `OFFSET` and `LIMIT` of a SCIM page: `count` resources from the
/// 1-based `start_index` (values below 1 read as 1); `None` when `count`
/// asks for none (the total only).
fn page_window(start_index: i64, count: i32) -> Option<(u64, u64)> {
    let limit = u64::try_from(count).ok().filter(|limit| *limit > 0)?;
    let offset = u64::try_from(start_index.max(1) - 1).unwrap_or_default();
    Some((offset, limit))
}

#[cfg(test)]
mod tests {
    use super::page_window;

    #[test]
    fn a_page_starts_at_a_one_based_index_and_count_zero_reads_nothing() {
        assert_eq!(page_window(1, 10), Some((0, 10)));
        assert_eq!(page_window(21, 10), Some((20, 10)));
        assert_eq!(page_window(0, 5), Some((0, 5)), "below 1 reads as 1");
        assert_eq!(page_window(-7, 5), Some((0, 5)));
        assert_eq!(page_window(3, 0), None, "the total only");
        assert_eq!(page_window(3, -1), None);
    }
}
