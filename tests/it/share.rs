//! (push and pull through the binary)
