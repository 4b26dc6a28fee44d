//! A multi-layer perceptron: dense ReLU hidden layers and a logistic,
//! softmax or identity output, trained by Adam on minibatches with an L2
//! penalty and early stopping on a seeded validation split.
//!
//! Hidden layers are at most [`MAX_HIDDEN_WIDTH`] units wide, so that
//! prediction runs on two fixed-size stack buffers: no allocation per row,
//! and one `&Mlp` serves many threads. A minibatch's gradient is summed
//! over sub-batches whose size depends on the batch size only, in a fixed
//! order, so a seed gives the same network on any number of threads.
//!
//! Not here: imputation and scaling (the caller's pipeline does them; a
//! non-finite input is rejected), and exact explanations (the MLP offers none).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{MlError, Result};
use crate::estimator::TrainSet;
use crate::linear::check_train_set;
use crate::matrix::{Link, Task, sigmoid};
use crate::rng::Rng;

/// The widest hidden layer allowed: prediction keeps two stack buffers of
/// this many `f32`.
pub const MAX_HIDDEN_WIDTH: usize = 256;

/// Input columns up to which [`Mlp::shapley_into`] evaluates every subset (2^10 passes).
pub const EXACT_SHAPLEY_COLUMNS: usize = 10;

/// Permutations [`Mlp::shapley_into`] samples beyond that, in antithetic pairs.
pub const SHAPLEY_PERMUTATIONS: usize = 64;

/// Rows per sub-batch, at least; see [`sub_batch_rows`].
const MIN_SUB_BATCH_ROWS: usize = 32;
/// At most this many sub-batches per minibatch, bounding gradient buffers.
const MAX_SUB_BATCHES: usize = 64;
/// Rows per parallel chunk when computing a loss over many rows.
const EVAL_CHUNK_ROWS: usize = 512;
/// Adam's decay rates and epsilon (Kingma & Ba 2015 defaults).
const ADAM_BETA1: f32 = 0.9;
const ADAM_BETA2: f32 = 0.999;
const ADAM_EPSILON: f32 = 1e-8;
/// A validation loss must fall by this fraction to count as an improvement.
const MIN_RELATIVE_IMPROVEMENT: f64 = 1e-6;

/// Hyper-parameters of the MLP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpParams {
    /// Widths of the hidden ReLU layers, each `1..=256` ([`MAX_HIDDEN_WIDTH`]);
    /// empty gives a linear model trained by Adam.
    pub hidden: Vec<usize>,
    /// Adam's step size, `> 0`.
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the biases) per mean loss, `>= 0`.
    pub l2: f64,
    /// Rows per minibatch, `>= 1` (capped at the number of training rows).
    pub batch_size: usize,
    /// Maximum passes over the training rows, `>= 1`.
    pub max_epochs: usize,
    /// Stop after this many epochs without improvement, `>= 1`.
    pub patience: usize,
    /// Share of the rows held out (stratified for classification) for early
    /// stopping, in `[0, 0.5]`; with `0`, the training loss is monitored instead.
    pub validation_fraction: f64,
}

impl Default for MlpParams {
    fn default() -> Self {
        MlpParams {
            hidden: vec![64, 32],
            learning_rate: 1e-3,
            l2: 1e-4,
            batch_size: 256,
            max_epochs: 200,
            patience: 10,
            validation_fraction: 0.1,
        }
    }
}

impl MlpParams {
    fn check(&self) -> Result<()> {
        if let Some(width) = self.hidden.iter().find(|&&w| w == 0 || w > MAX_HIDDEN_WIDTH) {
            return Err(MlError::param(
                "hidden",
                format!("layer widths must be 1 to {MAX_HIDDEN_WIDTH}, got {width}"),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(MlError::param(
                "learning_rate",
                format!("must be a finite number > 0, got {}", self.learning_rate),
            ));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(MlError::param(
                "l2",
                format!("must be a finite number >= 0, got {}", self.l2),
            ));
        }
        if self.batch_size == 0 {
            return Err(MlError::param("batch_size", "must be at least 1"));
        }
        if self.max_epochs == 0 {
            return Err(MlError::param("max_epochs", "must be at least 1"));
        }
        if self.patience == 0 {
            return Err(MlError::param("patience", "must be at least 1"));
        }
        if !(0.0..=0.5).contains(&self.validation_fraction) {
            return Err(MlError::param(
                "validation_fraction",
                format!("must be between 0 and 0.5, got {}", self.validation_fraction),
            ));
        }
        Ok(())
    }
}

/// A dense layer: `output_o = bias_o + Σ_i weight_oi input_i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseLayer {
    /// Input width.
    pub n_inputs: usize,
    /// Output width.
    pub n_outputs: usize,
    /// `n_outputs * n_inputs` weights, one output unit after another.
    pub weights: Vec<f32>,
    /// One bias per output unit.
    pub biases: Vec<f32>,
}

impl DenseLayer {
    fn zeros(n_inputs: usize, n_outputs: usize) -> Self {
        DenseLayer {
            n_inputs,
            n_outputs,
            weights: vec![0.0; n_inputs * n_outputs],
            biases: vec![0.0; n_outputs],
        }
    }

