//! `vigie serve`: the prediction server in the foreground. Glue only: the
//! server is `vigie_server`.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Project, UsageError};

pub fn run(project: &Project, addr: &str, model: Option<String>) -> anyhow::Result<()> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        UsageError(format!("--addr {addr:?}: expected HOST:PORT with an IP address ({e})"))
    })?;
    if !vigie_server::is_loopback(&addr) {
        return Err(UsageError(format!(
            "--addr {addr}: authentication and TLS are not available yet, so vigie serves loopback \
             addresses only (127.0.0.1 or [::1])"
        ))
        .into());
    }
    let opener = project.clone();
    let open: vigie_server::OpenRegistry =
        Arc::new(move || opener.registry().map_err(|e| format!("{e:#}")));
    let shared = vigie_server::Shared::start(open, model).map_err(anyhow::Error::msg)?;
    let catalog = shared.catalog();
    let (audit, metrics) = super::audit::open_for_serving(project)?;
    let stores = vigie_server::Stores {
        online: vigie_server::OnlineReader::new(
            project.state_dir().join("online.db"),
            metrics.clone(),
        ),
        feedback: vigie_server::FeedbackLog::open(
            &project.state_dir().join("feedback.db"),
            &super::audit::audit_dir(project),
            &metrics,
        )
        .map_err(anyhow::Error::msg)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        // The first line of stdout says where: scripts and tests read it.
        println!("listening on http://{bound}");
        for (name, served) in &catalog.models {
            eprintln!(
                "serving {name} v{} ({} {})",
                served.version,
                served.model.card.algorithm,
                served.model.card.task.name()
            );
        }
        for (name, reason) in &catalog.skipped {
            eprintln!("not serving {name}: {reason}");
        }
        eprintln!("warning: no authentication: anyone who can reach {bound} can call it");
        vigie_server::serve(listener, shared, audit, metrics, stores).await?;
        anyhow::Ok(())
    })
}
