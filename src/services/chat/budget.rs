//! Token budgeting: a prompt and its answer must fit the model's context window. Sources
//! are dropped from the end (the least relevant first) before a request is refused.

use crate::services::llm::{ChatMessage, tokens};
use crate::services::retrieval::Citation;

/// Used for models not in [`WINDOWS`]: what current open models served by vLLM, llama.cpp
/// or Ollama usually offer. A server with a smaller window still answers with its own error.
const DEFAULT_WINDOW: u32 = 32_768;

/// Context windows by model-name prefix, longest prefix first within a family.
const WINDOWS: &[(&str, u32)] = &[
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("chatgpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4-32k", 32_768),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("claude", 200_000),
    ("anthropic/", 200_000),
];

/// The context window of `model` (its routable name), in tokens.
pub fn context_window(model: &str) -> u32 {
    if model.starts_with("local/") {
        // The extractive provider reads any amount of context; only the tokenizer bounds it.
        return u32::MAX;
    }
    let name = model.strip_prefix("ollama/").unwrap_or(model);
    WINDOWS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or(DEFAULT_WINDOW, |(_, window)| *window)
}

/// A prompt that does not fit, even with every source dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub window: u32,
}

/// The prompt that fits the window, as [`fit`] built it.
#[derive(Debug, PartialEq)]
pub struct Fitted<P> {
    /// How many of the sources (the best first) it keeps.
    pub kept: usize,
    /// Its token count; `None` when it was not tokenized because its bytes alone fit (the
    /// usual case: tokenizing costs far more than the rest of ragd's work on a request).
    pub tokens: Option<u32>,
    pub prompt: P,
}

/// Keeps as many of `citations` (best first) as fit, in the prompt `build` renders for them,
/// next to the prompt's `definitions` (tools and schema, [`tokens::definitions`]) and
/// `max_tokens` of answer in `model`'s window; the prompt is built once per number of sources
/// tried and the one that fits is returned, not built again.
pub fn fit<P: AsRef<[ChatMessage]>>(
    model: &str,
    max_tokens: u32,
    definitions: &str,
    citations: &[Citation],
    build: impl Fn(&[Citation]) -> P,
) -> Result<Fitted<P>, TooLong> {
    let window = context_window(model);
    let available = window.saturating_sub(max_tokens);
    // The definitions are the same whatever sources are kept: counted at most once.
    let mut definitions_tokens = None;
    let mut kept = citations.len();
    let mut prompt = build(citations);
    if tokens::upper_bound(prompt.as_ref(), definitions) <= available {
        return Ok(Fitted {
            kept,
            tokens: None,
            prompt,
        });
    }
    loop {
        let definitions_tokens =
            *definitions_tokens.get_or_insert_with(|| tokens::count_text(model, definitions));
        let prompt_tokens =
            tokens::count_messages(model, prompt.as_ref()).saturating_add(definitions_tokens);
        if prompt_tokens <= available {
            return Ok(Fitted {
                kept,
                tokens: Some(prompt_tokens),
                prompt,
            });
        }
        if kept == 0 {
            return Err(TooLong {
                prompt_tokens,
                max_tokens,
                window,
            });
        }
        kept -= 1;
        prompt = build(&citations[..kept]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::services::chat::prompt::grounded;
    use crate::services::llm::{LOCAL_MODEL, ResponseFormat, Role, Tool, Tools};

    fn citation(text: &str) -> Citation {
        Citation {
            document_id: Uuid::now_v7(),
            filename: "f.txt".into(),
            chunk_index: 0,
            text: text.into(),
            score: 1.0,
            page: None,
            char_start: 0,
            char_end: 1,
        }
    }

    #[test]
    fn windows_follow_the_model_family() {
        assert_eq!(context_window("gpt-4o-mini"), 128_000);
        assert_eq!(context_window("gpt-4"), 8_192);
        assert_eq!(context_window("claude-3-5-haiku-latest"), 200_000);
        assert_eq!(context_window("ollama/llama3.2"), DEFAULT_WINDOW);
        assert_eq!(context_window(LOCAL_MODEL), u32::MAX);
    }

    #[test]
    fn the_least_relevant_sources_are_dropped_first_then_the_request_is_refused() {
        let messages = vec![ChatMessage::new(Role::User, "word ".repeat(3000))];
        let build = |kept: &[Citation]| grounded(&messages, kept);
        let sources = vec![
            citation(&"alpha ".repeat(2000)),
            citation(&"beta ".repeat(4000)),
        ];

        let fitted = fit("gpt-4", 1024, "", &sources, build).unwrap();
        assert_eq!(fitted.kept, 1);
        assert!(fitted.tokens.unwrap() + 1024 <= 8_192);
        assert_eq!(
            fitted.prompt.context.len(),
            1,
            "the prompt of the kept source"
        );
        assert_eq!(
            fitted.tokens,
            Some(tokens::count_messages("gpt-4", &fitted.prompt.messages))
        );

        let fitted = fit("gpt-4o", 1024, "", &sources, build).unwrap();
        assert_eq!(fitted.kept, 2);
        assert_eq!(fitted.tokens, None, "its bytes fit 128k: not tokenized");

        let huge = vec![ChatMessage::new(Role::User, "word ".repeat(9000))];
        let refused = fit("gpt-4", 1024, "", &sources, |kept: &[Citation]| {
            grounded(&huge, kept)
        })
        .unwrap_err();
        assert_eq!(refused.window, 8_192);
        assert!(refused.prompt_tokens > 8_192 - 1024);
    }

    #[test]
    fn a_prompt_is_tokenized_only_when_its_bytes_do_not_already_fit() {
        let short = vec![ChatMessage::new(Role::User, "What is ownership?")];
        let fitted = fit("gpt-4", 1024, "", &[], |_| short.clone()).unwrap();
        assert_eq!((fitted.kept, fitted.tokens), (0, None));

        // 15,000 bytes but about 3,000 tokens: over the byte bound of 8,192 - 1,024, within
        // the window by count.
        let long = vec![ChatMessage::new(Role::User, "word ".repeat(3000))];
        let fitted = fit("gpt-4", 1024, "", &[], |_| long.clone()).unwrap();
        assert_eq!(fitted.kept, 0);
        assert_eq!(fitted.tokens, Some(tokens::count_messages("gpt-4", &long)));
    }

    #[test]
    fn the_tools_offered_take_room_in_the_window() {
        let question = vec![ChatMessage::new(Role::User, "Which tool?")];
        let tools = Tools {
            definitions: (0..40)
                .map(|n| Tool {
                    name: format!("tool_{n}"),
                    description: Some("does one thing among many others ".repeat(8)),
                    parameters: None,
                    strict: None,
                })
                .collect(),
            ..Tools::default()
        };
        let defined = tokens::definitions(Some(&tools), &ResponseFormat::Text);
        let fitted = fit("gpt-4", 4096, &defined, &[], |_| question.clone()).unwrap();
        assert_eq!(
            fitted.tokens,
            Some(tokens::count_prompt("gpt-4", &question, &defined))
        );
        let refused = fit("gpt-4", 7000, &defined, &[], |_| question.clone()).unwrap_err();
        assert!(refused.prompt_tokens > 1192, "{refused:?}");
    }
}
