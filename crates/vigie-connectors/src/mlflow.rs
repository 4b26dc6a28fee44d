//! A small blocking client of an MLflow tracking server's REST API (2.0 endpoints).
//!
//! It covers what an export needs: experiments, runs (create, search by tag, log a batch,
//! update, tag, delete), artifact upload through the server's artifact proxy
//! (`mlflow-artifacts`, on when the server runs with `--artifacts-destination`), registered
//! models, model versions and aliases. It does not read metrics back, download artifacts,
//! authenticate (no token or basic auth yet) or retry: a failed call is an error naming the
//! endpoint and the server's answer.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use ureq::http;

use crate::ConnectorError;

/// MLflow's `log-batch` limits per request (`mlflow/utils/validation.py`: 1000 metrics,
/// 100 params, 100 tags, 1000 entities in all).
const BATCH_METRICS: usize = 1000;
const BATCH_PARAMS: usize = 100;
const BATCH_TAGS: usize = 100;
const BATCH_TOTAL: usize = 1000;

/// How much of an unexpected answer an error quotes.
const QUOTED_BODY: usize = 600;

/// A key and a value (a run's tag or param, a model version's tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

impl Tag {
    /// A tag from anything string-like.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { key: key.into(), value: value.into() }
    }
}

/// One value of a metric's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Metric name.
    pub key: String,
    /// The value; must be finite (JSON has no NaN).
    pub value: f64,
    /// When it was measured, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Step (fold, trial, round).
    pub step: i64,
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Experiment {
    /// The server's id.
    pub experiment_id: String,
    /// Name.
    pub name: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// A run as the server returns it (info and tags; params and metrics are not read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Run {
    /// Identity, status and storage.
    pub info: RunInfo,
    /// Tags.
    #[serde(default)]
    pub data: RunData,
}

/// A run's identity, status and storage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunInfo {
    /// The server's id.
    pub run_id: String,
    /// Its experiment.
    pub experiment_id: String,
    /// RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.
    #[serde(default)]
    pub status: String,
    /// Where its artifacts live (`mlflow-artifacts:/…` when the server proxies them).
    #[serde(default)]
    pub artifact_uri: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// What a run carries; only tags are read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct RunData {
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Run {
    /// The value of a tag.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.data.tags.iter().find(|tag| tag.key == key).map(|tag| tag.value.as_str())
    }
}

/// What `runs/create` records.
#[derive(Debug, Clone, Serialize)]
pub struct RunStart<'a> {
    /// The experiment.
    pub experiment_id: &'a str,
    /// A readable name.
    pub run_name: &'a str,
    /// Who ran it.
    pub user_id: &'a str,
    /// Start, milliseconds since the Unix epoch (the server's clock when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Tags set at creation.
    pub tags: &'a [Tag],
}

/// A registered model with its aliases.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegisteredModel {
    /// Name.
    pub name: String,
    /// Aliases and the versions they point at.
    #[serde(default)]
    pub aliases: Vec<ModelAlias>,
}

/// An alias of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelAlias {
    /// Alias.
    pub alias: String,
    /// The version it points at (MLflow's number, as text).
    pub version: String,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelVersion {
    /// The registered model.
    pub name: String,
    /// MLflow's version number, as text.
    pub version: String,
    /// The run that produced it.
    #[serde(default)]
    pub run_id: String,
    /// Where its files are.
    #[serde(default)]
    pub source: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ModelVersion {
    /// The value of a tag.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|tag| tag.key == key).map(|tag| tag.value.as_str())
    }
}

/// A client of one tracking server.
pub struct MlflowClient {
    base: String,
    agent: ureq::Agent,
}

/// An answer that came back, whatever its status.
struct Answer {
    status: u16,
    body: String,
}

impl MlflowClient {
    /// A client of the server at `tracking_uri` (`http://HOST:PORT` or `https://…`). Nothing
    /// is sent until the first call.
    pub fn new(tracking_uri: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            // Errors must quote the server's message, so statuses are read, not raised.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        MlflowClient { base: tracking_uri.trim_end_matches('/').to_owned(), agent }
    }

    /// The server's address.
    pub fn tracking_uri(&self) -> &str {
        &self.base
    }

    /// The experiment of that name, if any (deleted ones included).
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, ConnectorError> {
        let endpoint = "experiments/get-by-name";
        let answer = self.get(endpoint, &[("experiment_name", name)])?;
        optional(endpoint, answer, "experiment")
    }

    /// Creates an experiment; returns its id.
    pub fn create_experiment(&self, name: &str) -> Result<String, ConnectorError> {
        self.post_field("experiments/create", &json!({ "name": name }), "experiment_id")
    }

