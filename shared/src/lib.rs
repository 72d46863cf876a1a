//! Shared core of the license cluster: the domain model, the one [`evaluate`] rule that
//! decides whether a license is valid, the [`LicenseKey`] format and the common API error
//! type. Nothing here does I/O, so the control plane, the data planes and client apps can all
//! depend on it and reach the same verdicts.

#[cfg(feature = "service")]
pub mod fault;
#[cfg(feature = "service")]
pub mod logging;
pub mod public_api;
#[cfg(feature = "service")]
pub mod shutdown;
#[cfg(feature = "service")]
pub mod supervisor;
#[cfg(feature = "cluster")]
pub mod tls;

pub mod credential;
pub mod document;
pub mod error;
pub mod evaluate;
pub mod fields;
#[cfg(feature = "axum")]
pub mod http;
pub mod json;
pub mod key;
pub mod model;
pub mod protocol;
pub mod signing;

pub use error::{ApiError, codes};
pub use evaluate::{Check, Denial, evaluate};
pub use json::CompactJson;
pub use key::{KeyPrefix, LicenseKey, ParseKeyError};
pub use model::{
    ActiveDevice, AuthorizationMethod, Customer, EffectiveStatus, License, LicenseStatus,
    LicenseType, Product,
};
