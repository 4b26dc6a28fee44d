use vigie_core::{Column, ColumnData, Frame, TextColumn};
use vigie_ml::train::{Algorithm, NoProgress, TrainRequest, train};

use super::*;
use crate::{NewRun, RunStatus};

fn model(name: &str) -> SavedModel {
    let n = 200;
    let x: Vec<f64> = (0..n).map(|i| (i % 17) as f64).collect();
    let y = TextColumn::from_values((0..n).map(|i| Some(if (i % 17) > 10 { "yes" } else { "no" })));
    let frame = Frame::new(vec![
        Column { name: "x".into(), data: ColumnData::Numeric(x) },
        Column { name: "y".into(), data: ColumnData::Text(y) },
    ])
    .expect("frame");
    let mut request = TrainRequest::new(name, "y");
    request.algorithm = Some(Algorithm::Logistic);
    request.cv = 2;
    train(&frame, &request, &NoProgress).expect("train").model.into()
}

fn register(registry: &mut Registry, name: &str) -> VersionInfo {
    let run = registry
        .start_run(&NewRun {
            experiment: name.into(),
            name: "t".into(),
            user: "ana".into(),
            ..NewRun::default()
        })
        .unwrap();
    let mut m = model(name);
    let info = registry.register(&mut m, &run, "ana").unwrap();
    registry.end_run(&run, RunStatus::Finished).unwrap();
    info
}

#[test]
fn first_version_is_champion_and_aliases_move_and_roll_back_with_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::open(dir.path()).unwrap();
    let v1 = register(&mut registry, "fraud");
    assert_eq!((v1.version, v1.aliases.clone()), (1, vec!["champion".to_owned()]));
    let v2 = register(&mut registry, "fraud");
    assert_eq!(
        (v2.version, v2.aliases.len()),
        (2, 0),
        "later versions are champion only by promotion"
    );
    let champion = ModelRef { name: "fraud".into(), selector: Selector::Default };
    assert_eq!(registry.resolve(&champion).unwrap().version, 1);

    let before = registry.generation().unwrap();
    registry.set_alias("fraud", "champion", 2, "ben", "better recall").unwrap();
    assert!(registry.generation().unwrap() > before, "moves are visible to watchers");
    assert_eq!(registry.resolve(&champion).unwrap().version, 2);
    let back = registry.rollback("fraud", "champion", "ben", "alert").unwrap();
    assert_eq!((back.from_version, back.to_version), (Some(2), Some(1)));
    assert_eq!(registry.resolve(&champion).unwrap().version, 1);
    let error = registry.rollback("fraud", "champion", "ben", "again").unwrap_err();
    assert!(error.to_string().contains("no earlier version"), "{error}");

    let history = registry.alias_history("fraud").unwrap();
    let kinds: Vec<(&str, Option<u32>, &str)> =
        history.iter().map(|m| (m.kind.as_str(), m.to_version, m.user.as_str())).collect();
    assert_eq!(
        kinds,
        [("move", Some(1), "ana"), ("move", Some(2), "ben"), ("rollback", Some(1), "ben")]
    );
    assert_eq!(history[1].reason, "better recall");

    // The loaded model is the one registered.
    let loaded = registry.load(&registry.resolve(&"fraud:2".parse().unwrap()).unwrap()).unwrap();
    assert_eq!(loaded.version(), 2);
}

#[test]
fn refused_changes_leave_everything_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::open(dir.path()).unwrap();
    register(&mut registry, "fraud");
    register(&mut registry, "churn");
    let generation = registry.generation().unwrap();
    assert!(matches!(
        registry.set_alias("fraud", "champion", 7, "x", ""),
        Err(RegistryError::UnknownVersion { .. })
    ));
    assert!(matches!(
        registry.set_alias("ghost", "champion", 1, "x", ""),
        Err(RegistryError::UnknownModel { .. })
    ));
    assert!(
        matches!(registry.delete_version("fraud", 1), Err(RegistryError::Conflict(_))),
        "champion cannot be deleted"
    );
    assert!(registry.set_alias("fraud", "bad alias", 1, "x", "").is_err());
    assert_eq!(registry.generation().unwrap(), generation);
    assert_eq!(registry.alias_history("fraud").unwrap().len(), 1);
    let error = registry.resolve(&"ghost".parse().unwrap()).unwrap_err();
    assert!(error.to_string().contains("churn, fraud"), "{error}");
    let error = registry.resolve(&"fraud@staging".parse().unwrap()).unwrap_err();
    assert!(error.to_string().contains("champion"), "{error}");
}