    /// `output = W input + b` (no activation).
    #[inline]
    fn forward(&self, input: &[f32], output: &mut [f32]) {
        let rows = self.weights.chunks_exact(self.n_inputs.max(1));
        for ((out, weights), bias) in output.iter_mut().zip(rows).zip(&self.biases) {
            *out = bias + dot(weights, input);
        }
    }

    fn fill(&mut self, value: f32) {
        self.weights.fill(value);
        self.biases.fill(value);
    }

    fn add(&mut self, other: &DenseLayer) {
        for (a, b) in self.weights.iter_mut().zip(&other.weights) {
            *a += b;
        }
        for (a, b) in self.biases.iter_mut().zip(&other.biases) {
            *a += b;
        }
    }
}

/// A fitted MLP: hidden ReLU layers, then a linear output layer whose raw
/// outputs go through [`Mlp::link`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    /// Hidden layers (ReLU), then the output layer.
    pub layers: Vec<DenseLayer>,
    /// [`Link::Logistic`] (binary), [`Link::Softmax`] (multiclass) or [`Link::Identity`] (regression).
    pub link: Link,
}

impl Mlp {
    /// Number of raw outputs.
    pub fn n_outputs(&self) -> usize {
        self.layers.last().map_or(0, |layer| layer.n_outputs)
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.layers.first().map_or(0, |layer| layer.n_inputs)
    }

    /// Link from raw outputs to predictions.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Raw outputs of one row into `out`, on two stack buffers (no
    /// allocation). A network that failed [`Mlp::validate`] writes `NaN`.
    pub fn predict_raw_into(&self, row: &[f32], out: &mut [f64]) {
        debug_assert_eq!(row.len(), self.n_features());
        debug_assert_eq!(out.len(), self.n_outputs());
        let mut buffer_a = [0f32; MAX_HIDDEN_WIDTH];
        let mut buffer_b = [0f32; MAX_HIDDEN_WIDTH];
        let Some((output_layer, hidden)) = self.layers.split_last() else {
            out.fill(f64::NAN);
            return;
        };
        let (mut current, mut next) = (&mut buffer_a, &mut buffer_b);
        let mut width = 0;
        for (idx, layer) in hidden.iter().enumerate() {
            let input: &[f32] = if idx == 0 { row } else { &current[..width] };
            let Some(output) = next.get_mut(..layer.n_outputs) else {
                out.fill(f64::NAN);
                return;
            };
            layer.forward(input, output);
            relu(output);
            std::mem::swap(&mut current, &mut next);
            width = layer.n_outputs;
        }
        let input: &[f32] = if hidden.is_empty() { row } else { &current[..width] };
        let rows = output_layer.weights.chunks_exact(output_layer.n_inputs.max(1));
        for ((slot, weights), bias) in out.iter_mut().zip(rows).zip(&output_layer.biases) {
            *slot = f64::from(bias + dot(weights, input));
        }
    }

