//! Training end to end through `train::train`, and what a saved model must keep:
//! identical predictions after a save/load round trip, single-row scoring
//! equal to batch scoring, explanations that add up, seeded reproducibility,
//! and files of the previous format version still loading.

use sha2::{Digest, Sha256};
use vigie_core::{Column, ColumnData, Frame, TextColumn, Value};
use vigie_ml::rng::Rng;
use vigie_ml::search::{SearchKind, Space};
use vigie_ml::train::{Algorithm, NoProgress, TrainRequest, train};
use vigie_ml::{MlError, Model, SavedModel, format};

/// A seeded table with numbers, missing values, a category and a rare positive class.
fn table(n: usize, seed: u64) -> Frame {
    let mut rng = Rng::new(seed);
    let mut amount = Vec::with_capacity(n);
    let mut age = Vec::with_capacity(n);
    let mut country = Vec::with_capacity(n);
    let mut online = Vec::with_capacity(n);
    let mut fraud = Vec::with_capacity(n);
    let countries = ["FR", "DE", "ES", "IT", "US", "BR"];
    for _ in 0..n {
        let a = (rng.normal() * 1.2 + 4.0).exp();
        let g = 18.0 + rng.below(60) as f64;
        let c = countries[rng.below(countries.len())];
        let o = rng.below(2) == 0;
        let logit = -4.5
            + 0.9 * (a.ln() - 4.0)
            + if c == "BR" { 1.5 } else { 0.0 }
            + if o { 0.8 } else { 0.0 }
            - 0.02 * (g - 40.0);
        fraud.push(if rng.next_f64() < 1.0 / (1.0 + (-logit).exp()) { "yes" } else { "no" });
        amount.push(if rng.below(20) == 0 { f64::NAN } else { a });
        age.push(g);
        country.push(if rng.below(30) == 0 { None } else { Some(c) });
        online.push(f64::from(u8::from(o)));
    }
    Frame::new(vec![
        Column { name: "amount".into(), data: ColumnData::Numeric(amount) },
        Column { name: "age".into(), data: ColumnData::Numeric(age) },
        Column { name: "country".into(), data: ColumnData::Text(TextColumn::from_values(country)) },
        Column { name: "online".into(), data: ColumnData::Boolean(online) },
        Column {
            name: "fraud".into(),
            data: ColumnData::Text(TextColumn::from_values(fraud.into_iter().map(Some))),
        },
    ])
    .expect("frame")
}

fn request(algorithm: Algorithm) -> TrainRequest {
    let mut request = TrainRequest::new("fraud", "fraud");
    request.algorithm = Some(algorithm);
    request.cv = 3;
    request
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn every_algorithm_round_trips_bit_identically_and_scores_rows_like_batches() {
    let frame = table(3000, 1);
    for algorithm in [
        Algorithm::Gbdt,
        Algorithm::RandomForest,
        Algorithm::Logistic,
        Algorithm::LinearSvm,
        Algorithm::Mlp,
    ] {
        let outcome = train(&frame, &request(algorithm), &NoProgress).expect("train");
        let model = outcome.model;
        assert_eq!(model.card.classes, ["no", "yes"], "the rare class is positive");
        let auc = model.card.cv["roc_auc"].mean;
        assert!(auc > 0.7, "{algorithm:?}: cv roc_auc {auc}");

        let saved = SavedModel::from(model.clone());
        let loaded = format::decode(&format::encode(&saved).expect("encode"))
            .expect("decode")
            .into_tabular()
            .expect("tabular");
        assert_eq!(loaded, model);
        let batch = model.predict(&frame).expect("predict");
        assert_eq!(
            bits(&batch),
            bits(&loaded.predict(&frame).expect("predict loaded")),
            "{algorithm:?}"
        );

        let mut scratch = loaded.scratch();
        let names: Vec<String> = loaded.pipeline.inputs.iter().map(|i| i.name.clone()).collect();
        for row in (0..frame.n_rows()).step_by(97) {
            let values: Vec<Value> =
                names.iter().map(|n| frame.column(n).expect("column").data.value(row)).collect();
            let single = loaded.predict_row(&values, &mut scratch).expect("row");
            assert_eq!(bits(single), bits(&batch[row..row + 1]), "{algorithm:?} row {row}");
        }
    }
}

/// A file as format version 1 wrote it (before forecast models): the header
/// and the CBOR of the tabular model alone.
fn version_1_file(model: &Model) -> Vec<u8> {
    let mut payload = Vec::new();
    ciborium::into_writer(model, &mut payload).expect("cbor");
    let mut bytes = format::MAGIC.to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&Sha256::digest(&payload));
    bytes.extend_from_slice(&payload);
    bytes
}

#[test]
fn version_1_files_still_load_as_tabular_models() {
    let frame = table(600, 3);
    let model = train(&frame, &request(Algorithm::Gbdt), &NoProgress).expect("train").model;
    let loaded = format::decode(&version_1_file(&model)).expect("decode version 1");
    assert_eq!(loaded.task(), "binary");
    assert_eq!(loaded.into_tabular().expect("tabular"), model);
    // Version 2 wraps the model, so the same payload under a version 2 header is refused.
    let mut relabelled = version_1_file(&model);
    relabelled[8..12].copy_from_slice(&2u32.to_le_bytes());
    let error = format::decode(&relabelled).expect_err("not a version 2 payload");
    assert!(matches!(error, MlError::Corrupted(_)), "{error}");
    // A tabular model is not a forecaster.
    let saved = SavedModel::from(model);
    let error = saved.into_forecast().expect_err("tabular");
    assert!(error.to_string().contains("not a forecast model"), "{error}");
}

