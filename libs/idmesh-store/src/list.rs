//! The one list pipeline every service's List call runs: sort the
//! matching rows, read one page and count them, all in the database; by
//! index (`OFFSET`/`LIMIT`) or by cursor (keyset on the id, RFC 9865). A
//! page by index that is not full tells the total itself, without the
//! count (one round trip less for a lookup by `userName`).
//!
//! A page ends early once its documents pass [`PAGE_BYTES`]: SCIM lets a
//! page hold fewer resources than `count` (RFC 7644 §3.4.2.4), and the
//! next page, from `startIndex` plus `itemsPerPage` or from the next
//! cursor, starts right after. So a page of large documents stays a
//! bounded gRPC message and a bounded part of every process's memory.

use scim::ScimError;
use scim::list::Cursor;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, SelectModel, Selector,
};

use crate::filter::Target;

/// The bytes of documents after which a page ends: the first row that
/// reaches it is the page's last. A page is at most this plus one
/// document, well within idmesh's gRPC message limit (16 MiB).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// A row as a List reads it from the rows of entity `E`: only what its
/// answer needs (user-service leaves out the folded document and reads
/// the document as text, so that a page is neither parsed nor serialised
/// again on its way out).
pub trait ListedRow<E: EntityTrait>: FromQueryResult + Send + Sync {
    /// `query`, reading this shape.
    fn select(query: Select<E>) -> Selector<SelectModel<Self>>;
    /// The row's id, which cursors are made of.
    fn id(&self) -> &str;
    /// The bytes of the row's document, for [`PAGE_BYTES`].
    fn size(&self) -> usize;
}

/// Which page of a list, in which order (SCIM's `startIndex`, `count`,
/// `sortBy` and `sortOrder`, or RFC 9865's `cursor`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Window<'a> {
    /// An attribute path; blank keeps id order.
    pub sort_by: &'a str,
    pub descending: bool,
    /// 1-based; values below 1 read as 1. Ignored with a cursor.
    pub start_index: i64,
    /// How many rows at most; 0 (or less) reads none and counts only.
    pub count: i32,
    /// Pages by cursor instead of index, as the client sent it (RFC 9865;
    /// one that is not ours is 400 `invalidCursor`): in id order, so that
    /// rows inserted or deleted during a walk move no other row.
    pub cursor: Option<&'a str>,
}

