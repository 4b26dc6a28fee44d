//! `vigie serve` behind OAuth2 bearer tokens and TLS.
//!
//! Tokens come from a real OAuth2 issuer with the client-credentials grant
//! (`scripts/services.sh` starts oauth2-mock-server through
//! `scripts/oidc-issuer.mjs`: `VIGIE_TEST_OIDC_ISSUER` and friends). The
//! wrong ones are real too: the issuer signs expired and foreign-issuer
//! tokens when asked (`vigie_test` form field) and another audience when the
//! form names one; forged tokens are signed here with a key of our own under
//! the issuer's key id. The issuer also rotates its keys on request and counts
//! JWKS fetches, to check the refresh on an unknown key id and its rate
//! limit. Without the issuer the test skips loudly, except in CI
//! (`CI=true`), where it fails.
//!
//! The TLS test needs no server: a self-signed certificate made with rcgen,
//! a client that trusts it, a plain-HTTP client and a hand-written TLS 1.1
//! ClientHello that must be refused.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value as Json, json};
use vigie_server::auth::REFRESH_INTERVAL;

use crate::support::{Project, data};

/// The test issuer from `scripts/services.sh`, or none (after saying so) outside CI.
struct Issuer {
    url: String,
    client_id: String,
    secret: String,
    audience: String,
    agent: ureq::Agent,
}

impl Issuer {
    fn from_env() -> Option<Issuer> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let Some(url) = var("VIGIE_TEST_OIDC_ISSUER") else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI=true but VIGIE_TEST_OIDC_ISSUER is unset: CI must start the oidc service \
                 (scripts/services.sh)"
            );
            // Straight to the stderr handle, not eprintln!, which the test harness captures.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: VIGIE_TEST_OIDC_ISSUER is not set, so this test has no OAuth2 issuer \
                 (start it with scripts/services.sh run oidc -- cargo test -p vigie-cli --test it auth)"
            );
            return None;
        };
        Some(Issuer {
            url,
            client_id: var("VIGIE_TEST_OIDC_CLIENT_ID").expect("VIGIE_TEST_OIDC_CLIENT_ID"),
            secret: var("VIGIE_TEST_OIDC_CLIENT_SECRET").expect("VIGIE_TEST_OIDC_CLIENT_SECRET"),
            audience: var("VIGIE_TEST_OIDC_AUDIENCE").expect("VIGIE_TEST_OIDC_AUDIENCE"),
            agent: ureq::Agent::config_builder().http_status_as_error(false).build().into(),
        })
    }

    /// A client-credentials grant with `secret`: the status and the reply.
    fn grant(&self, secret: &str, form: &[(&str, &str)]) -> (u16, Json) {
        let basic = STANDARD.encode(format!("{}:{secret}", self.client_id));
        let mut fields = vec![("grant_type", "client_credentials")];
        fields.extend_from_slice(form);
        let mut response = self
            .agent
            .post(format!("{}/token", self.url))
            .header("authorization", format!("Basic {basic}"))
            .send_form(fields)
            .expect("the token endpoint answers");
        let status = response.status().as_u16();
        (status, response.body_mut().read_json().expect("a JSON token reply"))
    }

    /// An access token for `form` (scope, aud, vigie_test).
    fn token(&self, form: &[(&str, &str)]) -> String {
        let (status, reply) = self.grant(&self.secret, form);
        assert_eq!(status, 200, "{reply}");
        reply["access_token"].as_str().expect("access_token").to_owned()
    }

    /// Publishes a new signing key; returns its id.
    fn rotate(&self) -> String {
        let mut response = self
            .agent
            .post(format!("{}/vigie-test/rotate", self.url))
            .send_empty()
            .expect("the rotation route answers");
        let reply: Json = response.body_mut().read_json().expect("JSON");
        reply["kid"].as_str().expect("kid").to_owned()
    }

    /// How many JWKS requests the issuer has served.
    fn jwks_requests(&self) -> u64 {
        let mut response =
            self.agent.get(format!("{}/vigie-test/stats", self.url)).call().expect("stats");
        let stats: Json = response.body_mut().read_json().expect("JSON");
        stats["jwks_requests"].as_u64().expect("a count")
    }

    /// The issuer's signing key: its id and its RSA modulus (base64url).
    fn signing_key(&self) -> (String, String) {
        let mut response =
            self.agent.get(format!("{}/jwks", self.url)).call().expect("the JWKS answers");
        let jwks: Json = response.body_mut().read_json().expect("JWKS JSON");
        let key = &jwks["keys"][0];
        (key["kid"].as_str().expect("kid").to_owned(), key["n"].as_str().expect("n").to_owned())
    }
}

