//! Moses tokenizer.perl, lowercase.perl and clean-corpus-n.perl (filled in by its issue).
