//! Decision thresholds chosen for a goal. (Interface stub: a helper fills this in.)
