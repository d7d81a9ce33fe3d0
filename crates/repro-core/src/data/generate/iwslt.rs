//! Synthetic IWSLT'14 German–English in the upstream `de-en.tgz` layout: `de-en/train.tags.de-en.{de,en}`
//! (TED talks one after another: `<url>`, `<keywords>`, `<talkid>`, `<title>`, `<description>`
//! lines, then one sentence per line, the two files line-aligned) and the XML dev/test sets
//! `de-en/IWSLT14.TED.{dev2010,tst2010,tst2011,tst2012}.de-en.{de,en}.xml` and
//! `IWSLT14.TEDX.dev2012.de-en.{de,en}.xml` (`<seg id="N">` lines inside `<doc>`s).
//!
//! Content: `vocab` concepts, each with a German and an English pseudo-word (German syllables use
//! umlauts and ß), drawn from a Zipf(1) distribution mixed with a seeded sparse Markov chain as in
//! `generate::wikitext`. A sentence is the same concept sequence on both sides, except that German
//! moves its second word to the end (verb-final), so a translation model must learn a word mapping
//! and a reordering. Both sides capitalise the first word (German also its nouns), end with `.` or
//! `?`, sometimes hold a comma, a decimal number (`3,5` in German, `3.5` in English), an English
//! possessive `'s` (written `’s` in the test sets, which the script maps back to `'`), or quotes
//! (`„…“` / `"…"`): what the Moses tokenizer and the script's clean-ups have to handle.

use rand::RngCore;

use super::archive::TarGz;
use super::draws::{Params, below, below_u64, between, stream};
use crate::data::iwslt::{FOLDER, TEST_SETS};

/// Sentences per talk.
const TALK_SENTENCES: usize = 40;
const SUCCESSOR_WEIGHTS: [u32; 3] = [4, 2, 1];

struct Lexicon {
    de: Vec<String>,
    en: Vec<String>,
    cumulative: Vec<u64>,
    successors: Vec<[u32; 3]>,
}

/// Pseudo-word `n` over an inventory of consonant-vowel syllables, at least two syllables; the
/// first syllable varies fastest, so small vocabularies do not share one prefix.
fn word(n: usize, consonants: &[&str], vowels: &[&str]) -> String {
    let syllables = consonants.len() * vowels.len();
    let mut k = n + syllables + 1;
    let mut parts = Vec::new();
    while k > 0 {
        k -= 1;
        let s = k % syllables;
        parts.push(format!(
            "{}{}",
            consonants[s / vowels.len()],
            vowels[s % vowels.len()]
        ));
        k /= syllables;
    }
    parts.concat()
}

impl Lexicon {
    fn new(vocab: usize, rng: &mut impl RngCore) -> Lexicon {
        const DE_C: &[&str] = &[
            "b", "d", "f", "g", "h", "k", "l", "m", "n", "r", "s", "t", "w", "z", "sch", "ß",
        ];
        const DE_V: &[&str] = &["a", "e", "i", "o", "u", "ä", "ö", "ü", "ei"];
        const EN_C: &[&str] = &[
            "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "th",
        ];
        const EN_V: &[&str] = &["a", "e", "i", "o", "u", "y", "ea"];
        // Scramble which English word goes with which German one, so the mapping is not the
        // syllable structure.
        let mut en_ids: Vec<usize> = (0..vocab).collect();
        for i in (1..vocab).rev() {
            let j = below_u64(rng, i as u64 + 1) as usize;
            en_ids.swap(i, j);
        }
        let mut cumulative = Vec::with_capacity(vocab);
        let mut total = 0u64;
        for rank in 0..vocab as u64 {
            total += (1u64 << 40) / (rank + 1);
            cumulative.push(total);
        }
        let mut lex = Lexicon {
            de: (0..vocab).map(|n| word(n, DE_C, DE_V)).collect(),
            en: en_ids.iter().map(|&n| word(n, EN_C, EN_V)).collect(),
            cumulative,
            successors: Vec::new(),
        };
        lex.successors = (0..vocab)
            .map(|_| [0; 3].map(|_: u32| lex.zipf(rng) as u32))
            .collect();
        lex
    }

