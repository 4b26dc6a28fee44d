//! Train/test splits and K-fold schemes. (Interface stub: a helper fills this in.)