#[test]
fn explanations_add_up_to_the_raw_output_per_input_column() {
    let frame = table(2000, 2);
    for algorithm in [Algorithm::Gbdt, Algorithm::RandomForest, Algorithm::Logistic, Algorithm::Mlp]
    {
        let model = train(&frame, &request(algorithm), &NoProgress).expect("train").model;
        let explanation = model.explain(&frame).expect("explain");
        assert_eq!(explanation.columns, ["amount", "age", "country", "online"]);
        let probabilities = model.predict(&frame).expect("predict");
        let n_inputs = explanation.columns.len();
        for (row, &p) in probabilities.iter().enumerate() {
            let sum: f64 =
                explanation.contributions[row * n_inputs..(row + 1) * n_inputs].iter().sum::<f64>()
                    + explanation.bias[row];
            let raw = if algorithm == Algorithm::RandomForest { p } else { (p / (1.0 - p)).ln() };
            assert!(
                (sum - raw).abs() <= 1e-6 * raw.abs().max(1.0),
                "{algorithm:?} row {row}: {sum} vs {raw}"
            );
        }
    }
}

#[test]
fn searches_are_reproducible_and_bounded_by_trials() {
    let frame = table(1500, 3);
    let mut search = request(Algorithm::Gbdt);
    search.search = SearchKind::Random;
    search.trials = 4;
    search.space =
        Some(Space::parse("learning_rate=0.05..0.3;max_leaves=4..32;n_rounds=30").expect("space"));
    let first = train(&frame, &search, &NoProgress).expect("first");
    let second = train(&frame, &search, &NoProgress).expect("second");
    assert_eq!(first.trials.len(), 4);
    let scores = |o: &vigie_ml::train::TrainOutcome| {
        o.trials.iter().map(|t| (t.params.clone(), t.score.to_bits())).collect::<Vec<_>>()
    };
    assert_eq!(scores(&first), scores(&second));
    assert_eq!(first.best, second.best);
    let best = first.trials.iter().map(|t| t.score).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(first.trials[first.best].score, best, "the best trial by ROC-AUC wins");

    let mut grid = request(Algorithm::Logistic);
    grid.search = SearchKind::Grid;
    grid.trials = 2;
    grid.space = Some(Space::parse("l2=0.001,0.01,0.1").expect("space"));
    assert_eq!(
        train(&frame, &grid, &NoProgress).expect("grid").trials.len(),
        2,
        "trials bound the grid"
    );
}

#[test]
fn regression_and_multiclass_tasks_train() {
    let frame = table(1500, 4);
    let mut regression = TrainRequest::new("age", "age");
    regression.cv = 3;
    regression.ignore = vec!["fraud".into()];
    let outcome = train(&frame, &regression, &NoProgress).expect("regression");
    assert_eq!(outcome.model.card.task, vigie_ml::Task::Regression);
    assert!(outcome.model.card.cv["rmse"].mean.is_finite());
    assert_eq!(outcome.trials.len(), 3, "auto tries gbdt, random forest and linear regression");

    let mut multiclass = TrainRequest::new("country", "country");
    multiclass.cv = 3;
    multiclass.algorithm = Some(Algorithm::Gbdt);
    // Rows whose country is missing cannot be labels.
    let rows: Vec<usize> = (0..frame.n_rows())
        .filter(|&i| !frame.column("country").expect("c").data.value(i).is_missing())
        .collect();
    let labelled = frame.take(&rows);
    let outcome = train(&labelled, &multiclass, &NoProgress).expect("multiclass");
    assert_eq!(outcome.model.card.classes.len(), 6);
    let p = outcome.model.predict(&labelled).expect("predict");
    for row in p.chunks(6).take(50) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn fold_schemes_and_transform_overrides_apply() {
    use vigie_ml::train::{FoldScheme, PipelineOverrides};
    use vigie_ml::transform::{Encoding, Impute, Scale};

    let frame = table(1500, 5);
    let mut grouped = request(Algorithm::Logistic);
    grouped.folds = FoldScheme::Group("country".into());
    let model = train(&frame, &grouped, &NoProgress).expect("group folds").model;
    assert!(
        model.pipeline.inputs.iter().all(|i| i.name != "country"),
        "the group column is not a feature"
    );
    assert_eq!(model.card.cv_folds, 3);

    let mut timed = request(Algorithm::Gbdt);
    timed.folds = FoldScheme::Time("age".into());
    let model = train(&frame, &timed, &NoProgress).expect("time folds").model;
    assert!(model.pipeline.inputs.iter().all(|i| i.name != "age"));

    let mut overridden = request(Algorithm::Logistic);
    overridden.transforms = PipelineOverrides {
        impute: Some(Some(Impute::Mean)),
        missing_indicator: Some(false),
        scale: Some(Some(Scale::Robust)),
        encoding: Some(Encoding::Target { smoothing: 10.0, folds: 5 }),
        min_frequency: Some(1),
    };
    let model = train(&frame, &overridden, &NoProgress).expect("overrides").model;
    let described = model.pipeline.describe();
    assert!(described["country"].contains("target encoding"), "{described:?}");
    assert!(
        described["amount"].contains("robust") && !described["amount"].contains("indicator"),
        "{described:?}"
    );
    assert!(
        "constant:nan".parse::<f64>().is_err()
            || vigie_ml::transform::parse_impute("constant:nan").is_err()
    );
    assert_eq!(
        vigie_ml::transform::parse_encoding("hashing:16"),
        Ok(Encoding::Hashing { buckets: 16 })
    );
    assert!(vigie_ml::transform::parse_scale("zscore").is_err());
}
