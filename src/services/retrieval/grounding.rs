//! Grounding a chat answer: the retrieval query formed from the conversation, and the
//! retriever plugged into the chat service's [`Grounding`] seam (hybrid search, overlapping
//! chunks merged). The chat service fits the sources into the model's context window.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Citation, Retriever, SearchMode, SearchQuery};
use crate::services::chat::{Grounding, GroundingError, RagScope};
use crate::services::llm::{ChatMessage, Role};

/// A latest question shorter than this many words is read as a follow-up ("and in 2020?",
/// "why?"), searched together with the user's previous question.
const FOLLOW_UP_WORDS: usize = 6;

/// Characters of each message a retrieval query keeps: questions are short, pasted documents
/// are not, and the embedder's input is bounded.
const MAX_QUERY_CHARS: usize = 2000;

#[async_trait]
impl Grounding for Retriever {
    async fn ground(
        &self,
        user: Uuid,
        question: &str,
        scope: &RagScope,
    ) -> Result<Vec<Citation>, GroundingError> {
        if question.trim().is_empty() {
            return Ok(Vec::new());
        }
        let found = self
            .search(SearchQuery {
                user_id: user,
                text: question,
                document_ids: &scope.document_ids,
                top_k: scope.top_k,
                mode: SearchMode::Hybrid,
            })
            .await
            .map_err(|err| GroundingError(err.into()))?;
        Ok(merge_overlapping(found))
    }
}

/// The text to search for: the latest user message, preceded by the previous user message
/// when the latest is a short follow-up that leans on it.
pub fn retrieval_query(messages: &[ChatMessage]) -> Option<String> {
    let mut questions = messages
        .iter()
        .rev()
        .filter(|m| m.role == Role::User && !m.content.trim().is_empty())
        .map(|m| truncate_chars(m.content.trim(), MAX_QUERY_CHARS));
    let latest = questions.next()?;
    if latest.split_whitespace().count() >= FOLLOW_UP_WORDS {
        return Some(latest.to_owned());
    }
    Some(match questions.next() {
        Some(previous) => format!("{previous}\n{latest}"),
        None => latest.to_owned(),
    })
}

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Merges sources that repeat each other: a text already inside a better source (one file
/// uploaded under two names, or a chunk already merged) is dropped; neighbouring chunks of one document whose character spans
/// overlap (chunking overlap) become one source spanning both, at the better one's rank and
/// score. Order stays best first.
pub fn merge_overlapping(citations: Vec<Citation>) -> Vec<Citation> {
    let mut merged: Vec<Citation> = Vec::with_capacity(citations.len());
    for citation in citations {
        if merged.iter().any(|kept| kept.text.contains(&citation.text)) {
            continue;
        }
        let overlapping = merged.iter_mut().find(|kept| {
            kept.document_id == citation.document_id
                && kept.char_start < citation.char_end
                && citation.char_start < kept.char_end
        });
        match overlapping.and_then(|kept| join_spans(kept, &citation).map(|joined| (kept, joined)))
        {
            Some((kept, joined)) => *kept = joined,
            None => merged.push(citation),
        }
    }
    merged
}

/// The two overlapping chunks as one, when their texts are exactly their spans (else `None`,
/// and both are kept as they are).
fn join_spans(a: &Citation, b: &Citation) -> Option<Citation> {
    let (first, second) = if a.char_start <= b.char_start {
        (a, b)
    } else {
        (b, a)
    };
    let spans_are_texts = [first, second]
        .iter()
        .all(|c| usize::try_from(c.char_end - c.char_start).ok() == Some(c.text.chars().count()));
    if !spans_are_texts {
        return None;
    }
    let mut joined = first.clone();
    if second.char_end > first.char_end {
        let shared = usize::try_from(first.char_end - second.char_start).ok()?;
        joined.text.extend(second.text.chars().skip(shared));
        joined.char_end = second.char_end;
    }
    joined.score = a.score.max(b.score);
    joined.chunk_index = a.chunk_index.min(b.chunk_index);
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> ChatMessage {
        ChatMessage::new(Role::User, text)
    }

    fn citation(document: u128, start: i64, text: &str, score: f64) -> Citation {
        Citation {
            document_id: Uuid::from_u128(document),
            filename: "a.txt".into(),
            chunk_index: start,
            text: text.into(),
            score,
            page: None,
            char_start: start,
            char_end: start + i64::try_from(text.chars().count()).unwrap_or(0),
        }
    }

    #[test]
    fn the_query_is_the_latest_question() {
        let messages = [
            user("Who designed the lighthouse on the northern cape?"),
            ChatMessage::new(Role::Assistant, "Ada Lovelace."),
            user("When was the lighthouse on the cape first lit?"),
        ];
        assert_eq!(
            retrieval_query(&messages).as_deref(),
            Some("When was the lighthouse on the cape first lit?")
        );
    }

    #[test]
    fn a_short_follow_up_carries_the_previous_question() {
        let messages = [
            user("Who designed the lighthouse on the northern cape?"),
            ChatMessage::new(Role::Assistant, "Ada Lovelace."),
            user("and when?"),
        ];
        assert_eq!(
            retrieval_query(&messages).as_deref(),
            Some("Who designed the lighthouse on the northern cape?\nand when?")
        );
    }

    #[test]
    fn no_user_question_means_no_query() {
        assert_eq!(retrieval_query(&[]), None);
        assert_eq!(
            retrieval_query(&[ChatMessage::new(Role::System, "be brief"), user("  ")]),
            None
        );
    }

    #[test]
    fn overlapping_chunks_merge_and_duplicates_drop() {
        let merged = merge_overlapping(vec![
            citation(1, 10, "klmnop", 0.9),
            citation(1, 0, "abcdefghijklm", 0.5),
            citation(2, 0, "klmnop", 0.4),
            citation(1, 100, "far away", 0.3),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].text, "abcdefghijklmnop");
        assert_eq!((merged[0].char_start, merged[0].char_end), (0, 16));
        assert!((merged[0].score - 0.9).abs() < f64::EPSILON);
        assert_eq!(merged[0].chunk_index, 0);
        assert_eq!(merged[1].text, "far away");
    }
}
