//! The control plane: keeps licenses in PostgreSQL and serves the admin API and the
//! database-backed public verify / validate endpoints. `main.rs` only parses the command line;
//! everything else lives here so that tests start the same [`app::Application`] the binary does.

pub mod api;
pub mod app;
pub mod authority;
pub mod cli;
pub mod cluster;
pub mod db;
pub mod gencert;
pub mod signing;
pub mod tokens;

pub use app::Application;
pub use cli::{Cli, Command, ServeArgs};
