//! Licenses table. A license row read here carries its active device ids, the replicated fact
//! [`license_shared::evaluate`] needs, and its private notes, which never leave the control
//! plane (hence [`LicenseRecord`] rather than a bare [`License`](license_shared::License)).
//!
//! [`rows`] holds the types, [`reads`] and [`writes`] the queries; the snapshot's cursor over
//! every license is [`crate::db::sync`]'s.

mod reads;
mod rows;
mod writes;

pub(crate) use reads::{fetch_by_id, fetch_many, lock_by_key};
pub use reads::{get_by_id, get_by_key, imported_documents, list, page_by_number};
pub use rows::{
    Identity, InsertOutcome, LicenseChanges, LicenseFields, LicenseFilter, LicenseRecord,
    NamedOwners, ReplaceOutcome,
};
pub use writes::{delete, delete_by_id, insert, insert_as, replace, update};
