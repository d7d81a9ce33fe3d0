//! Beam search as fairseq SequenceGenerator runs it (filled in by its issue).
