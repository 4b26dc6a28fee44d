//! What the registry does, written once and run on SQLite and on PostgreSQL: versions,
//! aliases and their history, rollback, refusals that change nothing, concurrent
//! registrations, run tracking, and checksums of loaded models.
#![expect(
    clippy::unwrap_used,
    reason = "test bodies: each runs inside the #[test] functions that on_every_backend! writes"
)]

use vigie_registry::{ModelRef, Registry, RegistryError, RunStatus, Selector};

use crate::support::{Place, model, on_every_backend, register, register_model};

on_every_backend!(
    first_version_is_champion_and_aliases_move_and_roll_back_with_history,
    refused_changes_leave_everything_as_it_was,
    concurrent_registrations_get_distinct_versions,
    runs_keep_params_metric_history_and_lineage,
    a_tampered_artifact_is_refused,
    deleting_a_version_and_an_alias,
);

fn first_version_is_champion_and_aliases_move_and_roll_back_with_history(place: &Place) {
    let mut registry = place.open();
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

    // The loaded model is the one registered; another connection sees the same registry.
    let loaded = registry.load(&registry.resolve(&"fraud:2".parse().unwrap()).unwrap()).unwrap();
    assert_eq!(loaded.version(), 2);
    let other = place.open();
    assert_eq!(other.resolve(&champion).unwrap().version, 1);
    let models = other.models().unwrap();
    assert_eq!(
        models.iter().map(|m| (m.name.as_str(), m.versions, m.latest)).collect::<Vec<_>>(),
        [("fraud", 2, 2)]
    );
    assert_eq!(models[0].aliases, [("champion".to_owned(), 1)]);
}

fn refused_changes_leave_everything_as_it_was(place: &Place) {
    let mut registry = place.open();
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
    assert!(matches!(
        registry.register(&mut model("fraud"), "no-such-run", "x"),
        Err(RegistryError::UnknownRun(_))
    ));
    assert!(matches!(
        registry.rollback("fraud", "champion", "x", ""),
        Err(RegistryError::Conflict(_))
    ));
    assert_eq!(registry.generation().unwrap(), generation);
    assert_eq!(registry.alias_history("fraud").unwrap().len(), 1);
    assert_eq!(
        registry.versions("fraud").unwrap().len(),
        1,
        "the refused registration left no version"
    );
    assert!(
        !place.dir.path().join("artifacts/no-such-run").exists(),
        "the refused registration left no model file"
    );
    let error = registry.resolve(&"ghost".parse().unwrap()).unwrap_err();
    assert!(error.to_string().contains("churn, fraud"), "{error}");
    let error = registry.resolve(&"fraud@staging".parse().unwrap()).unwrap_err();
    assert!(error.to_string().contains("champion"), "{error}");
}

fn concurrent_registrations_get_distinct_versions(place: &Place) {
    place.open();
    let trained = model("race");
    let (threads, each) = (4, 5);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let location = place.location.clone();
            let trained = trained.clone();
            std::thread::spawn(move || {
                // Each thread is its own process's connection, as two trainings would be.
                let mut registry = Registry::connect(&location).unwrap();
                (0..each)
                    .map(|_| register_model(&mut registry, &trained, "t").version)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut versions: Vec<u32> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=threads * each).collect::<Vec<_>>());
    let registry = place.open();
    let registered = registry.versions("race").unwrap();
    assert_eq!(registered.len(), (threads * each) as usize);
    for info in registered {
        assert_eq!(
            registry.load(&info).unwrap().version(),
            info.version,
            "every artifact is whole"
        );
    }
    assert_eq!(
        registry.alias_history("race").unwrap().len(),
        1,
        "only v1 became champion by itself"
    );
}

