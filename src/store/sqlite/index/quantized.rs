//! Int8 scalar quantization of chunk vectors and the scan that ranks them against a query.
//!
//! Each vector is normalized, then stored as one signed byte per dimension with one scale per
//! row (its largest component becomes ±127): `dimension + 12` bytes a row instead of
//! `4 × dimension`. A scan is bound by the memory it reads, so a quarter of the bytes is
//! about four times the speed, and the integer dot product vectorizes. The order it gives is
//! approximate only between near-equal scores, which is why the caller takes a few times more
//! candidates than it returns and re-ranks them with the exact vectors.

use super::top::{Best, Scored};

/// Bytes a row costs besides its codes: the chunk id and the scale.
const ROW_OVERHEAD: usize = size_of::<i64>() + size_of::<f32>();

/// The bytes `rows` vectors of `dimension` take in the index.
pub fn row_bytes(rows: usize, dimension: usize) -> usize {
    rows.saturating_mul(dimension + ROW_OVERHEAD)
}

/// Appends the codes of `vector` (normalized) to `codes` and returns the scale that turns
/// them back into the normalized components. A zero or non-finite vector gets codes 0 and
/// scale 0: it scores 0 against everything, as it has no direction.
fn quantize(vector: &[f32], codes: &mut Vec<i8>) -> f32 {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    let largest = vector.iter().fold(0.0_f32, |max, v| max.max(v.abs()));
    if !(norm.is_finite() && norm > 0.0 && largest > 0.0) {
        codes.extend(std::iter::repeat_n(0, vector.len()));
        return 0.0;
    }
    let step = largest / 127.0;
    // |v / step| <= 127 by construction; `as` saturates anyway.
    codes.extend(vector.iter().map(|v| (v / step).round() as i8));
    step / norm
}

/// The integer dot product of two rows of codes. Written in blocks of a fixed width so that
/// the compiler vectorizes it whatever the dimension (widening multiply-add of 8-bit lanes;
/// codes are within ±127, so the 16-bit products cannot overflow).
#[inline(always)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 32;
    let mut sums = [0_i32; LANES];
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: i32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for ((sum, &x), &y) in sums.iter_mut().zip(x).zip(y) {
            *sum += i32::from(i16::from(x) * i16::from(y));
        }
    }
    sums.iter().sum::<i32>() + tail
}

/// The quantized vectors of one document's chunks, in one contiguous block.
#[derive(Debug)]
pub struct DocumentVectors {
    dimension: usize,
    ids: Vec<i64>,
    scales: Vec<f32>,
    codes: Vec<i8>,
}

impl DocumentVectors {
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            ids: Vec::new(),
            scales: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// Adds chunk `id`'s vector, which must be `dimension` wide.
    pub fn push(&mut self, id: i64, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dimension);
        self.ids.push(id);
        self.scales.push(quantize(vector, &mut self.codes));
    }

    /// Memory held, for the cache's budget.
    pub fn bytes(&self) -> usize {
        row_bytes(self.ids.len(), self.dimension)
    }

    /// The chunk ids, in the order they were pushed.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }
}

/// A query vector, quantized like the rows it is compared with.
#[derive(Debug)]
pub struct Query {
    codes: Vec<i8>,
    scale: f32,
}

impl Query {
    pub fn new(vector: &[f32]) -> Self {
        let mut codes = Vec::with_capacity(vector.len());
        let scale = quantize(vector, &mut codes);
        Self { codes, scale }
    }

    pub fn dimension(&self) -> usize {
        self.codes.len()
    }
}

/// Rows from which a scan is split over two threads: at 100k 384-d rows a vector search takes
/// 2.0 ms (p50) with the scan on two threads and 3.1 ms on one (AVX2, benches/retrieval.rs on
/// this project's machine), while below this a thread costs more than it saves.
const PARALLEL_ROWS: usize = 32_768;

/// The ids of the `count` rows of `documents` most similar to `query`, best first. Large
/// scans are split at a document boundary near the middle row.
pub fn nearest(documents: &[&DocumentVectors], query: &Query, count: usize) -> Vec<i64> {
    if count == 0 {
        return Vec::new();
    }
    let rows: usize = documents.iter().map(|d| d.ids.len()).sum();
    let split = if rows >= PARALLEL_ROWS {
        middle(documents, rows)
    } else {
        documents.len()
    };
    let (first, second) = documents.split_at(split);
    let kept = if second.is_empty() {
        best(first, query, count)
    } else {
        std::thread::scope(|scope| {
            let other =
                std::thread::Builder::new().spawn_scoped(scope, || best(second, query, count));
            let mut kept = best(first, query, count);
            match other.map(|thread| thread.join()) {
                Ok(Ok(more)) => kept.merge(more),
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // No thread to be had: scan the rest here.
                Err(_) => kept.merge(best(second, query, count)),
            }
            kept
        })
    };
    kept.into_ranked()
        .into_iter()
        .map(|s| s.key.cast_signed())
        .collect()
}

/// The number of leading documents that hold about half of the `rows`.
fn middle(documents: &[&DocumentVectors], rows: usize) -> usize {
    let mut seen = 0;
    for (at, document) in documents.iter().enumerate() {
        seen += document.ids.len();
        if seen * 2 >= rows {
            return at + 1;
        }
    }
    documents.len()
}

