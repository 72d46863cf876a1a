//! Plumbing every API surface of the control plane shares: admin authentication, the handler
//! error and its mapping of database errors, request extractors, field parsing, and
//! page-numbered listings.

pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod fields;
pub(crate) mod pagination;