    /// Shapley values of one row's input columns, against the reference row of
    /// all zeros in the encoded space (the MLP's pipeline standardises numbers
    /// and one-hot encodes categories, so the reference is every number at its
    /// training mean, present, and no category). `group_of` gives each encoded
    /// feature's input column (`< n_groups`; a feature of none keeps the row's
    /// value throughout); a column's features are switched together, so a
    /// one-hot column is never half on.
    ///
    /// Writes `n_outputs * (n_groups + 1)` values: per output, one per column,
    /// then the reference's raw output; each output's values sum to the row's
    /// raw output (every term is a difference of two evaluations of the
    /// network, and they telescope). Exact (every subset of columns evaluated)
    /// up to [`EXACT_SHAPLEY_COLUMNS`] columns; beyond, the mean over
    /// [`SHAPLEY_PERMUTATIONS`] permutations in antithetic pairs, seeded, so a
    /// row always gets the same values.
    pub fn shapley_into(&self, row: &[f32], group_of: &[usize], n_groups: usize, out: &mut [f64]) {
        let n_out = self.n_outputs();
        let width = n_groups + 1;
        debug_assert_eq!(out.len(), n_out * width);
        out.fill(0.0);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
        let mut reference = vec![0f32; row.len()];
        for (feature, &group) in group_of.iter().enumerate().take(row.len()) {
            match members.get_mut(group) {
                Some(list) => list.push(feature),
                None => reference[feature] = row[feature],
            }
        }
        let mut base = vec![0f64; n_out];
        self.predict_raw_into(&reference, &mut base);
        for (k, value) in base.iter().enumerate() {
            out[k * width + n_groups] = *value;
        }
        if n_groups <= EXACT_SHAPLEY_COLUMNS {
            self.exact_shapley(row, &members, &reference, out);
            return;
        }
        let mut rng = Rng::new(0x5348_4150);
        let mut order: Vec<usize> = (0..n_groups).collect();
        let (mut z, mut previous, mut current) =
            (reference.clone(), base.clone(), vec![0f64; n_out]);
        for pass in 0..SHAPLEY_PERMUTATIONS {
            if pass % 2 == 0 {
                rng.shuffle(&mut order);
            } else {
                order.reverse();
            }
            z.copy_from_slice(&reference);
            previous.copy_from_slice(&base);
            for &group in &order {
                for &feature in &members[group] {
                    z[feature] = row[feature];
                }
                self.predict_raw_into(&z, &mut current);
                for k in 0..n_out {
                    out[k * width + group] += current[k] - previous[k];
                }
                std::mem::swap(&mut previous, &mut current);
            }
        }
        let scale = 1.0 / SHAPLEY_PERMUTATIONS as f64;
        for k in 0..n_out {
            for value in &mut out[k * width..k * width + n_groups] {
                *value *= scale;
            }
        }
    }

    /// The Shapley formula over every subset of the columns: the network is
    /// evaluated once per subset, then each column's value is the weighted sum
    /// of what adding it to each subset without it changes.
    fn exact_shapley(
        &self,
        row: &[f32],
        members: &[Vec<usize>],
        reference: &[f32],
        out: &mut [f64],
    ) {
        let n = members.len();
        let n_out = self.n_outputs();
        let width = n + 1;
        let subsets = 1usize << n;
        let mut values = vec![0f64; subsets * n_out];
        let mut z = reference.to_vec();
        for mask in 0..subsets {
            z.copy_from_slice(reference);
            for (group, features) in members.iter().enumerate() {
                if (mask >> group) & 1 == 1 {
                    for &feature in features {
                        z[feature] = row[feature];
                    }
                }
            }
            self.predict_raw_into(&z, &mut values[mask * n_out..(mask + 1) * n_out]);
        }
        // weight[s] = s! (n - s - 1)! / n! = 1 / (n * C(n - 1, s)).
        let mut weight = vec![0f64; n.max(1)];
        let mut choose = 1f64;
        for (s, w) in weight.iter_mut().enumerate() {
            *w = 1.0 / (n as f64 * choose);
            choose = choose * (n - 1 - s) as f64 / (s + 1) as f64;
        }
        for mask in 0..subsets {
            let size = mask.count_ones() as usize;
            for group in (0..n).filter(|g| (mask >> g) & 1 == 0) {
                let with = mask | 1 << group;
                for k in 0..n_out {
                    out[k * width + group] +=
                        weight[size] * (values[with * n_out + k] - values[mask * n_out + k]);
                }
            }
        }
    }

    /// Checks a deserialized network: layer shapes chain from `n_features`,
    /// hidden widths are at most [`MAX_HIDDEN_WIDTH`], values are finite and
    /// the link fits the output width.
    pub fn validate(&mut self, n_features: usize) -> Result<()> {
        let bad = |what: String| Err(MlError::Corrupted(format!("mlp: {what}")));
        if self.layers.is_empty() {
            return bad("no layers".into());
        }
        let mut width = n_features;
        let last = self.layers.len() - 1;
        for (idx, layer) in self.layers.iter().enumerate() {
            if layer.n_inputs != width {
                return bad(format!(
                    "layer {idx} takes {} inputs, expected {width}",
                    layer.n_inputs
                ));
            }
            if layer.n_outputs == 0 || (idx < last && layer.n_outputs > MAX_HIDDEN_WIDTH) {
                return bad(format!("layer {idx} has {} units", layer.n_outputs));
            }
            if layer.n_inputs.checked_mul(layer.n_outputs) != Some(layer.weights.len())
                || layer.biases.len() != layer.n_outputs
            {
                return bad(format!("layer {idx} holds arrays of the wrong length"));
            }
            if layer.weights.iter().chain(&layer.biases).any(|v| !v.is_finite()) {
                return bad(format!("layer {idx} has a non-finite value"));
            }
            width = layer.n_outputs;
        }
        let link_fits = match self.link {
            Link::Logistic | Link::Identity => width == 1,
            Link::Softmax => width >= 2,
            Link::Platt { .. } => false,
        };
        if !link_fits {
            return bad(format!("link {:?} does not fit {width} outputs", self.link));
        }
        Ok(())
    }
}