#[test]
fn concurrent_registrations_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    Registry::open(dir.path()).unwrap();
    let trained = model("race");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let path = dir.path().to_owned();
            let trained = trained.clone();
            std::thread::spawn(move || {
                let mut registry = Registry::open(&path).unwrap();
                (0..5)
                    .map(|_| {
                        let run = registry
                            .start_run(&NewRun {
                                experiment: "race".into(),
                                user: "t".into(),
                                ..NewRun::default()
                            })
                            .unwrap();
                        registry.register(&mut trained.clone(), &run, "t").unwrap().version
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut versions: Vec<u32> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=20).collect::<Vec<_>>());
    let registry = Registry::open(dir.path()).unwrap();
    for info in registry.versions("race").unwrap() {
        assert_eq!(
            registry.load(&info).unwrap().version(),
            info.version,
            "every artifact is whole"
        );
    }
}

#[test]
fn runs_keep_params_metric_history_and_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::open(dir.path()).unwrap();
    let parent = registry
        .start_run(&NewRun {
            experiment: "fraud".into(),
            name: "search".into(),
            user: "ana".into(),
            git_commit: Some("abc123".into()),
            data_sha256: Some("ff".into()),
            data_source: Some("tx.csv".into()),
            data_rows: Some(10),
            parent: None,
        })
        .unwrap();
    let child = registry
        .start_run(&NewRun {
            experiment: "fraud".into(),
            name: "trial 1".into(),
            parent: Some(parent.clone()),
            user: "ana".into(),
            ..NewRun::default()
        })
        .unwrap();
    registry.log_params(&parent, &[("learning_rate".into(), "0.1".into())]).unwrap();
    registry
        .log_metrics(
            &parent,
            &[
                ("roc_auc".into(), 0, 0.9),
                ("roc_auc".into(), 1, 0.92),
                ("log_loss".into(), 0, f64::NAN),
            ],
        )
        .unwrap();
    registry.set_tags(&parent, &[("search".into(), "random".into())]).unwrap();
    registry.end_run(&child, RunStatus::Finished).unwrap();
    registry.end_run(&parent, RunStatus::Finished).unwrap();
    let detail = registry.run(&parent[..8]).unwrap();
    assert_eq!(detail.summary.status, "FINISHED");
    assert_eq!(detail.git_commit.as_deref(), Some("abc123"));
    assert_eq!(detail.params, [("learning_rate".to_owned(), "0.1".to_owned())]);
    let auc = &detail.metrics.iter().find(|(k, _)| k == "roc_auc").unwrap().1;
    assert_eq!(auc.iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(), [(0, 0.9), (1, 0.92)]);
    assert!(detail.metrics.iter().find(|(k, _)| k == "log_loss").unwrap().1[0].value.is_nan());
    assert_eq!(detail.children, std::slice::from_ref(&child));
    assert_eq!(registry.runs(Some("fraud"), 10).unwrap().len(), 2);
    assert!(matches!(registry.run("zzzzzz"), Err(RegistryError::UnknownRun(_))));
    assert!(matches!(
        registry.end_run("nope", RunStatus::Failed),
        Err(RegistryError::UnknownRun(_))
    ));
}

#[test]
fn a_tampered_artifact_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::open(dir.path()).unwrap();
    let info = register(&mut registry, "fraud");
    let path = registry.artifact_path(&info);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(registry.load(&info).unwrap_err().to_string().contains("checksum"));
}
