//! The public API of a data plane, answered from memory: `POST /api/licenses/verify`, and
//! `POST /api/licenses/validate`, which answers an already-active device locally and forwards a
//! new one to the control plane's activation authority. Same shapes and codes as the control
//! plane's database-backed endpoints.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use license_shared::http::{ApiJson, JsonAnswer, panic_response};
use license_shared::protocol::Change;
use license_shared::public_api::{
    ActivationAnswer, ValidateAnswer, ValidateRequest, VerifyAnswer, VerifyRequest,
    license_not_found,
};
use license_shared::signing::Jwks;
use license_shared::{ApiError, Check, evaluate};
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;

use crate::link::Link;
use crate::request_counter::{count_routed, unrouted_method, unrouted_path};
use crate::store::Store;

/// What the public handlers reach.
#[derive(Debug, Clone)]
pub struct PublicState {
    pub store: Arc<Store>,
    pub link: Arc<Link>,
    pub activation_timeout: Duration,
}

/// The public API as one service: the routes, then what every request passes through once —
/// catching a handler's panic as a 500 in the error shape, the body-size limit, and counting
/// for the usage report. These wrap the router rather than each route (`Router::layer`), which
/// would box and clone them again per route on every request.
pub fn service(
    state: PublicState,
    max_body_bytes: usize,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
    let count = count_routed(state.link.clone());
    let router = Router::new()
        .route("/api/licenses/verify", post(verify))
        .route("/api/licenses/validate", post(validate))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/licenses/{key}/document", get(document))
        .merge(crate::licensespring::router())
        .fallback(unrouted_path)
        .method_not_allowed_fallback(unrouted_method)
        .with_state(state);
    ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(count)
        .service(router)
}

async fn verify(
    State(state): State<PublicState>,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    let query = request.parse()?;
    let snapshot = state.store.load();
    let license = snapshot
        .license(&query.license_key)
        .ok_or_else(|| license_not_found(&query.license_key))?;
    let now = Utc::now();
    let check = Check {
        now,
        product_id: query.product_id,
        device_id: query.device_id.as_deref(),
    };
    state.link.telemetry.validated(license.id, now);
    // Encoded here, while the answer can still borrow from the snapshot.
    Ok(JsonAnswer(VerifyAnswer::new(license, &check)).into_response())
}

/// The cluster's public signing keys (RFC 8037 JWKS), to check `LicenseSignature` headers and
/// signed license documents with.
async fn jwks(State(state): State<PublicState>) -> Json<Jwks> {
    Json(state.store.load().keyring().jwks())
}

/// The license's signed document (Kong's envelope), made here from the replicated facts with
/// the cluster's active key: byte-identical to the control plane's, as signing is
/// deterministic. For apps that keep a license to check offline.
async fn document(
    State(state): State<PublicState>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let key = license_shared::fields::license_key(&key)?;
    let snapshot = state.store.load();
    let license = snapshot
        .license(&key)
        .ok_or_else(|| license_not_found(&key))?;
    let (Some(product), Some(customer), Some(signing_key)) = (
        snapshot.product(license.product_id),
        snapshot.customer(license.customer_id),
        snapshot.keyring().active_signing_key(),
    ) else {
        return Err(ApiError::unavailable(
            license_shared::codes::CONTROL_PLANE_UNAVAILABLE,
            "this data plane has not received everything the document needs yet",
        ));
    };
    let text = license_shared::document::sign(
        license_shared::document::license_payload(license, product, customer),
        signing_key,
    );
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

async fn validate(
    State(state): State<PublicState>,
    ApiJson(request): ApiJson<ValidateRequest>,
) -> Result<Response, ApiError> {
    let request = request.parse()?;
    let now = Utc::now();
    let product_id = request.product_id;
    {
        let snapshot = state.store.load();
        let license = snapshot
            .license(&request.license_key)
            .ok_or_else(|| license_not_found(&request.license_key))?;
        let check = Check {
            now,
            product_id,
            device_id: None,
        };
        evaluate(license, &check).map_err(ApiError::denied)?;
        state.link.telemetry.validated(license.id, now);
        if let Some(seat) = license.active_device(&request.device_id) {
            let check = Check {
                device_id: Some(&seat.device_id),
                ..check
            };
            let answer = ValidateAnswer {
                license: VerifyAnswer::new(license, &check),
                already_activated: true,
                activation: ActivationAnswer {
                    device_id: seat.device_id.clone(),
                    device_name: seat.device_name.clone(),
                    activated_at: seat.activated_at,
                },
            };
            return Ok(JsonAnswer(answer).into_response());
        }
    }
    let granted = state
        .link
        .activate(request, state.activation_timeout)
        .await?;
    // Serve the new seat at once, without waiting for the delta that will also bring it.
    state
        .store
        .apply_entity(Change::License(granted.license.clone()));
    Ok(Json(ValidateAnswer::granted(granted, product_id, now)).into_response())
}
