//! Admin authentication: `Authorization: Bearer <token>`, Kong's `Kong-Admin-Token: <token>`, or
//! HTTP basic `Authorization: Basic base64(<user>:<token>)` as Craft's API takes it (the user
//! name is not checked; the token is the secret). The bootstrap token from
//! `--admin-token` / `ADMIN_TOKEN` is kept only as a hash and compared in constant time; other
//! tokens are looked up by hash in the database. Read-only tokens may only read.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use license_shared::{ApiError, codes};

use crate::api::AppState;
use crate::api::common::error::AppError;
use crate::tokens::{self, TokenHash};

/// How admin requests are authenticated.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthConfig {
    /// Hash of the bootstrap token, when one is configured.
    pub bootstrap_token: Option<TokenHash>,
}

impl AuthConfig {
    pub(crate) fn new(bootstrap_token: Option<&str>) -> Self {
        Self {
            bootstrap_token: bootstrap_token.map(tokens::hash),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadWrite,
    ReadOnly,
}

/// Middleware: lets the request through only with a valid token that may do what it asks.
pub(crate) async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match authorize(&state, request.headers(), request.method()).await {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn authorize(state: &AppState, headers: &HeaderMap, method: &Method) -> Result<(), AppError> {
    let Some(token) = presented_token(headers) else {
        return Err(challenge(ApiError::unauthorized(
            codes::MISSING_TOKEN,
            "send an admin token as `Authorization: Bearer <token>` (or `Kong-Admin-Token`, \
             or HTTP basic auth with the token as password)",
        )));
    };
    let access = authenticate(state, &token).await?.ok_or_else(|| {
        challenge(ApiError::unauthorized(
            codes::INVALID_TOKEN,
            "the admin token is not valid",
        ))
    })?;
    let writes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && access == Access::ReadOnly {
        return Err(ApiError::forbidden(
            codes::READ_ONLY_TOKEN,
            "this token is read-only and cannot change anything",
        )
        .into());
    }
    Ok(())
}

/// The access a token grants, or `None` when it grants nothing.
pub(crate) async fn authenticate(
    state: &AppState,
    token: &str,
) -> Result<Option<Access>, AppError> {
    let presented = tokens::hash(token);
    if state
        .auth
        .bootstrap_token
        .is_some_and(|bootstrap| tokens::hashes_match(&bootstrap, &presented))
    {
        return Ok(Some(Access::ReadWrite));
    }
    let read_only = crate::db::tokens::find_by_hash(&state.db, &presented).await?;
    Ok(read_only.map(|read_only| {
        if read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        }
    }))
}

/// The token a request presents, in any of the accepted forms.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, credentials) = value.split_once(' ')?;
        let credentials = credentials.trim();
        let token = if scheme.eq_ignore_ascii_case("bearer") {
            credentials.to_owned()
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(credentials).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            decoded.split_once(':')?.1.to_owned()
        } else {
            return None;
        };
        return (!token.is_empty()).then_some(token);
    }
    let token = headers.get(KONG_ADMIN_TOKEN)?.to_str().ok()?.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Kong's admin token header.
const KONG_ADMIN_TOKEN: &str = "kong-admin-token";

/// Marks a 401 with `WWW-Authenticate: Bearer`, as RFC 6750 asks.
fn challenge(error: ApiError) -> AppError {
    AppError::Challenge(error, HeaderValue::from_static("Bearer"))
}
