//! `vigie serve`: the prediction server in the foreground. Glue only: the
//! server is `vigie_server`.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Project, UsageError};
use crate::cli::ServeSecurityArgs;
use crate::output::outln;

pub fn run(
    project: &Project,
    addr: &str,
    model: Option<String>,
    max_in_flight: usize,
    durability: vigie_server::Durability,
    security: ServeSecurityArgs,
) -> anyhow::Result<()> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        UsageError(format!("--addr {addr:?}: expected HOST:PORT with an IP address ({e})"))
    })?;
    let secured = security.tls_cert.is_some() && security.oauth_issuer.is_some();
    if !vigie_server::is_loopback(&addr) && !secured {
        return Err(UsageError(format!(
            "--addr {addr}: beyond loopback, vigie serves with TLS (--tls-cert, --tls-key) and \
             OAuth2 (--oauth-issuer, --oauth-audience) only; without both it serves loopback \
             addresses only (127.0.0.1 or [::1])"
        ))
        .into());
    }
    let tls = tls_config(&security)?;
    let access = Arc::new(bearer_access(security)?);
    let (shared, mut parts) = open_server(project, model, access.clone(), durability)?;
    parts.max_in_flight = max_in_flight;
    // Stopped after the server, when this function returns.
    let _stream =
        parts.stores.events.as_ref().map(|events| super::stream::start_in_server(project, events));
    let catalog = shared.catalog();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        // The first line of stdout says where: scripts and tests read it.
        let scheme = if tls.is_some() { "https" } else { "http" };
        outln!("listening on {scheme}://{bound}")?;
        for (name, served) in &catalog.models {
            eprintln!(
                "serving {name} v{} ({} {})",
                served.version,
                served.model.card.algorithm,
                served.model.card.task.name()
            );
        }
        for (name, served) in &catalog.forecasters {
            eprintln!(
                "serving {name} v{} (forecast, {} series, up to {} periods ahead)",
                served.version,
                served.forecaster.keys.len(),
                served.forecaster.model.horizon()
            );
        }
        for (name, reason) in &catalog.skipped {
            eprintln!("not serving {name}: {reason}");
        }
        match access.as_ref() {
            vigie_server::Access::Open => {
                eprintln!("warning: no authentication: anyone who can reach {bound} can call it")
            }
            vigie_server::Access::Bearer(authenticator) => {
                eprintln!("bearer tokens checked against {}", authenticator.jwks_url());
            }
        }
        vigie_server::serve(listener, shared, parts, tls).await?;
        eprintln!("stopped: every request in flight was answered");
        anyhow::Ok(())
    })
}

/// The catalog of the project's served models (all, or `model` alone) and what the routes need:
/// the audit log, metrics, the prediction store's copier when vigie.toml sets one, the online
/// store, the feedback log and the event log of the streaming sources, with the default
/// --max-in-flight. Shared by `vigie serve` and `vigie demo`.
pub fn open_server(
    project: &Project,
    model: Option<String>,
    access: Arc<vigie_server::Access>,
    durability: vigie_server::Durability,
) -> anyhow::Result<(Arc<vigie_server::Shared>, vigie_server::Parts)> {
    let opener = project.clone();
    let open: vigie_server::OpenRegistry =
        Arc::new(move || opener.registry().map_err(|e| format!("{e:#}")));
    let shared = vigie_server::Shared::start(open, model).map_err(anyhow::Error::msg)?;
    shared.routing().set_key_columns(super::routing::key_columns(project));
    let (audit, metrics) = super::audit::open_for_serving(project, durability)?;
    let predictions = match prediction_store(project)? {
        Some(store) => {
            let state = store
                .start(&super::audit::audit_dir(project), &metrics)
                .map_err(anyhow::Error::msg)?;
            eprintln!("predictions: copied from the audit log to {}", store.describe());
            Some(state)
        }
        None => None,
    };
    let stores = vigie_server::Stores {
        online: vigie_server::OnlineReader::new(
            super::features::online_location(project, &project.config()?)?,
            metrics.clone(),
        ),
        feedback: vigie_server::FeedbackLog::open(
            &project.state_dir().join("feedback.db"),
            &super::audit::audit_dir(project),
            &metrics,
        )
        .map_err(anyhow::Error::msg)?,
        events: super::stream::server_events(project, &metrics)?,
        predictions,
    };
    let max_in_flight = vigie_server::DEFAULT_MAX_IN_FLIGHT;
    Ok((shared, vigie_server::Parts { audit, metrics, access, stores, max_in_flight }))
}

/// The `[predictions]` store of `vigie.toml`, if one is set.
fn prediction_store(project: &Project) -> anyhow::Result<Option<vigie_server::PredictionStore>> {
    let config = project.config()?.predictions;
    let Some(url) = config.url else { return Ok(None) };
    let url = vigie_core::config::expand_env(&url)
        .map_err(|e| UsageError(format!("vigie.toml [predictions] url: {e}")))?;
    Ok(Some(vigie_server::PredictionStore {
        url,
        database: config.database,
        collection: config.collection,
    }))
}

/// The rustls configuration of --tls-cert and --tls-key, when given.
fn tls_config(
    security: &ServeSecurityArgs,
) -> anyhow::Result<Option<Arc<vigie_server::tls::ServerConfig>>> {
    let (Some(cert), Some(key)) = (&security.tls_cert, &security.tls_key) else {
        return Ok(None);
    };
    let config = vigie_server::tls::server_config(cert, key)
        .map_err(|e| UsageError(format!("--tls-cert/--tls-key: {e}")))?;
    Ok(Some(config))
}

/// Bearer tokens from --oauth-issuer, after fetching its keys once (so a
/// wrong issuer fails here), or no authentication.
fn bearer_access(security: ServeSecurityArgs) -> anyhow::Result<vigie_server::Access> {
    let (Some(issuer), Some(audience)) = (security.oauth_issuer, security.oauth_audience) else {
        return Ok(vigie_server::Access::Open);
    };
    let config = vigie_server::AuthConfig {
        issuer,
        audience,
        jwks_url: security.oauth_jwks_url,
        algorithms: Vec::new(),
    };
    let authenticator = vigie_server::Authenticator::connect(config)
        .map_err(|e| UsageError(format!("--oauth-issuer: {e}")))?;
    Ok(vigie_server::Access::Bearer(authenticator))
}
