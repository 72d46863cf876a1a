//! Craft's plugin licenses API (seed 001) on the control plane: `GET /v1/plugin-licenses`
//! (`{total, totalPages, licenses}`, `page` / `perPage`), `POST /v1/plugin-licenses`, and
//! `GET /v1/plugin-licenses/{key}`, behind HTTP basic auth (`user:token`). A plugin is a product
//! (by code), an email a customer (created when new); the licenses are the same ones every
//! other dialect manages. Errors keep the native `{status, code, message}` shape.
//!
//! [`view`] makes Craft's view of a license; [`create`] is the `POST`.

mod create;
mod view;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use license_shared::{ApiError, codes};
use serde::Serialize;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::ApiQuery;
use crate::api::common::fields;
use crate::api::common::pagination::{PageQuery, page};
use crate::db::licenses::{self as store, LicenseFilter};
use view::{CraftLicense, views};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/plugin-licenses", get(list).post(create::create))
        .route("/v1/plugin-licenses/{key}", get(show))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    total: i64,
    total_pages: i64,
    licenses: Vec<CraftLicense>,
}

#[derive(Debug, Serialize)]
struct One {
    license: CraftLicense,
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Listing>> {
    let page = page(query.page, query.per_page)?;
    let (records, total) = store::list(&state.db, LicenseFilter::default(), page).await?;
    let per_page = i64::from(page.per_page);
    Ok(Json(Listing {
        total,
        total_pages: (total + per_page - 1) / per_page,
        licenses: views(&state, records).await?,
    }))
}

async fn show(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
) -> AppResult<Json<One>> {
    // A segment that is not UTF-8 once percent-decoded is no key either (not axum's plain text).
    let key = match key {
        Ok(Path(key)) => fields::license_key(&key)?,
        Err(_) => {
            return Err(ApiError::bad_request(
                codes::INVALID_LICENSE_KEY,
                "the license key in the path is not valid UTF-8",
            )
            .into());
        }
    };
    let record = store::get_by_key(&state.db, &key).await?.ok_or_else(|| {
        ApiError::not_found(
            codes::LICENSE_NOT_FOUND,
            format!("no license with key {key}"),
        )
    })?;
    let license = views(&state, vec![record])
        .await?
        .pop()
        .ok_or_else(ApiError::internal)?;
    Ok(Json(One { license }))
}
