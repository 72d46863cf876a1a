//! The data plane: holds every license in memory, kept in sync with the control plane over a
//! mutually authenticated TLS websocket, and answers the public API without a database, also
//! while the control plane is away. `main.rs` only parses the command line; tests start the
//! same [`DataPlane`].

pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod client;
pub mod keyring;
pub mod licensespring;
pub mod link;
pub mod request_counter;
pub mod snapshot_intake;
pub mod status;
pub mod store;
pub mod telemetry;

pub use app::DataPlane;
