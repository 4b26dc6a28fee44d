//! Evaluation metrics. (Interface stub: a helper fills this in.)
