//! Token counting with the tokenizer that matches the model family, for providers that
//! report no usage and for the local provider.
//!
//! The encoders come from tiktoken-rs singletons: building one costs hundreds of
//! milliseconds, so each is built once per process.
//!
//! Tokenizing costs about a microsecond a byte (a 1 MB conversation, 0.7 s). A large text is
//! therefore counted off the async workers, so that one big prompt does not stall every other
//! request on its worker thread.

use tiktoken_rs::{CoreBPE, cl100k_base_singleton, o200k_base_singleton};
use tokio::runtime::{Handle, RuntimeFlavor};

use super::{ChatMessage, ResponseFormat, Tools};

/// Tokens OpenAI adds around every chat message (role and separators).
const TOKENS_PER_MESSAGE: u32 = 3;
/// Tokens that prime the assistant's reply.
const REPLY_PRIMING_TOKENS: u32 = 3;

/// Model families tokenized with `o200k_base`; every other model uses `cl100k_base`,
/// the closest public approximation for non-OpenAI models.
const O200K_FAMILIES: &[&str] = &[
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-5",
    "o1",
    "o3",
    "o4",
];

fn encoder_for(model: &str) -> &'static CoreBPE {
    let name = model.rsplit('/').next().unwrap_or(model);
    if O200K_FAMILIES.iter().any(|family| name.starts_with(family)) {
        o200k_base_singleton()
    } else {
        cl100k_base_singleton()
    }
}

fn saturating_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// From this many bytes on (about 15 ms of tokenizing), counting leaves the async worker.
const LARGE_TEXT_BYTES: usize = 16 * 1024;

/// Runs `count`, a tokenization of `bytes` bytes. A large one, on a worker of tokio's
/// multi-threaded runtime, runs in `block_in_place`: the worker's other tasks are handed to
/// another thread meanwhile. Elsewhere (a blocking thread, a single-threaded runtime, no
/// runtime) it simply runs.
fn off_the_workers<T>(bytes: usize, count: impl FnOnce() -> T) -> T {
    let multi_threaded = || {
        Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
    };
    if bytes >= LARGE_TEXT_BYTES && multi_threaded() {
        tokio::task::block_in_place(count)
    } else {
        count()
    }
}

/// Tokens in `text` for `model` (special-token text counted as ordinary text).
pub fn count_text(model: &str, text: &str) -> u32 {
    off_the_workers(text.len(), || {
        saturating_u32(encoder_for(model).encode_ordinary(text).len())
    })
}

/// The texts of a message that reach the model: its content, and the name and arguments of
/// each tool it called.
fn texts(message: &ChatMessage) -> impl Iterator<Item = &str> {
    std::iter::once(message.content.as_str()).chain(
        message
            .tool_calls
            .iter()
            .flat_map(|call| [call.name.as_str(), call.arguments.as_str()]),
    )
}

fn message_bytes(message: &ChatMessage) -> usize {
    texts(message).map(str::len).sum()
}

/// Tokens a chat prompt's messages cost, following OpenAI's documented per-message overhead.
pub fn count_messages(model: &str, messages: &[ChatMessage]) -> u32 {
    let bytes = messages.iter().map(message_bytes).sum();
    off_the_workers(bytes, || {
        let encoder = encoder_for(model);
        messages
            .iter()
            .map(|message| {
                texts(message)
                    .map(|text| saturating_u32(encoder.encode_ordinary(text).len()))
                    .fold(TOKENS_PER_MESSAGE, u32::saturating_add)
            })
            .fold(REPLY_PRIMING_TOKENS, u32::saturating_add)
    })
}

/// The text of what a prompt defines beside its messages: the tools it offers and the schema
/// its answer must follow. Providers bill both as prompt tokens, and both take room in the
/// context window (Anthropic receives the schema as a tool).
pub fn definitions(tools: Option<&Tools>, format: &ResponseFormat) -> String {
    let mut text = tools.map(Tools::counted_text).unwrap_or_default();
    if let Some(schema) = format.schema() {
        text.push_str(&schema.to_string());
    }
    text
}

/// Tokens a whole prompt costs: its messages and its [`definitions`].
pub fn count_prompt(model: &str, messages: &[ChatMessage], definitions: &str) -> u32 {
    count_messages(model, messages).saturating_add(count_text(model, definitions))
}

