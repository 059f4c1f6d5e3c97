//! Arbitrary bytes as a PATCH request body against a stored User: parsing
//! and applying never panic and fail only with a 400 that has a `scimType`;
//! a patched document that normalises is a fixed point of normalisation,
//! which is what the user service stores.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scim::ScimError;
use scim::patch::{apply, parse_request};
use scim::resource::normalize;
use scim::schema::USER_RESOURCE;
use serde_json::{Map, Value};

/// A stored User: normalised, so without `id` and `meta`, with name,
/// emails, addresses and the enterprise extension.
static USER: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let body = serde_json::from_str(include_str!("../../benches/user.json")).expect("user.json is JSON");
    normalize(body, &USER_RESOURCE).expect("user.json is a valid User").doc
});

fn assert_client_error(e: &ScimError) {
    assert!(
        e.status == 400 && e.scim_type.is_some(),
        "not a 400 with a scimType: {e:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let ops = match parse_request(&body) {
        Ok(ops) => ops,
        Err(e) => return assert_client_error(&e),
    };
    let patched = match apply(&USER, &ops, &USER_RESOURCE) {
        Ok(patched) => patched,
        Err(e) => return assert_client_error(&e),
    };
    match normalize(Value::Object(patched), &USER_RESOURCE) {
        Ok(once) => {
            let twice = normalize(Value::Object(once.doc.clone()), &USER_RESOURCE);
            assert_eq!(twice.map(|n| n.doc), Ok(once.doc));
        }
        Err(e) => assert_client_error(&e),
    }
});
