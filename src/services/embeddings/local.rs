//! The built-in local embedder: deterministic feature hashing, no model download.
//!
//! It is what makes ragd searchable with no provider configured. It is a lexical model, not
//! a neural one: a text becomes the hashed bag of its lower-cased words, word pairs and the
//! character 3- to 5-grams of each word (with `<`/`>` boundary markers, so prefixes and
//! suffixes count). Texts that share words or word pieces ("embedding" / "embeddings") land
//! near each other; synonyms without shared pieces do not.
//!
//! Each feature is hashed with a fixed function (FNV-1a, then a mixer), never std's randomly
//! seeded hasher, so every process and replica computes the same vector for the same text.
//! The hash picks a bucket and a sign (signed hashing keeps colliding features from always
//! adding up), counts are damped as `1 + ln(tf)`, and the vector is L2-normalised, so a cosine
//! similarity is a dot product.

use super::{Embedder, EmbeddingError};

/// The model id recorded next to every vector this embedder makes.
pub const MODEL: &str = "local/hashed-ngrams";

/// pgvector's limit for a `vector` column.
const MAX_DIMENSION: usize = 16_000;

/// Relative weights of the feature kinds: whole words carry the meaning, word pairs some word
/// order, character n-grams the morphology (many per word, so each weighs little).
const WORD_WEIGHT: f32 = 1.0;
const WORD_PAIR_WEIGHT: f32 = 0.5;
const CHAR_NGRAM_WEIGHT: f32 = 0.35;

const CHAR_NGRAM_SIZES: std::ops::RangeInclusive<usize> = 3..=5;

/// The embedder ragd uses when no provider is configured.
#[derive(Debug, Clone)]
pub struct LocalEmbedder {
    dimension: usize,
}

impl LocalEmbedder {
    /// An embedder producing `dimension`-wide vectors (1..=16000; 384 is a good default).
    pub fn new(dimension: usize) -> Result<Self, EmbeddingError> {
        if !(1..=MAX_DIMENSION).contains(&dimension) {
            return Err(EmbeddingError::InvalidInput {
                reason: format!(
                    "the local embedder's dimension must be between 1 and {MAX_DIMENSION}, \
                     not {dimension}"
                ),
            });
        }
        Ok(Self { dimension })
    }

    /// The unit vector of one text. A text without any word gets a fixed unit vector of its
    /// own, so that every stored vector has a defined cosine similarity.
    pub fn embed_text(&self, text: &str) -> Vec<f32> {
        let mut features = features_of(text);
        if features.is_empty() {
            features.push(Feature {
                hash: feature_hash(FeatureKind::NoWords, std::iter::empty()),
                kind: FeatureKind::NoWords,
            });
        }
        // Sorting makes equal features adjacent (to count them) and fixes the summation
        // order, so the floats are bit-for-bit reproducible.
        features.sort_unstable_by_key(|feature| feature.hash);

        let mut vector = vec![0.0f32; self.dimension];
        for run in features.chunk_by(|a, b| a.hash == b.hash) {
            let feature = run[0];
            let weight = feature.kind.weight() * (1.0 + (run.len() as f32).ln());
            let bucket = (feature.hash % self.dimension as u64) as usize;
            let sign = if feature.hash >> 63 == 0 { 1.0 } else { -1.0 };
            vector[bucket] += sign * weight;
        }
        normalise(&mut vector);
        vector
    }
}

#[async_trait::async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        MODEL
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    /// Computed inline: about a microsecond per word, cheaper than a hop to the blocking pool.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        Ok(texts.iter().map(|text| self.embed_text(text)).collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeatureKind {
    Word,
    WordPair,
    CharNgram,
    NoWords,
}

impl FeatureKind {
    fn weight(self) -> f32 {
        match self {
            Self::Word | Self::NoWords => WORD_WEIGHT,
            Self::WordPair => WORD_PAIR_WEIGHT,
            Self::CharNgram => CHAR_NGRAM_WEIGHT,
        }
    }

