//! English stop words, dropped from keyword queries on the embedded backend as PostgreSQL's
//! `english` configuration drops them on the other: they occur in most chunks, so FTS5 would
//! score nearly every chunk for them while BM25 gives them almost no weight (FTS5 floors the
//! IDF of a term found in over half the rows at 1e-6).

/// The Snowball English list, the one PostgreSQL's `english.stop` holds.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "s",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// The terms (lower-case words) that are not stop words.
pub fn without_stop_words(terms: &[String]) -> Vec<String> {
    terms
        .iter()
        .filter(|term| STOP_WORDS.binary_search(&term.as_str()).is_err())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn only_content_words_remain() {
        let terms: Vec<String> = ["how", "many", "herons", "did", "the", "keeper", "count"]
            .map(String::from)
            .into();
        assert_eq!(
            without_stop_words(&terms),
            ["many", "herons", "keeper", "count"]
        );
        assert!(without_stop_words(&["the".into(), "or".into()]).is_empty());
    }
}