/// A running `vigie serve`, with authenticated requests.
struct Server(crate::support::Server);

impl Server {
    fn start(project: &Project, args: &[&str], agent: ureq::Agent) -> Server {
        Server(crate::support::Server::launch(project, args, agent))
    }

    /// The status, `WWW-Authenticate` header and body of a request.
    fn call(&self, path: &str, body: Option<&Json>, token: Option<&str>) -> (u16, String, Json) {
        let url = format!("{}{path}", self.0.base);
        let bearer = token.map(|token| format!("Bearer {token}"));
        let result = match body {
            Some(body) => {
                let mut request =
                    self.0.agent.post(&url).header("content-type", "application/json");
                if let Some(bearer) = &bearer {
                    request = request.header("authorization", bearer);
                }
                request.send(body.to_string())
            }
            None => {
                let mut request = self.0.agent.get(&url);
                if let Some(bearer) = &bearer {
                    request = request.header("authorization", bearer);
                }
                request.call()
            }
        };
        let mut response = result.expect("an HTTP reply");
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.body_mut().read_to_string().expect("body");
        (status, challenge, serde_json::from_str(&text).unwrap_or(Json::String(text)))
    }
}

fn plain_agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn train(project: &Project) {
    let csv = data("Default.csv").display().to_string();
    let args = ["train", "--data", &csv, "--label", "default", "--name", "credit", "--cv", "2"];
    project.ok(&[&args[..], &["--algorithm", "logistic", "--format", "json"]].concat());
}

/// The refusal `status` with a JSON error whose message contains `part`.
fn check_refusal(reply: (u16, String, Json), status: u16, part: &str) -> String {
    let (got, challenge, body) = reply;
    assert_eq!(got, status, "{body}");
    let code = if status == 401 { "unauthorized" } else { "forbidden" };
    assert_eq!(body["error"]["code"], json!(code), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(part), "{part:?} not in {body}");
    challenge
}

/// A JWT with `header` and `claims`, signed by `sign` over `HEADER.CLAIMS`.
fn jwt(header: &Json, claims: &Json, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(sign(message.as_bytes()));
    format!("{message}.{signature}")
}