fn runs_keep_params_metric_history_and_lineage(place: &Place) {
    let mut registry = place.open();
    let parent = registry
        .start_run(&vigie_registry::NewRun {
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
        .start_run(&vigie_registry::NewRun {
            experiment: "fraud".into(),
            name: "trial 1".into(),
            parent: Some(parent.clone()),
            user: "ana".into(),
            ..vigie_registry::NewRun::default()
        })
        .unwrap();
    registry.log_params(&parent, &[("learning_rate".into(), "0.1".into())]).unwrap();
    registry.log_params(&parent, &[("learning_rate".into(), "0.2".into())]).unwrap();
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
    registry.set_run_data(&parent, "ee", "tx2.csv", 12).unwrap();
    let batch = vigie_registry::RunBatch {
        params: &[("max_depth".into(), "4".into()), ("max_depth".into(), "6".into())],
        metrics: &[("roc_auc".into(), 0, 0.8)],
        tags: &[("trial".into(), "1".into())],
        data: Some(vigie_registry::RunData { sha256: "dd", source: "fold1.csv", rows: 9 }),
    };
    registry.log_batch(&child, batch).unwrap();
    assert!(registry.log_batch("0123456789abcdef0123456789abcdef", batch).is_err(), "no such run");
    registry.end_run(&child, RunStatus::Finished).unwrap();
    let trial = registry.run(&child).unwrap();
    assert_eq!(trial.params, [("max_depth".to_owned(), "6".to_owned())], "the last value wins");
    assert_eq!(trial.tags, [("trial".to_owned(), "1".to_owned())]);
    assert_eq!(trial.metrics.len(), 1);
    assert_eq!(trial.metrics[0].0, "roc_auc");
    assert_eq!((trial.metrics[0].1[0].step, trial.metrics[0].1[0].value), (0, 0.8));
    assert_eq!(
        (trial.data_sha256.as_deref(), trial.data_source.as_deref(), trial.data_rows),
        (Some("dd"), Some("fold1.csv"), Some(9)),
        "a batch's data replaces the run's"
    );
    registry.end_run(&parent, RunStatus::Finished).unwrap();
    let detail = registry.run(&parent[..8].to_ascii_uppercase()).unwrap();
    assert_eq!(detail.summary.status, "FINISHED");
    assert_eq!(detail.git_commit.as_deref(), Some("abc123"));
    assert_eq!((detail.data_sha256.as_deref(), detail.data_rows), (Some("ee"), Some(12)));
    assert_eq!(
        detail.params,
        [("learning_rate".to_owned(), "0.2".to_owned())],
        "the last value wins"
    );
    assert_eq!(detail.tags, [("search".to_owned(), "random".to_owned())]);
    let auc = &detail.metrics.iter().find(|(k, _)| k == "roc_auc").unwrap().1;
    assert_eq!(auc.iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(), [(0, 0.9), (1, 0.92)]);
    assert!(detail.metrics.iter().find(|(k, _)| k == "log_loss").unwrap().1[0].value.is_nan());
    assert_eq!(detail.children, std::slice::from_ref(&child));
    assert_eq!(registry.runs(Some("fraud"), 10).unwrap().len(), 2);
    assert_eq!(registry.runs(None, 1).unwrap().len(), 1);
    assert!(registry.runs(Some("other"), 10).unwrap().is_empty());
    assert_eq!(registry.all_runs().unwrap().len(), 2);
    assert!(matches!(registry.run("zzzzzz"), Err(RegistryError::UnknownRun(_))));
    assert!(matches!(
        registry.end_run("nope", RunStatus::Failed),
        Err(RegistryError::UnknownRun(_))
    ));
}

fn a_tampered_artifact_is_refused(place: &Place) {
    let mut registry = place.open();
    let info = register(&mut registry, "fraud");
    let path = registry.artifact_path(&info);
    assert!(path.starts_with(place.dir.path()), "{}", path.display());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(registry.load(&info).unwrap_err().to_string().contains("checksum"));
}

fn deleting_a_version_and_an_alias(place: &Place) {
    let mut registry = place.open();
    register(&mut registry, "fraud");
    let v2 = register(&mut registry, "fraud");
    registry.set_alias("fraud", "challenger", 2, "ben", "try").unwrap();
    assert!(matches!(registry.delete_version("fraud", 2), Err(RegistryError::Conflict(_))));
    let deleted = registry.delete_alias("fraud", "challenger", "ben", "done").unwrap();
    assert_eq!(
        (deleted.from_version, deleted.to_version, deleted.kind.as_str()),
        (Some(2), None, "delete")
    );
    registry.delete_version("fraud", 2).unwrap();
    assert_eq!(
        registry.versions("fraud").unwrap().iter().map(|v| v.version).collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(registry.run_of_version("fraud", 2).unwrap(), None);
    assert!(registry.run(&v2.run_id).is_ok(), "the run stays, for lineage");
    assert!(matches!(
        registry.delete_alias("fraud", "challenger", "ben", ""),
        Err(RegistryError::UnknownAlias { .. })
    ));
    // A deleted version's number is never given again, as in MLflow.
    let again = register(&mut registry, "fraud");
    assert_eq!(again.version, 3);

    // Rollbacks go back past deleted versions, to the latest earlier one that exists.
    let v4 = register(&mut registry, "fraud").version;
    for version in [3, v4] {
        registry.set_alias("fraud", "champion", version, "ben", "").unwrap();
    }
    registry.delete_version("fraud", 3).unwrap();
    let back = registry.rollback("fraud", "champion", "ben", "").unwrap();
    assert_eq!((back.from_version, back.to_version), (Some(4), Some(1)));
    let error = registry.rollback("fraud", "champion", "ben", "").unwrap_err();
    assert!(error.to_string().contains("v1 is the first it pointed at"), "{error}");
    // When every earlier one is gone, a refusal that says so, and nothing moves.
    registry.set_alias("fraud", "champion", 4, "ben", "").unwrap();
    registry.delete_version("fraud", 1).unwrap();
    let error = registry.rollback("fraud", "champion", "ben", "").unwrap_err();
    assert!(matches!(error, RegistryError::Conflict(_)), "{error}");
    assert!(error.to_string().contains("before v4 (v1) were deleted"), "{error}");
    let champion = ModelRef { name: "fraud".into(), selector: Selector::Default };
    assert_eq!(registry.resolve(&champion).unwrap().version, 4);
}
