//! The OpenAPI 3 document of every route, served at `/v1/openapi.json`.
//!
//! It is written by hand (`openapi.json` beside this crate's manifest): the
//! handlers read JSON by hand to name the exact field at fault, so there
//! are no request types to derive a schema from. A test keeps it true: the
//! document's paths are exactly the router's routes, and `schemathesis`
//! (in the CLI's tests) checks every reply against it.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /v1/openapi.json`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value as Json;

    /// Every `.route("PATH", method(...))` of the router's sources, as
    /// `METHOD PATH`.
    fn routes() -> BTreeSet<String> {
        let mut routes = BTreeSet::new();
        for source in [include_str!("lib.rs"), include_str!("admin.rs")] {
            for call in source.split(".route(").skip(1) {
                let Some(call) = call.trim_start().strip_prefix('"') else { continue };
                let Some((path, rest)) = call.split_once('"') else { continue };
                // The call's arguments: up to its closing parenthesis.
                let mut depth = 1;
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '(' => 1,
                            ')' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(rest.len(), |(i, _)| i);
                let handlers = &rest[..end];
                for method in ["get", "post", "put", "delete", "patch"] {
                    let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                        !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if called {
                        routes.insert(format!("{} {path}", method.to_uppercase()));
                    }
                }
            }
        }
        routes
    }

    #[test]
    fn the_document_lists_exactly_the_routes_served() {
        let document: Json = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        let mut documented = BTreeSet::new();
        for (path, operations) in document["paths"].as_object().expect("paths") {
            for method in operations.as_object().expect("operations").keys() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        let served = routes();
        assert!(served.len() > 10, "the router's routes were not found: {served:?}");
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "documented but not served"
        );
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "served but not documented in openapi.json"
        );
    }
}
