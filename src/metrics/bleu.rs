//! Corpus BLEU as sacreBLEU and fairseq compute it (filled in by its issue).
