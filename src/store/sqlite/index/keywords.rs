//! Keyword ranking in memory: each document's chunks as a small inverted index (its distinct
//! terms, sorted, each with the chunks holding it), ranked by BM25 exactly as FTS5's `bm25()`
//! computes it (k1 1.2, b 0.75, an IDF floored at 1e-6), so results and scores are the ones
//! FTS5 gives. FTS5 needs 2-3 µs per matching chunk to rank and cannot stop early: a question
//! made of common words matches nearly every chunk, hundreds of milliseconds at 100k chunks.
//! Here a matching chunk costs a few nanoseconds.
//!
//! The collection statistics (chunk count, average length, chunks holding each term) are the
//! user's own, where FTS5's are the whole table's: one user's documents never move another's
//! scores, nor reveal through them which words other users' documents hold.

use std::ops::Range;

use super::terms::{Term, Terms};
use super::top::{Best, Scored};

/// FTS5's `bm25()` parameters.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// FTS5 floors the IDF of a term found in half the chunks or more at this.
const MIN_IDF: f64 = 1e-6;

#[derive(Debug, Clone, Copy)]
struct Posting {
    /// The chunk's position in its document.
    chunk: u32,
    /// How often the term occurs in it.
    frequency: u32,
}

/// Bytes a posting and a chunk's length take, for the cache's budget.
const POSTING_BYTES: usize = size_of::<Posting>();
const TERM_BYTES: usize = size_of::<Term>() + size_of::<u32>();

/// One document's chunks, inverted.
#[derive(Debug, Default)]
pub struct DocumentKeywords {
    /// The distinct terms, sorted.
    terms: Vec<Term>,
    /// `postings[starts[i]..starts[i + 1]]` hold `terms[i]`, by chunk.
    starts: Vec<u32>,
    postings: Vec<Posting>,
    /// Each chunk's length in terms.
    lengths: Vec<u32>,
    total_length: u64,
}

impl DocumentKeywords {
    /// Memory held, for the cache's budget.
    pub fn bytes(&self) -> usize {
        self.terms.len() * TERM_BYTES
            + self.postings.len() * POSTING_BYTES
            + self.lengths.len() * size_of::<u32>()
    }

    fn postings_of(&self, term: Term) -> Option<Range<usize>> {
        let at = self.terms.binary_search(&term).ok()?;
        Some(self.starts[at] as usize..self.starts[at + 1] as usize)
    }
}

/// Collects a document's chunks in order, then inverts them.
#[derive(Debug, Default)]
pub struct KeywordsBuilder {
    /// Every occurrence as (term, chunk).
    occurrences: Vec<(Term, u32)>,
    lengths: Vec<u32>,
}

impl KeywordsBuilder {
    /// Adds the next chunk's text.
    pub fn push(&mut self, terms: &mut Terms, text: &str) {
        let chunk = offset(self.lengths.len());
        let before = self.occurrences.len();
        terms.each(text, |term| self.occurrences.push((term, chunk)));
        let length = self.occurrences.len() - before;
        self.lengths.push(offset(length));
    }

    pub fn finish(mut self) -> DocumentKeywords {
        self.occurrences.sort_unstable();
        // Sized exactly: the index outlives the build, and no slack is carried into it.
        let postings = self.occurrences.chunk_by(|a, b| a == b).count();
        let terms = self.occurrences.chunk_by(|a, b| a.0 == b.0).count();
        let mut keywords = DocumentKeywords {
            terms: Vec::with_capacity(terms),
            starts: Vec::with_capacity(terms + 1),
            postings: Vec::with_capacity(postings),
            total_length: self.lengths.iter().map(|&l| u64::from(l)).sum(),
            lengths: self.lengths,
        };
        for run in self.occurrences.chunk_by(|a, b| a == b) {
            let (term, chunk) = run[0];
            if keywords.terms.last() != Some(&term) {
                keywords.terms.push(term);
                keywords.starts.push(offset(keywords.postings.len()));
            }
            keywords.postings.push(Posting {
                chunk,
                frequency: offset(run.len()),
            });
        }
        keywords.starts.push(offset(keywords.postings.len()));
        keywords
    }
}

/// A position or count within one document, which holds far fewer than 2^32 terms.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A document as a ranking sees it.
pub struct Ranked<'a> {
    pub keywords: &'a DocumentKeywords,
    /// Chunk ids by position.
    pub ids: &'a [i64],
    /// Whether its chunks may be returned; every document counts in the statistics.
    pub in_scope: bool,
}

