//! fairseq transformer encoder-decoder (filled in by its issue).
