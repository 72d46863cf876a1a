//! Request extractors, shared with the data planes (see [`license_shared::http`]).

pub(crate) use license_shared::http::{ApiJson, ApiQuery, parse_json};