/// Part `index` (0: header, 1: claims) of `token`, unverified.
fn part_of(token: &str, index: usize) -> Json {
    let part = token.split('.').nth(index).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn claims_of(token: &str) -> Json {
    part_of(token, 1)
}

#[test]
fn only_valid_tokens_with_the_right_scopes_reach_the_models() {
    let Some(issuer) = Issuer::from_env() else { return };
    let project = Project::new();
    train(&project);
    let server = Server::start(
        &project,
        &[
            "--addr",
            "127.0.0.1:0",
            "--oauth-issuer",
            &issuer.url,
            "--oauth-audience",
            &issuer.audience,
        ],
        plain_agent(),
    );
    let record = json!({"student": "No", "balance": 1500.0, "income": 20000.0});
    let predict = json!({"records": [record]});
    let explain = json!({"records": [record], "explain": true});
    let path = "/v1/models/credit/predict";

    // The issuer itself refuses a wrong client secret.
    let (status, reply) = issuer.grant("not-the-secret", &[("scope", "vigie:predict")]);
    assert_eq!((status, reply["error"].as_str()), (401, Some("invalid_client")), "{reply}");

    // Health checks stay open; everything else needs a token.
    assert_eq!(server.call("/v2/health/live", None, None).0, 200);
    assert_eq!(server.call("/ping", None, None).0, 200);
    let challenge =
        check_refusal(server.call(path, Some(&predict), None), 401, "missing bearer token");
    assert_eq!(challenge, "Bearer");
    check_refusal(server.call("/v2/models/credit", None, None), 401, "missing bearer token");

    // A valid token with both scopes: scores and explanations.
    let full = issuer.token(&[("scope", "vigie:predict vigie:explain")]);
    let (status, _, reply) = server.call(path, Some(&explain), Some(&full));
    assert_eq!(status, 200, "{reply}");
    let score = reply["predictions"][0]["score"].as_f64().expect("a score");
    assert!((0.0..=1.0).contains(&score), "{reply}");
    assert_eq!(reply["predictions"][0]["contributions"].as_object().map(|c| c.len()), Some(3));
    assert_eq!(server.call("/v2/models/credit", None, Some(&full)).0, 200);

    // Scopes: predict alone cannot explain; no vigie scope cannot predict.
    let predict_only = issuer.token(&[("scope", "vigie:predict")]);
    assert_eq!(server.call(path, Some(&predict), Some(&predict_only)).0, 200);
    let mlflow = json!({"dataframe_records": [record]});
    assert_eq!(server.call("/invocations", Some(&mlflow), Some(&predict_only)).0, 200);
    check_refusal(
        server.call(path, Some(&explain), Some(&predict_only)),
        403,
        "the token of vigie-test lacks the scope \"vigie:explain\" (it has: vigie:predict)",
    );
    let unscoped = issuer.token(&[("scope", "openid")]);
    check_refusal(
        server.call(path, Some(&predict), Some(&unscoped)),
        403,
        "lacks the scope \"vigie:predict\" (it has: no vigie scope)",
    );
    check_refusal(
        server.call("/invocations", Some(&mlflow), Some(&unscoped)),
        403,
        "\"vigie:predict\"",
    );

    // Signed by the issuer, yet wrong: 401 naming why, with an invalid_token challenge.
    let scope = ("scope", "vigie:predict");
    let expired = issuer.token(&[scope, ("vigie_test", "expired")]);
    let challenge =
        check_refusal(server.call(path, Some(&predict), Some(&expired)), 401, "expired");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description="),
        "{challenge}"
    );
    let foreign = issuer.token(&[scope, ("vigie_test", "foreign_issuer")]);
    check_refusal(
        server.call(path, Some(&predict), Some(&foreign)),
        401,
        &format!(
            "wrong issuer \"http://127.0.0.1:9/another-issuer\": tokens must be issued by {}",
            issuer.url
        ),
    );
    let elsewhere = issuer.token(&[scope, ("aud", "another-api")]);
    check_refusal(
        server.call(path, Some(&predict), Some(&elsewhere)),
        401,
        "wrong audience \"another-api\": tokens must be for \"vigie\"",
    );

    // Forged: a scope added to a real token, or our own key under the issuer's key id.
    let (kid, modulus) = issuer.signing_key();
    let mut escalated = claims_of(&predict_only);
    escalated["scope"] = json!("vigie:predict vigie:explain");
    let real_signature = predict_only.rsplit('.').next().expect("a signature").to_owned();
    let tampered = jwt(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}), &escalated, |_| {
        URL_SAFE_NO_PAD.decode(&real_signature).expect("base64url")
    });
    check_refusal(server.call(path, Some(&explain), Some(&tampered)), 401, "bad signature");
    let forger_pem = std::fs::read(data("auth/forger-rsa-2048.pem")).expect("the test key");
    let forger_key =
        jsonwebtoken::EncodingKey::from_rsa_pem(&forger_pem).expect("an RSA private key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.clone());
    let forged = jsonwebtoken::encode(&header, &escalated, &forger_key).expect("sign");
    check_refusal(
        server.call(path, Some(&explain), Some(&forged)),
        401,
        &format!("bad signature: the token was not signed by the issuer's key \"{kid}\""),
    );
    header.kid = Some("a-key-nobody-published".to_owned());
    let unknown = jsonwebtoken::encode(&header, &escalated, &forger_key).expect("sign");
    check_refusal(
        server.call(path, Some(&predict), Some(&unknown)),
        401,
        "unknown key id \"a-key-nobody-published\"",
    );

    // Algorithms outside the pinned list: none, and HMAC keyed with the public key.
    let none = jwt(&json!({"alg": "none", "typ": "JWT", "kid": kid}), &escalated, |_| Vec::new());
    let challenge = check_refusal(
        server.call(path, Some(&predict), Some(&none)),
        401,
        "algorithm \"none\" is not allowed (allowed: RS256",
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let hmac_key = jsonwebtoken::EncodingKey::from_secret(modulus.as_bytes()).expect("an HMAC key");
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &escalated,
        &hmac_key,
    )
    .expect("sign");
    check_refusal(
        server.call(path, Some(&predict), Some(&hs256)),
        401,
        "algorithm \"HS256\" is not allowed",
    );

    // An allowed algorithm, but not the one of the key the token names.
    let ec_pem = rcgen::KeyPair::generate().expect("a P-256 key").serialize_pem();
    let ec_key = jsonwebtoken::EncodingKey::from_ec_pem(ec_pem.as_bytes()).expect("an EC key");
    let es256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256)
        },
        &escalated,
        &ec_key,
    )
    .expect("sign");
    check_refusal(
        server.call(path, Some(&predict), Some(&es256)),
        401,
        &format!("key \"{kid}\" is for RS256, not ES256"),
    );

    // A flood of unknown key ids costs the issuer at most one JWKS fetch per
    // refresh interval (plus one), however many requests.
    let fetched_before = issuer.jwks_requests();
    let flood_started = Instant::now();
    for n in 0..40 {
        header.kid = Some(format!("random-kid-{n}"));
        let random = jsonwebtoken::encode(&header, &escalated, &forger_key).expect("sign");
        check_refusal(server.call(path, Some(&predict), Some(&random)), 401, "unknown key id");
    }
    let fetches = issuer.jwks_requests() - fetched_before;
    let intervals = flood_started.elapsed().as_secs() / REFRESH_INTERVAL.as_secs();
    assert!(
        fetches <= intervals + 1,
        "{fetches} JWKS fetches for 40 unknown kids in {intervals} intervals"
    );

    // Key rotation: a token signed by a key published after the server
    // started is accepted once the rate limit lets the server refetch.
    let new_kid = issuer.rotate();
    let rotated = (0..4)
        .map(|_| issuer.token(&[scope]))
        .find(|token| part_of(token, 0)["kid"] == json!(new_kid))
        .expect("the issuer signs with the new key in turn");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, challenge, reply) = server.call(path, Some(&predict), Some(&rotated));
        if status == 200 {
            break;
        }
        check_refusal((status, challenge, reply), 401, &format!("unknown key id \"{new_kid}\""));
        assert!(Instant::now() < deadline, "the new key is still unknown after 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    // After all that, the old key's tokens still work.
    assert_eq!(server.call(path, Some(&predict), Some(&predict_only)).0, 200);
}

