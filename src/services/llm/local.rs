//! `local/extractive`, the built-in offline provider: it answers from the retrieved context
//! alone by quoting the sentences most relevant to the question, with their source numbers.
//!
//! It is a deterministic retrieval algorithm (BM25 over sentences), not a language model:
//! it makes ragd useful end to end before any provider is configured.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use futures::StreamExt;

use super::{
    Completion, CompletionRequest, ContextSource, EventStream, FinishReason, LlmProvider,
    ModelInfo, ProviderError, Role, StreamEvent, Usage, tokens,
};

const PROVIDER: &str = "local";
/// The routable name of the one model this provider offers.
pub const LOCAL_MODEL: &str = "local/extractive";
const MODEL_NAME: &str = "extractive";
/// Sentences quoted at most in one answer.
const MAX_QUOTES: usize = 3;
/// BM25 parameters: the usual defaults, which suit sentence-length documents.
const BM25_K1: f64 = 1.2;
const BM25_B: f64 = 0.75;

const NO_CONTEXT_ANSWER: &str = "I have no documents to answer from. Upload documents (or \
    select some) and ask again, or configure an LLM provider (OPENAI_API_KEY, \
    ANTHROPIC_API_KEY or OLLAMA_BASE_URL) for open-ended answers.";
const NO_MATCH_ANSWER: &str = "The retrieved documents do not seem to cover this question. \
    Try rephrasing it with words the documents use, or configure an LLM provider for \
    open-ended answers.";
const ANSWER_LEAD: &str = "From the documents:";

/// Words too common to say anything about relevance.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from",
    "how", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or", "tell", "that", "the",
    "their", "there", "these", "this", "to", "was", "we", "what", "when", "where", "which", "who",
    "why", "will", "with", "you", "your",
];

#[derive(Debug, Default)]
pub struct LocalProvider;

/// One candidate sentence and where it comes from.
struct Sentence {
    source: usize,
    text: String,
    terms: Vec<String>,
    /// Position among all sentences, the tie-breaker that keeps answers deterministic.
    position: usize,
}

/// Lower-cased word terms without stop words, with a plural `s` folded away.
fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() > 1)
        .map(str::to_lowercase)
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
        .map(|word| {
            if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
                word[..word.len() - 1].to_owned()
            } else {
                word
            }
        })
        .collect()
}

/// Splits a passage at sentence ends (`.`, `!`, `?` before whitespace) and line breaks,
/// collapsing inner whitespace.
fn split_sentences(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    for line in text.lines() {
        let mut current = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            current.push(c);
            let at_end = matches!(c, '.' | '!' | '?')
                && chars.peek().is_none_or(|next| next.is_whitespace());
            if at_end {
                push_sentence(&mut sentences, &current);
                current.clear();
            }
        }
        push_sentence(&mut sentences, &current);
    }
    sentences
}

fn push_sentence(sentences: &mut Vec<String>, raw: &str) {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
        sentences.push(collapsed);
    }
}

/// The sentences that best answer `question`, best first, with their source numbers.
fn select_quotes(question: &str, context: &[ContextSource]) -> Vec<(usize, String)> {
    let query: HashSet<String> = terms(question).into_iter().collect();
    let mut sentences = Vec::new();
    for source in context {
        for text in split_sentences(&source.text) {
            sentences.push(Sentence {
                source: source.number,
                terms: terms(&text),
                position: sentences.len(),
                text,
            });
        }
    }
    if query.is_empty() || sentences.is_empty() {
        return Vec::new();
    }
    let count = sentences.len() as f64;
    let average_length = sentences.iter().map(|s| s.terms.len()).sum::<usize>() as f64 / count;
    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    for sentence in &sentences {
        let unique: HashSet<&str> = sentence.terms.iter().map(String::as_str).collect();
        for term in unique.into_iter().filter(|term| query.contains(*term)) {
            *document_frequency.entry(term).or_default() += 1;
        }
    }
    let score = |sentence: &Sentence| -> f64 {
        let length = sentence.terms.len() as f64;
        document_frequency
            .iter()
            .map(|(term, &frequency)| {
                let occurrences = sentence.terms.iter().filter(|t| t == term).count() as f64;
                if occurrences == 0.0 {
                    return 0.0;
                }
                let df = frequency as f64;
                let idf = ((count - df + 0.5) / (df + 0.5) + 1.0).ln();
                let normalizer =
                    BM25_K1 * (1.0 - BM25_B + BM25_B * length / average_length.max(1.0));
                idf * occurrences * (BM25_K1 + 1.0) / (occurrences + normalizer)
            })
            .sum()
    };
    let mut scored: Vec<(f64, &Sentence)> = sentences
        .iter()
        .map(|sentence| (score(sentence), sentence))
        .filter(|(score, _)| *score > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.position.cmp(&b.1.position)));
    let mut seen = HashSet::new();
    scored
        .into_iter()
        .filter(|(_, sentence)| seen.insert(sentence.text.clone()))
        .take(MAX_QUOTES)
        .map(|(_, sentence)| (sentence.source, sentence.text.clone()))
        .collect()
}