/// The `count` in-scope chunks of `documents` with the best BM25 score for any of `query`'s
/// terms (a term given twice counts twice), best first, as `(id, score)`; chunks holding none
/// of them are not returned. Equal scores go in the order of `documents`, then of their
/// chunks: with documents by id and chunks by index, the order SQL gives the same ties.
pub fn best(documents: &[Ranked<'_>], query: &[Term], count: usize) -> Vec<(i64, f64)> {
    let rows: usize = documents.iter().map(|d| d.keywords.lengths.len()).sum();
    let total_length: u64 = documents.iter().map(|d| d.keywords.total_length).sum();
    if count == 0 || rows == 0 || total_length == 0 {
        return Vec::new();
    }
    let rows = rows as f64;
    let average_length = total_length as f64 / rows;

    // Where each term's postings are, and in how many chunks each term is.
    let mut holding = vec![0_usize; query.len()];
    let mut found: Vec<(usize, usize, Range<usize>)> = Vec::new();
    for (at, document) in documents.iter().enumerate() {
        for (term_at, &term) in query.iter().enumerate() {
            if let Some(postings) = document.keywords.postings_of(term) {
                holding[term_at] += postings.len();
                if document.in_scope {
                    found.push((at, term_at, postings));
                }
            }
        }
    }
    let idf: Vec<f64> = holding
        .iter()
        .map(|&n| {
            let n = n as f64;
            let idf = ((rows - n + 0.5) / (n + 0.5)).ln();
            if idf > 0.0 { idf } else { MIN_IDF }
        })
        .collect();

    let mut best = Best::new(count);
    let mut scores: Vec<f64> = Vec::new();
    for run in found.chunk_by(|a, b| a.0 == b.0) {
        let at = run[0].0;
        let document = &documents[at];
        let keywords = document.keywords;
        scores.clear();
        scores.resize(keywords.lengths.len(), 0.0);
        for (_, term_at, postings) in run {
            for posting in &keywords.postings[postings.clone()] {
                let chunk = posting.chunk as usize;
                let frequency = f64::from(posting.frequency);
                let length = f64::from(keywords.lengths[chunk]);
                scores[chunk] += idf[*term_at] * (frequency * (K1 + 1.0))
                    / (frequency + K1 * (1.0 - B + B * length / average_length));
            }
        }
        for (chunk, &score) in scores.iter().enumerate() {
            if score > 0.0 {
                best.offer(Scored {
                    score,
                    key: ((at as u64) << 32) | chunk as u64,
                });
            }
        }
    }
    best.into_ranked()
        .into_iter()
        .map(|scored| {
            let document = &documents[(scored.key >> 32) as usize];
            (
                document.ids[(scored.key & u64::from(u32::MAX)) as usize],
                scored.score,
            )
        })
        .collect()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn document(texts: &[&str]) -> DocumentKeywords {
        let mut terms = Terms::default();
        let mut builder = KeywordsBuilder::default();
        for text in texts {
            builder.push(&mut terms, text);
        }
        builder.finish()
    }

    fn query(words: &str) -> Vec<Term> {
        let mut terms = Terms::default();
        words.split(' ').map(|w| terms.term(w)).collect()
    }

    #[test]
    fn documents_invert_their_chunks() {
        let keywords = document(&["the heron", "herons and the heron", ""]);
        assert_eq!(keywords.lengths, [2, 4, 0]);
        assert_eq!(keywords.total_length, 6);
        let heron = keywords.postings_of(query("heron")[0]).unwrap();
        let postings: Vec<(u32, u32)> = keywords.postings[heron]
            .iter()
            .map(|p| (p.chunk, p.frequency))
            .collect();
        assert_eq!(postings, [(0, 1), (1, 2)]);
        assert!(keywords.postings_of(query("crane")[0]).is_none());
        assert!(keywords.bytes() > 0);
    }

    #[test]
    fn bm25_is_fts5s() {
        // Three chunks; "heron" is in two, "keeper" in one.
        let keywords = document(&["heron keeper", "heron heron heron", "crane"]);
        let ids = [10, 11, 12];
        let ranked = best(
            &[Ranked {
                keywords: &keywords,
                ids: &ids,
                in_scope: true,
            }],
            &query("heron keeper"),
            10,
        );
        let average = 6.0 / 3.0;
        let part = |idf: f64, frequency: f64, length: f64| {
            idf * frequency * (K1 + 1.0) / (frequency + K1 * (1.0 - B + B * length / average))
        };
        // "heron" is in 2 of 3 chunks: its IDF is floored.
        let keeper_idf = ((3.0 - 1.0 + 0.5) / (1.0 + 0.5_f64)).ln();
        let first = part(keeper_idf, 1.0, 2.0) + part(MIN_IDF, 1.0, 2.0);
        let second = part(MIN_IDF, 3.0, 3.0);
        assert_eq!(ranked.len(), 2);
        assert_eq!((ranked[0].0, ranked[1].0), (10, 11));
        assert!((ranked[0].1 - first).abs() < 1e-12);
        assert!((ranked[1].1 - second).abs() < 1e-12);
    }

    #[test]
    fn out_of_scope_documents_count_in_the_statistics_only() {
        let mine = document(&["heron", "crane"]);
        let theirs = document(&["heron", "heron"]);
        let heron = query("heron");
        let ranked = |theirs_in_scope: bool| {
            best(
                &[
                    Ranked {
                        keywords: &mine,
                        ids: &[1, 2],
                        in_scope: true,
                    },
                    Ranked {
                        keywords: &theirs,
                        ids: &[3, 4],
                        in_scope: theirs_in_scope,
                    },
                ],
                &heron,
                10,
            )
        };
        let only_mine = ranked(false);
        assert_eq!(only_mine.iter().map(|s| s.0).collect::<Vec<_>>(), [1]);
        let all = ranked(true);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].0, 1, "equal scores: the first document's first");
        assert_eq!(only_mine[0], all[0]);
    }

    #[test]
    fn the_count_bounds_the_result() {
        let keywords = document(&["a b", "b", "b b", "c"]);
        let ids = [1, 2, 3, 4];
        let documents = [Ranked {
            keywords: &keywords,
            ids: &ids,
            in_scope: true,
        }];
        assert_eq!(best(&documents, &query("b"), 2).len(), 2);
        assert!(best(&documents, &query("b"), 0).is_empty());
        assert!(best(&documents, &query("zebra"), 5).is_empty());
        assert!(best(&[], &query("b"), 5).is_empty());
    }
}
