//! Live performance from feedback, as Prometheus metrics per model, version
//! and routing variant: how many predictions got their ground truth, how
//! many of the decisions were right (classification, at the model's
//! threshold), the summed log loss, or the summed absolute error
//! (regression), and the accuracy so far as a gauge. Dividing a sum by
//! `vigie_feedback_total` gives the mean; `rate()` of both gives it over a window.

use prometheus::{CounterVec, GaugeVec, IntCounterVec, Opts};

use super::store::Totals;
use crate::metrics::Metrics;

const LABELS: [&str; 3] = ["model", "version", "variant"];

/// The feedback metrics.
pub struct Live {
    total: IntCounterVec,
    correct: IntCounterVec,
    log_loss: CounterVec,
    absolute_error: CounterVec,
    accuracy: GaugeVec,
}

/// One feedback's contribution.
pub struct Observed {
    /// Classification: whether the decision was right.
    pub correct: Option<bool>,
    /// Classification: the row's log loss.
    pub log_loss: Option<f64>,
    /// Regression: the row's absolute error.
    pub absolute_error: Option<f64>,
}

impl Live {
    /// The metrics, registered with the server's.
    pub fn register(metrics: &Metrics) -> Result<Live, prometheus::Error> {
        let total = IntCounterVec::new(
            Opts::new("vigie_feedback_total", "Predictions that received their ground truth"),
            &LABELS,
        )?;
        let correct = IntCounterVec::new(
            Opts::new(
                "vigie_feedback_correct_total",
                "Classification decisions that matched the ground truth",
            ),
            &LABELS,
        )?;
        let log_loss = CounterVec::new(
            Opts::new("vigie_feedback_log_loss_sum", "Sum of the log loss of classified rows"),
            &LABELS,
        )?;
        let absolute_error = CounterVec::new(
            Opts::new(
                "vigie_feedback_absolute_error_sum",
                "Sum of |prediction - truth| of regression rows",
            ),
            &LABELS,
        )?;
        let accuracy = GaugeVec::new(
            Opts::new("vigie_live_accuracy", "Share of classification decisions found right"),
            &LABELS,
        )?;
        metrics.register(Box::new(total.clone()))?;
        metrics.register(Box::new(correct.clone()))?;
        metrics.register(Box::new(log_loss.clone()))?;
        metrics.register(Box::new(absolute_error.clone()))?;
        metrics.register(Box::new(accuracy.clone()))?;
        Ok(Live { total, correct, log_loss, absolute_error, accuracy })
    }

    /// Starts from what the feedback table already holds.
    pub fn seed(&self, totals: &[Totals]) {
        for totals in totals {
            let labels = totals.labels.each_ref().map(String::as_str);
            self.total.with_label_values(&labels).inc_by(totals.count);
            if totals.absolute_error > 0.0 {
                self.absolute_error.with_label_values(&labels).inc_by(totals.absolute_error);
            }
            if totals.correct > 0 || totals.log_loss > 0.0 {
                self.correct.with_label_values(&labels).inc_by(totals.correct);
                self.log_loss.with_label_values(&labels).inc_by(totals.log_loss);
                self.update_accuracy(&labels);
            }
        }
    }

    /// Counts one feedback.
    pub fn observe(&self, labels: &[&str; 3], observed: &Observed) {
        self.total.with_label_values(labels).inc();
        if let Some(correct) = observed.correct {
            self.correct.with_label_values(labels).inc_by(u64::from(correct));
            self.update_accuracy(labels);
        }
        if let Some(loss) = observed.log_loss {
            self.log_loss.with_label_values(labels).inc_by(loss);
        }
        if let Some(error) = observed.absolute_error {
            self.absolute_error.with_label_values(labels).inc_by(error);
        }
    }

    fn update_accuracy(&self, labels: &[&str; 3]) {
        let total = self.total.with_label_values(labels).get();
        if total > 0 {
            let correct = self.correct.with_label_values(labels).get();
            self.accuracy.with_label_values(labels).set(correct as f64 / total as f64);
        }
    }
}