    /// The active runs of an experiment whose tag `key` equals `value` (at most 50). Neither
    /// may contain quotes: MLflow's filter language has no escape for them.
    pub fn runs_with_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<Run>, ConnectorError> {
        debug_assert!(!key.contains('"') && !value.contains('\''), "quotes in a run filter");
        let filter = format!("tags.\"{key}\" = '{value}'");
        let body = json!({
            "experiment_ids": [experiment_id],
            "filter": filter,
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 50,
        });
        let endpoint = "runs/search";
        let reply = self.post(endpoint, &body)?;
        decode_field(endpoint, "POST", reply, "runs").map(Option::unwrap_or_default)
    }

    /// Creates a run (status RUNNING until [`update_run`](Self::update_run)).
    pub fn create_run(&self, run: &RunStart<'_>) -> Result<Run, ConnectorError> {
        let endpoint = "runs/create";
        let reply = self.post(endpoint, &json!(run))?;
        required(endpoint, decode_field(endpoint, "POST", reply, "run")?)
    }

    /// Logs params, metric values and tags, in as many requests as MLflow's limits need.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[Tag],
        metrics: &[Metric],
        tags: &[Tag],
    ) -> Result<(), ConnectorError> {
        for (params, metrics, tags) in batches(params, metrics, tags) {
            let body =
                json!({ "run_id": run_id, "params": params, "metrics": metrics, "tags": tags });
            self.post("runs/log-batch", &body)?;
        }
        Ok(())
    }

    /// Sets a run's status and end time (milliseconds since the Unix epoch).
    pub fn update_run(
        &self,
        run_id: &str,
        status: &str,
        end_time: Option<i64>,
    ) -> Result<(), ConnectorError> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(end_time) = end_time {
            body["end_time"] = json!(end_time);
        }
        self.post("runs/update", &body).map(drop)
    }

    /// Sets one tag of a run.
    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), ConnectorError> {
        self.post("runs/set-tag", &json!({ "run_id": run_id, "key": key, "value": value }))
            .map(drop)
    }

    /// Marks a run deleted (MLflow keeps it, hidden, until garbage collection).
    pub fn delete_run(&self, run_id: &str) -> Result<(), ConnectorError> {
        self.post("runs/delete", &json!({ "run_id": run_id })).map(drop)
    }

    /// Uploads `bytes` as `path` (slash-separated, relative) under a run's `artifact_uri`,
    /// through the server's artifact proxy.
    pub fn upload_artifact(
        &self,
        artifact_uri: &str,
        path: &str,
        bytes: &[u8],
    ) -> Result<(), ConnectorError> {
        let endpoint = format!("PUT /api/2.0/mlflow-artifacts/artifacts/…/{path}");
        let Some(root) = proxied_artifact_path(artifact_uri) else {
            return Err(ConnectorError::Mlflow {
                endpoint,
                status: None,
                message: format!(
                    "the server stores this run's artifacts at {artifact_uri:?}, which it does not proxy; \
                     start it with --artifacts-destination (or --serve-artifacts) so clients can upload"
                ),
            });
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{}",
            self.base,
            encode_path(root),
            encode_path(path)
        );
        let sent =
            self.agent.put(&url).header("Content-Type", "application/octet-stream").send(bytes);
        self.answer(&endpoint, sent).and_then(|answer| success(&endpoint, answer)).map(drop)
    }

    /// The registered model of that name, if any.
    pub fn registered_model(&self, name: &str) -> Result<Option<RegisteredModel>, ConnectorError> {
        let endpoint = "registered-models/get";
        let answer = self.get(endpoint, &[("name", name)])?;
        optional(endpoint, answer, "registered_model")
    }

    /// Creates a registered model.
    pub fn create_registered_model(&self, name: &str) -> Result<(), ConnectorError> {
        self.post("registered-models/create", &json!({ "name": name })).map(drop)
    }

    /// Every version of a registered model (whose name may not contain `'`).
    pub fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>, ConnectorError> {
        debug_assert!(!name.contains('\''), "a quote in a model name filter");
        let endpoint = "model-versions/search";
        let filter = format!("name = '{name}'");
        let mut versions = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut query = vec![("filter", filter.as_str()), ("max_results", "1000")];
            if !page_token.is_empty() {
                query.push(("page_token", page_token.as_str()));
            }
            let reply = success(&full(endpoint, "GET"), self.get(endpoint, &query)?)?;
            let page: Option<Vec<ModelVersion>> =
                decode_field(endpoint, "GET", reply.clone(), "model_versions")?;
            versions.extend(page.unwrap_or_default());
            match reply.get("next_page_token").and_then(Json::as_str) {
                Some(next) if !next.is_empty() => page_token = next.to_owned(),
                _ => return Ok(versions),
            }
        }
    }

    /// Creates a version of a registered model from files under a run's artifact URI.
    pub fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[Tag],
    ) -> Result<ModelVersion, ConnectorError> {
        let endpoint = "model-versions/create";
        let body = json!({ "name": name, "source": source, "run_id": run_id, "tags": tags });
        let reply = self.post(endpoint, &body)?;
        required(endpoint, decode_field(endpoint, "POST", reply, "model_version")?)
    }

    /// Points an alias of a registered model at a version (MLflow's number).
    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), ConnectorError> {
        self.post(
            "registered-models/alias",
            &json!({ "name": name, "alias": alias, "version": version }),
        )
        .map(drop)
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.base)
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Answer, ConnectorError> {
        let mut request = self.agent.get(self.url(endpoint));
        for (key, value) in query {
            request = request.query(*key, *value);
        }
        self.answer(&full(endpoint, "GET"), request.call())
    }

    /// POSTs a JSON body; a non-2xx answer is an error. Returns the answer's JSON.
    fn post(&self, endpoint: &str, body: &Json) -> Result<Json, ConnectorError> {
        let sent = self.agent.post(self.url(endpoint)).send_json(body);
        let named = full(endpoint, "POST");
        success(&named, self.answer(&named, sent)?)
    }

    fn post_field<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &Json,
        field: &str,
    ) -> Result<T, ConnectorError> {
        let reply = self.post(endpoint, body)?;
        required(endpoint, decode_field(endpoint, "POST", reply, field)?)
    }

    fn answer(
        &self,
        endpoint: &str,
        sent: Result<http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, ConnectorError> {
        let unreachable = |error: ureq::Error| ConnectorError::Mlflow {
            endpoint: endpoint.to_owned(),
            status: None,
            message: format!("cannot reach the tracking server at {}: {error}", self.base),
        };
        let mut response = sent.map_err(unreachable)?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().map_err(unreachable)?;
        Ok(Answer { status, body })
    }
}

