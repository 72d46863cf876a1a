//! Request field parsing, shared with the data planes (see [`license_shared::fields`]).

pub(crate) use license_shared::fields::*;
