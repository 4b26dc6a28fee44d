//! Where a request's model work runs: inline on the async runtime when it is
//! small, on tokio's blocking pool when it is large, so that one big batch
//! does not hold a runtime worker (2 on a 2-core machine) while other
//! requests wait behind it. Every scoring handler goes through [`score`];
//! the shadow version always scores on the blocking pool (`routing.rs`).
//!
//! Small requests stay inline because the hop to another thread costs more
//! than scoring one row. The cut is [`INLINE_ROWS`] rows, and an explained
//! row counts as [`EXPLAIN_WEIGHT`] rows. Measured on the credit GBDT of the
//! tests (156 trees of 31 leaves, debug build with `vigie-ml` at opt-level
//! 3): scoring takes about 4 µs a row (256 rows: 1.1 ms), explaining about
//! 110 µs a row. A release build is faster, which keeps inline work near
//! the 500 µs an async task should block at most (Quickwit's rule).
//!
//! Not here: parsing the JSON body and building the input frame still run
//! on the runtime (up to 8 MiB, some milliseconds).

use std::sync::Arc;

use vigie_core::{ErrorCode, Frame};
use vigie_ml::model::Explanation;

use crate::catalog::Served;
use crate::error::ApiError;

/// Rows scored inline at most: `vigie-ml` scores batches in blocks of 256
/// rows, one block per task of its thread pool, so up to here a request is
/// one block; above it the caller would wait on several.
pub const INLINE_ROWS: usize = 256;

/// What one explained row weighs against [`INLINE_ROWS`]: explaining a row
/// costs about 25 times scoring it, so more than 8 explained rows leave the
/// runtime.
pub const EXPLAIN_WEIGHT: usize = 32;

/// A request's input frame with the model's outputs, and the explanation when asked.
pub struct Scored {
    /// The model's inputs, as the audit log records them.
    pub frame: Frame,
    /// The outputs per row.
    pub outputs: Vec<Vec<f64>>,
    /// Per-column contributions, when the request asked for them.
    pub explanation: Option<Explanation>,
}

/// Scores `frame` with `served` (and explains it when `explain`), inline
/// when the request is small, else on the blocking pool.
pub async fn score(served: &Arc<Served>, frame: Frame, explain: bool) -> Result<Scored, ApiError> {
    let weight = if explain { EXPLAIN_WEIGHT } else { 1 };
    let served = Arc::clone(served);
    run(frame.n_rows().saturating_mul(weight), move || {
        let outputs = crate::rows::score(&served.model, &frame)?;
        let explanation = if explain { Some(served.model.explain(&frame)?) } else { None };
        Ok(Scored { frame, outputs, explanation })
    })
    .await
}

/// Runs `work` of `cost` rows inline up to [`INLINE_ROWS`], else on the
/// blocking pool (where a panic is a 500, not a lost worker; rayon's own
/// `spawn` would abort the process).
async fn run<T: Send + 'static>(
    cost: usize,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if cost <= INLINE_ROWS {
        return work();
    }
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::from_code(ErrorCode::Internal, format!("scoring the request failed: {e}"))
    })?
}

#[cfg(test)]
mod tests;