/// Splits params, metrics and tags into `log-batch` requests within MLflow's limits.
fn batches<'a>(
    mut params: &'a [Tag],
    mut metrics: &'a [Metric],
    mut tags: &'a [Tag],
) -> Vec<(&'a [Tag], &'a [Metric], &'a [Tag])> {
    let mut out = Vec::new();
    while !(params.is_empty() && metrics.is_empty() && tags.is_empty()) {
        let (params_now, params_later) = params.split_at(params.len().min(BATCH_PARAMS));
        let (tags_now, tags_later) = tags.split_at(tags.len().min(BATCH_TAGS));
        let room = BATCH_TOTAL - params_now.len() - tags_now.len();
        let (metrics_now, metrics_later) =
            metrics.split_at(metrics.len().min(BATCH_METRICS).min(room));
        out.push((params_now, metrics_now, tags_now));
        (params, metrics, tags) = (params_later, metrics_later, tags_later);
    }
    out
}

/// A GET's `field`, or none when the server answered 404 RESOURCE_DOES_NOT_EXIST (any other
/// 404, say from a URI that is not an MLflow server, is an error).
fn optional<T: DeserializeOwned>(
    endpoint: &str,
    answer: Answer,
    field: &str,
) -> Result<Option<T>, ConnectorError> {
    if answer.status == 404 && answer.body.contains("RESOURCE_DOES_NOT_EXIST") {
        return Ok(None);
    }
    let reply = success(&full(endpoint, "GET"), answer)?;
    decode_field(endpoint, "GET", reply, field)
}

/// "METHOD /api/2.0/mlflow/ENDPOINT", as errors name it.
fn full(endpoint: &str, method: &str) -> String {
    format!("{method} /api/2.0/mlflow/{endpoint}")
}

/// The answer's JSON when its status is 2xx; otherwise an error quoting MLflow's
/// `error_code` and `message` (or the start of the body when it is not MLflow's JSON).
fn success(endpoint: &str, answer: Answer) -> Result<Json, ConnectorError> {
    if (200..300).contains(&answer.status) {
        if answer.body.trim().is_empty() {
            return Ok(json!({}));
        }
        return serde_json::from_str(&answer.body).map_err(|error| ConnectorError::Mlflow {
            endpoint: endpoint.to_owned(),
            status: Some(answer.status),
            message: format!("the answer is not JSON ({error}): {}", quote(&answer.body)),
        });
    }
    let parsed: Option<Json> = serde_json::from_str(&answer.body).ok();
    let field = |name: &str| {
        parsed.as_ref().and_then(|json| json.get(name)).and_then(Json::as_str).map(str::to_owned)
    };
    let message = match (field("error_code"), field("message")) {
        (Some(code), Some(text)) => format!("HTTP {} {code}: {text}", answer.status),
        (None, Some(text)) => format!("HTTP {}: {text}", answer.status),
        _ => format!("HTTP {}: {}", answer.status, quote(&answer.body)),
    };
    Err(ConnectorError::Mlflow {
        endpoint: endpoint.to_owned(),
        status: Some(answer.status),
        message,
    })
}

