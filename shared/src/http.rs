//! axum extractors whose rejections come back in the API's error shape with a precise code:
//! [`ApiJson`] (any content type, parsed as JSON, errors name the offending field) and
//! [`ApiQuery`]; and [`JsonAnswer`], a JSON response sized for the public API's answers.

use crate::{ApiError, codes};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A JSON body. The content type is not checked, so `curl -d` works as is.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = read_body(request, state, codes::MALFORMED_JSON).await?;
        parse_json(&body).map(ApiJson)
    }
}

/// A JSON response written into a buffer that fits a verify or validate answer at once
/// (axum's `Json` starts at 128 bytes and grew twice for every verify answer on the data
/// plane's hot path).
#[derive(Debug, Clone)]
pub struct JsonAnswer<T>(pub T);

/// Room for an answer with a few features and devices; larger ones grow as usual.
const ANSWER_CAPACITY: usize = 512;

impl<T: Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(ANSWER_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "an answer could not be encoded");
                ApiError::internal().into_response()
            }
        }
    }
}

/// The raw request body. Over the body limit it is 413 `payload_too_large` in the error shape
/// (the dialects turn that into theirs), not axum's plain-text rejection; a body that cannot
/// be read is 400 with `unreadable_code`.
pub async fn read_body<S: Send + Sync>(
    request: Request,
    state: &S,
    unreadable_code: &'static str,
) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    413,
                    codes::PAYLOAD_TOO_LARGE,
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::bad_request(unreadable_code, rejection.body_text())
            }
        })
}

/// Parses a JSON document, naming the field at fault in the error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // A well-formed body (nearly every one) is parsed without tracking the path, which costs
    // on the data plane's hot path; a bad one is parsed again, with it, for the message.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            codes::MALFORMED_JSON,
            "the request body is empty; expected a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        json_error(&path, &inner)
    })?;
    deserializer
        .end()
        .map_err(|error| json_error(".", &error))?;
    Ok(value)
}

fn json_error(path: &str, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let described = if path == "." {
        error.to_string()
    } else {
        format!("{path}: {error}")
    };
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            codes::MALFORMED_JSON,
            format!("the request body is not valid JSON: {error}"),
        ),
        Category::Data => {
            let text = error.to_string();
            let code = if text.starts_with("unknown field") {
                codes::UNKNOWN_FIELD
            } else if text.starts_with("missing field") {
                codes::MISSING_FIELD
            } else {
                codes::INVALID_FIELD
            };
            ApiError::bad_request(code, described)
        }
    }
}

/// The fallback for unknown routes, in the error shape.
pub async fn not_found() -> ApiError {
    ApiError::not_found(codes::NOT_FOUND, "no such endpoint")
}

/// The fallback for a known route asked with another method, in the error shape.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        405,
        codes::METHOD_NOT_ALLOWED,
        "this endpoint does not support that method",
    )
}

/// The answer when a handler panicked (for `tower_http::catch_panic`): a 500 in the error
/// shape, with the details left to the log.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message = crate::error::panic_message(panic.as_ref());
    tracing::error!(panic = message, "a request handler panicked");
    ApiError::internal().into_response()
}

/// Query-string parameters.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::bad_request(codes::INVALID_QUERY, rejection.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        max_activations: Option<i64>,
        name: String,
    }

    fn code_of(body: &str) -> String {
        parse_json::<Body>(body.as_bytes())
            .expect_err("should be refused")
            .code
            .into_owned()
    }

    #[test]
    fn each_kind_of_bad_json_has_its_code() {
        assert_eq!(code_of(""), codes::MALFORMED_JSON);
        assert_eq!(code_of("{"), codes::MALFORMED_JSON);
        assert_eq!(code_of(r#"{"name":"a"} trailing"#), codes::MALFORMED_JSON);
        assert_eq!(code_of(r#"{"name":"a","nope":1}"#), codes::UNKNOWN_FIELD);
        assert_eq!(code_of(r#"{}"#), codes::MISSING_FIELD);
        assert_eq!(code_of(r#"[1]"#), codes::INVALID_FIELD);
        let error =
            parse_json::<Body>(br#"{"name":"a","maxActivations":"5"}"#).expect_err("wrong type");
        assert_eq!(error.code, codes::INVALID_FIELD);
        assert!(
            error.message.starts_with("maxActivations: invalid type"),
            "{}",
            error.message
        );
    }
}
