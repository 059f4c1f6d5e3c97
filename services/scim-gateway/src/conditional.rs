//! Conditional requests on one resource (RFC 7644 §3.14, RFC 7232):
//! `If-Match` and `If-None-Match` against the resource's version, whose
//! ETag is `W/"<version>"`.
//!
//! How the headers are read:
//! - Tags compare by version, weakly: `W/"3"` and `"3"` both name version 3.
//!   RFC 7232 §3.1 asks `If-Match` for the strong comparison, under which a
//!   weak ETag never matches; SCIM sends its weak ETags in `If-Match`
//!   (RFC 7644 §3.14), and so do the IdPs, so SCIM wins.
//! - A tag that is not one of ours (not a quoted integer) names no version
//!   and so never matches: `If-Match: "abc"` fails with 412 and
//!   `If-None-Match: "abc"` holds. It is not a 400, since it is a valid
//!   HTTP entity tag; in a list, the other tags still count.
//! - A header sent several times is one list (RFC 9110 §5.3).
//!
//! Order (RFC 7232 §6): `If-Match` first, then `If-None-Match`, which on a
//! read means 304 Not Modified and on a write 412.
//!
//! Writes: the services take one `expected_version` and compare it inside
//! the write's transaction. `If-Match` with one version is passed as it is,
//! and `If-Match: *` needs no version (the write answers 404 when there is
//! no resource). Any other condition (several versions, `If-None-Match`) is
//! checked against the current version, which is then passed as
//! `expected_version`, so that a change between the check and the write is
//! still a 412 and never a lost update.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, header};
use scim::ScimError;
use scim::meta::{EtagMatch, etag, parse_etag_header};

use crate::error::ApiError;

/// The `If-Match` and `If-None-Match` headers of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    if_match: Option<EtagMatch>,
    if_none_match: Option<EtagMatch>,
}

/// What a read answers once its preconditions are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The client has no copy of this version: send the resource.
    Modified,
    /// The client's copy is current: 304 without a body.
    NotModified,
}

impl<S: Send + Sync> FromRequestParts<S> for Preconditions {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Preconditions::from_headers(&parts.headers))
    }
}

impl Preconditions {
    /// Reads the conditional headers; absent headers impose nothing.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            if_match: tags(headers, &header::IF_MATCH),
            // A list of only foreign tags can never match: as good as no header.
            if_none_match: tags(headers, &header::IF_NONE_MATCH)
                .filter(|tags| !matches!(tags, EtagMatch::Versions(versions) if versions.is_empty())),
        }
    }

    /// Checks a read of a resource at `version`: 412 when `If-Match` names
    /// other versions, [`Freshness::NotModified`] when `If-None-Match` names
    /// this one.
    pub fn check_read(&self, version: i64) -> Result<Freshness, ApiError> {
        self.check_if_match(version)?;
        if self.if_none_match.as_ref().is_some_and(|tags| names(tags, version)) {
            return Ok(Freshness::NotModified);
        }
        Ok(Freshness::Modified)
    }

    /// The `expected_version` to send with a write, or 412 when the
    /// preconditions already fail. `current` fetches the resource's version
    /// and is awaited only when the headers cannot be passed on as they are.
    pub async fn expected_version(
        &self,
        current: impl Future<Output = Result<i64, ApiError>>,
    ) -> Result<Option<i64>, ApiError> {
        match (&self.if_match, &self.if_none_match) {
            (None | Some(EtagMatch::Any), None) => Ok(None),
            (Some(EtagMatch::Versions(versions)), None) if versions.len() == 1 => Ok(versions.first().copied()),
            _ => {
                let version = current.await?;
                self.check_if_match(version)?;
                if self.if_none_match.as_ref().is_some_and(|tags| names(tags, version)) {
                    return Err(ScimError::precondition_failed(format!(
                        "If-None-Match: the resource exists at version {}",
                        etag(version)
                    ))
                    .into());
                }
                Ok(Some(version))
            }
        }
    }

    fn check_if_match(&self, version: i64) -> Result<(), ApiError> {
        match &self.if_match {
            Some(tags) if !names(tags, version) => Err(ScimError::precondition_failed(format!(
                "If-Match: the resource is at version {}",
                etag(version)
            ))
            .into()),
            _ => Ok(()),
        }
    }
}

/// Whether `tags` names `version`.
fn names(tags: &EtagMatch, version: i64) -> bool {
    match tags {
        EtagMatch::Any => true,
        EtagMatch::Versions(versions) => versions.contains(&version),
    }
}

