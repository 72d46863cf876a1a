//! Test support for the end-to-end tests: a real control plane started in-process ([`app`]),
//! a cluster of real control-plane and data-plane processes over mTLS with the tests' settings
//! ([`cluster`]), and a LicenseSpring client that signs requests as the SDKs do
//! ([`licensespring`]). The real PostgreSQL, the processes and the proxy are the workspace's
//! one [`test_support`] crate, shared with the benchmarks; they are re-exported here under the
//! names the tests have always used ([`pg`], [`process`], [`proxy`]).

pub mod app;
pub mod cluster;
pub mod data_plane;
pub mod licensespring;

/// Fresh databases on a throwaway PostgreSQL or on `DATABASE_URL`.
pub mod pg {
    pub use test_support::pg::{fresh_database, server_url};
}

/// The cluster's binaries, child processes, and waiting until something holds.
pub mod process {
    pub use test_support::binaries::built as binaries;
    pub use test_support::process::Process;
    pub use test_support::wait::wait_for;
}

/// A TCP forwarder that can be cut and restored, and inject other faults.
pub mod proxy {
    pub use test_support::proxy::{Direction, Proxy};
}