/// The best `count` rows of `documents`. Compiled again for
/// AVX2 and chosen at run time where the CPU has it: the dot product, 8-bit lanes widened to
/// 16, then runs 32 lanes an instruction instead of SSE2's 8 (a 100k-row scan, one thread,
/// this project's machine: 2.9 ms with SSE2, 1.3 ms with AVX2; the rows are read at 28 GB/s,
/// so memory was not the bound).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn best(documents: &[&DocumentVectors], query: &Query, count: usize) -> Best {
    let mut best = Best::new(count);
    let mut floor = best.floor();
    for document in documents {
        if document.dimension != query.dimension() || document.dimension == 0 {
            continue;
        }
        let rows = document.codes.chunks_exact(document.dimension);
        for ((codes, &scale), &id) in rows.zip(&document.scales).zip(&document.ids) {
            let score = f64::from(dot(codes, &query.codes) as f32 * scale * query.scale);
            // One comparison rejects most rows.
            if score < floor {
                continue;
            }
            best.offer(Scored {
                score,
                key: id.cast_unsigned(),
            });
            floor = best.floor();
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(vectors: &[(i64, &[f32])]) -> DocumentVectors {
        let dimension = vectors.first().map_or(0, |(_, v)| v.len());
        let mut document = DocumentVectors::new(dimension);
        for (id, vector) in vectors {
            document.push(*id, vector);
        }
        document
    }

    #[test]
    fn codes_keep_the_direction() {
        let mut codes = Vec::new();
        let scale = quantize(&[3.0, -4.0, 0.0], &mut codes);
        assert_eq!(codes, [95, -127, 0]);
        // Decoded: close to the normalized vector (0.6, -0.8, 0).
        assert!((f32::from(codes[0]) * scale - 0.6).abs() < 0.01);
        assert!((f32::from(codes[1]) * scale + 0.8).abs() < 1e-6);
    }

    #[test]
    fn directionless_vectors_score_zero() {
        let mut codes = Vec::new();
        assert_eq!(quantize(&[0.0, 0.0], &mut codes), 0.0);
        assert_eq!(quantize(&[f32::NAN, 1.0], &mut codes), 0.0);
        assert_eq!(codes, [0, 0, 0, 0]);
    }

    #[test]
    fn nearest_ranks_by_cosine_similarity_whatever_the_length() {
        let near: &[f32] = &[10.0, 1.0, 0.0];
        let middle: &[f32] = &[0.5, 0.5, 0.0];
        let far: &[f32] = &[-1.0, 0.0, 0.0];
        let docs = [document(&[(1, far), (2, near)]), document(&[(3, middle)])];
        let query = Query::new(&[1.0, 0.0, 0.0]);
        assert_eq!(
            nearest(&docs.iter().collect::<Vec<_>>(), &query, 10),
            [2, 3, 1]
        );
        assert_eq!(nearest(&docs.iter().collect::<Vec<_>>(), &query, 2), [2, 3]);
        assert!(nearest(&docs.iter().collect::<Vec<_>>(), &query, 0).is_empty());
    }

    #[test]
    fn rows_of_another_width_are_never_compared() {
        let docs = [document(&[(1, &[1.0, 0.0])])];
        assert!(nearest(&[&docs[0]], &Query::new(&[1.0, 0.0, 0.0]), 5).is_empty());
    }

    #[test]
    fn the_scan_agrees_with_exact_cosine_on_random_vectors() {
        // xorshift: deterministic pseudo-random vectors.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let vectors: Vec<Vec<f32>> = (0..2000)
            .map(|_| (0..64).map(|_| next()).collect())
            .collect();
        let mut doc = DocumentVectors::new(64);
        for (id, vector) in (0..).zip(&vectors) {
            doc.push(id, vector);
        }
        let query: Vec<f32> = (0..64).map(|_| next()).collect();
        let cosine = |v: &[f32]| {
            let dot: f32 = v.iter().zip(&query).map(|(a, b)| a * b).sum();
            let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
            dot / (norm(v) * norm(&query))
        };
        let mut exact: Vec<(f32, i64)> =
            (0..).zip(&vectors).map(|(id, v)| (cosine(v), id)).collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let top10: Vec<i64> = exact[..10].iter().map(|(_, id)| *id).collect();
        // 40 approximate candidates hold the exact top 10.
        let candidates = nearest(&[&doc], &Query::new(&query), 40);
        assert!(
            top10.iter().all(|id| candidates.contains(id)),
            "{top10:?} {candidates:?}"
        );
    }

    #[test]
    fn a_scan_split_over_two_threads_ranks_as_one_thread_does() {
        let rows = PARALLEL_ROWS + 1000;
        let vector = |i: usize| -> Vec<f32> {
            let x = i as f32;
            vec![(x * 0.37).sin(), (x * 0.11).cos(), (x * 0.05).sin(), 1.0]
        };
        let mut whole = DocumentVectors::new(4);
        let mut parts: Vec<DocumentVectors> = (0..4).map(|_| DocumentVectors::new(4)).collect();
        for i in 0..rows {
            whole.push(i as i64, &vector(i));
            parts[i % 4].push(i as i64, &vector(i));
        }
        let query = Query::new(&[0.3, -0.2, 0.9, 0.1]);
        let split = nearest(&parts.iter().collect::<Vec<_>>(), &query, 50);
        assert_eq!(middle(&parts.iter().collect::<Vec<_>>(), rows), 2);
        // One document cannot be split: scanned on one thread.
        assert_eq!(split, nearest(&[&whole], &query, 50));
        assert_eq!(split.len(), 50);
    }
}