/// The tags of every `name` header, as one list; `None` without any.
fn tags(headers: &HeaderMap, name: &HeaderName) -> Option<EtagMatch> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        // A value that is not visible ASCII is no tag of ours.
        .map(|value| value.to_str().unwrap_or_default())
        .collect();
    if values.is_empty() {
        return None;
    }
    let list = values.join(",");
    parse_etag_header(&list).or_else(|| {
        // Some tag is not ours: keep the versions the others name.
        let versions = list
            .split(',')
            .filter_map(|tag| match parse_etag_header(tag) {
                Some(EtagMatch::Versions(versions)) => Some(versions),
                _ => None,
            })
            .flatten()
            .collect();
        Some(EtagMatch::Versions(versions))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn preconditions(headers: &[(HeaderName, &[u8])]) -> Preconditions {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name, HeaderValue::from_bytes(value).expect("a header value"));
        }
        Preconditions::from_headers(&map)
    }

    fn if_match(value: &str) -> Preconditions {
        preconditions(&[(header::IF_MATCH, value.as_bytes())])
    }

    fn if_none_match(value: &str) -> Preconditions {
        preconditions(&[(header::IF_NONE_MATCH, value.as_bytes())])
    }

    fn status(result: Result<impl std::fmt::Debug, ApiError>) -> u16 {
        result.expect_err("a failed precondition").0.status
    }

    /// `expected_version` when fetching the current version would fail the test.
    async fn expected_without_fetch(p: &Preconditions) -> Option<i64> {
        let fetch = async { panic!("the current version is not needed") };
        p.expected_version(fetch).await.expect("no failed precondition")
    }

    async fn expected_at(p: &Preconditions, current: i64) -> Result<Option<i64>, ApiError> {
        p.expected_version(async move { Ok(current) }).await
    }

    #[test]
    fn no_headers_read_the_resource() {
        assert_eq!(Preconditions::default().check_read(4).ok(), Some(Freshness::Modified));
    }

    #[test]
    fn if_none_match_on_the_current_version_is_not_modified() {
        assert_eq!(
            if_none_match("W/\"4\"").check_read(4).ok(),
            Some(Freshness::NotModified)
        );
        assert_eq!(if_none_match("\"4\"").check_read(4).ok(), Some(Freshness::NotModified));
        assert_eq!(if_none_match("*").check_read(4).ok(), Some(Freshness::NotModified));
        assert_eq!(
            if_none_match("W/\"1\", W/\"4\"").check_read(4).ok(),
            Some(Freshness::NotModified)
        );
        assert_eq!(if_none_match("W/\"3\"").check_read(4).ok(), Some(Freshness::Modified));
    }

    #[test]
    fn if_match_on_another_version_fails_a_read() {
        assert_eq!(status(if_match("W/\"3\"").check_read(4)), 412);
        assert_eq!(if_match("W/\"4\"").check_read(4).ok(), Some(Freshness::Modified));
        assert_eq!(if_match("*").check_read(4).ok(), Some(Freshness::Modified));
    }

    #[test]
    fn if_match_is_checked_before_if_none_match() {
        let both = preconditions(&[(header::IF_MATCH, b"W/\"3\""), (header::IF_NONE_MATCH, b"W/\"4\"")]);
        assert_eq!(status(both.check_read(4)), 412);
    }

    #[test]
    fn foreign_tags_never_match_but_do_not_hide_ours() {
        assert_eq!(status(if_match("\"abc\"").check_read(4)), 412);
        assert_eq!(status(if_match("").check_read(4)), 412);
        assert_eq!(
            if_match("\"abc\", W/\"4\"").check_read(4).ok(),
            Some(Freshness::Modified)
        );
        assert_eq!(if_none_match("\"abc\"").check_read(4).ok(), Some(Freshness::Modified));
        assert_eq!(
            if_none_match("\"abc\", W/\"4\"").check_read(4).ok(),
            Some(Freshness::NotModified)
        );
        let not_ascii = preconditions(&[(header::IF_MATCH, b"W/\"\xff\"")]);
        assert_eq!(status(not_ascii.check_read(4)), 412);
    }

    #[test]
    fn repeated_headers_are_one_list() {
        let twice = preconditions(&[(header::IF_MATCH, b"W/\"1\""), (header::IF_MATCH, b"W/\"4\"")]);
        assert_eq!(twice.check_read(4).ok(), Some(Freshness::Modified));
    }

    #[tokio::test]
    async fn one_if_match_version_is_passed_on_without_fetching() {
        assert_eq!(expected_without_fetch(&Preconditions::default()).await, None);
        assert_eq!(expected_without_fetch(&if_match("W/\"7\"")).await, Some(7));
        assert_eq!(expected_without_fetch(&if_match("*")).await, None);
        assert_eq!(expected_without_fetch(&if_none_match("\"abc\"")).await, None);
    }

    #[tokio::test]
    async fn several_if_match_versions_are_checked_against_the_current_one() {
        let several = if_match("W/\"3\", W/\"5\"");
        assert_eq!(expected_at(&several, 5).await.ok(), Some(Some(5)));
        assert_eq!(status(expected_at(&several, 4).await), 412);
        assert_eq!(status(expected_at(&if_match("\"abc\""), 4).await), 412);
    }

    #[tokio::test]
    async fn if_none_match_on_a_write_fails_when_it_names_the_current_version() {
        assert_eq!(status(expected_at(&if_none_match("*"), 2).await), 412);
        assert_eq!(status(expected_at(&if_none_match("W/\"2\""), 2).await), 412);
        assert_eq!(expected_at(&if_none_match("W/\"1\""), 2).await.ok(), Some(Some(2)));
    }

    #[tokio::test]
    async fn a_missing_resource_is_reported_by_the_fetch() {
        let missing = async { Err(ApiError(ScimError::not_found("User u1 not found"))) };
        let result = if_none_match("*").expected_version(missing).await;
        assert_eq!(status(result), 404);
    }
}