/// Fits an MLP: He-initialised ReLU layers (seeded), Adam on shuffled
/// minibatches of the weighted mean loss (log-loss, or half squared error
/// on a standardised target for regression) plus `l2/2 ‖W‖²`, early
/// stopping on a stratified validation split; the weights of the best
/// validation epoch are kept.
pub fn fit(params: &MlpParams, train: &TrainSet<'_>, seed: u64) -> Result<Mlp> {
    params.check()?;
    check_train_set(train, "mlp")?;
    let x = train.x;
    let task = train.task;
    let n_outputs = task.n_outputs();
    let link = match task {
        Task::Binary => Link::Logistic,
        Task::Multiclass { .. } => Link::Softmax,
        Task::Regression => Link::Identity,
    };
    let rng = Rng::new(seed);

    // Regression learns a standardised target; the output layer is scaled back at the end.
    let (y_shift, y_scale) = match task {
        Task::Regression => target_moments(train.y),
        _ => (0.0, 1.0),
    };
    let targets: Vec<f32> =
        train.y.iter().map(|&y| ((f64::from(y) - y_shift) / y_scale) as f32).collect();
    let (train_rows, valid_rows) = split_rows(train, params.validation_fraction, &mut rng.fork(1));
    // Weights scaled to average one over the training rows, so the loss is a mean.
    let raw_weight = |row: usize| train.weights.map_or(1.0, |w| w[row]);
    let train_weight_sum: f64 = train_rows.iter().map(|&row| f64::from(raw_weight(row))).sum();
    if train_weight_sum <= 0.0 {
        return Err(MlError::InvalidData("mlp: the training rows all have zero weight".into()));
    }
    let weight_scale = (train_rows.len() as f64 / train_weight_sum) as f32;
    let weights: Vec<f32> = (0..x.n_rows).map(|row| raw_weight(row) * weight_scale).collect();
    let data = Data { x, targets: &targets, weights: &weights, task };

    let mut network = initial_network(x.n_cols, &params.hidden, n_outputs, link, &mut rng.fork(2));
    set_output_bias(&mut network, &data, &train_rows);

    let batch_size = params.batch_size.min(train_rows.len()).max(1);
    let sub_rows = sub_batch_rows(batch_size);
    let zero_grads: Vec<DenseLayer> = network
        .layers
        .iter()
        .map(|layer| DenseLayer::zeros(layer.n_inputs, layer.n_outputs))
        .collect();
    let mut workspaces: Vec<Workspace> = (0..batch_size.div_ceil(sub_rows))
        .map(|_| Workspace::new(&network, zero_grads.clone()))
        .collect();
    let mut total_grads = zero_grads.clone();
    let mut adam = Adam::new(&zero_grads, params.learning_rate as f32);
    let l2 = params.l2 as f32;

    let monitor_validation = !valid_rows.is_empty();
    let mut best_loss =
        if monitor_validation { data.mean_loss(&network, &valid_rows) } else { f64::INFINITY };
    let mut best_network = network.clone();
    let mut stale_epochs = 0;
    let mut shuffle_rng = rng.fork(3);
    let mut order = train_rows;

    for _ in 0..params.max_epochs {
        shuffle_rng.shuffle(&mut order);
        let mut epoch_loss = 0.0;
        for batch in order.chunks(batch_size) {
            workspaces.par_iter_mut().zip(batch.par_chunks(sub_rows)).for_each(
                |(workspace, rows)| {
                    workspace.reset();
                    for &row in rows {
                        workspace.accumulate(&network, &data, row);
                    }
                },
            );
            for layer in &mut total_grads {
                layer.fill(0.0);
            }
            for workspace in workspaces.iter().take(batch.len().div_ceil(sub_rows)) {
                epoch_loss += workspace.loss;
                for (total, grad) in total_grads.iter_mut().zip(&workspace.grads) {
                    total.add(grad);
                }
            }
            adam.step(&mut network, &total_grads, 1.0 / batch.len() as f32, l2);
        }
        let loss = if monitor_validation {
            data.mean_loss(&network, &valid_rows)
        } else {
            epoch_loss / order.len() as f64
        };
        if !loss.is_finite() {
            break;
        }
        if loss < best_loss - MIN_RELATIVE_IMPROVEMENT * best_loss.abs() {
            best_loss = loss;
            best_network.clone_from(&network);
            stale_epochs = 0;
        } else {
            stale_epochs += 1;
            if stale_epochs >= params.patience {
                break;
            }
        }
    }

    if let Some(output_layer) = best_network.layers.last_mut() {
        let (shift, scale) = (y_shift as f32, y_scale as f32);
        output_layer.weights.iter_mut().for_each(|w| *w *= scale);
        output_layer.biases.iter_mut().for_each(|b| *b = *b * scale + shift);
    }
    best_network.validate(x.n_cols).map_err(|_| {
        MlError::InvalidData(
            "mlp: training diverged to non-finite weights; lower the learning rate".into(),
        )
    })?;
    Ok(best_network)
}

