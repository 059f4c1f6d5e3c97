//! PATCH request parsing and application, as the user service runs them on
//! every update: the body is already JSON (the gateway decodes it), so each
//! iteration is `parse_request` plus `apply` to a stored User.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scim::patch::{apply, parse_request};
use scim::resource::normalize;
use scim::schema::USER_RESOURCE;
use serde_json::{Map, Value, json};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The stored form of the sample user: normalised, without `id` and `meta`.
fn stored_user() -> Map<String, Value> {
    let body = serde_json::from_str(include_str!("user.json")).expect("user.json is JSON");
    normalize(body, &USER_RESOURCE).expect("user.json is a valid User").doc
}

/// The request bodies measured, by name.
fn requests() -> [(&'static str, Value); 3] {
    [
        // Okta deprovisioning: a path-less replace of `active`.
        (
            "okta_deactivate",
            json!({
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {"active": false}}],
            }),
        ),
        // Entra ID: one path-less Replace carrying dotted and URN-qualified
        // keys, and a bare manager id.
        (
            "entra_pathless_urn_keys",
            json!({
                "schemas": [PATCH_OP],
                "Operations": [{
                    "op": "Replace",
                    "value": {
                        "displayName": "Barbara Jensen",
                        "name.givenName": "Barbara",
                        "name.familyName": "Jensen-Smith",
                        "title": "Senior Tour Guide",
                        format!("{ENTERPRISE}:department"): "Guest Experience",
                        format!("{ENTERPRISE}:manager"): "3c2f0b6e-5d4a-4b1c-9e8f-7a6b5c4d3e2f",
                    },
                }],
            }),
        ),
        // A value-filtered path, as Entra ID sends to change the work email.
        (
            "value_filtered_path",
            json!({
                "schemas": [PATCH_OP],
                "Operations": [{
                    "op": "replace",
                    "path": "emails[type eq \"work\"].value",
                    "value": "barbara.jensen@example.org",
                }],
            }),
        ),
    ]
}

fn bench_parse_and_apply(c: &mut Criterion) {
    let user = stored_user();
    let mut group = c.benchmark_group("patch_parse_apply");
    for (name, body) in requests() {
        let ops = parse_request(&body).expect("request parses");
        let patched = apply(&user, &ops, &USER_RESOURCE).expect("request applies");
        assert_ne!(patched, user, "{name} changes the user");
        group.bench_function(name, |b| {
            b.iter(|| {
                let ops = parse_request(black_box(&body)).expect("request parses");
                apply(black_box(&user), &ops, &USER_RESOURCE).expect("request applies")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse_and_apply);
criterion_main!(benches);