    fn zipf(&self, rng: &mut impl RngCore) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let u = below_u64(rng, total);
        self.cumulative.partition_point(|&c| c <= u)
    }

    fn next(&self, rng: &mut impl RngCore, prev: usize) -> usize {
        if below(rng, 4) < 3 {
            let mut u = below(rng, SUCCESSOR_WEIGHTS.iter().sum());
            for (i, w) in SUCCESSOR_WEIGHTS.iter().enumerate() {
                if u < *w {
                    return self.successors[prev][i] as usize;
                }
                u -= w;
            }
        }
        self.zipf(rng)
    }

    /// One sentence pair of `min..=max` concepts (`curly`: the test sets' typographic apostrophe).
    fn sentence(
        &self,
        rng: &mut impl RngCore,
        min: i32,
        max: i32,
        curly: bool,
    ) -> (String, String) {
        let len = between(rng, min, max) as usize;
        let mut concepts = vec![self.zipf(rng)];
        while concepts.len() < len {
            let prev = concepts[concepts.len() - 1];
            concepts.push(self.next(rng, prev));
        }
        let mut de: Vec<String> = concepts
            .iter()
            .map(|&c| {
                let w = &self.de[c];
                if c % 4 == 0 { capitalise(w) } else { w.clone() }
            })
            .collect();
        let mut en: Vec<String> = concepts
            .iter()
            .map(|&c| {
                let w = self.en[c].clone();
                match (c % 7, curly) {
                    (3, false) => w + "'s",
                    (3, true) => w + "\u{2019}s",
                    _ => w,
                }
            })
            .collect();
        if below(rng, 10) == 0 {
            let (a, b) = (between(rng, 1, 99), between(rng, 1, 9));
            let at = below(rng, len as u32) as usize;
            de.insert(at, format!("{a},{b}"));
            en.insert(at, format!("{a}.{b}"));
        }
        if len >= 4 {
            let verb = de.remove(1);
            de.push(verb);
        }
        if len >= 7 && below(rng, 4) == 0 {
            de[2].push(',');
            en[2].push(',');
        }
        de[0] = capitalise(&de[0]);
        en[0] = capitalise(&en[0]);
        let end = if below(rng, 8) == 0 { "?" } else { "." };
        let (mut de, mut en) = (de.join(" ") + end, en.join(" ") + end);
        if below(rng, 20) == 0 {
            de = format!("\u{201e}{de}\u{201c}");
            en = format!("\"{en}\"");
        }
        (de, en)
    }
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Both sides of one talk's header lines, as the training files carry them.
fn talk_header(lex: &Lexicon, rng: &mut impl RngCore, talk: usize) -> [(String, String); 5] {
    let (title_de, title_en) = lex.sentence(rng, 2, 4, false);
    let (desc_de, desc_en) = lex.sentence(rng, 5, 12, false);
    let url = format!("<url>http://www.ted.com/talks/talk_{talk}.html</url>");
    let kw = format!(
        "<keywords>talks, {}, {}</keywords>",
        lex.en[talk % lex.en.len()],
        lex.en[1]
    );
    let id = format!("<talkid>{talk}</talkid>");
    [
        (url.clone(), url),
        (kw.clone(), kw),
        (id.clone(), id),
        (
            format!("<title>{title_de}</title>"),
            format!("<title>{title_en}</title>"),
        ),
        (
            format!("<description>TED Talk Subtitles and Transcript: {desc_de}</description>"),
            format!("<description>TED Talk Subtitles and Transcript: {desc_en}</description>"),
        ),
    ]
}

fn train_files(lex: &Lexicon, rng: &mut impl RngCore, pairs: usize) -> (String, String) {
    let (mut de, mut en) = (String::new(), String::new());
    let mut push = |d: &str, e: &str| {
        de.push_str(d);
        de.push('\n');
        en.push_str(e);
        en.push('\n');
    };
    let mut written = 0;
    let mut talk = 1;
    while written < pairs {
        for (d, e) in talk_header(lex, rng, talk) {
            push(&d, &e);
        }
        for _ in 0..TALK_SENTENCES.min(pairs - written) {
            let (d, e) = lex.sentence(rng, 3, 15, false);
            push(&d, &e);
            written += 1;
        }
        talk += 1;
    }
    (de, en)
}

fn xml_files(lex: &Lexicon, rng: &mut impl RngCore, set: &str, segs: usize) -> (String, String) {
    let open_de = format!(r#"<srcset setid="{set}" srclang="german">"#);
    let open_en =
        format!(r#"<refset setid="{set}" srclang="german" trglang="english" refid="ref">"#);
    let mut de = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<mteval>\n{open_de}\n");
    let mut en = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<mteval>\n{open_en}\n");
    let mut seg = 0;
    let mut doc = 1;
    while seg < segs {
        let head = format!("<doc docid=\"{doc}\" genre=\"lectures\">\n<talkid>{doc}</talkid>\n");
        de.push_str(&head);
        en.push_str(&head);
        for id in 1..=TALK_SENTENCES.min(segs - seg) {
            let (d, e) = lex.sentence(rng, 3, 15, true);
            de.push_str(&format!("<seg id=\"{id}\"> {d} </seg>\n"));
            en.push_str(&format!("<seg id=\"{id}\"> {e} </seg>\n"));
            seg += 1;
        }
        de.push_str("</doc>\n");
        en.push_str("</doc>\n");
        doc += 1;
    }
    de.push_str("</srcset>\n</mteval>\n");
    en.push_str("</refset>\n</mteval>\n");
    (de, en)
}

pub(super) fn generate(p: &Params) -> anyhow::Result<Vec<u8>> {
    const NAME: &str = "iwslt14";
    let seed = p.get("seed");
    let lex = Lexicon::new(p.usize("vocab"), &mut stream(NAME, "lexicon", seed, 0));
    let mut tar = TarGz::new();
    tar.dir(&format!("{FOLDER}/"))?;
    let (de, en) = train_files(
        &lex,
        &mut stream(NAME, "train", seed, 0),
        p.usize("train_pairs"),
    );
    tar.file(&format!("{FOLDER}/train.tags.de-en.de"), de.as_bytes())?;
    tar.file(&format!("{FOLDER}/train.tags.de-en.en"), en.as_bytes())?;
    for (i, set) in TEST_SETS.iter().enumerate() {
        let mut rng = stream(NAME, "test", seed, i as u64);
        let (de, en) = xml_files(&lex, &mut rng, set, p.usize("test_pairs"));
        tar.file(&format!("{FOLDER}/{set}.de-en.de.xml"), de.as_bytes())?;
        tar.file(&format!("{FOLDER}/{set}.de-en.en.xml"), en.as_bytes())?;
    }
    Ok(tar.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_share_concepts_and_reorder_the_verb() {
        let lex = Lexicon::new(50, &mut stream("iwslt14", "lexicon", 0, 0));
        let mut rng = stream("iwslt14", "t", 0, 0);
        for _ in 0..50 {
            let (de, en) = lex.sentence(&mut rng, 4, 8, false);
            let (nd, ne) = (de.split(' ').count(), en.split(' ').count());
            assert_eq!(nd, ne, "{de} / {en}");
            assert!(de.ends_with(['.', '?', '\u{201c}']) && en.ends_with(['.', '?', '"']));
        }
        assert_ne!(lex.de[3], lex.de[4]);
    }
}
