//! LicenseSpring's License API on the data plane (DESIGN §8, seed 002): `GET check_license`,
//! `POST activate_license`, `POST deactivate_license` under `/api/v4/`, so apps built on
//! LicenseSpring's SDKs can point at a data plane unchanged.
//!
//! Requests are authenticated with an API credential ([`auth`]); `check_license` is answered
//! from memory; activation of a new device and deactivation go to the control plane's
//! activation authority over the cluster link, like the native validate, so the activation
//! limit holds across every data plane. License answers are signed ([`body`]).

mod auth;
mod body;
mod errors;
mod params;

use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use license_shared::protocol::ActivationRequest;
use license_shared::signing::ClusterKey;
use license_shared::{ApiError, AuthorizationMethod, Check, Denial, License, Product, evaluate};
use serde_json::{Value, json};

use crate::api::PublicState;
use crate::store::Keyring;
use crate::store::State as StoreState;
use body::{LicenseFacts, license_body, signed_response};
use errors::bad_request;
use params::{Params, missing_parameters};

pub use body::{SIGNATURE_HEADER, SIGNATURE_KID_HEADER};

pub fn router() -> Router<PublicState> {
    Router::new()
        .route("/api/v4/check_license", get(check_license))
        .route("/api/v4/activate_license", post(activate_license))
        .route("/api/v4/deactivate_license", post(deactivate_license))
}

/// `GET /api/v4/check_license`: the license, if this device holds a seat on it.
async fn check_license(
    State(state): State<PublicState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let snapshot = state.store.load();
    let keyring = snapshot.keyring();
    let credential = auth::authenticate(&headers, keyring, SystemTime::now())?;
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|error| bad_request(errors::VALIDATION_ERROR, error.body_text()))?
        .0;
    let params = Params::from_query(pairs)?;
    let signing_key = active_key(keyring)?;
    let (product, license) = find(&snapshot, credential.product_ids.as_slice(), &params)?;
    let now = Utc::now();
    // An expired license is still described (with `is_expired: true`), as LicenseSpring does;
    // the SDK decides what to do with it.
    match evaluate(license, &Check::for_product(now, product.id)) {
        Ok(()) | Err(Denial::Expired) => {}
        Err(denial) => return Err(errors::denied(denial)),
    }
    if license.active_device(&params.hardware_id).is_none() {
        return Err(errors::denied(Denial::DeviceNotActivated));
    }
    state.link.telemetry.validated(license.id, now);
    let facts = LicenseFacts {
        license,
        product,
        customer: snapshot.customer(license.customer_id),
        hardware_id: &params.hardware_id,
        environment: params.env.as_deref(),
        now,
    };
    Ok(signed_response(
        license_body(&facts, signing_key),
        signing_key,
    ))
}

/// `POST /api/v4/activate_license`: takes a seat for this device (idempotent for a device that
/// holds one already) and answers the license.
async fn activate_license(
    State(state): State<PublicState>,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let request = {
        let snapshot = state.store.load();
        let keyring = snapshot.keyring();
        let credential = auth::authenticate(&headers, keyring, SystemTime::now())?;
        let params = Params::from_body(&body)?;
        let signing_key = active_key(keyring)?;
        let (product, license) = find(&snapshot, credential.product_ids.as_slice(), &params)?;
        evaluate(license, &Check::for_product(now, product.id)).map_err(errors::denied)?;
        state.link.telemetry.validated(license.id, now);
        if license.active_device(&params.hardware_id).is_some() {
            let facts = LicenseFacts {
                license,
                product,
                customer: snapshot.customer(license.customer_id),
                hardware_id: &params.hardware_id,
                environment: params.env.as_deref(),
                now,
            };
            return Ok(signed_response(
                license_body(&facts, signing_key),
                signing_key,
            ));
        }
        ActivationRequest {
            license_key: license.key.clone(),
            product_id: Some(product.id),
            device_id: params.hardware_id.clone(),
            device_name: params
                .facts
                .get("hostname")
                .and_then(Value::as_str)
                .map(str::to_owned),
            client_facts: Value::Object(params.facts.clone()),
        }
    };
    let hardware_id = request.device_id.clone();
    let environment = request
        .client_facts
        .get("env")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let granted = super::seat::forward_activation(&state, request)
        .await
        .map_err(errors::from_authority)?;
    let snapshot = state.store.load();
    let signing_key = active_key(snapshot.keyring())?;
    let product = snapshot
        .product(granted.license.product_id)
        .ok_or_else(|| bad_request(errors::UNKNOWN_PRODUCT, "the product was just deleted"))?;
    let facts = LicenseFacts {
        license: &granted.license,
        product,
        customer: snapshot.customer(granted.license.customer_id),
        hardware_id: &hardware_id,
        environment: environment.as_deref(),
        now,
    };
    Ok(signed_response(
        license_body(&facts, signing_key),
        signing_key,
    ))
}

