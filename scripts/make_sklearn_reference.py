#!/usr/bin/env python3
"""Writes crates/vigie-ml/tests/data/sklearn_metrics.json: inputs and scikit-learn's metric values.

`crates/vigie-ml/tests/it/metrics.rs` asserts that `vigie_ml::metrics` gives the same numbers.
The inputs are small seeded arrays; the scores have ties (rounded to two decimals) and exact
0 and 1 probabilities, so tie handling and log-loss clipping are exercised. Labels, targets and
weights are float32 values, since Vigie reads them as `f32`; scores and predictions are float64.

Run from the workspace root (a throwaway venv is enough):

    python3 -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-learn numpy
    /tmp/skvenv/bin/python scripts/make_sklearn_reference.py
"""

import json
import pathlib
import platform

import numpy as np
import sklearn
from sklearn import metrics

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/vigie-ml/tests/data/sklearn_metrics.json"
THRESHOLDS = [0.5, 0.3, 0.75]


def f32_list(values):
    """float32 values written as the float64 numbers they are, so Rust parses them exactly."""
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def binary_case(rng, n_rows, weighted):
    y = (rng.random(n_rows) < 0.4).astype(np.float32)
    # Informative but noisy scores, rounded so that many rows tie.
    score = np.clip(0.35 * y + rng.random(n_rows) * 0.65, 0.0, 1.0).round(2)
    score[:3] = [0.0, 1.0, 0.0]  # exact 0/1 probabilities hit the log-loss clipping
    y[:3] = [1.0, 0.0, 0.0]
    weights = rng.integers(1, 8, n_rows).astype(np.float32) / 4 if weighted else None
    y64 = y.astype(np.float64)
    expected = {
        "roc_auc": metrics.roc_auc_score(y64, score, sample_weight=weights),
        "pr_auc": metrics.average_precision_score(y64, score, sample_weight=weights),
        "log_loss": metrics.log_loss(y64, score, sample_weight=weights),
        "brier": metrics.brier_score_loss(y64, score, sample_weight=weights),
        "at_threshold": [],
    }
    for threshold in THRESHOLDS:
        predicted = (score >= threshold).astype(np.float64)
        tn, fp, fn, tp = metrics.confusion_matrix(
            y64, predicted, labels=[0.0, 1.0], sample_weight=weights
        ).ravel()
        expected["at_threshold"].append(
            {
                "threshold": threshold,
                "f1": metrics.f1_score(y64, predicted, sample_weight=weights),
                "precision": metrics.precision_score(y64, predicted, sample_weight=weights),
                "recall": metrics.recall_score(y64, predicted, sample_weight=weights),
                "accuracy": metrics.accuracy_score(y64, predicted, sample_weight=weights),
                "confusion": [float(tn), float(fp), float(fn), float(tp)],
            }
        )
    case = {"y": f32_list(y), "score": [float(s) for s in score], "expected": expected}
    if weighted:
        case["weights"] = f32_list(weights)
    return case


def multiclass_case(rng, n_rows, n_classes, used_classes):
    """Labels drawn from `used_classes` only; probabilities over all `n_classes`."""
    y = rng.choice(used_classes, n_rows).astype(np.float32)
    logits = rng.normal(size=(n_rows, n_classes))
    logits[np.arange(n_rows), y.astype(int)] += 1.0
    logits[:, [c for c in range(n_classes) if c not in used_classes]] -= 50.0
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    # A confident wrong row: the true class gets probability 0 and is clipped.
    proba[0] = 0.0
    proba[0, (int(y[0]) + 1) % len(used_classes)] = 1.0
    y64 = y.astype(np.float64)
    predicted = proba.argmax(axis=1).astype(np.float64)
    labels = [float(c) for c in range(n_classes)]
    return {
        "n_classes": n_classes,
        "y": f32_list(y),
        "proba": [float(p) for p in proba.ravel()],
        "expected": {
            "accuracy": metrics.accuracy_score(y64, predicted),
            "f1_macro": metrics.f1_score(y64, predicted, average="macro"),
            "f1_weighted": metrics.f1_score(y64, predicted, average="weighted"),
            "log_loss": metrics.log_loss(y64, proba, labels=labels),
            "confusion": [
                float(c) for c in metrics.confusion_matrix(y64, predicted, labels=labels).ravel()
            ],
        },
    }


def regression_case(rng, n_rows):
    y = (rng.normal(size=n_rows) * 10 + 3).astype(np.float32)
    y[0] = 0.0  # MAPE divides by max(|y|, eps) here
    y64 = y.astype(np.float64)
    prediction = y64 + rng.normal(size=n_rows) * 2.5
    return {
        "y": f32_list(y),
        "prediction": [float(p) for p in prediction],
        "expected": {
            "rmse": metrics.root_mean_squared_error(y64, prediction),
            "mae": metrics.mean_absolute_error(y64, prediction),
            "r2": metrics.r2_score(y64, prediction),
            "mape": metrics.mean_absolute_percentage_error(y64, prediction),
        },
    }


def main():
    rng = np.random.default_rng(20240611)
    reference = {
        "generated_by": "scripts/make_sklearn_reference.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "binary": binary_case(rng, 200, weighted=False),
        "binary_weighted": binary_case(rng, 120, weighted=True),
        "multiclass": multiclass_case(rng, 150, 3, [0, 1, 2]),
        # Class 3 never occurs as a label or a prediction: macro F1 must skip it.
        "multiclass_absent_class": multiclass_case(rng, 60, 4, [0, 1, 2]),
        "regression": regression_case(rng, 100),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: serde_json cannot read NaN, and no reference value should be one.
    OUT.write_text(json.dumps(reference, indent=1, allow_nan=False) + "\n")
    print(f"wrote {OUT} with scikit-learn {sklearn.__version__}")


if __name__ == "__main__":
    main()
