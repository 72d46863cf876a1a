//! `GET /license/report` (seed 000), made of real figures: requests served per month (summed
//! from data-plane telemetry), the live PostgreSQL version, this build's version, a digest of
//! the newest license's key (`UNLICENSED` when there is none; never a raw key), counts of
//! licenses, products, tokens and data planes, and this host (cores, hashed hostname, uname).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::db::{report, usage};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/license/report", get(report))
}

#[derive(Debug, Serialize)]
struct Report {
    counters: Vec<Counter>,
    db_version: String,
    /// This build's version, under Kong's field name.
    kong_version: &'static str,
    license_key: String,
    /// Admin tokens (Kong: RBAC users).
    rbac_users: i64,
    /// Products (Kong: services).
    services_count: i64,
    system_info: SystemInfo,
    workspaces_count: i64,
    licenses_count: i64,
    data_planes_count: i64,
}

#[derive(Debug, Serialize)]
struct Counter {
    bucket: String,
    request_count: i64,
}

#[derive(Debug, Serialize)]
struct SystemInfo {
    cores: usize,
    hostname: String,
    uname: String,
}

async fn report(State(state): State<AppState>) -> AppResult<Json<Report>> {
    let db = &state.db;
    let mut counters: Vec<Counter> = usage::monthly(db)
        .await?
        .into_iter()
        .map(|(bucket, request_count)| Counter {
            bucket,
            request_count,
        })
        .collect();
    if counters.is_empty() {
        counters.push(Counter {
            bucket: Utc::now().format("%Y-%m").to_string(),
            request_count: 0,
        });
    }
    let figures = report::figures(db).await?;
    Ok(Json(Report {
        counters,
        db_version: format!(
            "postgres {}",
            figures
                .server_version
                .split_whitespace()
                .next()
                .unwrap_or_default()
        ),
        kong_version: env!("CARGO_PKG_VERSION"),
        license_key: figures
            .newest_key
            .map_or_else(|| "UNLICENSED".to_owned(), |key| digest(&key)),
        rbac_users: figures.admin_tokens,
        services_count: figures.products,
        system_info: system_info(),
        workspaces_count: 1,
        licenses_count: figures.licenses,
        data_planes_count: figures.data_planes,
    }))
}

/// An opaque identifier of a license key: a truncated SHA-256, in Kong's `XXXX_XXXX` style.
fn digest(key: &str) -> String {
    let hash = hex::encode_upper(Sha256::digest(format!("license-report:{key}").as_bytes()));
    format!("{}_{}", &hash[..18], &hash[18..25])
}

fn system_info() -> SystemInfo {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| format!(" {}", release.trim()))
        .unwrap_or_default();
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        other => other,
    };
    SystemInfo {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        hostname: hex::encode(&Sha256::digest(hostname.as_bytes())[..7]),
        uname: format!("{os} {}{release}", std::env::consts::ARCH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_digest_is_opaque_and_stable() {
        let key = "ABCDE-ABCDE-ABCDE-ABCDE-ABCDE";
        assert_eq!(digest(key), digest(key));
        assert!(!digest(key).contains("ABCDE"));
        assert_eq!(digest(key).len(), 26);
    }
}
