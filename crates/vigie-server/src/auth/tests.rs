//! The parts of authentication that need no issuer: reading the header,
//! scopes to rights, and refusing algorithms before any key is looked at.

use serde_json::json;

use super::*;

fn authenticator() -> Authenticator {
    Authenticator {
        issuer: "http://127.0.0.1:1".to_owned(),
        audience: "vigie".to_owned(),
        jwks_url: "http://127.0.0.1:1/jwks".to_owned(),
        algorithms: DEFAULT_ALGORITHMS.to_vec(),
        keys: tokio::sync::RwLock::new(KeySet { by_kid: HashMap::new(), fetched: Instant::now() }),
        refresh: tokio::sync::Mutex::new(None),
    }
}

fn token_with_header(header: &str) -> String {
    format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode("{}"))
}

#[test]
fn the_bearer_scheme_is_required_and_case_insensitive() {
    assert_eq!(bearer_token(Some("Bearer abc")).ok(), Some("abc"));
    assert_eq!(bearer_token(Some("bearer  abc ")).ok(), Some("abc"));
    assert!(matches!(bearer_token(None), Err(AuthError::MissingToken)));
    assert!(matches!(bearer_token(Some("Basic dXNlcjpw")), Err(AuthError::MissingToken)));
    assert!(matches!(bearer_token(Some("Bearer ")), Err(AuthError::MissingToken)));
}

#[test]
fn none_and_hmac_are_refused_by_name() {
    let auth = authenticator();
    for alg in ["none", "HS256", "HS512"] {
        let token = token_with_header(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#));
        let error = auth.pinned_header(&token).expect_err(alg);
        assert_eq!(
            error.to_string(),
            format!(
                "algorithm \"{alg}\" is not allowed (allowed: RS256, RS384, RS512, PS256, PS384, \
                 PS512, ES256, ES384, EdDSA)"
            )
        );
    }
    let (alg, kid) =
        auth.pinned_header(&token_with_header(r#"{"alg":"RS256","kid":"k1"}"#)).expect("RS256");
    assert_eq!((alg, kid.as_str()), (Algorithm::RS256, "k1"));
    let error = auth.pinned_header(&token_with_header(r#"{"alg":"RS256"}"#)).expect_err("no kid");
    assert_eq!(error.to_string(), "malformed token: the header has no key id (kid)");
}

#[test]
fn scopes_grant_their_rights_only() {
    let claims = Claims {
        sub: None,
        client_id: Some("batch".to_owned()),
        azp: None,
        scope: Some("openid vigie:predict vigie:predict".to_owned()),
        scp: Some(json!(["vigie:feedback"])),
    };
    let caller = caller(claims);
    assert_eq!(caller.subject, "batch");
    assert_eq!(caller.rights, [Right::Predict, Right::Feedback]);
    assert!(caller.require(Right::Predict).is_ok());
    let refused = caller.require(Right::Explain).expect_err("no explain scope");
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.message,
        "the token of batch lacks the scope \"vigie:explain\" (it has: vigie:predict vigie:feedback)"
    );
}