/// The training rows with standardised targets and mean-one weights.
struct Data<'a> {
    x: &'a crate::matrix::Matrix,
    targets: &'a [f32],
    weights: &'a [f32],
    task: Task,
}

impl Data<'_> {
    /// Weighted mean loss of `network` over `rows` (chunks summed in order).
    fn mean_loss(&self, network: &Mlp, rows: &[usize]) -> f64 {
        let n_outputs = network.n_outputs();
        let partials: Vec<(f64, f64)> = rows
            .par_chunks(EVAL_CHUNK_ROWS)
            .map(|rows| {
                let mut raw = vec![0.0; n_outputs];
                let mut derivative = vec![0f32; n_outputs];
                let (mut loss, mut weight_sum) = (0.0, 0.0);
                for &row in rows {
                    network.predict_raw_into(self.x.row(row), &mut raw);
                    for (d, &r) in derivative.iter_mut().zip(&raw) {
                        *d = r as f32;
                    }
                    let weight = f64::from(self.weights[row]);
                    loss += weight * output_loss(self.task, &mut derivative, self.targets[row]);
                    weight_sum += weight;
                }
                (loss, weight_sum)
            })
            .collect();
        let (loss, weight_sum) =
            partials.iter().fold((0.0, 0.0), |acc, p| (acc.0 + p.0, acc.1 + p.1));
        if weight_sum > 0.0 { loss / weight_sum } else { f64::INFINITY }
    }
}

/// The loss at raw outputs `raw`, which are overwritten by its derivative
/// with respect to them.
fn output_loss(task: Task, raw: &mut [f32], target: f32) -> f64 {
    match task {
        Task::Binary => {
            let Some(z) = raw.first_mut() else { return 0.0 };
            let z64 = f64::from(*z);
            let softplus = if z64 > 0.0 { z64 + (-z64).exp().ln_1p() } else { z64.exp().ln_1p() };
            *z = (sigmoid(z64) - f64::from(target)) as f32;
            softplus - f64::from(target) * z64
        }
        Task::Multiclass { .. } => {
            let class = target as usize;
            let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_sum =
                f64::from(max) + raw.iter().map(|&v| f64::from(v - max).exp()).sum::<f64>().ln();
            let loss = log_sum - raw.get(class).map_or(log_sum, |&v| f64::from(v));
            for (c, v) in raw.iter_mut().enumerate() {
                let p = (f64::from(*v) - log_sum).exp();
                *v = (p - if c == class { 1.0 } else { 0.0 }) as f32;
            }
            loss
        }
        Task::Regression => {
            let Some(z) = raw.first_mut() else { return 0.0 };
            let residual = *z - target;
            *z = residual;
            0.5 * f64::from(residual) * f64::from(residual)
        }
    }
}

/// Per-sub-batch buffers: gradient sums, activations and back-propagated errors.
struct Workspace {
    grads: Vec<DenseLayer>,
    /// Each layer's output (after ReLU for hidden layers).
    activations: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_below: Vec<f32>,
    loss: f64,
}

impl Workspace {
    fn new(network: &Mlp, grads: Vec<DenseLayer>) -> Self {
        let widest = network.layers.iter().map(|l| l.n_outputs.max(l.n_inputs)).max().unwrap_or(1);
        Workspace {
            grads,
            activations: network.layers.iter().map(|l| vec![0.0; l.n_outputs]).collect(),
            delta: vec![0.0; widest],
            delta_below: vec![0.0; widest],
            loss: 0.0,
        }
    }

    fn reset(&mut self) {
        for layer in &mut self.grads {
            layer.fill(0.0);
        }
        self.loss = 0.0;
    }