/// The whole answer text for a request.
fn answer(req: &CompletionRequest) -> String {
    if req.context.is_empty() {
        return NO_CONTEXT_ANSWER.to_owned();
    }
    let question = req
        .messages
        .iter()
        .rev()
        .find(|message| message.role == Role::User)
        .map_or("", |message| message.content.as_str());
    let quotes = select_quotes(question, &req.context);
    if quotes.is_empty() {
        return NO_MATCH_ANSWER.to_owned();
    }
    let mut text = ANSWER_LEAD.to_owned();
    for (source, sentence) in quotes {
        text.push_str(&format!("\n- \"{sentence}\" [{source}]"));
    }
    text
}

/// The prompt is the messages alone: the context's sources are already written into them
/// (the grounded system message), `context` only hands them over whole for quoting.
fn usage(req: &CompletionRequest, text: &str) -> Usage {
    Usage::new(req.prompt_tokens(), tokens::count_text(MODEL_NAME, text))
}

/// The request must be for the extractive model, and must not require a tool call or JSON:
/// the extractive model answers in quoted text alone (offered tools it simply does not call).
fn check_request(req: &CompletionRequest) -> Result<(), ProviderError> {
    if req.model != MODEL_NAME {
        return Err(ProviderError::NotConfigured {
            model: format!("{PROVIDER}/{}", req.model),
            hint: "the built-in provider offers only local/extractive",
        });
    }
    if req
        .options
        .tools
        .as_ref()
        .is_some_and(|tools| tools.choice.forces_a_call())
    {
        return Err(ProviderError::Unsupported {
            provider: PROVIDER,
            operation: "tool calls (local/extractive answers in text only)",
        });
    }
    if req.options.response_format.is_json() {
        return Err(ProviderError::Unsupported {
            provider: PROVIDER,
            operation: "JSON answers (local/extractive answers in text only)",
        });
    }
    Ok(())
}

