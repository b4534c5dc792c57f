//! The terms of a text as FTS5's `porter unicode61` tokenizer makes them (migration 0001):
//! runs of letters and digits, case-folded, diacritics removed, then Porter-stemmed. The
//! in-process keyword index and the FTS5 table therefore agree on what a word is, so both
//! rank alike (checked against FTS5 itself in the tests).
//!
//! Known differences, all outside plain English: FTS5 follows Unicode 6.1's tables where Rust
//! follows the current ones, and folds case where this lower-cases (alike but for a few
//! letters; the micro sign is mapped by hand). FTS5 runs its Porter stemmer (Martin Porter's
//! own variant, with `logi` -> `log`) over the bytes of every word, so it also strips English
//! suffixes from words with letters outside ASCII (`straße` -> `straß`); here only ASCII words
//! are stemmed. Over 60,000 English words the two stemmers disagree on two three-letter
//! non-words (`eed`, `ies`).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use nltk_porter::{Mode, PorterStemmer};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// A stemmed term, hashed: 8 bytes whatever the word's length. Two distinct stems share a
/// hash with a probability of about 1 in 10^10 for a vocabulary of a million words.
pub type Term = u64;

/// FTS5's Porter tokenizer stems tokens of 3 to 64 bytes; shorter and longer ones are kept
/// as they are.
const STEMMED_BYTES: std::ops::RangeInclusive<usize> = 3..=64;

/// Turns texts into terms, remembering the term of every word it has seen: a corpus repeats
/// its words, and stemming is the costly step.
pub struct Terms {
    stemmer: PorterStemmer,
    known: HashMap<String, Term>,
    folded: String,
}

impl Default for Terms {
    fn default() -> Self {
        Self {
            stemmer: PorterStemmer::new(Mode::Martin),
            known: HashMap::new(),
            folded: String::new(),
        }
    }
}

impl Terms {
    /// Calls `each` with the term of every word of `text`, in order.
    pub fn each(&mut self, text: &str, mut each: impl FnMut(Term)) {
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if !word.is_empty() {
                each(self.term(word));
            }
        }
    }

    /// The term of one word (a run of letters and digits).
    pub fn term(&mut self, word: &str) -> Term {
        fold(word, &mut self.folded);
        if let Some(&term) = self.known.get(&self.folded) {
            return term;
        }
        let term = if self.folded.is_ascii() && STEMMED_BYTES.contains(&self.folded.len()) {
            hash(&self.stemmer.stem(&self.folded))
        } else {
            hash(&self.folded)
        };
        self.known.insert(self.folded.clone(), term);
        term
    }
}

/// Letters below this (Latin scripts) lose their diacritics, as in FTS5's `unicode61`; the
/// others (Greek, Cyrillic, ...) keep them.
const FIRST_NON_LATIN: char = '\u{370}';

/// `word` lower-cased, and without diacritics on Latin letters, into `folded`.
fn fold(word: &str, folded: &mut String) {
    folded.clear();
    for c in word.chars() {
        if c.is_ascii() {
            folded.push(c.to_ascii_lowercase());
            continue;
        }
        for lower in c.to_lowercase() {
            match lower {
                // The micro sign folds to the Greek letter mu.
                'µ' => folded.push('μ'),
                latin if latin < FIRST_NON_LATIN => decompose_canonical(latin, |part| {
                    if !is_combining_mark(part) {
                        folded.push(part);
                    }
                }),
                other => folded.push(other),
            }
        }
    }
}

fn hash(stem: &str) -> Term {
    // SipHash with fixed keys: the same term in every run, no collision-seeking by content
    // that a fast non-keyed hash would invite.
    let mut hasher = DefaultHasher::new();
    stem.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<Term> {
        let mut found = Vec::new();
        Terms::default().each(text, |term| found.push(term));
        found
    }

    #[test]
    fn words_are_folded_and_stemmed() {
        assert_eq!(terms("Running runs RUN"), vec![hash("run"); 3]);
        assert_eq!(terms("naïve Café"), [hash("naiv"), hash("cafe")]);
        assert_eq!(terms("Ёлка µ"), [hash("ёлка"), hash("μ")]);
        assert_eq!(
            terms("a, b-c 42"),
            [hash("a"), hash("b"), hash("c"), hash("42")]
        );
        assert!(terms(" -- ").is_empty());
    }

    /// Every word of this crate's README, benchmarks and evaluation questions, as FTS5 (the
    /// SQLite ragd embeds) indexes them and as [`Terms`] does.
    #[tokio::test]
    async fn terms_agree_with_fts5() {
        use sqlx::{Connection, SqliteConnection};
        let mut text = String::new();
        for file in [
            "README.md",
            "docs/benchmarks.md",
            "scripts/eval/rust-book.json",
        ] {
            text.push_str(&std::fs::read_to_string(file).unwrap());
        }
        text.push_str(" naïve Café ÉCOLE straße Ünïcode résumé größer Ελληνικά русский 日本語 ");
        let mut words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        words.sort_unstable();
        words.dedup();
        assert!(words.len() > 1000, "{} words", words.len());

        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE VIRTUAL TABLE t USING fts5 (text, tokenize = 'porter unicode61')")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
            .execute(&mut db)
            .await
            .unwrap();
        for (row, word) in (0_i64..).zip(&words) {
            sqlx::query("INSERT INTO t (rowid, text) VALUES ($1, $2)")
                .bind(row)
                .bind(*word)
                .execute(&mut db)
                .await
                .unwrap();
        }
        let indexed: Vec<(String, i64)> = sqlx::query_as("SELECT term, doc FROM v")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(indexed.len(), words.len(), "one term a word");
        let mut mine = Terms::default();
        let differ: Vec<&str> = indexed
            .iter()
            .filter_map(|(term, row)| {
                let word = words[usize::try_from(*row).unwrap()];
                (mine.term(word) != hash(term)).then_some(word)
            })
            .collect();
        // Only words mixing ASCII letters with others, which FTS5 stems and this does not.
        let mixed = |word: &str| word.chars().any(|c| c.is_ascii_alphabetic()) && !word.is_ascii();
        assert!(differ.iter().all(|w| mixed(w)), "{differ:?}");
        assert_eq!(mine.term("Straße"), hash("straße"));
    }
}
