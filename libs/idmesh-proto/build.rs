//! Generates the gRPC code for proto/ with protox, so no system `protoc` is
//! needed, and writes the descriptor set to OUT_DIR for server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it is compiled: a build script
    // binary is reused by every checkout that shares a target directory.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "idmesh/v1/common.proto",
        "idmesh/v1/directory.proto",
        "idmesh/v1/user.proto",
        "idmesh/v1/session.proto",
        "idmesh/v1/group.proto",
        "idmesh/v1/apikey.proto",
        "idmesh/v1/roles.proto",
        "idmesh/v1/events.proto",
    ];
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let descriptors = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("idmesh_descriptor.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure()
        // An event is far larger than a heartbeat: boxed, the stream's
        // message is no larger than the heartbeat.
        .boxed(".idmesh.v1.WatchEventsResponse.message.event")
        .compile_fds(descriptors)?;
    Ok(())
}