fn decode_field<T: DeserializeOwned>(
    endpoint: &str,
    method: &str,
    reply: Json,
    field: &str,
) -> Result<Option<T>, ConnectorError> {
    let Json::Object(mut object) = reply else {
        return Err(unexpected(
            endpoint,
            method,
            format!("expected a JSON object, got {}", quote(&reply.to_string())),
        ));
    };
    let Some(value) = object.remove(field) else {
        return Ok(None);
    };
    let text = value.to_string();
    serde_json::from_value(value).map(Some).map_err(|error| {
        unexpected(endpoint, method, format!("field {field:?}: {error}: {}", quote(&text)))
    })
}

fn required<T>(endpoint: &str, value: Option<T>) -> Result<T, ConnectorError> {
    value.ok_or_else(|| {
        unexpected(endpoint, "POST", "the answer lacks the created object".to_owned())
    })
}

fn unexpected(endpoint: &str, method: &str, message: String) -> ConnectorError {
    ConnectorError::Mlflow {
        endpoint: full(endpoint, method),
        status: Some(200),
        message: format!("unexpected answer: {message}"),
    }
}

fn quote(body: &str) -> String {
    match body.char_indices().nth(QUOTED_BODY) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body.to_owned(),
    }
}

/// The path under the proxy's root of an `mlflow-artifacts:` URI (`mlflow-artifacts:/1/RUN/artifacts`
/// or `mlflow-artifacts://HOST:PORT/1/RUN/artifacts`); none for any other scheme.
fn proxied_artifact_path(artifact_uri: &str) -> Option<&str> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => {
            authority_and_path.find('/').map_or("", |slash| &authority_and_path[slash..])
        }
        None => rest,
    };
    Some(path.trim_matches('/'))
}

/// Percent-encodes each segment of a slash-separated path (RFC 3986 unreserved characters stay).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxied_artifact_paths() {
        assert_eq!(
            proxied_artifact_path("mlflow-artifacts:/1/abc/artifacts"),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxied_artifact_path("mlflow-artifacts://host:5000/1/abc/artifacts"),
            Some("1/abc/artifacts")
        );
        assert_eq!(proxied_artifact_path("file:///srv/mlruns/1/abc/artifacts"), None);
        assert_eq!(proxied_artifact_path("s3://bucket/1/abc/artifacts"), None);
    }

    #[test]
    fn paths_are_percent_encoded_per_segment() {
        assert_eq!(encode_path("model/credit-v1.vgm"), "model/credit-v1.vgm");
        assert_eq!(encode_path("a b/é?"), "a%20b/%C3%A9%3F");
    }

    #[test]
    fn batches_respect_mlflow_limits() {
        let params: Vec<Tag> = (0..150).map(|i| Tag::new(format!("p{i}"), "1")).collect();
        let tags: Vec<Tag> = (0..20).map(|i| Tag::new(format!("t{i}"), "1")).collect();
        let metrics: Vec<Metric> = (0..2500)
            .map(|step| Metric { key: "loss".into(), value: 0.5, timestamp: 0, step })
            .collect();
        let sizes: Vec<(usize, usize, usize)> = batches(&params, &metrics, &tags)
            .iter()
            .map(|(p, m, t)| (p.len(), m.len(), t.len()))
            .collect();
        assert_eq!(sizes, [(100, 880, 20), (50, 950, 0), (0, 670, 0)]);
        assert!(batches(&[], &[], &[]).is_empty());
    }

    #[test]
    fn errors_quote_mlflow_messages() {
        let answer = Answer {
            status: 400,
            body: r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad source"}"#
                .to_owned(),
        };
        let error = success("POST /api/2.0/mlflow/model-versions/create", answer).unwrap_err();
        assert_eq!(
            error.to_string(),
            "mlflow POST /api/2.0/mlflow/model-versions/create: HTTP 400 INVALID_PARAMETER_VALUE: bad source"
        );
        assert_eq!(error.code(), vigie_core::ErrorCode::InvalidInput);
        let answer = Answer { status: 502, body: "<html>bad gateway</html>".to_owned() };
        let error = success("GET /api/2.0/mlflow/registered-models/get", answer).unwrap_err();
        assert!(error.to_string().ends_with("HTTP 502: <html>bad gateway</html>"), "{error}");
        assert_eq!(error.code(), vigie_core::ErrorCode::Unavailable);
    }
}
