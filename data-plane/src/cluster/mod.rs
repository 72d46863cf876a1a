//! The data plane's link to the control plane: [`client`] keeps a connection up (reconnecting
//! with backoff), [`connection`] is one connection (a reader and a writer task), and [`link`]
//! is the side the rest of the data plane sees (connected or not, requests to the control
//! plane's authority).

mod client;
mod connection;
mod link;

pub use client::{ClientConfig, run};
pub use link::Link;
