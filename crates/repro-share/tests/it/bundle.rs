//! (the bundle tests)
