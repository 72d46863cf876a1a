//! The disk cache (DESIGN §6): the whole state, written atomically after changes ([`writer`])
//! into one checksummed file ([`file`]), so that a data plane restarted while the control plane
//! is away serves at once.

mod file;
mod writer;

pub use file::{CacheError, load, path, save};
pub use writer::CacheWriter;
