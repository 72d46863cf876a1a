//! Real parts shared by the end-to-end tests (`tests/`) and the benchmark runner (`bench/`):
//!
//! - [`pg`]: a throwaway PostgreSQL server (or `DATABASE_URL`), fresh databases on it;
//! - [`process`]: child processes with a log file, stopped or killed on demand and always on
//!   drop, the addresses they report in their log, and their `/proc` readings;
//! - [`proxy`]: a TCP forwarder that counts bytes and injects faults (cut, refuse, latency, a
//!   peer that stops reading, a black hole);
//! - [`cluster`]: control-plane and data-plane processes talking mTLS with certificates from
//!   `control-plane gen-cert`, on ports they bound themselves (port 0);
//! - [`binaries`]: where the workspace's binaries are, building them when needed;
//! - [`wait`] and [`limits`]: polling until a condition holds, raising the open-file limit.
//!
//! Nothing here is a mock: every part is the real program or a real socket.

pub mod binaries;
pub mod cluster;
pub mod limits;
pub mod pg;
pub mod process;
pub mod proxy;
pub mod wait;
