//! String columns: normalisation, rare-value bucketing and the encodings
//! (native codes for trees, one-hot, ordinal, out-of-fold target, hashing).
//!
//! Kept categories are stored sorted, so serving finds a value's code by
//! binary search, comparing the raw string through the normalisation
//! without allocating.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use vigie_core::TextColumn;

use super::{Target, TextRecipe};
use crate::error::{MlError, Result};
use crate::matrix::{Matrix, Task};
use crate::rng::Rng;

/// Text normalisation applied before categories are counted or looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextNormalize {
    /// Strip leading and trailing white space.
    pub trim: bool,
    /// Fold to lower case.
    pub lowercase: bool,
}

impl Default for TextNormalize {
    fn default() -> Self {
        TextNormalize { trim: true, lowercase: true }
    }
}

impl TextNormalize {
    fn chars(self, raw: &str) -> impl Iterator<Item = char> + '_ {
        let text = if self.trim { raw.trim() } else { raw };
        text.chars().flat_map(move |c| {
            if self.lowercase { Folded::Lower(c.to_lowercase()) } else { Folded::Same(Some(c)) }
        })
    }

    fn apply(self, raw: &str) -> String {
        self.chars(raw).collect()
    }

    /// `raw` normalised, without allocating, when it is ASCII (and, if it
    /// needs folding, short enough for `buffer`); `None` otherwise.
    #[inline]
    fn ascii<'a>(self, raw: &'a str, buffer: &'a mut [u8; 64]) -> Option<&'a str> {
        if !raw.is_ascii() {
            return None;
        }
        let text = if self.trim { raw.trim() } else { raw };
        if !self.lowercase || !text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Some(text);
        }
        let folded = buffer.get_mut(..text.len())?;
        for (out, byte) in folded.iter_mut().zip(text.bytes()) {
            *out = byte.to_ascii_lowercase();
        }
        std::str::from_utf8(folded).ok()
    }

    fn compare(self, stored: &str, raw: &str) -> Ordering {
        if !self.lowercase {
            let text = if self.trim { raw.trim() } else { raw };
            return stored.cmp(text);
        }
        stored.chars().cmp(self.chars(raw))
    }
}

/// One character after case folding, without allocating.
enum Folded {
    Lower(std::char::ToLowercase),
    Same(Option<char>),
}

impl Iterator for Folded {
    type Item = char;
    #[inline]
    fn next(&mut self) -> Option<char> {
        match self {
            Folded::Lower(lower) => lower.next(),
            Folded::Same(c) => c.take(),
        }
    }
}

/// How categories become numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Encoding {
    /// One integer code per category, read by trees as a categorical feature.
    Native,
    /// One 0/1 column per kept category plus one for rare and unseen values.
    OneHot,
    /// The category's code as a number.
    Ordinal,
    /// The smoothed mean target of the category, computed out of fold on training rows.
    Target {
        /// Pseudo-count pulling rare categories toward the overall mean.
        smoothing: f64,
        /// Folds for the out-of-fold training values.
        folds: usize,
    },
    /// One-hot over `buckets` hash buckets, for very many categories.
    Hashing {
        /// Number of buckets.
        buckets: usize,
    },
}

/// A fitted string encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedText {
    normalize: TextNormalize,
    /// Kept categories, normalised and sorted; code = position, `len()` = rare or unseen.
    categories: Vec<String>,
    encoding: Encoding,
    /// Target encoding: per code (rare last) the encoded values, `width` each; then the prior.
    target_values: Vec<f32>,
    /// Out-of-fold values of the training rows the encoder was fitted on (not saved).
    #[serde(skip)]
    training_values: Option<Vec<f32>>,
}