    /// Adds row `row`'s weighted loss and gradient.
    fn accumulate(&mut self, network: &Mlp, data: &Data<'_>, row: usize) {
        let weight = data.weights[row];
        if weight == 0.0 {
            return;
        }
        let input_row = data.x.row(row);
        let n_layers = network.layers.len();
        for (idx, layer) in network.layers.iter().enumerate() {
            let (below, rest) = self.activations.split_at_mut(idx);
            let input: &[f32] = below.last().map_or(input_row, |a| a.as_slice());
            let Some(output) = rest.first_mut() else { return };
            layer.forward(input, output);
            if idx + 1 < n_layers {
                relu(output);
            }
        }
        let Some(raw) = self.activations.last() else { return };
        let n_outputs = raw.len();
        self.delta[..n_outputs].copy_from_slice(raw);
        self.loss += f64::from(weight)
            * output_loss(data.task, &mut self.delta[..n_outputs], data.targets[row]);
        self.delta[..n_outputs].iter_mut().for_each(|d| *d *= weight);

        for idx in (0..n_layers).rev() {
            let layer = &network.layers[idx];
            let input: &[f32] = if idx == 0 { input_row } else { &self.activations[idx - 1] };
            let grad = &mut self.grads[idx];
            let delta = &self.delta[..layer.n_outputs];
            let grad_rows = grad.weights.chunks_exact_mut(layer.n_inputs.max(1));
            for ((&d, grad_row), grad_bias) in delta.iter().zip(grad_rows).zip(&mut grad.biases) {
                if d != 0.0 {
                    *grad_bias += d;
                    axpy(grad_row, d, input);
                }
            }
            if idx == 0 {
                break;
            }
            let below = &mut self.delta_below[..layer.n_inputs];
            below.fill(0.0);
            for (&d, weights) in delta.iter().zip(layer.weights.chunks_exact(layer.n_inputs.max(1)))
            {
                if d != 0.0 {
                    axpy(below, d, weights);
                }
            }
            // ReLU's derivative: no error flows through an inactive unit.
            for (b, &a) in below.iter_mut().zip(input) {
                if a <= 0.0 {
                    *b = 0.0;
                }
            }
            std::mem::swap(&mut self.delta, &mut self.delta_below);
        }
    }
}

/// Adam's moment estimates, shaped like the network.
struct Adam {
    first: Vec<DenseLayer>,
    second: Vec<DenseLayer>,
    learning_rate: f32,
    steps: i32,
}

impl Adam {
    fn new(zeros: &[DenseLayer], learning_rate: f32) -> Self {
        Adam { first: zeros.to_vec(), second: zeros.to_vec(), learning_rate, steps: 0 }
    }

    /// One update from gradient sums `grads` scaled by `scale`, plus `l2 W`.
    fn step(&mut self, network: &mut Mlp, grads: &[DenseLayer], scale: f32, l2: f32) {
        self.steps = self.steps.saturating_add(1);
        let correction1 = 1.0 - ADAM_BETA1.powi(self.steps);
        let correction2 = 1.0 - ADAM_BETA2.powi(self.steps);
        let step_size = self.learning_rate * correction2.sqrt() / correction1;
        let update =
            |params: &mut [f32], grads: &[f32], first: &mut [f32], second: &mut [f32], l2: f32| {
                for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(first).zip(second) {
                    let g = g * scale + l2 * *p;
                    *m = ADAM_BETA1 * *m + (1.0 - ADAM_BETA1) * g;
                    *v = ADAM_BETA2 * *v + (1.0 - ADAM_BETA2) * g * g;
                    *p -= step_size * *m / (v.sqrt() + ADAM_EPSILON);
                }
            };
        let layers =
            network.layers.iter_mut().zip(grads).zip(self.first.iter_mut().zip(&mut self.second));
        for ((layer, grad), (first, second)) in layers {
            update(&mut layer.weights, &grad.weights, &mut first.weights, &mut second.weights, l2);
            update(&mut layer.biases, &grad.biases, &mut first.biases, &mut second.biases, 0.0);
        }
    }
}

/// He-normal weights for the ReLU layers (`N(0, 2 / n_in)`), `N(0, 1 / n_in)`
/// for the output layer, zero biases.
fn initial_network(
    n_features: usize,
    hidden: &[usize],
    n_outputs: usize,
    link: Link,
    rng: &mut Rng,
) -> Mlp {
    let widths: Vec<usize> =
        std::iter::once(n_features).chain(hidden.iter().copied()).chain([n_outputs]).collect();
    let layers = widths
        .windows(2)
        .enumerate()
        .map(|(idx, pair)| {
            let (n_inputs, n_outputs) = (pair[0], pair[1]);
            let gain = if idx < hidden.len() { 2.0 } else { 1.0 };
            let std = (gain / n_inputs.max(1) as f64).sqrt();
            let mut layer = DenseLayer::zeros(n_inputs, n_outputs);
            layer.weights.iter_mut().for_each(|w| *w = (rng.normal() * std) as f32);
            layer
        })
        .collect();
    Mlp { layers, link }
}

