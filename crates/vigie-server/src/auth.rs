//! OAuth2 bearer authentication: every request but the health checks carries
//! a JWT access token from one issuer, checked here before any handler runs.
//!
//! The token's signature is checked against the issuer's published keys
//! (JWKS, found through `ISSUER/.well-known/openid-configuration` unless
//! given), then its `iss`, `aud`, `exp` and `nbf` claims (with
//! [`LEEWAY_SECONDS`] for clock skew). Algorithms are pinned to the
//! public-key families (RS*, PS*, ES*, EdDSA): `none` and HMAC are refused
//! before any key is looked at, so a public key can never be used as an HMAC
//! secret. The keys are cached; a token naming an unknown key id triggers one
//! refetch, at most once per [`REFRESH_INTERVAL`] whatever the traffic, so
//! tokens with random key ids cannot turn the server into a load on the
//! issuer. Fetches run on the blocking pool, never on the request runtime.
//!
//! Scopes become [`Right`]s: `vigie:predict`, `vigie:explain`,
//! `vigie:feedback`, `vigie:admin` and `vigie:ingest` (space-separated in the `scope` claim,
//! or a list in `scp`). Each scope grants its right alone; `vigie:admin`
//! does not imply the others. A handler checks what it needs with
//! `caller.require(Right::Predict)?`.
//!
//! Refusals: 401 with `WWW-Authenticate: Bearer error="invalid_token"` (or
//! no error for a missing token) and a JSON body naming why; 403 naming the
//! missing scope. Without an issuer configured (loopback only, see the CLI)
//! every request is an anonymous caller with every right.
//!
//! A token whose signature and claims passed is remembered (at most
//! [`VERIFIED_CAPACITY`] of them) until its `exp` (plus the leeway), so a
//! client that sends the same token with every request pays for one
//! signature check, not one per request. A remembered token is accepted again
//! only while the key that verified it is still the issuer's key for its id
//! in the current key set, so a withdrawn or rotated key stops it exactly as
//! it stops a token checked afresh.
//!
//! Not here: token introspection (opaque tokens), several issuers, mTLS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::error::ApiError;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// The least time between two JWKS fetches caused by unknown key ids.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How long fetched keys are trusted before the next token refetches them
/// (so a key the issuer withdrew stops being accepted).
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);

/// Verified tokens remembered at most; when full, the expired ones are
/// dropped, and all of them if none had expired.
pub const VERIFIED_CAPACITY: usize = 10_000;

/// Timeout of one request to the issuer.
const ISSUER_TIMEOUT: Duration = Duration::from_secs(10);

/// The algorithms accepted unless configured otherwise: every public-key
/// family, never `none` or HMAC.
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What a caller may do; each is granted by one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    /// Score records (`vigie:predict`).
    Predict,
    /// Ask for per-column explanations (`vigie:explain`).
    Explain,
    /// Send ground truth (`vigie:feedback`).
    Feedback,
    /// Registry and deployment administration (`vigie:admin`).
    Admin,
    /// Post events to the streaming sources (`vigie:ingest`).
    Ingest,
}

impl Right {
    /// Every right, in order.
    pub const ALL: [Right; 5] =
        [Right::Predict, Right::Explain, Right::Feedback, Right::Admin, Right::Ingest];

    /// The scope that grants this right.
    pub fn scope(self) -> &'static str {
        match self {
            Right::Predict => "vigie:predict",
            Right::Explain => "vigie:explain",
            Right::Feedback => "vigie:feedback",
            Right::Admin => "vigie:admin",
            Right::Ingest => "vigie:ingest",
        }
    }

    fn from_scope(scope: &str) -> Option<Right> {
        Right::ALL.into_iter().find(|right| right.scope() == scope)
    }
}

/// Who made a request and what it may do; in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's `sub`, or `anonymous` without authentication.
    pub subject: String,
    /// The OAuth2 client (`client_id` or `azp` claim), when the token names it.
    pub client_id: Option<String>,
    /// The rights its scopes grant.
    pub rights: Vec<Right>,
}