/// `POST /api/v4/deactivate_license`: frees this device's seat.
async fn deactivate_license(
    State(state): State<PublicState>,
    headers: HeaderMap,
    RequestBody(body): RequestBody,
) -> Result<Response, ApiError> {
    let (key, params) = {
        let snapshot = state.store.load();
        let credential = auth::authenticate(&headers, snapshot.keyring(), SystemTime::now())?;
        let params = Params::from_body(&body)?;
        let (_, license) = find(&snapshot, credential.product_ids.as_slice(), &params)?;
        (license.key.clone(), params)
    };
    let license = super::seat::forward_deactivation(&state, key, params.hardware_id.clone())
        .await
        .map_err(errors::from_authority)?;
    let times_activated = license.active_devices.len();
    Ok(axum::Json(json!({
        "deactivated": true,
        "hardware_id": params.hardware_id,
        "times_activated": times_activated,
    }))
    .into_response())
}

/// The raw request body. Over `--max-body-bytes` it is 413 `payload_too_large` in
/// LicenseSpring's `{status, code, message}`, not axum's plain-text rejection.
struct RequestBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for RequestBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Over the limit: 413 `payload_too_large`, in LicenseSpring's shape like every error.
        license_shared::http::read_body(request, state, errors::INVALID_JSON)
            .await
            .map(RequestBody)
    }
}

/// The key that signs answers; without one (never synced) nothing can be answered signed.
fn active_key(keyring: &Keyring) -> Result<&ClusterKey, ApiError> {
    keyring.active_signing_key().ok_or_else(|| {
        ApiError::unavailable(
            errors::SIGNING_KEY_UNAVAILABLE,
            "this data plane has not received the cluster's signing key yet",
        )
    })
}

/// The product (by short code, among those the credential may use) and the license the
/// request names: by `license_key` for key-based products, by `username` (the customer's
/// email) for user-based ones.
fn find<'s>(
    state: &'s StoreState,
    allowed: &[uuid::Uuid],
    params: &Params,
) -> Result<(&'s Product, &'s License), ApiError> {
    let product = state.product_by_code(&params.product).ok_or_else(|| {
        bad_request(
            errors::UNKNOWN_PRODUCT,
            format!("provided product {:?} was not found", params.product),
        )
    })?;
    if !allowed.contains(&product.id) {
        return Err(bad_request(
            errors::API_KEY_PRODUCT_NOT_ALLOWED,
            "this API key may not be used for the requested product",
        ));
    }
    let license = match product.authorization_method {
        AuthorizationMethod::LicenseKey => {
            let raw = params
                .license_key
                .as_deref()
                .ok_or_else(|| missing_parameters(&["license_key"]))?;
            license_shared::LicenseKey::parse(raw)
                .ok()
                .and_then(|key| state.license(&key))
                .filter(|license| license.product_id == product.id)
                .ok_or_else(|| {
                    bad_request(
                        errors::LICENSE_NOT_FOUND,
                        "license with the provided license_key not found",
                    )
                })?
        }
        AuthorizationMethod::User => {
            let username = params
                .username
                .as_deref()
                .ok_or_else(|| missing_parameters(&["username"]))?;
            user_license(state, product, username, params.license_id).ok_or_else(|| {
                bad_request(
                    errors::LICENSE_NOT_FOUND,
                    "license with the provided license user not found",
                )
            })?
        }
    };
    Ok((product, license))
}

/// The user's license of `product` (the one numbered `license_id` when given). A scan of the
/// licenses: user-based products are looked up by customer, which has no index here.
fn user_license<'s>(
    state: &'s StoreState,
    product: &Product,
    username: &str,
    license_id: Option<i64>,
) -> Option<&'s License> {
    state
        .licenses()
        .filter(|license| license.product_id == product.id)
        .filter(|license| license_id.is_none_or(|number| license.number == number))
        .filter(|license| {
            state
                .customer(license.customer_id)
                .is_some_and(|customer| customer.email.eq_ignore_ascii_case(username))
        })
        .min_by_key(|license| license.number)
}