/// Starts the output biases at the best constant model: log class priors
/// (weighted, over the training rows); zero for the standardised regression target.
fn set_output_bias(network: &mut Mlp, data: &Data<'_>, rows: &[usize]) {
    let Some(output_layer) = network.layers.last_mut() else { return };
    let n_classes = match data.task {
        Task::Binary => 2,
        Task::Multiclass { n_classes } => n_classes,
        Task::Regression => return,
    };
    let mut priors = vec![0.0f64; n_classes];
    for &row in rows {
        if let Some(prior) = priors.get_mut(data.targets[row] as usize) {
            *prior += f64::from(data.weights[row]);
        }
    }
    let total: f64 = priors.iter().sum();
    if total <= 0.0 {
        return;
    }
    let log_priors: Vec<f64> = priors.iter().map(|&p| (p / total).max(1e-12).ln()).collect();
    if let [negative, positive] = log_priors[..]
        && data.task == Task::Binary
    {
        output_layer.biases.fill((positive - negative) as f32);
    } else {
        let mean = log_priors.iter().sum::<f64>() / log_priors.len() as f64;
        for (bias, log_prior) in output_layer.biases.iter_mut().zip(&log_priors) {
            *bias = (log_prior - mean) as f32;
        }
    }
}

/// Splits rows into training and validation: per class for classification,
/// `round(fraction × count)` validation rows from each group, at least one
/// training row left in each.
fn split_rows(train: &TrainSet<'_>, fraction: f64, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let n_rows = train.x.n_rows;
    if fraction <= 0.0 {
        return ((0..n_rows).collect(), Vec::new());
    }
    let n_groups = match train.task {
        Task::Multiclass { n_classes } => n_classes,
        Task::Binary => 2,
        Task::Regression => 1,
    };
    let mut groups = vec![Vec::new(); n_groups];
    for (row, &y) in train.y.iter().enumerate() {
        let group = if n_groups == 1 { 0 } else { y as usize };
        if let Some(rows) = groups.get_mut(group) {
            rows.push(row);
        }
    }
    let (mut train_rows, mut valid_rows) = (Vec::new(), Vec::new());
    for mut rows in groups {
        rng.shuffle(&mut rows);
        let n_valid =
            ((rows.len() as f64 * fraction).round() as usize).min(rows.len().saturating_sub(1));
        valid_rows.extend_from_slice(&rows[..n_valid]);
        train_rows.extend_from_slice(&rows[n_valid..]);
    }
    train_rows.sort_unstable();
    valid_rows.sort_unstable();
    let valid_weight: f64 = valid_rows.iter().map(|&row| f64::from(train.weight(row))).sum();
    if valid_weight <= 0.0 {
        train_rows.append(&mut valid_rows);
        train_rows.sort_unstable();
    }
    (train_rows, valid_rows)
}

/// Mean and standard deviation of the regression target (1 when constant).
fn target_moments(y: &[f32]) -> (f64, f64) {
    let n = y.len().max(1) as f64;
    let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let variance = y.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    (mean, if variance > 0.0 { variance.sqrt() } else { 1.0 })
}

/// Rows per sub-batch for a minibatch of `batch_size`: a function of the
/// batch size only, so gradients are summed in the same order on any
/// number of threads.
fn sub_batch_rows(batch_size: usize) -> usize {
    MIN_SUB_BATCH_ROWS.max(batch_size.div_ceil(MAX_SUB_BATCHES))
}

#[inline]
fn relu(values: &mut [f32]) {
    for v in values {
        *v = v.max(0.0);
    }
}

