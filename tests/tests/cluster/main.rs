//! End-to-end tests of the cluster: real PostgreSQL, real control-plane and data-plane
//! processes, real mTLS between them.

mod faults;
mod licensespring;
mod lifecycle;
mod propagation;
mod resilience;
mod scale;
mod security;
mod telemetry;
