//! (the transfer tests)
