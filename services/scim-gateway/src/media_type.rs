//! The response's media type. SCIM answers `application/scim+json` (RFC
//! 7644 §3.1), but a client that accepts only `application/json` (as
//! OneLogin's provisioner asks) gets the same body labelled
//! `application/json`, as RFC 7644 §8.1 lets a service provider do, rather
//! than a media type it said it cannot read.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::response::SCIM_CONTENT_TYPE;

/// Relabels a SCIM response as `application/json` for a client that
/// accepts that and not `application/scim+json`.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let plain_json = accepts_only_plain_json(request.headers());
    let mut response = next.run(request).await;
    let is_scim = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value == SCIM_CONTENT_TYPE);
    if plain_json && is_scim {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

/// Whether the `Accept` headers name `application/json` and neither
/// `application/scim+json` nor a wildcard that covers it. Parameters
/// (`;q=0.9`, `;charset=utf-8`) are ignored; no `Accept` at all accepts
/// anything, so SCIM's own type.
fn accepts_only_plain_json(headers: &HeaderMap) -> bool {
    let mut plain_json = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let media_type = range.split(';').next().unwrap_or_default().trim();
            if media_type.eq_ignore_ascii_case("application/json") {
                plain_json = true;
            } else if media_type.eq_ignore_ascii_case(SCIM_CONTENT_TYPE)
                || media_type == "*/*"
                || media_type.eq_ignore_ascii_case("application/*")
            {
                return false;
            }
        }
    }
    plain_json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(value).expect("a header value"));
        }
        headers
    }

    #[test]
    fn only_a_client_that_cannot_take_scim_json_gets_plain_json() {
        assert!(accepts_only_plain_json(&accept(&["application/json"])));
        assert!(accepts_only_plain_json(&accept(&["application/json; charset=utf-8"])));
        assert!(!accepts_only_plain_json(&accept(&[])));
        assert!(!accepts_only_plain_json(&accept(&["application/scim+json"])));
        assert!(!accepts_only_plain_json(&accept(&[
            "application/json, application/scim+json"
        ])));
        assert!(!accepts_only_plain_json(&accept(&[
            "application/json",
            "application/scim+json"
        ])));
        assert!(!accepts_only_plain_json(&accept(&[
            "application/json;q=0.9, */*;q=0.1"
        ])));
        assert!(!accepts_only_plain_json(&accept(&["text/html"])));
    }
}
