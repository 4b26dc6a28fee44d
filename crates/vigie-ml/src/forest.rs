//! Random forest. (Interface stub: a helper fills this in.)
