//! Arbitrary bytes as a BulkRequest body: parsing never panics and fails
//! only with a 400 or a 413; the plan lists every operation exactly once,
//! and runs an operation only after the POSTs it references.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim::bulk::{BulkRequest, Step, plan};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let request = match BulkRequest::parse(&body, 64) {
        Ok(request) => request,
        Err(e) => return assert!(e.status == 400 || e.status == 413, "{e:?}"),
    };
    let steps = plan(&request.operations);
    let mut listed = vec![0_u8; request.operations.len()];
    let mut ran = Vec::new();
    for step in &steps {
        let index = match step {
            Step::Run(index) => {
                let references = request.operations[*index].references();
                let creators_ran = request
                    .operations
                    .iter()
                    .enumerate()
                    .filter(|(_, op)| op.bulk_id.as_ref().is_some_and(|id| references.contains(id)))
                    .all(|(creator, _)| ran.contains(&creator));
                assert!(creators_ran, "operation {index} ran before a POST it references");
                ran.push(*index);
                *index
            }
            Step::Refuse(index, e) => {
                assert!(e.status == 400 || e.status == 409, "{e:?}");
                *index
            }
        };
        listed[index] += 1;
    }
    assert!(listed.iter().all(|n| *n == 1), "every operation once: {steps:?}");
});
