//! Arbitrary text through the filter parser: it answers every input with a
//! filter or a 400 `invalidFilter`; a parsed filter prints back to text that
//! parses to the same AST (unless that text is over the length limit);
//! evaluating it against a User never panics.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scim::ScimType;
use scim::filter::{MAX_FILTER_LEN, matches, parse};
use scim::schema::USER_RESOURCE;
use serde_json::Value;

/// A stored User as the gateway returns it, with `id`, `meta` and the
/// enterprise extension, so that filters on any of them reach real values.
static USER: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(include_str!("../../benches/user.json")).expect("user.json is JSON"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(filter) => {
            let printed = filter.to_string();
            let reparsed = parse(&printed);
            if printed.len() <= MAX_FILTER_LEN {
                assert_eq!(reparsed.as_ref(), Ok(&filter), "{text:?} printed as {printed:?}");
            } else {
                // The canonical text can outgrow the limit the parser enforces.
                assert!(
                    reparsed.is_err_and(|e| e.detail.contains("the limit is")),
                    "{printed:?}"
                );
            }
            matches(&filter, &USER, &USER_RESOURCE);
        }
        Err(e) => assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidFilter)), "{e}"),
    }
});
