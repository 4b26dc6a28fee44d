use vigie_core::{Column, ColumnData, Frame, TextColumn, Value};

use super::*;

fn frame() -> Frame {
    let amount = vec![1.0, 2.0, f64::NAN, 4.0, 100.0, 6.0];
    let city = TextColumn::from_values([
        Some(" Paris"),
        Some("paris"),
        Some("Lyon"),
        None,
        Some("Paris "),
        Some("Nice"),
    ]);
    Frame::new(vec![
        Column { name: "amount".into(), data: ColumnData::Numeric(amount) },
        Column { name: "city".into(), data: ColumnData::Text(city) },
    ])
    .unwrap()
}

fn target(y: &[f32]) -> Target<'_> {
    Target { y, task: Task::Binary }
}

#[test]
fn statistics_come_from_training_rows_only() {
    let frame = frame();
    let spec = PipelineSpec {
        numeric: NumericRecipe {
            impute: Some(Impute::Mean),
            missing_indicator: true,
            scale: Some(Scale::Standard),
        },
        ..PipelineSpec::default()
    };
    let rows = [0, 1, 2, 3];
    let y = [0.0, 1.0, 0.0, 1.0];
    let fitted = Pipeline::fit(&spec, &frame, &["amount", "city"], &rows, target(&y), 1).unwrap();
    // Changing a row outside the training fold changes nothing.
    let mut changed = frame.clone();
    changed = Frame::new(
        changed
            .columns()
            .iter()
            .map(|c| match &c.data {
                ColumnData::Numeric(v) => {
                    let mut v = v.clone();
                    v[4] = -1e9;
                    Column { name: c.name.clone(), data: ColumnData::Numeric(v) }
                }
                _ => c.clone(),
            })
            .collect(),
    )
    .unwrap();
    let refitted =
        Pipeline::fit(&spec, &changed, &["amount", "city"], &rows, target(&y), 1).unwrap();
    assert_eq!(fitted, refitted);
    // Mean of training values 1, 2, 4 fills the missing one: standardised it is 0.
    let matrix = fitted.transform(&frame).unwrap();
    assert!(matrix.row(2)[0].abs() < 1e-6);
    assert_eq!(matrix.row(2)[1], 1.0, "missing indicator");
    assert_eq!(fitted.features[1].name, "amount_missing");
}

#[test]
fn text_is_normalised_and_rare_values_share_a_bucket() {
    let frame = frame();
    let spec = PipelineSpec {
        text: TextRecipe { min_frequency: 2, encoding: Encoding::OneHot, ..TextRecipe::default() },
        ..PipelineSpec::default()
    };
    let rows: Vec<usize> = (0..6).collect();
    let y = [0.0; 6];
    let fitted = Pipeline::fit(&spec, &frame, &["city"], &rows, target(&y), 1).unwrap();
    assert_eq!(
        fitted.features.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["city=paris", "city=__other__"]
    );
    let matrix = fitted.transform(&frame).unwrap();
    assert_eq!(matrix.row(0), [1.0, 0.0]);
    assert_eq!(matrix.row(4), [1.0, 0.0], "trailing space and case fold to the same category");
    assert_eq!(matrix.row(2), [0.0, 1.0], "Lyon is rare");
    assert_eq!(matrix.row(3), [0.0, 0.0], "missing");
    let mut out = [0.0f32; 2];
    fitted.transform_row_into(&[Value::Text("  PARIS".into())], &mut out).unwrap();
    assert_eq!(out, [1.0, 0.0]);
    fitted.transform_row_into(&[Value::Text("Tokyo".into())], &mut out).unwrap();
    assert_eq!(out, [0.0, 1.0], "unseen values go to the other bucket");
}

#[test]
fn batch_and_single_row_encodings_agree_for_every_encoding() {
    let frame = frame();
    let y = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0];
    let rows: Vec<usize> = (0..6).collect();
    for encoding in [
        Encoding::Native,
        Encoding::OneHot,
        Encoding::Ordinal,
        Encoding::Target { smoothing: 1.0, folds: 2 },
        Encoding::Hashing { buckets: 8 },
    ] {
        let spec = PipelineSpec {
            numeric: NumericRecipe {
                impute: Some(Impute::Median),
                missing_indicator: false,
                scale: Some(Scale::Robust),
            },
            text: TextRecipe { min_frequency: 1, encoding, ..TextRecipe::default() },
        };
        let fitted =
            Pipeline::fit(&spec, &frame, &["amount", "city"], &rows, target(&y), 3).unwrap();
        let matrix = fitted.transform(&frame).unwrap();
        let mut out = vec![0.0f32; fitted.n_features()];
        for i in 0..frame.n_rows() {
            let values: Vec<Value> =
                ["amount", "city"].iter().map(|c| frame.column(c).unwrap().data.value(i)).collect();
            fitted.transform_row_into(&values, &mut out).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&out),
                bits(matrix.row(i)),
                "{encoding:?} row {i}: {out:?} vs {:?}",
                matrix.row(i)
            );
        }
    }
}

#[test]
fn target_encoding_is_out_of_fold_on_training_rows() {
    // One category, labels alternate: the in-fold mean would leak each row's own label.
    let codes = TextColumn::from_values((0..40).map(|i| Some(if i < 20 { "a" } else { "b" })));
    let frame =
        Frame::new(vec![Column { name: "c".into(), data: ColumnData::Text(codes) }]).unwrap();
    let y: Vec<f32> = (0..40).map(|i| if i < 20 { 1.0 } else { 0.0 }).collect();
    let rows: Vec<usize> = (0..40).collect();
    let spec = PipelineSpec {
        text: TextRecipe {
            min_frequency: 1,
            encoding: Encoding::Target { smoothing: 0.0, folds: 5 },
            ..TextRecipe::default()
        },
        ..PipelineSpec::default()
    };
    let fitted =
        Pipeline::fit(&spec, &frame, &["c"], &rows, Target { y: &y, task: Task::Binary }, 9)
            .unwrap();
    let served = fitted.transform(&frame).unwrap();
    assert_eq!(served.row(0), [1.0]);
    assert_eq!(served.row(39), [0.0]);
    let training = fitted.transform_training(&frame, &rows).unwrap();
    // Out of fold, with zero smoothing, a pure category still maps to its mean, computed without the row.
    assert_eq!(training.row(0), [1.0]);
}

#[test]
fn schema_errors_name_the_column() {
    let frame = frame();
    let y = [0.0; 6];
    let rows: Vec<usize> = (0..6).collect();
    let fitted =
        Pipeline::fit(&PipelineSpec::default(), &frame, &["amount", "city"], &rows, target(&y), 1)
            .unwrap();
    let without = frame.without(&["city"]);
    assert!(matches!(fitted.transform(&without), Err(MlError::MissingColumn(c)) if c == "city"));
    let mut out = vec![0.0; fitted.n_features()];
    let error = fitted
        .transform_row_into(&[Value::Text("x".into()), Value::Missing], &mut out)
        .unwrap_err();
    assert!(error.to_string().contains("amount"), "{error}");
}
