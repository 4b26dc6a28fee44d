//! Decision thresholds chosen for a goal on validation scores.
//!
//! A binary model outputs a probability; turning it into a decision needs a
//! threshold, and 0.5 is rarely the one a user wants: fraud teams ask for "catch
//! 90% of fraud" or "flag at most 1% of good customers". This module picks the
//! threshold that meets such a goal on held-out scores, scanning every distinct
//! score exactly (one sort, O(n log n)) rather than a grid. A row is predicted
//! positive when `score >= threshold`, as in [`crate::metrics`]. It does not
//! calibrate probabilities.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::MlError;
use crate::metrics::BinaryCurve;

/// The threshold returned when the goal is undefined (one class, no rows).
const UNDEFINED_THRESHOLD: f64 = 0.5;

/// What a decision threshold should achieve.
///
/// Serialised adjacently tagged, `{"kind": "recall", "value": 0.9}` or
/// `{"kind": "max_f1"}`; parsed from the CLI forms `max-f1`, `recall:0.9`
/// and `fpr:0.01`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum ThresholdGoal {
    /// The threshold with the highest F1 of the positive class.
    MaxF1,
    /// The highest threshold whose recall is at least this (in `[0, 1]`).
    Recall(f64),
    /// The lowest threshold whose false-positive rate is at most this (in `[0, 1]`).
    MaxFalsePositiveRate(f64),
}

impl fmt::Display for ThresholdGoal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdGoal::MaxF1 => f.write_str("max-f1"),
            ThresholdGoal::Recall(recall) => write!(f, "recall:{recall}"),
            ThresholdGoal::MaxFalsePositiveRate(rate) => write!(f, "fpr:{rate}"),
        }
    }
}

impl FromStr for ThresholdGoal {
    type Err = MlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "max-f1" {
            return Ok(ThresholdGoal::MaxF1);
        }
        let invalid = || {
            MlError::param(
                "threshold",
                format!("{text:?} is not one of max-f1, recall:R, fpr:F with R and F in [0, 1]"),
            )
        };
        let (kind, value) = text.split_once(':').ok_or_else(invalid)?;
        let value: f64 = value.trim().parse().map_err(|_| invalid())?;
        if !(0.0..=1.0).contains(&value) {
            return Err(invalid());
        }
        match kind.trim() {
            "recall" => Ok(ThresholdGoal::Recall(value)),
            "fpr" => Ok(ThresholdGoal::MaxFalsePositiveRate(value)),
            _ => Err(invalid()),
        }
    }
}

/// The threshold on `score` that meets `goal` for labels `y` (1.0 positive).
///
/// Candidates are the distinct scores, so the returned value is one of them
/// except in one case below; predicting `score >= threshold` then gives the
/// promised rate on these rows exactly.
/// - [`ThresholdGoal::MaxF1`]: the highest threshold reaching the best F1.
/// - [`ThresholdGoal::Recall`]: the highest threshold with recall `>= r`;
///   the lowest score (recall 1) when no threshold reaches `r`.
/// - [`ThresholdGoal::MaxFalsePositiveRate`]: the lowest threshold with
///   false-positive rate `<= f`; when even the highest score exceeds it, the
///   next float above the highest score, so nothing is predicted positive.
///
/// Returns 0.5 when the goal is undefined: fewer than two classes, no rows,
/// lengths that disagree or a `NaN` score.
pub fn choose_threshold(y: &[f32], score: &[f64], goal: ThresholdGoal) -> f64 {
    let Some(curve) = BinaryCurve::new(y, score, None) else {
        return UNDEFINED_THRESHOLD;
    };
    let positives = curve.total_positives();
    let negatives = curve.total_negatives();
    if !(positives > 0.0 && negatives > 0.0) {
        return UNDEFINED_THRESHOLD;
    }
    let points = curve.thresholds.iter().zip(&curve.true_positives).zip(&curve.false_positives);
    match goal {
        ThresholdGoal::MaxF1 => {
            let mut best_threshold = UNDEFINED_THRESHOLD;
            let mut best_f1 = f64::NEG_INFINITY;
            // Highest threshold first, so a strict `>` keeps the highest on ties.
            for ((&threshold, &tp), &fp) in points {
                let f1 = 2.0 * tp / (positives + tp + fp);
                if f1 > best_f1 {
                    best_f1 = f1;
                    best_threshold = threshold;
                }
            }
            best_threshold
        }
        ThresholdGoal::Recall(min_recall) => {
            // Recall only grows as the threshold falls: the first hit is the highest.
            let reached = points
                .map(|((&threshold, &tp), _)| (threshold, tp / positives))
                .find(|&(_, recall)| recall >= min_recall);
            reached
                .map(|(threshold, _)| threshold)
                .or_else(|| curve.thresholds.last().copied())
                .unwrap_or(UNDEFINED_THRESHOLD)
        }
        ThresholdGoal::MaxFalsePositiveRate(max_rate) => {
            // The rate only grows as the threshold falls: keep the last one within bounds.
            let within = points
                .take_while(|&((_, _), &fp)| fp / negatives <= max_rate)
                .last()
                .map(|((&threshold, _), _)| threshold);
            within.unwrap_or_else(|| {
                curve.thresholds.first().map_or(UNDEFINED_THRESHOLD, |&top| top.next_up())
            })
        }
    }
}
