//! A license as Craft's API shows it: its plugin (the product's code and number), its owner's
//! email, and the dates Craft names, read in a few queries for a whole page.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use license_shared::LicenseType;
use serde::Serialize;
use uuid::Uuid;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::db::licenses::LicenseRecord;
use crate::db::{customers, products};

/// A license as Craft shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CraftLicense {
    id: i64,
    plugin_id: Option<i64>,
    edition_id: Option<i64>,
    owner_id: Option<i64>,
    cms_license_id: Option<i64>,
    plugin: String,
    edition: Option<String>,
    expirable: bool,
    expired: bool,
    auto_renew: bool,
    email: String,
    key: String,
    notes: Option<String>,
    last_version: Option<String>,
    last_allowed_version: Option<String>,
    last_activity_on: Option<String>,
    last_renewed_on: Option<String>,
    expires_on: Option<String>,
    date_created: Option<String>,
    date_updated: Option<String>,
    uid: Option<Uuid>,
}
fn date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Craft views of `records`, in order.
pub(super) async fn views(
    state: &AppState,
    records: Vec<LicenseRecord>,
) -> AppResult<Vec<CraftLicense>> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.license.id).collect();
    let product_ids: Vec<Uuid> = records.iter().map(|r| r.license.product_id).collect();
    let customer_ids: Vec<Uuid> = records.iter().map(|r| r.license.customer_id).collect();
    let codes: HashMap<Uuid, String> = products::fetch_many(&state.db, &product_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p.code))
        .collect();
    let numbers = products::numbers(&state.db, &product_ids).await?;
    let emails: HashMap<Uuid, String> = customers::fetch_many(&state.db, &customer_ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c.email))
        .collect();
    let activity = crate::db::usage::last_validated(&state.db, &ids).await?;
    let now = Utc::now();
    Ok(records
        .into_iter()
        .map(|record| {
            let license = record.license;
            CraftLicense {
                id: license.number,
                plugin_id: numbers.get(&license.product_id).copied(),
                edition_id: None,
                owner_id: None,
                cms_license_id: None,
                plugin: codes.get(&license.product_id).cloned().unwrap_or_default(),
                edition: license.edition.clone(),
                expirable: license.expires_at.is_some(),
                expired: license.is_expired(now),
                auto_renew: license.license_type == LicenseType::Subscription,
                email: emails
                    .get(&license.customer_id)
                    .cloned()
                    .unwrap_or_default(),
                key: license.key.to_string(),
                notes: license.notes.clone(),
                last_version: None,
                last_allowed_version: None,
                last_activity_on: activity.get(&license.id).copied().map(date),
                last_renewed_on: None,
                expires_on: license.expires_at.map(date),
                date_created: Some(date(license.created_at)),
                date_updated: Some(date(license.updated_at)),
                uid: Some(license.id),
            }
        })
        .collect())
}
