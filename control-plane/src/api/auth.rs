//! Admin authentication: `Authorization: Bearer <token>`. The bootstrap token from
//! `--admin-token` / `ADMIN_TOKEN` is kept only as a hash and compared in constant time; other
//! tokens are looked up by hash in the database. Read-only tokens may only read.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use license_shared::{ApiError, codes};

use super::AppState;
use super::error::AppError;
use crate::tokens::{self, TokenHash};

/// How admin requests are authenticated.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Hash of the bootstrap token, when one is configured.
    pub bootstrap_token: Option<TokenHash>,
}

impl AuthConfig {
    pub fn new(bootstrap_token: Option<&str>) -> Self {
        Self {
            bootstrap_token: bootstrap_token.map(tokens::hash),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

/// Middleware: lets the request through only with a valid token that may do what it asks.
pub async fn require_admin(
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
    let Some(token) = bearer_token(headers) else {
        return Err(challenge(ApiError::unauthorized(
            codes::MISSING_TOKEN,
            "send an admin token as `Authorization: Bearer <token>`",
        )));
    };
    let access = authenticate(state, token).await?.ok_or_else(|| {
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
pub async fn authenticate(state: &AppState, token: &str) -> Result<Option<Access>, AppError> {
    let presented = tokens::hash(token);
    if state
        .auth
        .bootstrap_token
        .is_some_and(|bootstrap| tokens::hashes_match(&bootstrap, &presented))
    {
        return Ok(Some(Access::ReadWrite));
    }
    let read_only = tokens::find_by_hash(&state.db, &presented).await?;
    Ok(read_only.map(|read_only| {
        if read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        }
    }))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Marks a 401 with `WWW-Authenticate: Bearer`, as RFC 6750 asks.
fn challenge(error: ApiError) -> AppError {
    AppError::Challenge(error, HeaderValue::from_static("Bearer"))
}