/// At least [`count_prompt`] for any model, without tokenizing: every token of a byte-level
/// BPE (cl100k, o200k) stands for at least one byte of UTF-8, so a text has no more tokens than
/// bytes. Enough to know that a prompt fits a window without paying for an exact count.
pub fn upper_bound(messages: &[ChatMessage], definitions: &str) -> u32 {
    messages
        .iter()
        .map(|message| saturating_u32(message_bytes(message)).saturating_add(TOKENS_PER_MESSAGE))
        .fold(REPLY_PRIMING_TOKENS, u32::saturating_add)
        .saturating_add(saturating_u32(definitions.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::llm::{Role, Tool, ToolCall};

    #[test]
    fn gpt_4o_family_uses_o200k_and_others_cl100k() {
        assert!(std::ptr::eq(
            encoder_for("gpt-4o-mini"),
            o200k_base_singleton()
        ));
        assert!(std::ptr::eq(encoder_for("o3-mini"), o200k_base_singleton()));
        assert!(std::ptr::eq(encoder_for("gpt-4"), cl100k_base_singleton()));
        assert!(std::ptr::eq(
            encoder_for("ollama/llama3.2"),
            cl100k_base_singleton()
        ));
    }

    #[test]
    fn counts_real_tokens_not_words() {
        assert_eq!(count_text("gpt-4", "hello world"), 2);
        assert!(count_text("gpt-4o", "antidisestablishmentarianism") > 1);
        assert_eq!(count_text("gpt-4o", ""), 0);
    }

    #[test]
    fn the_byte_bound_is_never_below_the_count() {
        for text in [
            "hello world",
            "",
            "naïve café — 日本語のテキスト 🦀🦀",
            &"ab ".repeat(500),
        ] {
            let messages = vec![
                ChatMessage::new(Role::System, "Answer from the sources."),
                ChatMessage::new(Role::User, text),
            ];
            for model in ["gpt-4", "gpt-4o-mini", "ollama/llama3.2"] {
                assert!(upper_bound(&messages, "") >= count_messages(model, &messages));
            }
        }
    }

    #[test]
    fn a_large_text_counts_the_same_on_and_off_the_async_workers() {
        let large = "All work and no play makes Jack a dull boy. ".repeat(1_000);
        let messages = vec![ChatMessage::new(Role::User, large.clone())];
        let plain = (
            count_text("gpt-4", &large),
            count_messages("gpt-4", &messages),
        );
        let multi_threaded = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
        let on_a_worker = multi_threaded.block_on(async {
            tokio::spawn(async move {
                (
                    count_text("gpt-4", &large),
                    count_messages("gpt-4", &messages),
                )
            })
            .await
        });
        assert_eq!(on_a_worker.ok(), Some(plain));
        assert!(plain.0 > 10_000 / 2);
    }

    #[test]
    fn tool_calls_and_tool_definitions_are_part_of_the_prompt() {
        let mut call = ChatMessage::new(Role::Assistant, "");
        call.tool_calls.push(ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: r#"{"city": "Paris"}"#.into(),
        });
        let messages = vec![ChatMessage::new(Role::User, "Weather?"), call];
        let tools = Tools {
            definitions: vec![Tool {
                name: "get_weather".into(),
                description: Some("Current weather in a city".into()),
                parameters: Some(serde_json::json!({"type": "object",
                    "properties": {"city": {"type": "string"}}})),
                strict: None,
            }],
            ..Tools::default()
        };
        let without_calls = count_messages("gpt-4o", &messages[..1]) + TOKENS_PER_MESSAGE;
        let messages_only = count_messages("gpt-4o", &messages);
        assert!(messages_only > without_calls + 5, "{messages_only}");
        let schema = ResponseFormat::JsonObject;
        let defined = definitions(Some(&tools), &schema);
        assert!(defined.starts_with(&tools.counted_text()) && defined.contains("object"));
        let with_tools = count_prompt("gpt-4o", &messages, &defined);
        assert_eq!(with_tools, messages_only + count_text("gpt-4o", &defined));
        assert!(upper_bound(&messages, &defined) >= with_tools);
        assert_eq!(definitions(None, &ResponseFormat::Text), "");
    }

    #[test]
    fn message_count_includes_per_message_overhead() {
        let messages = vec![ChatMessage::new(Role::User, "hello world")];
        assert_eq!(
            count_messages("gpt-4", &messages),
            2 + TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS
        );
    }
}
