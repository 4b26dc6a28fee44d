//! Readiness through the router, in process, over a project with no model:
//! a stopping server is unready and says why, its liveness probes still
//! answer, and an unreadable online store is named. (A stopping server no
//! longer accepts connections, so the drain is seen here, not over a socket.)

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value as Json;
use tower::ServiceExt as _;
use vigie_online::OnlineLocation;
use vigie_registry::{Registry, RegistryLocation};

use crate::{Access, AuditLog, AuditOptions, FeedbackLog, Metrics, OnlineReader, Parts, Shared};

/// A server's shared state and router over a scratch project folder.
fn server(dir: &std::path::Path) -> (Arc<Shared>, axum::Router) {
    let state_dir = dir.to_owned();
    let open: crate::OpenRegistry = Arc::new(move || {
        Registry::connect(&RegistryLocation::new(&state_dir)).map_err(|e| e.to_string())
    });
    let shared = Shared::start(open, None).expect("an empty catalog");
    let metrics = Metrics::new().expect("metrics");
    let audit_dir = dir.join("audit");
    let (audit, _) =
        AuditLog::open(&audit_dir, AuditOptions::default(), metrics.clone()).expect("audit log");
    let stores = crate::Stores {
        online: OnlineReader::new(OnlineLocation::embedded(dir.join("online.db")), metrics.clone()),
        feedback: FeedbackLog::open(&dir.join("feedback.db"), &audit_dir, &metrics)
            .expect("feedback log"),
        predictions: None,
        events: None,
    };
    let parts = Parts {
        audit,
        metrics,
        access: Arc::new(Access::Open),
        stores,
        max_in_flight: crate::DEFAULT_MAX_IN_FLIGHT,
    };
    (Arc::clone(&shared), crate::router(shared, parts))
}

/// GET `path`: the status and the body (JSON, else text as a JSON string).
async fn get(router: &axum::Router, path: &str) -> (StatusCode, Json) {
    let request = Request::get(path).body(Body::empty()).expect("a request");
    let response = router.clone().oneshot(request).await.expect("a reply");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(Json::String(text)))
}

#[tokio::test]
async fn a_draining_server_is_unready_and_says_so_while_liveness_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (shared, router) = server(dir.path());
    let (status, body) = get(&router, "/v2/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((&body["ready"], &body["models"]), (&Json::Bool(true), &Json::from(0)));
    for check in ["draining", "catalog", "audit", "online_store"] {
        assert_eq!(body["checks"][check]["ok"], Json::Bool(true), "{check}: {body}");
    }
    assert!(
        body["checks"]["online_store"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no store yet"))
    );

    shared.start_draining();
    let (status, body) = get(&router, "/v2/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], Json::Bool(false));
    assert_eq!(body["checks"]["draining"]["ok"], Json::Bool(false), "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("not ready: draining: the server is stopping"), "{body}");
    for live in ["/v2/health/live", "/ping", "/health"] {
        assert_eq!(get(&router, live).await.0, StatusCode::OK, "{live}");
    }
}

#[tokio::test]
async fn an_unreadable_online_store_is_named_and_its_repair_is_seen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_shared, router) = server(dir.path());
    let store = dir.path().join("online.db");
    std::fs::write(&store, "not a database").expect("write a broken store");
    let (status, body) = get(&router, "/v2/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["online_store"]["ok"], Json::Bool(false), "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("online_store: ")), "{body}");
    assert_eq!(body["checks"]["audit"]["ok"], Json::Bool(true), "{body}");
    std::fs::remove_file(&store).expect("remove the broken store");
    assert_eq!(get(&router, "/v2/health/ready").await.0, StatusCode::OK);
}