impl Window<'_> {
    /// Whether this asks for a page by index in the default order: the
    /// windows [`Listed::at_most_one`] answers.
    pub fn by_index_unsorted(&self) -> bool {
        self.cursor.is_none() && self.sort_by.trim().is_empty()
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<M> {
    pub rows: Vec<M>,
    /// How many rows match in all.
    pub total: u64,
    /// With a cursor: where the next page starts, as the client sends it
    /// back; empty when there is no next page.
    pub next_cursor: String,
    /// With a cursor: where the previous page ends; empty when there is
    /// none.
    pub previous_cursor: String,
}

impl Target {
    /// The page of `query` (already filtered) that `window` asks for, and
    /// how many rows `query` matches in all. By index, sorted by its
    /// `sort_by` with ties in `id` order; a `sort_by` this resource type
    /// cannot sort by is 400, even when the page reads no row. By cursor,
    /// in `id` order (a `sort_by` with a cursor is 400 `invalidValue`).
    /// Each row is read as `R`.
    pub async fn list<E, R, Err>(
        &self,
        db: &DatabaseConnection,
        query: Select<E>,
        id: E::Column,
        window: Window<'_>,
    ) -> Result<Listed<R>, Err>
    where
        E: EntityTrait,
        E::Model: Send + Sync,
        R: ListedRow<E>,
        Err: From<ScimError> + From<DbErr>,
    {
        // A cursor that is not ours is refused before the database is asked.
        let cursor = window.cursor.map(Cursor::parse).transpose()?;
        if let Some(cursor) = &cursor {
            if !window.sort_by.trim().is_empty() {
                return Err(ScimError::invalid_value(
                    "a cursor walks the list in id order; sortBy cannot be combined with cursor",
                )
                .into());
            }
            let total = query.clone().count(db).await?;
            return walk(db, query, id, cursor, window.count, total).await;
        }
        let sorted = self.sorted(query.clone(), window.sort_by, window.descending)?;
        let Some((offset, limit)) = page_window(window.start_index, window.count) else {
            return Ok(Listed::index(Vec::new(), query.count(db).await?));
        };
        let mut rows = R::select(sorted.order_by_asc(id).offset(offset).limit(limit))
            .all(db)
            .await?;
        let total = match total_from_page(offset, limit, rows.len()) {
            Some(total) => total,
            None => query.count(db).await?,
        };
        end_at_budget(&mut rows, R::size);
        Ok(Listed::index(rows, total))
    }
}

impl<M> Listed<M> {
    /// The page `window` asks for, by index and in any order, of a list
    /// of `found` alone or of nothing: what an equality on a unique column
    /// reads ([`Target::column_equality`]). No count and no sort are
    /// needed; the total is what was found, as [`Target::list`] would
    /// answer. Only for a window [`Window::by_index_unsorted`]: a cursor
    /// or a `sort_by` has errors of its own that [`Target::list`] gives.
    pub fn at_most_one(found: Option<M>, window: &Window<'_>) -> Listed<M> {
        let total = u64::from(found.is_some());
        let rows = match page_window(window.start_index, window.count) {
            Some((0, _)) => found.into_iter().collect(),
            _ => Vec::new(),
        };
        Listed::index(rows, total)
    }

    fn index(rows: Vec<M>, total: u64) -> Listed<M> {
        Listed {
            rows,
            total,
            next_cursor: String::new(),
            previous_cursor: String::new(),
        }
    }
}

/// One page of a cursor walk: the `count` rows after (or before) the
/// cursor's id, and cursors to the pages on either side when they hold
/// any row. One row more than the page is read to know whether a next
/// (or previous) page exists without counting. A page ended at
/// [`PAGE_BYTES`] keeps the rows nearest the cursor and has a cursor past
/// its far end.
async fn walk<E, R, Err>(
    db: &DatabaseConnection,
    query: Select<E>,
    id: E::Column,
    cursor: &Cursor,
    count: i32,
    total: u64,
) -> Result<Listed<R>, Err>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    R: ListedRow<E>,
    Err: From<ScimError> + From<DbErr>,
{
    let Some(limit) = u64::try_from(count).ok().filter(|limit| *limit > 0) else {
        return Ok(Listed::index(Vec::new(), total));
    };
    let (mut rows, more_ahead, more_behind) = match cursor {
        Cursor::Start => {
            let rows = R::select(query.order_by_asc(id).limit(limit + 1)).all(db).await?;
            (rows, false, false)
        }
        Cursor::After(after) => {
            let rows = R::select(
                query
                    .clone()
                    .filter(id.gt(after.as_str()))
                    .order_by_asc(id)
                    .limit(limit + 1),
            )
            .all(db)
            .await?;
            let behind = R::select(query.filter(id.lte(after.as_str()))).one(db).await?.is_some();
            (rows, false, behind)
        }
        Cursor::Before(before) => {
            let rows = R::select(
                query
                    .clone()
                    .filter(id.lt(before.as_str()))
                    .order_by_desc(id)
                    .limit(limit + 1),
            )
            .all(db)
            .await?;
            let ahead = R::select(query.filter(id.gte(before.as_str())))
                .one(db)
                .await?
                .is_some();
            (rows, ahead, true)
        }
    };
    let full = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut overflow = rows.len() > full;
    rows.truncate(full);
    // Still in walking order: the rows nearest the cursor come first.
    overflow |= end_at_budget(&mut rows, R::size);
    let backwards = matches!(cursor, Cursor::Before(_));
    if backwards {
        rows.reverse();
    }
    let (has_next, has_previous) = if backwards {
        (more_ahead, overflow)
    } else {
        (overflow, more_behind)
    };
    Ok(Listed {
        next_cursor: rows
            .last()
            .filter(|_| has_next)
            .map(|row| Cursor::After(row.id().to_owned()).encode())
            .unwrap_or_default(),
        previous_cursor: rows
            .first()
            .filter(|_| has_previous)
            .map(|row| Cursor::Before(row.id().to_owned()).encode())
            .unwrap_or_default(),
        rows,
        total,
    })
}

/// Ends `rows` at the first row that takes their bytes to [`PAGE_BYTES`]
/// (it stays: a page holds at least one row); whether any row was left out.
fn end_at_budget<M>(rows: &mut Vec<M>, size: impl Fn(&M) -> usize) -> bool {
    let mut bytes = 0;
    let Some(last) = rows.iter().position(|row| {
        bytes += size(row);
        bytes >= PAGE_BYTES
    }) else {
        return false;
    };
    let ended_early = last + 1 < rows.len();
    rows.truncate(last + 1);
    ended_early
}

/// The total that a page of `rows` rows read at `offset` with `limit`
/// tells without counting: a page that is not full ends the list. Not an
/// empty page past the start, which says only that the list ends earlier.
/// This spares the count in what IdPs send most, a lookup by `userName`
/// or `externalId` that finds one user or none.
fn total_from_page(offset: u64, limit: u64, rows: usize) -> Option<u64> {
    let rows = u64::try_from(rows).ok()?;
    (rows < limit && (rows > 0 || offset == 0)).then_some(offset + rows)
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
    use super::{Listed, PAGE_BYTES, Window, end_at_budget, page_window, total_from_page};

    #[test]
    fn a_list_of_at_most_one_row_answers_every_window_by_index() {
        let window = |start_index, count| Window {
            start_index,
            count,
            ..Window::default()
        };
        let page = |found: Option<&'static str>, start_index, count| {
            let listed = Listed::at_most_one(found, &window(start_index, count));
            (listed.rows, listed.total)
        };
        assert_eq!(page(Some("u"), 1, 100), (vec!["u"], 1));
        assert_eq!(page(Some("u"), 0, 1), (vec!["u"], 1), "below 1 reads as 1");
        assert_eq!(page(Some("u"), -4, 1), (vec!["u"], 1));
        assert_eq!(page(Some("u"), 1, 0), (vec![], 1), "the total only");
        assert_eq!(page(Some("u"), 1, -1), (vec![], 1));
        assert_eq!(page(Some("u"), 2, 10), (vec![], 1), "past the only row");
        assert_eq!(page(None, 1, 100), (vec![], 0));
        assert_eq!(page(None, 3, 0), (vec![], 0));

        assert!(window(1, 10).by_index_unsorted());
        let sorted = Window {
            sort_by: "userName",
            ..window(1, 10)
        };
        assert!(!sorted.by_index_unsorted());
        let walked = Window {
            cursor: Some(""),
            ..window(1, 10)
        };
        assert!(!walked.by_index_unsorted());
    }

    #[test]
    fn a_page_ends_at_the_row_that_reaches_the_byte_budget() {
        let quarter = PAGE_BYTES / 4;
        let mut rows = vec![quarter; 10];
        assert!(end_at_budget(&mut rows, |row| *row));
        assert_eq!(rows.len(), 4, "the fourth row reaches the budget and is the last");

        let mut small = vec![1; 10];
        assert!(!end_at_budget(&mut small, |row| *row));
        assert_eq!(small.len(), 10);

        let mut huge = vec![2 * PAGE_BYTES, 1];
        assert!(end_at_budget(&mut huge, |row| *row));
        assert_eq!(huge, [2 * PAGE_BYTES], "a page holds at least one row");

        let mut exactly = vec![quarter; 4];
        assert!(!end_at_budget(&mut exactly, |row| *row), "nothing was left out");
    }

    #[test]
    fn a_page_starts_at_a_one_based_index_and_count_zero_reads_nothing() {
        assert_eq!(page_window(1, 10), Some((0, 10)));
        assert_eq!(page_window(21, 10), Some((20, 10)));
        assert_eq!(page_window(0, 5), Some((0, 5)), "below 1 reads as 1");
        assert_eq!(page_window(-7, 5), Some((0, 5)));
        assert_eq!(page_window(3, 0), None, "the total only");
        assert_eq!(page_window(3, -1), None);
    }

    #[test]
    fn a_page_that_is_not_full_tells_the_total_and_a_full_or_empty_one_past_the_start_does_not() {
        assert_eq!(total_from_page(0, 100, 1), Some(1), "a lookup that finds one user");
        assert_eq!(total_from_page(0, 100, 0), Some(0), "a lookup that finds none");
        assert_eq!(total_from_page(20, 10, 3), Some(23), "the last page");
        assert_eq!(total_from_page(0, 10, 10), None, "a full page: more may follow");
        assert_eq!(
            total_from_page(20, 10, 0),
            None,
            "past the end: where it ends is unknown"
        );
    }
}
