//! The embedding cache: a decorator that answers repeated texts without calling the model.
//!
//! Keys are SHA-256 of the model name and the text, so a model change never serves stale
//! vectors. An in-process LRU always sits in front; a shared [`KvCache`] (Redis when
//! `REDIS_URL` is set) sits behind it so replicas share what any of them computed. The shared
//! cache is best effort: when it fails, the texts are simply embedded.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lru::LruCache;
use sha2::{Digest, Sha256};

use super::{Embedder, EmbeddingError, metrics};
use crate::cache::KvCache;

type CacheKey = [u8; 32];

/// An [`Embedder`] that serves cached vectors and sends only the misses to `inner`.
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    local: Mutex<LruCache<CacheKey, Arc<[f32]>>>,
    shared: Option<SharedCache>,
}

struct SharedCache {
    cache: Arc<dyn KvCache>,
    ttl: Duration,
}

impl CachedEmbedder {
    /// Keeps up to `capacity` vectors in process, and in `shared` (when given) for `ttl`.
    pub fn new(
        inner: Arc<dyn Embedder>,
        capacity: NonZeroUsize,
        shared: Option<(Arc<dyn KvCache>, Duration)>,
    ) -> Self {
        Self {
            inner,
            local: Mutex::new(LruCache::new(capacity)),
            shared: shared.map(|(cache, ttl)| SharedCache { cache, ttl }),
        }
    }

    fn key(&self, text: &str) -> CacheKey {
        let mut hasher = Sha256::new();
        hasher.update(self.inner.model().as_bytes());
        // A separator no model name contains, so ("ab", "c") and ("a", "bc") differ.
        hasher.update([0u8]);
        hasher.update(text.as_bytes());
        hasher.finalize().into()
    }

    fn local_get(&self, keys: &[CacheKey]) -> Vec<Option<Arc<[f32]>>> {
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.iter().map(|key| local.get(key).cloned()).collect()
    }

    fn local_put(&self, entries: impl IntoIterator<Item = (CacheKey, Arc<[f32]>)>) {
        let mut local = self
            .local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, vector) in entries {
            local.put(key, vector);
        }
    }

    /// Fills `found` from the shared cache where it is still empty; failures count as misses.
    async fn shared_get(&self, keys: &[CacheKey], found: &mut [Option<Arc<[f32]>>]) {
        let Some(shared) = &self.shared else { return };
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return;
        }
        let names: Vec<String> = missing.iter().map(|&i| shared_name(&keys[i])).collect();
        match shared.cache.get_many(&names).await {
            Ok(values) => {
                let mut promoted = Vec::new();
                for (&i, value) in missing.iter().zip(values) {
                    let vector = value.and_then(|bytes| decode(&bytes, self.inner.dimension()));
                    if let Some(vector) = vector {
                        promoted.push((keys[i], vector.clone()));
                        found[i] = Some(vector);
                    }
                }
                self.local_put(promoted);
            }
            Err(err) => {
                tracing::warn!(error = %err, kind = err.kind(), "embedding cache read failed");
            }
        }
    }

    async fn shared_put(&self, entries: &[(CacheKey, Arc<[f32]>)]) {
        let Some(shared) = &self.shared else { return };
        let encoded: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(key, vector)| (shared_name(key), encode(vector)))
            .collect();
        if let Err(err) = shared.cache.set_many(&encoded, shared.ttl).await {
            tracing::warn!(error = %err, kind = err.kind(), "embedding cache write failed");
        }
    }
}

#[async_trait::async_trait]
impl Embedder for CachedEmbedder {
    fn model(&self) -> &str {
        self.inner.model()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let keys: Vec<CacheKey> = texts.iter().map(|text| self.key(text)).collect();
        let mut found = self.local_get(&keys);
        self.shared_get(&keys, &mut found).await;

        let misses: Vec<usize> = (0..texts.len()).filter(|&i| found[i].is_none()).collect();
        metrics::cache_lookups(texts.len() - misses.len(), misses.len());
        if !misses.is_empty() {
            // The same text twice in one call is embedded once.
            let mut position: HashMap<CacheKey, usize> = HashMap::new();
            let mut request: Vec<String> = Vec::new();
            for &i in &misses {
                position.entry(keys[i]).or_insert_with(|| {
                    request.push(texts[i].clone());
                    request.len() - 1
                });
            }
            let vectors = self.inner.embed(&request).await?;
            if vectors.len() != request.len() {
                return Err(EmbeddingError::InvalidResponse {
                    reason: format!("{} vectors for {} texts", vectors.len(), request.len()),
                });
            }
            let vectors: Vec<Arc<[f32]>> = vectors.into_iter().map(Arc::from).collect();
            let mut computed: Vec<(CacheKey, Arc<[f32]>)> = Vec::with_capacity(request.len());
            for (key, &at) in &position {
                computed.push((*key, vectors[at].clone()));
            }
            for &i in &misses {
                found[i] = position.get(&keys[i]).map(|&at| vectors[at].clone());
            }
            self.local_put(computed.iter().cloned());
            self.shared_put(&computed).await;
        }
        found
            .into_iter()
            .map(|vector| {
                vector
                    .map(|v| v.to_vec())
                    .ok_or_else(|| EmbeddingError::InvalidResponse {
                        reason: "the embedder returned fewer vectors than texts".into(),
                    })
            })
            .collect()
    }
}

fn shared_name(key: &CacheKey) -> String {
    format!("emb:{}", hex::encode(key))
}

/// Little-endian f32s: compact, and the same layout SQLite stores.
fn encode(vector: &[f32]) -> Vec<u8> {
    crate::store::chunks::vector_to_blob(vector)
}

/// A cached value of the wrong width (another build, a corrupt entry) counts as a miss.
fn decode(bytes: &[u8], dimension: usize) -> Option<Arc<[f32]>> {
    if bytes.len() != dimension * 4 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}
