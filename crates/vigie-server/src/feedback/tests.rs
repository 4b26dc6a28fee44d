use approx::assert_relative_eq;
use serde_json::{Value as Json, json};
use vigie_ml::Task;

use super::{Given, Predicted, compare};

fn given(label: Json) -> Given {
    Given { request_id: "r".into(), row: 0, label }
}

fn predicted(outputs: Json) -> Predicted {
    Predicted { model: "m".into(), version: 1, variant: "champion".into(), outputs }
}

fn binary() -> Vec<String> {
    vec!["0".into(), "1".into()]
}

#[test]
fn a_binary_label_is_judged_at_the_threshold_with_its_log_loss() {
    let outputs = predicted(json!({"score": 0.8, "label": "1", "threshold": 0.5}));
    let right = compare(Task::Binary, &binary(), &given(json!(1)), &outputs).expect("valid");
    assert_eq!(right.correct, Some(true));
    assert_relative_eq!(right.log_loss.expect("loss"), -(0.8f64.ln()), max_relative = 1e-12);
    let wrong = compare(Task::Binary, &binary(), &given(json!("0")), &outputs).expect("valid");
    assert_eq!(wrong.correct, Some(false));
    assert_relative_eq!(wrong.log_loss.expect("loss"), -(0.2f64.ln()), max_relative = 1e-12);
    assert_eq!(wrong.absolute_error, None);
}

#[test]
fn a_multiclass_label_reads_its_own_probability() {
    let classes: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    let outputs = predicted(json!({"scores": {"a": 0.2, "b": 0.7, "c": 0.1}, "label": "b"}));
    let observed =
        compare(Task::Multiclass { n_classes: 3 }, &classes, &given(json!("c")), &outputs)
            .expect("valid");
    assert_eq!(observed.correct, Some(false));
    assert_relative_eq!(observed.log_loss.expect("loss"), -(0.1f64.ln()), max_relative = 1e-12);
}

#[test]
fn a_regression_label_gives_its_absolute_error() {
    let outputs = predicted(json!({"score": 10.5, "label": 10.5}));
    let observed = compare(Task::Regression, &[], &given(json!(12)), &outputs).expect("valid");
    assert_eq!((observed.correct, observed.log_loss), (None, None));
    assert_relative_eq!(observed.absolute_error.expect("error"), 1.5);
}

#[test]
fn a_label_of_the_wrong_kind_names_the_field() {
    let outputs = predicted(json!({"score": 0.8, "label": "1"}));
    for label in [json!("2"), json!([1]), json!({"class": 1})] {
        let error =
            compare(Task::Binary, &binary(), &given(label), &outputs).err().expect("refused");
        assert_eq!(error.status, 400);
        assert!(error.message.contains("field \"label\""), "{}", error.message);
    }
    let error = compare(Task::Regression, &[], &given(json!("ten")), &outputs).err().expect("no");
    assert!(error.message.contains("must be a number"), "{}", error.message);
}
