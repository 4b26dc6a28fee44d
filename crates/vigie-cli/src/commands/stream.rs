//! `vigie stream`, and the stream processor that `vigie serve` runs beside
//! its routes: events of the project's HTTP sources into the offline and
//! online stores. Glue only: the log and the processor are `vigie_features`,
//! the route is `vigie_server`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value as Json, json};
use vigie_features::events::EventShape;
use vigie_features::{AppendError, EventLog, FeatureError, Progress, StepSummary, StreamProcessor};

use super::Project;
use super::features::{online, store};
use crate::cli::Format;
use crate::output::outln;
use crate::progress::Spinner;

/// How long the processor waits when the logs have nothing new.
const POLL: Duration = Duration::from_millis(50);

/// The event logs of the project's HTTP sources.
pub fn log_dir(project: &Project) -> std::path::PathBuf {
    project.state_dir().join("events")
}

fn dead_dir(project: &Project) -> std::path::PathBuf {
    project.state_dir().join("dead-letters")
}

/// The server's view of the feature store's event log.
struct Sink(EventLog);

impl vigie_server::EventSink for Sink {
    fn append(&self, source: &str, events: &[Json]) -> Result<u64, vigie_server::EventError> {
        match self.0.append(source, events) {
            Ok(appended) => Ok(appended.first),
            Err(AppendError::UnknownSource(message)) => {
                Err(vigie_server::EventError::UnknownSource(message))
            }
            Err(error @ AppendError::Refused { .. }) => {
                Err(vigie_server::EventError::Refused(error.to_string()))
            }
            Err(AppendError::Storage(error)) => {
                Err(vigie_server::EventError::Unavailable(error.to_string()))
            }
        }
    }
}

/// The event log and the processor's counters for `vigie serve`, when the project has
/// streaming sources (the log only for HTTP ones).
pub fn server_events(
    project: &Project,
    metrics: &vigie_server::Metrics,
) -> anyhow::Result<Option<vigie_server::Events>> {
    let config = project.config()?;
    if EventShape::of(&config)?.is_empty() {
        return Ok(None);
    }
    let log = EventLog::open(&log_dir(project), &config)?;
    let sink: Option<Arc<dyn vigie_server::EventSink>> =
        if log.sources().next().is_some() { Some(Arc::new(Sink(log))) } else { None };
    let metrics = vigie_server::EventMetrics::register(metrics)
        .map_err(|e| anyhow::anyhow!("event metrics: {e}"))?;
    Ok(Some(vigie_server::Events { sink, metrics }))
}

/// The stream processor running on a thread of `vigie serve`; stopped (after its current
/// step) when dropped.
pub struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the processor beside the server's routes. When a `vigie stream` already runs on
/// the project, the server leaves the processing to it. A failing step is logged and the
/// processor reopened (which replays the stored history) after a pause.
pub fn start_in_server(project: &Project, events: &vigie_server::Events) -> Background {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let project = project.clone();
    let metrics = Arc::clone(&events.metrics);
    let thread = std::thread::Builder::new().name("vigie-stream".into()).spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let ran = (|| -> anyhow::Result<()> {
                let store = store(&project)?;
                let online = online(&project, &store)?;
                let mut processor =
                    StreamProcessor::open(&store, &log_dir(&project), &dead_dir(&project), online)?;
                eprintln!(
                    "stream: processing the events of {}",
                    processor.sources().collect::<Vec<_>>().join(", ")
                );
                processor.run(&flag, POLL, |progress| match progress {
                    Progress::Step(step) => {
                        metrics.processed(step.stored, step.dead_letters, step.late, step.updated);
                        if let Some(error) = &step.commit_error {
                            eprintln!(
                                "stream: {error} (the offsets are stored; the next commit catches up)"
                            );
                        }
                    }
                    Progress::Retrying(error) => eprintln!("stream: {error}; trying again in 1 s"),
                })?;
                Ok(())
            })();
            match ran {
                Ok(()) => break,
                Err(error) if matches!(error.downcast_ref(), Some(FeatureError::Busy(_))) => {
                    eprintln!("stream: {error:#}; this server only appends events");
                    break;
                }
                Err(error) => {
                    eprintln!("stream: {error:#}; starting again in 1 s");
                    for _ in 0..20 {
                        if flag.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(POLL);
                    }
                }
            }
        }
    });
    match thread {
        Ok(thread) => Background { stop, thread: Some(thread) },
        Err(error) => {
            eprintln!("stream: cannot start the processor thread: {error}");
            Background { stop, thread: None }
        }
    }
}

/// Sets `stop` on Ctrl-C or SIGTERM.
fn stop_on_signal(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("vigie-signals".into()).spawn(move || {
        runtime.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                match signal(SignalKind::terminate()) {
                    Ok(mut terminate) => tokio::select! {
                        _ = tokio::signal::ctrl_c() => {},
                        _ = terminate.recv() => {},
                    },
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        stop.store(true, Ordering::Relaxed);
    })?;
    Ok(())
}

/// `vigie stream`: the processor in the foreground until Ctrl-C or SIGTERM, or with
/// `once` until the logs hold nothing new.
pub fn run(project: &Project, once: bool, format: Format) -> anyhow::Result<()> {
    let store = store(project)?;
    let online = online(project, &store)?;
    let spinner = Spinner::new("replaying the stored events");
    let opened = StreamProcessor::open(&store, &log_dir(project), &dead_dir(project), online);
    spinner.finish();
    let mut processor = opened?;
    let sources: Vec<String> = processor.sources().map(str::to_owned).collect();
    if sources.is_empty() {
        return Err(super::UsageError(
            "vigie.toml declares no streaming source (kind = \"http\" or \"kafka\")".into(),
        )
        .into());
    }
    let spinner = Spinner::new(&format!("processing the events of {}", sources.join(", ")));
    let mut total = StepSummary::default();
    let show = |step: &StepSummary, total: &mut StepSummary| {
        total.add(step);
        if let Some(error) = &step.commit_error {
            spinner
                .println(&format!("{error} (the offsets are stored; the next commit catches up)"));
        }
        spinner.set_message(&format!(
            "{} events: {} stored, {} dead letters, {} late, {} online rows written",
            total.events, total.stored, total.dead_letters, total.late, total.updated
        ));
    };
    let result = if once {
        processor.catch_up(|step| show(step, &mut total)).map(|_| ())
    } else {
        let stop = Arc::new(AtomicBool::new(false));
        stop_on_signal(Arc::clone(&stop))?;
        processor
            .run(&stop, POLL, |progress| match progress {
                Progress::Step(step) => show(step, &mut total),
                Progress::Retrying(error) => {
                    spinner.println(&format!("{error}; trying again in 1 s"));
                }
            })
            .map(|_| ())
    };
    spinner.finish();
    result?;
    total.waiting = processor.waiting();
    let summary = json!({
        "sources": sources,
        "events": total.events,
        "stored": total.stored,
        "dead_letters": total.dead_letters,
        "late": total.late,
        "online_rows_written": total.updated,
        "waiting_for_watermark": total.waiting,
        "dead_letter_folder": dead_dir(project).display().to_string(),
    });
    match format {
        Format::Json => outln!("{summary}")?,
        Format::Text => {
            outln!(
                "{} events read from {}: {} stored, {} dead letters, {} late; {} online rows written; {} waiting for the watermark",
                total.events,
                sources.join(", "),
                total.stored,
                total.dead_letters,
                total.late,
                total.updated,
                total.waiting
            )?;
            if total.dead_letters + total.late > 0 {
                outln!("dead letters, with their reasons: {}", dead_dir(project).display())?;
            }
        }
    }
    Ok(())
}
