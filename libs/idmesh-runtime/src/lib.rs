//! What every idmesh service shares: telemetry, the gRPC server bootstrap,
//! client channels, and the one mapping between SCIM errors and gRPC statuses.

pub mod clock;
pub mod grpc;
pub mod shutdown;
pub mod status;
pub mod struct_json;
pub mod telemetry;
pub mod timestamp;
