//! The native public routes (seed 003), answered from memory: `POST /api/licenses/verify`, and
//! `POST /api/licenses/validate`, which answers an already-active device locally and forwards a
//! new one to the control plane's activation authority; the JWKS and signed documents. Same
//! shapes and codes as the control plane's database-backed endpoints.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use license_shared::http::{ApiJson, JsonAnswer};
use license_shared::public_api::{
    ActivationAnswer, ValidateAnswer, ValidateRequest, VerifyAnswer, VerifyRequest,
    license_not_found,
};
use license_shared::signing::Jwks;
use license_shared::{ApiError, Check, evaluate};

use super::PublicState;

pub(super) async fn verify(
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
pub(super) async fn jwks(State(state): State<PublicState>) -> Json<Jwks> {
    Json(state.store.load().keyring().jwks())
}

/// The license's signed document (Kong's envelope), made here from the replicated facts with
/// the cluster's active key: byte-identical to the control plane's, as signing is
/// deterministic. For apps that keep a license to check offline.
pub(super) async fn document(
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

pub(super) async fn validate(
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
    let granted = super::seat::forward_activation(&state, request).await?;
    Ok(Json(ValidateAnswer::granted(granted, product_id, now)).into_response())
}