/// FNV-1a over the normalised characters: stable across releases and platforms.
fn stable_hash(normalize: TextNormalize, raw: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut buffer = [0u8; 4];
    for c in normalize.chars(raw) {
        for byte in c.encode_utf8(&mut buffer).bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn stats_width(task: Task) -> usize {
    match task {
        Task::Multiclass { n_classes } => n_classes,
        Task::Binary | Task::Regression => 1,
    }
}

/// Smoothed per-code target means over `rows` (positions into `codes` and `target.y`).
fn target_stats(
    codes: &[u32],
    y: &[f32],
    rows: impl Iterator<Item = usize> + Clone,
    n_codes: usize,
    task: Task,
    smoothing: f64,
) -> Vec<f32> {
    let width = stats_width(task);
    let mut sums = vec![0.0f64; (n_codes + 1) * width];
    let mut counts = vec![0.0f64; n_codes + 1];
    let mut total = vec![0.0f64; width];
    let mut n = 0.0;
    for i in rows {
        let code = (codes[i] as usize).min(n_codes);
        let contribution = |k: usize| match task {
            Task::Multiclass { .. } => f64::from(u8::from(y[i] as usize == k)),
            _ => f64::from(y[i]),
        };
        for k in 0..width {
            sums[code * width + k] += contribution(k);
            total[k] += contribution(k);
        }
        counts[code] += 1.0;
        n += 1.0;
    }
    let prior: Vec<f64> = total.iter().map(|t| if n > 0.0 { t / n } else { 0.0 }).collect();
    let mut values = Vec::with_capacity((n_codes + 2) * width);
    for code in 0..=n_codes {
        for k in 0..width {
            values.push(
                ((sums[code * width + k] + smoothing * prior[k]) / (counts[code] + smoothing))
                    as f32,
            );
        }
    }
    values.extend(prior.iter().map(|&p| p as f32));
    values
}

impl FittedText {
    /// Learns categories (and target statistics) from `column[rows]`.
    pub fn fit(
        recipe: &TextRecipe,
        column: &TextColumn,
        rows: &[usize],
        target: Target<'_>,
        seed: u64,
    ) -> Result<Self> {
        let normalize = recipe.normalize;
        // Count normalised values through the dictionary: each distinct raw value is normalised once.
        let normalized: Vec<String> =
            column.dictionary.iter().map(|raw| normalize.apply(raw)).collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for &i in rows {
            if let Some(&code) = column.codes.get(i)
                && let Some(value) = normalized.get(code as usize)
            {
                *counts.entry(value.as_str()).or_default() += 1;
            }
        }
        let mut frequent: Vec<(&str, usize)> =
            counts.into_iter().filter(|&(_, count)| count >= recipe.min_frequency.max(1)).collect();
        frequent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        frequent.truncate(recipe.max_categories);
        let mut categories: Vec<String> =
            frequent.into_iter().map(|(value, _)| value.to_owned()).collect();
        categories.sort();
        let mut fitted = FittedText {
            normalize,
            categories,
            encoding: recipe.encoding,
            target_values: Vec::new(),
            training_values: None,
        };
        if let Encoding::Hashing { buckets } = recipe.encoding
            && buckets == 0
        {
            return Err(MlError::param("hashing.buckets", "must be at least 1"));
        }
        if let Encoding::Target { smoothing, folds } = recipe.encoding {
            if target.y.len() != rows.len() {
                return Err(MlError::InvalidData(
                    "target encoding needs one target per training row".into(),
                ));
            }
            let n_codes = fitted.categories.len();
            // Codes of the training rows, in `rows` order.
            let codes: Vec<u32> =
                rows.iter().map(|&i| fitted.code_of_dictionary(column, &normalized, i)).collect();
            fitted.target_values =
                target_stats(&codes, target.y, 0..rows.len(), n_codes, target.task, smoothing);
            // Out-of-fold values: each training row is encoded with statistics of the other folds.
            let width = stats_width(target.task);
            let folds = folds.max(2);
            let mut order: Vec<usize> = (0..rows.len()).collect();
            Rng::new(seed ^ 0x7461_7267_6574).shuffle(&mut order);
            let mut fold_of = vec![0usize; rows.len()];
            for (position, &row) in order.iter().enumerate() {
                fold_of[row] = position % folds;
            }
            let mut training = vec![0.0f32; rows.len() * width];
            for fold in 0..folds {
                let others = (0..rows.len()).filter(|&r| fold_of[r] != fold);
                let stats = target_stats(&codes, target.y, others, n_codes, target.task, smoothing);
                for r in (0..rows.len()).filter(|&r| fold_of[r] == fold) {
                    let code = codes[r];
                    let start = if code == TextColumn::MISSING {
                        (n_codes + 1) * width
                    } else {
                        code as usize * width
                    };
                    training[r * width..(r + 1) * width]
                        .copy_from_slice(&stats[start..start + width]);
                }
            }
            fitted.training_values = Some(training);
        }
        Ok(fitted)
    }

    fn code_of_dictionary(&self, column: &TextColumn, normalized: &[String], row: usize) -> u32 {
        match column.codes.get(row).and_then(|&c| normalized.get(c as usize)) {
            None => TextColumn::MISSING,
            Some(value) => self
                .categories
                .binary_search(value)
                .map_or(self.categories.len() as u32, |p| p as u32),
        }
    }

    /// The code of a raw value: its category's position, or the rare bucket.
    /// ASCII values (the usual case) compare as bytes; others char by char
    /// through the normalisation. Both orders are the stored strings' order.
    #[inline]
    fn code(&self, raw: &str) -> usize {
        let mut buffer = [0u8; 64];
        let found = match self.normalize.ascii(raw, &mut buffer) {
            Some(text) => self.categories.binary_search_by(|stored| stored.as_str().cmp(text)),
            None => self.categories.binary_search_by(|stored| self.normalize.compare(stored, raw)),
        };
        found.unwrap_or(self.categories.len())
    }

    /// The kept category `raw` normalises to, or `None` when it is rare or unseen.
    pub fn category(&self, raw: &str) -> Option<&str> {
        self.categories.get(self.code(raw)).map(String::as_str)
    }

    /// The kept categories, normalised and sorted.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// For native encoding, the number of codes (kept categories plus the rare bucket).
    pub fn native_categories(&self) -> Option<u32> {
        matches!(self.encoding, Encoding::Native).then_some(self.categories.len() as u32 + 1)
    }

    /// Output columns this encoder writes.
    pub fn width(&self) -> usize {
        match self.encoding {
            Encoding::Native | Encoding::Ordinal => 1,
            Encoding::OneHot => self.categories.len() + 1,
            Encoding::Hashing { buckets } => buckets,
            Encoding::Target { .. } => self.target_width(),
        }
    }

    fn target_width(&self) -> usize {
        // target_values holds (n_codes + 2) blocks of `width` values.
        self.target_values.len() / (self.categories.len() + 2).max(1)
    }

    /// Output feature names.
    pub fn feature_names(&self, name: &str) -> Vec<String> {
        match self.encoding {
            Encoding::Native | Encoding::Ordinal => vec![name.to_owned()],
            Encoding::OneHot => self
                .categories
                .iter()
                .map(|c| format!("{name}={c}"))
                .chain([format!("{name}=__other__")])
                .collect(),
            Encoding::Hashing { buckets } => (0..buckets).map(|b| format!("{name}#{b}")).collect(),
            Encoding::Target { .. } => {
                (0..self.target_width()).map(|k| format!("{name}_target{k}")).collect()
            }
        }
    }

    fn encode_code(&self, code: Option<usize>, out: &mut [f32]) {
        match self.encoding {
            Encoding::Native | Encoding::Ordinal => out[0] = code.map_or(f32::NAN, |c| c as f32),
            Encoding::OneHot => {
                out.fill(0.0);
                if let Some(c) = code {
                    out[c] = 1.0;
                }
            }
            Encoding::Target { .. } => {
                let width = out.len();
                let block = code.unwrap_or(self.categories.len() + 1);
                out.copy_from_slice(&self.target_values[block * width..(block + 1) * width]);
            }
            Encoding::Hashing { .. } => {}
        }
    }

    /// Encodes one raw value (`None` for missing) into `out` (`width` long). Allocates nothing.
    #[inline]
    pub fn encode(&self, raw: Option<&str>, out: &mut [f32]) {
        if let Encoding::Hashing { buckets } = self.encoding {
            out.fill(0.0);
            if let Some(raw) = raw {
                out[(stable_hash(self.normalize, raw) % buckets as u64) as usize] = 1.0;
            }
            return;
        }
        self.encode_code(raw.map(|r| self.code(r)), out);
    }

    /// Encodes a whole column into `matrix` at column `offset`, looking each
    /// dictionary value up once. With `out_of_fold`, target encoding writes the
    /// out-of-fold values kept from fitting (the column must be the training rows).
    pub fn encode_column(
        &self,
        column: &TextColumn,
        out_of_fold: bool,
        matrix: &mut Matrix,
        offset: usize,
    ) -> Result<()> {
        let width = self.width();
        if out_of_fold
            && let (Encoding::Target { .. }, Some(values)) = (self.encoding, &self.training_values)
        {
            if values.len() != matrix.n_rows * width {
                return Err(MlError::InvalidData(
                    "target encoding: training rows differ from the fitted ones".into(),
                ));
            }
            for i in 0..matrix.n_rows {
                matrix.row_mut(i)[offset..offset + width]
                    .copy_from_slice(&values[i * width..(i + 1) * width]);
            }
            return Ok(());
        }
        let mut encoded = vec![0.0f32; (column.dictionary.len() + 1) * width];
        for (code, raw) in column.dictionary.iter().enumerate() {
            self.encode(Some(raw), &mut encoded[code * width..(code + 1) * width]);
        }
        let missing_block = column.dictionary.len();
        self.encode(None, &mut encoded[missing_block * width..(missing_block + 1) * width]);
        for (i, &code) in column.codes.iter().enumerate().take(matrix.n_rows) {
            let block = if code == TextColumn::MISSING {
                missing_block
            } else {
                (code as usize).min(missing_block)
            };
            matrix.row_mut(i)[offset..offset + width]
                .copy_from_slice(&encoded[block * width..(block + 1) * width]);
        }
        Ok(())
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        let encoding = match self.encoding {
            Encoding::Native => "native categories".to_owned(),
            Encoding::OneHot => "one-hot".to_owned(),
            Encoding::Ordinal => "ordinal".to_owned(),
            Encoding::Target { smoothing, folds } => {
                format!("out-of-fold target encoding ({folds} folds, smoothing {smoothing})")
            }
            Encoding::Hashing { buckets } => format!("hashing into {buckets} buckets"),
        };
        format!("text, {} categories kept + rare/unseen bucket, {encoding}", self.categories.len())
    }
}