    /// Seeds the hash so that the word "the" and the trigram "the" are different features.
    fn tag(self) -> u8 {
        match self {
            Self::Word => b'w',
            Self::WordPair => b'p',
            Self::CharNgram => b'c',
            Self::NoWords => b'0',
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Feature {
    hash: u64,
    kind: FeatureKind,
}

fn features_of(text: &str) -> Vec<Feature> {
    let words: Vec<Vec<char>> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().flat_map(char::to_lowercase).collect())
        .collect();
    let mut features = Vec::with_capacity(words.len() * 20);
    for (i, word) in words.iter().enumerate() {
        features.push(Feature {
            hash: feature_hash(FeatureKind::Word, word.iter().copied()),
            kind: FeatureKind::Word,
        });
        if let Some(next) = words.get(i + 1) {
            let pair = word.iter().chain([' '].iter()).chain(next.iter()).copied();
            features.push(Feature {
                hash: feature_hash(FeatureKind::WordPair, pair),
                kind: FeatureKind::WordPair,
            });
        }
        let marked: Vec<char> = std::iter::once('<')
            .chain(word.iter().copied())
            .chain(std::iter::once('>'))
            .collect();
        for size in CHAR_NGRAM_SIZES {
            for ngram in marked.windows(size) {
                features.push(Feature {
                    hash: feature_hash(FeatureKind::CharNgram, ngram.iter().copied()),
                    kind: FeatureKind::CharNgram,
                });
            }
        }
    }
    features
}

/// FNV-1a over the kind tag and the characters' code points, then a 64-bit finaliser
/// (from SplitMix64) so that every output bit depends on every input bit: the low bits pick
/// the bucket, the top bit the sign.
fn feature_hash(kind: FeatureKind, chars: impl Iterator<Item = char>) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    };
    eat(kind.tag());
    for c in chars {
        for byte in u32::from(c).to_le_bytes() {
            eat(byte);
        }
    }
    let mut mixed = hash;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn embedder() -> LocalEmbedder {
        LocalEmbedder::new(384).unwrap()
    }

    #[test]
    fn vectors_are_unit_length_and_as_wide_as_configured() {
        let embedder = embedder();
        for text in ["hello world", "", "   ...   ", "ünïcödé ТЕКСТ 文字"] {
            let vector = embedder.embed_text(text);
            assert_eq!(vector.len(), 384);
            let norm: f32 = cosine(&vector, &vector);
            assert!((norm - 1.0).abs() < 1e-4, "{text:?}: {norm}");
        }
    }

    #[test]
    fn the_same_text_always_gives_the_same_vector() {
        let text = "Deterministic vectors for the same text, every time.";
        assert_eq!(embedder().embed_text(text), embedder().embed_text(text));
        assert_eq!(
            embedder().embed_text(text),
            LocalEmbedder::new(384).unwrap().embed_text(text)
        );
    }

    #[test]
    fn case_and_punctuation_do_not_matter() {
        let embedder = embedder();
        let a = embedder.embed_text("Rust Embeddings!");
        let b = embedder.embed_text("rust embeddings");
        assert!(cosine(&a, &b) > 0.999);
    }

    #[test]
    fn word_forms_land_close_together() {
        let embedder = embedder();
        let singular = embedder.embed_text("embedding");
        let plural = embedder.embed_text("embeddings");
        let other = embedder.embed_text("volcano");
        let close = cosine(&singular, &plural);
        assert!(close > 0.5, "embedding/embeddings: {close}");
        assert!(close > cosine(&singular, &other) + 0.3);
    }

    #[test]
    fn related_texts_are_closer_than_unrelated_ones() {
        let embedder = embedder();
        let query = embedder.embed_text("How do I install ragd on Linux?");
        let related = embedder.embed_text("Installing ragd on a Linux server takes one binary.");
        let unrelated = embedder.embed_text("The recipe needs two eggs and a cup of flour.");
        let related_score = cosine(&query, &related);
        let unrelated_score = cosine(&query, &unrelated);
        assert!(
            related_score > unrelated_score + 0.2,
            "related {related_score}, unrelated {unrelated_score}"
        );
    }

    #[tokio::test]
    async fn the_trait_embeds_a_batch_in_order() {
        let embedder = embedder();
        let texts = vec!["first text".to_owned(), "second text".to_owned()];
        let vectors = embedder.embed(&texts).await.unwrap();
        assert_eq!(vectors.len(), 2);
        assert_eq!(vectors[0], embedder.embed_text("first text"));
        assert_eq!(vectors[1], embedder.embed_text("second text"));
        assert_eq!(embedder.model(), "local/hashed-ngrams");
        assert_eq!(embedder.dimension(), 384);
    }

    #[test]
    fn an_impossible_dimension_is_refused() {
        assert!(matches!(
            LocalEmbedder::new(0),
            Err(EmbeddingError::InvalidInput { .. })
        ));
        assert!(LocalEmbedder::new(MAX_DIMENSION + 1).is_err());
    }
}