impl Caller {
    /// The caller of a server without authentication: every right.
    pub fn anonymous() -> Caller {
        Caller { subject: "anonymous".to_owned(), client_id: None, rights: Right::ALL.to_vec() }
    }

    /// Ok when the caller has `right`, else a 403 naming the missing scope.
    pub fn require(&self, right: Right) -> Result<(), ApiError> {
        if self.rights.contains(&right) {
            return Ok(());
        }
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "the token of {} lacks the scope \"{}\" (it has: {})",
                self.subject,
                right.scope(),
                self.scopes()
            ),
        })
    }

    fn scopes(&self) -> String {
        if self.rights.is_empty() {
            return "no vigie scope".to_owned();
        }
        self.rights.iter().map(|right| right.scope()).collect::<Vec<_>>().join(" ")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// The caller the authentication layer recorded. Its absence is a bug in
    /// the router's assembly, answered as a 500 rather than served openly.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::from_code(
                vigie_core::ErrorCode::Internal,
                "no authentication layer ran for this route",
            )
        })
    }
}

/// Where the tokens come from and whom they must be for.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The issuer URL, exactly as tokens name it in `iss`.
    pub issuer: String,
    /// The audience tokens must name in `aud`.
    pub audience: String,
    /// The JWKS URL; found through the issuer's discovery document when none.
    pub jwks_url: Option<String>,
    /// The accepted algorithms; [`DEFAULT_ALGORITHMS`] when empty.
    pub algorithms: Vec<Algorithm>,
}

/// Why a request was not authenticated (401), or the issuer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token: send Authorization: Bearer <access token>")]
    MissingToken,
    /// Not three base64url parts with a JSON header.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// An algorithm outside the pinned list, such as `none` or HS256.
    #[error("algorithm \"{found}\" is not allowed (allowed: {allowed})")]
    AlgorithmNotAllowed {
        /// The token header's `alg`.
        found: String,
        /// The pinned algorithms.
        allowed: String,
    },
    /// No key of the issuer has the token's key id, even after a refetch.
    #[error("unknown key id {0:?}: the issuer publishes no such key")]
    UnknownKey(String),
    /// The key exists but is for another algorithm.
    #[error("key {kid:?} is for {key_alg}, not {token_alg}")]
    KeyAlgorithmMismatch {
        /// The key id.
        kid: String,
        /// What the key is for.
        key_alg: String,
        /// What the token says.
        token_alg: String,
    },
    /// The signature does not verify with the issuer's key.
    #[error("bad signature: the token was not signed by the issuer's key {0:?}")]
    BadSignature(String),
    /// `exp` is in the past.
    #[error("the token expired (exp is in the past)")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet (nbf is in the future)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer {found}: tokens must be issued by {expected}")]
    WrongIssuer {
        /// The token's `iss`.
        found: String,
        /// The configured issuer.
        expected: String,
    },
    /// `aud` does not name the configured audience.
    #[error("wrong audience {found}: tokens must be for {expected:?}")]
    WrongAudience {
        /// The token's `aud`.
        found: String,
        /// The configured audience.
        expected: String,
    },
    /// A required claim is absent or has the wrong type.
    #[error("claim \"{0}\" is missing or malformed")]
    BadClaim(String),
    /// The issuer could not be reached or answered nonsense (a 503 on requests).
    #[error("the issuer's keys at {url} are unavailable: {reason}")]
    Issuer {
        /// The URL fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, challenge) = match &self {
            AuthError::Issuer { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
            AuthError::MissingToken => (StatusCode::UNAUTHORIZED, Some("Bearer".to_owned())),
            _ => (
                StatusCode::UNAUTHORIZED,
                Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    message.replace(['"', '\\'], "'")
                )),
            ),
        };
        let mut response = ApiError { status, message }.into_response();
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// How requests are authenticated: not at all (loopback only), or by bearer tokens.
#[expect(clippy::large_enum_variant, reason = "one per server, behind an Arc")]
pub enum Access {
    /// Every request is [`Caller::anonymous`].
    Open,
    /// Every request but the health checks needs a valid token.
    Bearer(Authenticator),
}

