//! The control plane: keeps licenses in PostgreSQL and serves the admin API and the
//! database-backed public verify / validate endpoints. `main.rs` only parses the command line;
//! everything else lives here so that tests start the same [`Application`] the binary does.

// `pub(crate)` by default: anything `pub` must be reachable from outside (main.rs, tests).
#![warn(unreachable_pub)]

mod api;
mod app;
mod authority;
pub mod cli;
mod cluster;
pub mod db;
pub mod gencert;
pub mod signing;
mod tokens;

pub use app::Application;
pub use cli::{Cli, Command, ServeArgs};