/// A client that trusts only `cert_der`.
fn trusting_agent(cert_der: &[u8]) -> ureq::Agent {
    let cert = ureq::tls::Certificate::from_der(cert_der).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
        .build();
    ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build().into()
}

/// Sends a ClientHello that offers TLS 1.1 at most (no supported_versions
/// extension) and returns the first 7 bytes the server sends back. With
/// `signature_algorithms` (a TLS 1.2 extension that TLS 1.1 clients do not
/// send) the server gets as far as comparing versions.
fn hello_tls_1_1(address: &str, signature_algorithms: bool) -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version: TLS 1.1
    hello.extend_from_slice(&[7; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x09, 0xc0, 0x13]); // ECDHE-{ECDSA,RSA}-AES128-SHA
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    if signature_algorithms {
        // Extensions (8 bytes): signature_algorithms (13) = [ecdsa_secp256r1_sha256].
        hello.extend_from_slice(&[0x00, 0x08, 0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]);
    }
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16::try_from(hello.len()).expect("short").to_be_bytes());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("short").to_be_bytes());
    record.extend_from_slice(&handshake);
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.write_all(&record).expect("send the ClientHello");
    let mut reply = Vec::new();
    let _ = stream.take(7).read_to_end(&mut reply);
    reply
}

#[test]
fn https_serves_the_routes_with_tls_1_2_or_later_only() {
    let project = Project::new();
    let (cert, key, der) = self_signed(&project);

    let tls_args = ["--addr", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key];
    let server = Server::start(&project, &tls_args, trusting_agent(&der));
    let address = server.0.base.strip_prefix("https://").expect("an https:// address").to_owned();
    assert_eq!(
        server.call("/v2/health/live", None, None),
        (200, String::new(), json!({"live": true}))
    );
    let (status, _, reply) =
        server.call("/v1/models/nope/predict", Some(&json!({"records": []})), None);
    assert_eq!(status, 404, "{reply}");
    assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains("no model \"nope\"")));

    // Plain HTTP to the TLS port gets no HTTP reply.
    let plain = plain_agent().get(format!("http://{address}/v2/health/live")).call();
    assert!(plain.is_err(), "plain HTTP was answered: {:?}", plain.map(|r| r.status()));
    // A TLS 1.1 client gets a fatal alert instead of a ServerHello:
    // handshake_failure (40) as such clients send no signature algorithms, and
    // protocol_version (70) once the versions are compared.
    assert_eq!(hello_tls_1_1(&address, false), [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40]);
    assert_eq!(hello_tls_1_1(&address, true), [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 70]);
    // A client that does not trust the certificate cannot connect.
    let untrusting = plain_agent().get(format!("https://{address}/v2/health/live")).call();
    assert!(untrusting.is_err(), "a client without the certificate connected");
    drop(server);

    // Missing or malformed files: one line naming the file, exit 2.
    let missing = project.path("missing.pem").display().to_string();
    let error = project
        .fails(&["serve", "--addr", "127.0.0.1:0", "--tls-cert", &missing, "--tls-key", &key], 2);
    assert!(error.contains(&format!("--tls-cert/--tls-key: {missing}: No such file")), "{error}");
    let error = project
        .fails(&["serve", "--addr", "127.0.0.1:0", "--tls-cert", &key, "--tls-key", &key], 2);
    assert!(error.contains(&format!("{key}: no PEM certificate could be read")), "{error}");
    let error = project
        .fails(&["serve", "--addr", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &cert], 2);
    assert!(error.contains(&format!("{cert}: no PEM private key could be read")), "{error}");
    let error = project.fails(&["serve", "--addr", "127.0.0.1:0", "--tls-cert", &cert], 2);
    assert!(error.contains("--tls-key"), "{error}");
}

