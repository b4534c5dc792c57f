//! What a chat asks for, whichever route it came through, and the limits it must respect.

use uuid::Uuid;

use crate::http::error::FieldError;
use crate::services::llm::{AnswerOptions, ChatMessage, Role};

pub const MAX_MESSAGES: usize = 100;
pub const MAX_CONTENT_CHARS: usize = 10_000;
pub const MAX_TEMPERATURE: f32 = 2.0;
pub const MAX_OUTPUT_TOKENS: u32 = 4096;
pub const MAX_TOP_K: u32 = 20;
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
pub const DEFAULT_MAX_TOKENS: u32 = 1024;
pub const DEFAULT_TOP_K: u32 = 5;

/// The bounds a chat request is held to. They differ by route: ragd's own chat API has the
/// contract's; the OpenAI-compatible one takes what OpenAI's API takes (long conversations,
/// long answers), within the request body limit (`MAX_REQUEST_BODY_KB`) and the model's
/// context window, which bound it anyway.
#[derive(Debug, PartialEq, Eq)]
pub struct ChatLimits {
    pub messages: usize,
    pub content_chars: usize,
    pub output_tokens: u32,
}

/// `POST /api/v1/chat` and `/chat/stream`, as the contract sets them.
pub const RAGD_LIMITS: ChatLimits = ChatLimits {
    messages: MAX_MESSAGES,
    content_chars: MAX_CONTENT_CHARS,
    output_tokens: MAX_OUTPUT_TOKENS,
};

/// `POST /v1/chat/completions`: OpenAI's own caps (2,048 messages; 128,000 output tokens, the
/// most any of its models writes).
pub const OPENAI_LIMITS: ChatLimits = ChatLimits {
    messages: 2_048,
    content_chars: usize::MAX,
    output_tokens: 128_000,
};

/// Which of the caller's documents ground the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RagScope {
    /// Empty: every one of the caller's ready documents.
    pub document_ids: Vec<Uuid>,
    pub top_k: u32,
}

/// A chat request in the service's terms. Routes build it from their wire shapes (ragd's
/// `ChatRequest`, OpenAI's chat completion) and call [`ChatParams::problems`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChatParams {
    pub messages: Vec<ChatMessage>,
    /// `None`: the configured default model.
    pub model: Option<String>,
    /// `None`: the provider's default (the OpenAI-compatible route passes on only what the
    /// client sent; ragd's own chat route applies its documented default).
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    /// `None`: answer without retrieval.
    pub rag: Option<RagScope>,
    /// Tools, sampling, format, OpenAI's own fields: the OpenAI-compatible route's (the
    /// defaults elsewhere).
    pub options: AnswerOptions,
    pub limits: &'static ChatLimits,
}

impl ChatParams {
    /// Every limit the request breaks, with the field path the client sent.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        let limits = self.limits;
        if self.messages.is_empty() || self.messages.len() > limits.messages {
            problems.push(FieldError::new(
                "messages",
                format!("must hold 1 to {} messages", limits.messages),
            ));
        }
        for (index, message) in self.messages.iter().enumerate() {
            let too_long = message.content.len() > limits.content_chars
                && message.content.chars().count() > limits.content_chars;
            // A message that calls tools may say nothing, and a tool may return nothing.
            let may_be_empty = !message.tool_calls.is_empty() || message.role == Role::Tool;
            if (message.content.is_empty() && !may_be_empty) || too_long {
                let message = if limits.content_chars == usize::MAX {
                    "must not be empty".to_owned()
                } else {
                    format!("must be 1 to {} characters", limits.content_chars)
                };
                problems.push(FieldError::new(
                    format!("messages[{index}].content"),
                    message,
                ));
            }
        }
        if self
            .temperature
            .is_some_and(|temperature| !(0.0..=MAX_TEMPERATURE).contains(&temperature))
        {
            problems.push(FieldError::new(
                "temperature",
                format!("must be between 0 and {MAX_TEMPERATURE}"),
            ));
        }
        if !(1..=limits.output_tokens).contains(&self.max_tokens) {
            problems.push(FieldError::new(
                "max_tokens",
                format!("must be between 1 and {}", limits.output_tokens),
            ));
        }
        if let Some(model) = &self.model
            && model.trim().is_empty()
        {
            problems.push(FieldError::new("model", "must not be empty"));
        }
        if let Some(rag) = &self.rag
            && !(1..=MAX_TOP_K).contains(&rag.top_k)
        {
            problems.push(FieldError::new(
                "top_k",
                format!("must be between 1 and {MAX_TOP_K}"),
            ));
        }
        problems
    }

    /// The question retrieval searches for: the last user message, with the previous one
    /// when it is a short follow-up (see [`crate::services::retrieval::retrieval_query`]); empty without a user message.
    pub fn question(&self) -> String {
        crate::services::retrieval::retrieval_query(&self.messages).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::llm::Role;

    fn params() -> ChatParams {
        ChatParams {
            messages: vec![ChatMessage::new(Role::User, "Hi")],
            model: None,
            temperature: Some(DEFAULT_TEMPERATURE),
            max_tokens: DEFAULT_MAX_TOKENS,
            rag: Some(RagScope {
                document_ids: Vec::new(),
                top_k: DEFAULT_TOP_K,
            }),
            options: AnswerOptions::default(),
            limits: &RAGD_LIMITS,
        }
    }

    fn fields(params: &ChatParams) -> Vec<String> {
        params.problems().into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(params().problems().is_empty());
    }

    #[test]
    fn each_limit_names_its_field() {
        let mut bad = params();
        bad.messages.push(ChatMessage::new(Role::Assistant, ""));
        bad.messages.push(ChatMessage::new(
            Role::User,
            "x".repeat(MAX_CONTENT_CHARS + 1),
        ));
        bad.temperature = Some(2.5);
        bad.max_tokens = 0;
        bad.rag = Some(RagScope {
            document_ids: Vec::new(),
            top_k: 21,
        });
        assert_eq!(
            fields(&bad),
            [
                "messages[1].content",
                "messages[2].content",
                "temperature",
                "max_tokens",
                "top_k"
            ]
        );
        let none = ChatParams {
            messages: Vec::new(),
            ..params()
        };
        assert_eq!(fields(&none), ["messages"]);
    }

    #[test]
    fn the_question_is_the_last_user_message_with_the_one_a_follow_up_leans_on() {
        let mut p = params();
        p.messages.push(ChatMessage::new(Role::Assistant, "Hello"));
        p.messages.push(ChatMessage::new(Role::User, "Why?"));
        p.messages.push(ChatMessage::new(Role::Assistant, "..."));
        assert_eq!(p.question(), "Hi\nWhy?");
        p.messages.push(ChatMessage::new(
            Role::User,
            "What do the herons eat in winter?",
        ));
        assert_eq!(p.question(), "What do the herons eat in winter?");
    }
}
