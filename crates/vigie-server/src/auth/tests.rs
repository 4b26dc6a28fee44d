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
        verified: std::sync::Mutex::new(HashMap::new()),
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
        exp: None,
        nbf: None,
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

#[test]
fn a_verified_token_is_remembered_while_its_times_and_its_key_hold() {
    let auth = authenticator();
    let key = || {
        Arc::new(IssuerKey { key: DecodingKey::from_secret(b"test only").expect("key"), alg: None })
    };
    let first = key();
    auth.keys.try_write().expect("keys").by_kid.insert("k1".to_owned(), Arc::clone(&first));
    let now = unix_now();
    let verified = |from: u64, until: u64| Verified {
        caller: Caller {
            subject: "batch".to_owned(),
            client_id: None,
            rights: vec![Right::Predict],
        },
        kid: "k1".to_owned(),
        key: Arc::clone(&first),
        from,
        until,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let remembered = |token: &str| runtime.block_on(auth.remembered(token)).map(|c| c.subject);

    auth.remember("valid", verified(now - 10, now + 60));
    auth.remember("expired", verified(now - 120, now - 1));
    auth.remember("not yet", verified(now + 5, now + 60));
    assert_eq!(remembered("valid").as_deref(), Some("batch"));
    assert_eq!(remembered("expired"), None);
    assert_eq!(remembered("not yet"), None);
    assert_eq!(remembered("never seen"), None);

    // The issuer rotated its keys: the same key id now holds another key.
    auth.keys.try_write().expect("keys").by_kid.insert("k1".to_owned(), key());
    assert_eq!(remembered("valid"), None, "checked afresh against the new key");
    // The key id was withdrawn.
    auth.keys.try_write().expect("keys").by_kid.clear();
    assert_eq!(remembered("valid"), None);

    // Full: the expired ones go first, and the newest is kept.
    auth.keys.try_write().expect("keys").by_kid.insert("k1".to_owned(), Arc::clone(&first));
    for i in 0..VERIFIED_CAPACITY {
        auth.remember(&format!("t{i}"), verified(now - 10, now + 60));
    }
    auth.remember("last", verified(now - 10, now + 60));
    let size = auth.verified.lock().expect("lock").len();
    assert!(size <= VERIFIED_CAPACITY, "{size} remembered");
    assert_eq!(remembered("last").as_deref(), Some("batch"));
}
