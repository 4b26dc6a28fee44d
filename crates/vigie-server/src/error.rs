//! The one error type of every route: a status and a message, sent as
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vigie_core::ErrorCode;

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, naming the field, model or version.
    pub message: String,
}

impl ApiError {
    /// A 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// A 404: no such model, version or route.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    /// The status of a shared error code: the one place codes become statuses.
    pub fn from_code(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Corrupted | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError { status, message: message.into() }
    }
}

impl From<vigie_ml::MlError> for ApiError {
    fn from(error: vigie_ml::MlError) -> Self {
        ApiError::from_code(error.code(), error.to_string())
    }
}

impl ApiError {
    /// A 413: the body is over [`crate::MAX_BODY_BYTES`].
    pub fn too_large() -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
        }
    }
}

/// Refuses a request whose `Content-Length` is over the limit from its head
/// alone, before any of the body is read; bodies without a length are cut
/// at the limit when read.
pub async fn refuse_declared_oversize(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.parse::<u64>().ok());
    match declared {
        Some(length) if length > crate::MAX_BODY_BYTES as u64 => {
            unread_body(ApiError::too_large().into_response())
        }
        _ => next.run(request).await,
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::too_large();
        }
        ApiError { status: rejection.status(), message: rejection.body_text() }
    }
}

/// An error's message, kept in its response's extensions so that a
/// protocol with an error shape of its own (KServe V2) can restate it.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code =
            self.status.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_");
        let mut response =
            (self.status, Json(json!({"error": {"code": code, "message": &self.message}})))
                .into_response();
        response.extensions_mut().insert(ErrorMessage(self.message));
        response
    }
}

/// A reply sent without reading the request's body: it says
/// `Connection: close`, since the server will not read the rest of that
/// request and closes the connection; a client that kept it for its next
/// request would find it gone.
pub fn unread_body(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// Longest a request may take before it is answered 503: a request waiting
/// on a store that hangs gets an answer rather than holding its client.
pub const REQUEST_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Answers 503 (JSON, with `Retry-After`) for a request still running after
/// `limit` ([`REQUEST_TIME_LIMIT`] when served); its work is dropped at its
/// next await point.
pub async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = ApiError::from_code(
                ErrorCode::Unavailable,
                format!("the request took longer than {limit:?} and was abandoned"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            unread_body(response)
        }
    }
}

/// Any route that does not exist.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    unread_body(ApiError::not_found(format!("no route {}", uri.path())).into_response())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn a_request_over_the_time_limit_is_answered_503_in_json() {
        let app = Router::new()
            .route("/slow", get(|| tokio::time::sleep(Duration::from_secs(5))))
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(20),
                super::time_limit,
            ));
        let slow = app
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).expect("request"))
            .await
            .expect("a reply");
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(slow.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(slow.into_body(), 1 << 16).await.expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("20ms")), "{body}");
        let fast = app
            .oneshot(Request::get("/fast").body(Body::empty()).expect("request"))
            .await
            .expect("a reply");
        assert_eq!(fast.status(), StatusCode::OK);
    }
}