#[async_trait]
impl LlmProvider for LocalProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        check_request(req)?;
        let text = answer(req);
        Ok(Completion {
            usage: usage(req, &text),
            text,
            tool_calls: Vec::new(),
            refusal: None,
            model: MODEL_NAME.to_owned(),
            finish: FinishReason::Stop,
        })
    }

    /// Streams the same answer word by word (each word with its trailing whitespace).
    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        check_request(req)?;
        let text = answer(req);
        let done = StreamEvent::Done {
            usage: Some(usage(req, &text)),
            finish: FinishReason::Stop,
        };
        let words: Vec<_> = text
            .split_inclusive(char::is_whitespace)
            .map(|word| Ok(StreamEvent::Token(word.to_owned())))
            .chain(std::iter::once(Ok(done)))
            .collect();
        Ok(futures::stream::iter(words).boxed())
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(vec![ModelInfo {
            id: LOCAL_MODEL.to_owned(),
            owned_by: "ragd".to_owned(),
        }])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::services::llm::{AnswerOptions, ChatMessage, Role};

    fn request(question: &str, context: &[(usize, &str)]) -> CompletionRequest {
        CompletionRequest {
            model: MODEL_NAME.to_owned(),
            messages: vec![ChatMessage::new(Role::User, question)].into(),
            temperature: Some(0.7),
            max_tokens: 256,
            context: context
                .iter()
                .map(|(number, text)| ContextSource {
                    number: *number,
                    label: format!("doc{number}.txt"),
                    text: (*text).to_owned(),
                })
                .collect(),
            options: AnswerOptions::default(),
        }
    }

    const CONTEXT: &[(usize, &str)] = &[
        (
            1,
            "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
        ),
        (
            2,
            "Rust is a systems programming language. Rust guarantees memory safety without a garbage collector.",
        ),
    ];

    #[tokio::test]
    async fn answers_by_quoting_relevant_sentences_with_their_source_numbers() {
        let req = request("When was the Eiffel Tower completed?", CONTEXT);
        let completion = LocalProvider.complete(&req).await.unwrap();

        assert!(
            completion.text.starts_with(ANSWER_LEAD),
            "{}",
            completion.text
        );
        assert!(
            completion
                .text
                .contains("\"It was completed in 1889 for the World's Fair.\" [1]"),
            "{}",
            completion.text
        );
        assert!(!completion.text.contains("[2]"), "{}", completion.text);
        assert!(completion.usage.prompt_tokens > 0 && completion.usage.completion_tokens > 0);
        // The sources are counted once, as part of the messages they are written into.
        assert_eq!(
            completion.usage.prompt_tokens,
            tokens::count_messages(MODEL_NAME, &req.messages)
        );
        assert_eq!(
            completion.usage.total_tokens,
            completion.usage.prompt_tokens + completion.usage.completion_tokens
        );
    }

    #[tokio::test]
    async fn ranks_the_best_matching_sentence_first() {
        let completion = LocalProvider
            .complete(&request("How does Rust give memory safety?", CONTEXT))
            .await
            .unwrap();

        let first_quote = completion.text.lines().nth(1).unwrap();
        assert!(
            first_quote.contains("memory safety") && first_quote.ends_with("[2]"),
            "{}",
            completion.text
        );
    }

    #[tokio::test]
    async fn says_plainly_when_there_is_no_context() {
        let completion = LocalProvider
            .complete(&request("What is ragd?", &[]))
            .await
            .unwrap();

        assert_eq!(completion.text, NO_CONTEXT_ANSWER);
    }

    #[tokio::test]
    async fn says_so_when_the_context_does_not_cover_the_question() {
        let completion = LocalProvider
            .complete(&request("Who painted the Mona Lisa?", CONTEXT))
            .await
            .unwrap();

        assert_eq!(completion.text, NO_MATCH_ANSWER);
    }

    #[tokio::test]
    async fn streams_the_same_answer_word_by_word() {
        let req = request("Where is the Eiffel Tower?", CONTEXT);
        let whole = LocalProvider.complete(&req).await.unwrap();

        let events: Vec<_> = LocalProvider
            .stream(&req)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;

        let (last, tokens) = events.split_last().unwrap();
        assert!(tokens.len() > 3);
        let streamed: String = tokens
            .iter()
            .map(|event| match event {
                StreamEvent::Token(text) => text.as_str(),
                other => panic!("{other:?} before the end"),
            })
            .collect();
        assert_eq!(streamed, whole.text);
        assert_eq!(
            *last,
            StreamEvent::Done {
                usage: Some(whole.usage),
                finish: FinishReason::Stop,
            }
        );
    }

    #[tokio::test]
    async fn only_the_extractive_model_exists() {
        let mut req = request("anything", CONTEXT);
        req.model = "llama".to_owned();

        let error = LocalProvider.complete(&req).await.unwrap_err();

        assert!(matches!(error, ProviderError::NotConfigured { .. }));
    }

    #[test]
    fn sentences_split_at_terminators_and_lines() {
        assert_eq!(
            split_sentences("First one. Second one!\nThird line without stop\nv1.2 stays whole."),
            [
                "First one.",
                "Second one!",
                "Third line without stop",
                "v1.2 stays whole."
            ]
        );
    }
}