/// A self-signed certificate for 127.0.0.1 written into `project`: the PEM
/// paths and the certificate's DER.
fn self_signed(project: &Project) -> (String, String, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let cert = project.path("cert.pem");
    let key = project.path("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write the key");
    (cert.display().to_string(), key.display().to_string(), certified.cert.der().to_vec())
}

#[test]
fn with_tls_and_oauth_it_serves_every_interface() {
    let Some(issuer) = Issuer::from_env() else { return };
    let project = Project::new();
    let (cert, key, der) = self_signed(&project);
    let mut server = Server::start(
        &project,
        &[
            "--addr",
            "0.0.0.0:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--oauth-issuer",
            &issuer.url,
            "--oauth-audience",
            &issuer.audience,
        ],
        trusting_agent(&der),
    );
    let port = server.0.base.strip_prefix("https://0.0.0.0:").expect("https on every interface");
    server.0.base = format!("https://127.0.0.1:{port}");
    assert_eq!(server.call("/v2/health/ready", None, None).0, 200);
    check_refusal(server.call("/v2", None, None), 401, "missing bearer token");
    let token = issuer.token(&[("scope", "vigie:predict")]);
    let (status, _, reply) = server.call("/v2", None, Some(&token));
    assert_eq!((status, reply["name"].as_str()), (200, Some("vigie")), "{reply}");
}

#[test]
fn beyond_loopback_tls_and_oauth_are_both_required() {
    let project = Project::new();
    let error = project.fails(&["serve", "--addr", "0.0.0.0:0"], 2);
    assert!(
        error.contains(
            "--addr 0.0.0.0:0: beyond loopback, vigie serves with TLS (--tls-cert, --tls-key) and \
             OAuth2 (--oauth-issuer, --oauth-audience) only"
        ),
        "{error}"
    );
    let files = ["--tls-cert", "cert.pem", "--tls-key", "key.pem"];
    let error = project.fails(&[&["serve", "--addr", "0.0.0.0:0"][..], &files].concat(), 2);
    assert!(error.contains("loopback addresses only"), "TLS alone is not enough: {error}");
    let oauth = ["--oauth-issuer", "http://127.0.0.1:9", "--oauth-audience", "vigie"];
    let error = project.fails(&[&["serve", "--addr", "[::]:0"][..], &oauth].concat(), 2);
    assert!(error.contains("loopback addresses only"), "OAuth2 alone is not enough: {error}");
    // An issuer that does not answer stops the server at startup, naming the URL.
    let error = project.fails(&[&["serve", "--addr", "127.0.0.1:0"][..], &oauth].concat(), 2);
    assert!(
        error.contains("--oauth-issuer: the issuer's keys at http://127.0.0.1:9/.well-known/openid-configuration are unavailable"),
        "{error}"
    );
}
