//! What every idmesh service shares: caller authentication (API keys,
//! scopes, the policy table), telemetry, the gRPC server bootstrap,
//! client channels, graceful shutdown and the clock. Conversions between
//! SCIM and the gRPC contracts, and the status table, live in `idmesh-api`.

pub mod auth;
pub mod clock;
pub mod cpu;
pub mod deadline;
pub mod grpc;
pub mod observe;
pub mod shutdown;
pub mod telemetry;
