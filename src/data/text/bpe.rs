//! subword-nmt joint BPE (filled in by its issue).