/// Checks bearer tokens against one issuer's keys.
pub struct Authenticator {
    issuer: String,
    audience: String,
    jwks_url: String,
    algorithms: Vec<Algorithm>,
    keys: tokio::sync::RwLock<KeySet>,
    /// Held while refetching, so concurrent unknown key ids cause one fetch.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// Tokens already verified: token → who and until when.
    verified: std::sync::Mutex<HashMap<Box<str>, Verified>>,
}

/// A token that passed every check, remembered.
struct Verified {
    caller: Caller,
    kid: String,
    /// The key that checked its signature.
    key: Arc<IssuerKey>,
    /// Unix seconds from which (`nbf` less the leeway) and until which (`exp` plus the
    /// leeway) jsonwebtoken accepts it.
    from: u64,
    until: u64,
}

impl Verified {
    fn valid_at(&self, now: u64) -> bool {
        self.from <= now && now <= self.until
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The issuer's keys by key id, and when they were fetched.
struct KeySet {
    by_kid: HashMap<String, Arc<IssuerKey>>,
    fetched: Instant,
}

/// One published key, parsed once when fetched.
struct IssuerKey {
    key: DecodingKey,
    /// The JWK's `alg`, when it pins one.
    alg: Option<String>,
}

impl IssuerKey {
    /// Ok when a token signed with `alg` may be checked with this key.
    fn fits(&self, kid: &str, alg: Algorithm) -> Result<(), AuthError> {
        let token_alg = format!("{alg:?}");
        let (fits, key_alg) = match &self.alg {
            Some(key_alg) => (*key_alg == token_alg, key_alg.clone()),
            None => (self.key.family() == alg.family(), format!("{:?} keys", self.key.family())),
        };
        if fits {
            return Ok(());
        }
        Err(AuthError::KeyAlgorithmMismatch { kid: kid.to_owned(), key_alg, token_alg })
    }
}

/// The claims read from a token; the standard ones are checked by jsonwebtoken.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
    scope: Option<String>,
    scp: Option<Json>,
    /// Checked by jsonwebtoken; read again to know how long the token may be remembered.
    exp: Option<u64>,
    nbf: Option<u64>,
}

impl Authenticator {
    /// Finds the JWKS URL (discovery) and fetches the keys once, so a wrong
    /// issuer URL fails at startup. Blocking: call it before the runtime or
    /// on the blocking pool.
    pub fn connect(config: AuthConfig) -> Result<Authenticator, AuthError> {
        let jwks_url = match config.jwks_url {
            Some(url) => url,
            None => discover_jwks_url(&config.issuer)?,
        };
        let keys = fetch_keys(&jwks_url)?;
        let algorithms = if config.algorithms.is_empty() {
            DEFAULT_ALGORITHMS.to_vec()
        } else {
            config.algorithms
        };
        Ok(Authenticator {
            issuer: config.issuer,
            audience: config.audience,
            jwks_url,
            algorithms,
            keys: tokio::sync::RwLock::new(KeySet { by_kid: keys, fetched: Instant::now() }),
            refresh: tokio::sync::Mutex::new(None),
            verified: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The JWKS URL in use.
    pub fn jwks_url(&self) -> &str {
        &self.jwks_url
    }

    /// The caller a request's `Authorization` header proves, or why not.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let token = bearer_token(authorization)?;
        if let Some(caller) = self.remembered(token).await {
            return Ok(caller);
        }
        let (alg, kid) = self.pinned_header(token)?;
        let issuer_key = self.key(&kid).await?;
        issuer_key.fits(&kid, alg)?;
        let claims = jsonwebtoken::decode::<Claims>(token, &issuer_key.key, &self.validation(alg))
            .map_err(|e| self.explain(e, &kid, token))?
            .claims;
        let leeway = self.validation(alg).leeway;
        let verified = Verified {
            from: claims.nbf.map_or(0, |nbf| nbf.saturating_sub(leeway)),
            until: claims.exp.map_or(0, |exp| exp.saturating_add(leeway)),
            caller: caller(claims),
            kid,
            key: issuer_key,
        };
        let caller = verified.caller.clone();
        self.remember(token, verified);
        Ok(caller)
    }

    /// The caller of a token verified before, if it is still within its times and the
    /// key that verified it is still the current key set's key for its id.
    async fn remembered(&self, token: &str) -> Option<Caller> {
        let (kid, key, caller) = {
            let verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let known = verified.get(token).filter(|v| v.valid_at(unix_now()))?;
            (known.kid.clone(), Arc::clone(&known.key), known.caller.clone())
        };
        let keys = self.keys.read().await;
        let current = keys.by_kid.get(&kid).filter(|_| keys.fetched.elapsed() < KEYS_MAX_AGE)?;
        Arc::ptr_eq(current, &key).then_some(caller)
    }

    fn remember(&self, token: &str, verified: Verified) {
        let mut remembered =
            self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if remembered.len() >= VERIFIED_CAPACITY {
            let now = unix_now();
            remembered.retain(|_, v| v.valid_at(now));
            if remembered.len() >= VERIFIED_CAPACITY {
                remembered.clear();
            }
        }
        remembered.insert(token.into(), verified);
    }

    /// The header's algorithm, checked against the pinned list before
    /// jsonwebtoken sees the token (it cannot even parse `none`), and key id.
    fn pinned_header(&self, token: &str) -> Result<(Algorithm, String), AuthError> {
        let header = decode_part(token.split('.').next().unwrap_or_default())
            .ok_or_else(|| AuthError::Malformed("the header is not base64url JSON".to_owned()))?;
        let found = header.get("alg").and_then(Json::as_str).unwrap_or("(none given)");
        let alg = self.algorithms.iter().copied().find(|a| format!("{a:?}") == found).ok_or_else(
            || AuthError::AlgorithmNotAllowed {
                found: found.to_owned(),
                allowed: self
                    .algorithms
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        )?;
        let kid = header
            .get("kid")
            .and_then(Json::as_str)
            .ok_or_else(|| AuthError::Malformed("the header has no key id (kid)".to_owned()))?;
        Ok((alg, kid.to_owned()))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        validation
    }

    /// The key with id `kid`: from the cache, else after one (rate-limited) refetch.
    async fn key(&self, kid: &str) -> Result<Arc<IssuerKey>, AuthError> {
        {
            let keys = self.keys.read().await;
            if keys.fetched.elapsed() < KEYS_MAX_AGE
                && let Some(key) = keys.by_kid.get(kid)
            {
                return Ok(Arc::clone(key));
            }
        }
        self.refetch().await?;
        self.keys
            .read()
            .await
            .by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey(kid.to_owned()))
    }

    /// Fetches the JWKS again unless another fetch happened less than
    /// [`REFRESH_INTERVAL`] ago; waits for a fetch in progress.
    async fn refetch(&self) -> Result<(), AuthError> {
        let mut last = self.refresh.lock().await;
        let stale = self.keys.read().await.fetched.elapsed() >= KEYS_MAX_AGE;
        if !stale && last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let url = self.jwks_url.clone();
        let fetched = tokio::task::spawn_blocking(move || fetch_keys(&url))
            .await
            .map_err(|e| AuthError::Issuer { url: self.jwks_url.clone(), reason: e.to_string() })?;
        match fetched {
            Ok(by_kid) => {
                *self.keys.write().await = KeySet { by_kid, fetched: Instant::now() };
                Ok(())
            }
            // Keep serving with the keys we have; the next refetch may work.
            Err(_) if !stale => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// A jsonwebtoken error as a reason the client can act on.
    fn explain(&self, error: jsonwebtoken::errors::Error, kid: &str, token: &str) -> AuthError {
        // Only to name the wrong value: the signature has been checked by now.
        let unverified = || decode_part(token.split('.').nth(1).unwrap_or_default());
        match error.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature(kid.to_owned()),
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer {
                found: unverified().map_or_else(String::new, |c| c["iss"].to_string()),
                expected: self.issuer.clone(),
            },
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                found: unverified().map_or_else(String::new, |c| c["aud"].to_string()),
                expected: self.audience.clone(),
            },
            ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                AuthError::BadClaim(claim.clone())
            }
            _ => AuthError::Malformed(error.to_string()),
        }
    }
}

/// One base64url JSON part of a JWT, unverified.
fn decode_part(part: &str) -> Option<Json> {
    URL_SAFE_NO_PAD.decode(part).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

fn bearer_token(authorization: Option<&str>) -> Result<&str, AuthError> {
    let value = authorization.ok_or(AuthError::MissingToken)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

fn caller(claims: Claims) -> Caller {
    let mut scopes: Vec<String> =
        claims.scope.unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    match claims.scp {
        Some(Json::String(list)) => scopes.extend(list.split_whitespace().map(str::to_owned)),
        Some(Json::Array(list)) => {
            scopes.extend(list.iter().filter_map(Json::as_str).map(str::to_owned));
        }
        _ => {}
    }
    let mut rights = Vec::new();
    for right in scopes.iter().filter_map(|scope| Right::from_scope(scope)) {
        if !rights.contains(&right) {
            rights.push(right);
        }
    }
    let client_id = claims.client_id.or(claims.azp);
    let subject = claims.sub.or_else(|| client_id.clone()).unwrap_or_else(|| "?".to_owned());
    Caller { subject, client_id, rights }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(ISSUER_TIMEOUT)).build().into()
}

fn get_json(url: &str) -> Result<Json, AuthError> {
    let issuer_error = |reason: String| AuthError::Issuer { url: url.to_owned(), reason };
    agent()
        .get(url)
        .call()
        .map_err(|e| issuer_error(e.to_string()))?
        .body_mut()
        .read_json::<Json>()
        .map_err(|e| issuer_error(format!("not JSON: {e}")))
}

/// The `jwks_uri` of the issuer's OpenID discovery document, after checking
/// that the document names the same issuer.
fn discover_jwks_url(issuer: &str) -> Result<String, AuthError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let document = get_json(&url)?;
    let named = document.get("issuer").and_then(Json::as_str).unwrap_or_default();
    if named != issuer {
        return Err(AuthError::Issuer {
            url,
            reason: format!("the discovery document names issuer {named:?}, not {issuer:?}"),
        });
    }
    document.get("jwks_uri").and_then(Json::as_str).map(str::to_owned).ok_or(AuthError::Issuer {
        url,
        reason: "the discovery document has no jwks_uri".to_owned(),
    })
}

/// The signing keys of a JWKS document by key id; keys without an id, for
/// encryption or of a type jsonwebtoken does not know are left out.
fn fetch_keys(url: &str) -> Result<HashMap<String, Arc<IssuerKey>>, AuthError> {
    let document = get_json(url)?;
    let keys = document.get("keys").and_then(Json::as_array).ok_or_else(|| AuthError::Issuer {
        url: url.to_owned(),
        reason: "no \"keys\" array".to_owned(),
    })?;
    Ok(keys
        .iter()
        .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            let alg = jwk.common.key_algorithm.map(|alg| alg.to_string());
            Some((jwk.common.key_id?, Arc::new(IssuerKey { key, alg })))
        })
        .collect())
}

/// Routes served without a token: liveness and readiness probes.
fn is_open_path(path: &str) -> bool {
    path.starts_with("/v2/health/") || matches!(path, "/ping" | "/health" | "/v1/openapi.json")
}

/// The middleware: records the [`Caller`] in the request's extensions, or
/// answers 401 without calling the handler.
pub async fn authenticate(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match access.as_ref() {
        Access::Open => Caller::anonymous(),
        Access::Bearer(_) if is_open_path(request.uri().path()) => {
            Caller { subject: "anonymous".to_owned(), client_id: None, rights: Vec::new() }
        }
        Access::Bearer(authenticator) => {
            let authorization =
                request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            match authenticator.authenticate(authorization).await {
                Ok(caller) => caller,
                Err(error) => return crate::error::unread_body(error.into_response()),
            }
        }
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests;