/// Dot product with eight partial sums, so the compiler can vectorize it.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, xi), yi) in lanes.iter_mut().zip(x).zip(y) {
            *lane += xi * yi;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod shapley_tests {
    use super::*;

    /// A network of `inputs` columns, one hidden ReLU layer of 8 units with seeded weights.
    fn network(inputs: usize, seed: u64) -> Mlp {
        let mut rng = Rng::new(seed);
        let mut layer = |n_inputs: usize, n_outputs: usize| DenseLayer {
            n_inputs,
            n_outputs,
            weights: (0..n_inputs * n_outputs).map(|_| rng.normal() as f32).collect(),
            biases: (0..n_outputs).map(|_| rng.normal() as f32 * 0.1).collect(),
        };
        Mlp { layers: vec![layer(inputs, 8), layer(8, 2)], link: Link::Softmax }
    }

    fn raw(mlp: &Mlp, row: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0; mlp.n_outputs()];
        mlp.predict_raw_into(row, &mut out);
        out
    }

    fn next_permutation(order: &mut [usize]) -> bool {
        let Some(i) = (1..order.len()).rev().find(|&i| order[i - 1] < order[i]) else {
            return false;
        };
        let j = (i..order.len()).rev().find(|&j| order[j] > order[i - 1]).expect("a larger one");
        order.swap(i - 1, j);
        order[i..].reverse();
        true
    }

    #[test]
    fn exact_values_are_the_mean_over_every_order_and_add_up() {
        // 5 features in 4 columns: features 1 and 2 are one column (switched together).
        let mlp = network(5, 7);
        let group_of = [0, 1, 1, 2, 3];
        let row = [0.8f32, -1.2, 0.4, 2.0, -0.3];
        let mut values = vec![0.0; 2 * 5];
        mlp.shapley_into(&row, &group_of, 4, &mut values);

        let mut mean = [0.0; 2 * 4];
        let mut order: Vec<usize> = (0..4).collect();
        let mut orders = 0.0;
        loop {
            let mut z = [0f32; 5];
            let mut previous = raw(&mlp, &z);
            for &group in &order {
                for (feature, _) in group_of.iter().enumerate().filter(|(_, g)| **g == group) {
                    z[feature] = row[feature];
                }
                let current = raw(&mlp, &z);
                for k in 0..2 {
                    mean[k * 4 + group] += current[k] - previous[k];
                }
                previous = current;
            }
            orders += 1.0;
            if !next_permutation(&mut order) {
                break;
            }
        }
        assert_eq!(orders, 24.0);
        let output = raw(&mlp, &row);
        let reference = raw(&mlp, &[0.0; 5]);
        for k in 0..2 {
            for group in 0..4 {
                let expected = mean[k * 4 + group] / orders;
                assert!(
                    (values[k * 5 + group] - expected).abs() < 1e-9,
                    "output {k} column {group}"
                );
            }
            assert_eq!(values[k * 5 + 4], reference[k]);
            let sum: f64 = values[k * 5..(k + 1) * 5].iter().sum();
            assert!((sum - output[k]).abs() < 1e-9 * output[k].abs().max(1.0));
        }
    }

    #[test]
    fn sampled_values_add_up_and_are_exact_for_an_additive_network() {
        // 14 columns: beyond the exact limit, so permutations are sampled.
        let columns = 14;
        assert!(columns > EXACT_SHAPLEY_COLUMNS);
        let mlp = network(columns, 11);
        let group_of: Vec<usize> = (0..columns).collect();
        let row: Vec<f32> = (0..columns).map(|i| (i as f32 - 6.0) * 0.3).collect();
        let mut values = vec![0.0; 2 * (columns + 1)];
        mlp.shapley_into(&row, &group_of, columns, &mut values);
        let output = raw(&mlp, &row);
        for k in 0..2 {
            let sum: f64 = values[k * (columns + 1)..(k + 1) * (columns + 1)].iter().sum();
            assert!((sum - output[k]).abs() < 1e-9 * output[k].abs().max(1.0), "output {k}");
        }
        let mut again = vec![0.0; values.len()];
        mlp.shapley_into(&row, &group_of, columns, &mut again);
        assert_eq!(values, again, "seeded: the same values every time");

        // Each hidden unit reads one column: f = Σ g_i(x_i), whatever the order each column
        // adds g_i(x_i) - g_i(0), so sampling is exact.
        let mut additive = network(columns, 13);
        let hidden = &mut additive.layers[0];
        *hidden = DenseLayer {
            n_inputs: columns,
            n_outputs: columns,
            weights: (0..columns * columns)
                .map(|i| if i / columns == i % columns { 1.5 } else { 0.0 })
                .collect(),
            biases: vec![0.1; columns],
        };
        additive.layers[1] = DenseLayer {
            n_inputs: columns,
            n_outputs: 1,
            weights: (0..columns).map(|i| i as f32 * 0.25 - 1.0).collect(),
            biases: vec![0.5],
        };
        additive.link = Link::Logistic;
        let mut values = vec![0.0; columns + 1];
        additive.shapley_into(&row, &group_of, columns, &mut values);
        for i in 0..columns {
            let g = |x: f32| f64::from((i as f32 * 0.25 - 1.0) * (1.5 * x + 0.1).max(0.0));
            let expected = g(row[i]) - g(0.0);
            assert!((values[i] - expected).abs() < 1e-6, "column {i}: {} vs {expected}", values[i]);
        }
    }
}
