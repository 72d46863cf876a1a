//! The data plane's public API in process (see `integration_tests::data_plane`): every error a
//! client can reach without the control plane, one test per case, in each dialect's shape.

mod licensespring;
mod native;
