//! The data plane: holds every license in memory, kept in sync with the control plane over a
//! mutually authenticated TLS websocket, and answers the public API without a database, also
//! while the control plane is away. `main.rs` only parses the command line; tests start the
//! same [`DataPlane`].
//!
//! - [`store`]: the in-memory state (sharded copy-on-write tables, forward-only apply,
//!   snapshot building);
//! - [`cache`]: the disk cache (file format, background writer);
//! - [`cluster`]: the link to the control plane (client, connection actor, requests to the
//!   control plane's authority);
//! - [`usage`]: usage telemetry counted on the request path and reported to the control plane;
//! - [`api`]: the public API (native, LicenseSpring) and the status listener.

pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod store;
pub mod usage;

pub use app::DataPlane;
