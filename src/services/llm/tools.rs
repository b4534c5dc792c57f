//! Tool (function) calling in ragd's terms: the tools a request offers the model, which of
//! them it may or must call, the calls it makes, and the pieces of a call a stream delivers.
//!
//! The shapes follow OpenAI's chat completions, which clients already speak; each provider
//! module maps them to its own wire format (Anthropic's `tool_use` / `tool_result` blocks,
//! Ollama's argument objects). A call's `arguments` stay the JSON text the model wrote: a
//! model may write invalid JSON, and the client is the one to judge it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// The JSON Schema of the arguments, as the client sent it (`None`: no arguments).
    pub parameters: Option<Value>,
    /// OpenAI's structured-outputs switch, passed on to servers that know it.
    pub strict: Option<bool>,
}

impl Tool {
    /// The arguments' schema as APIs that insist on an object schema take it (Anthropic's
    /// `input_schema`, Ollama's `parameters`): `{"type": "object"}` at the least, with the
    /// `type` filled in where the client left it out.
    pub fn object_schema(&self) -> Value {
        let mut schema = self
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"properties": {}}));
        if let Value::Object(fields) = &mut schema {
            fields
                .entry("type")
                .or_insert_with(|| Value::String("object".to_owned()));
        }
        schema
    }

    /// The tool in OpenAI's shape, `{"type": "function", "function": {...}}`, which Ollama
    /// takes too.
    pub fn openai_json(&self) -> Value {
        let mut function = json!({"name": self.name});
        if let Some(description) = &self.description {
            function["description"] = json!(description);
        }
        if let Some(parameters) = &self.parameters {
            function["parameters"] = parameters.clone();
        }
        if let Some(strict) = self.strict {
            function["strict"] = json!(strict);
        }
        json!({"type": "function", "function": function})
    }
}

/// Whether the model may answer in text, must call a tool, or must call one named tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides (the default when tools are offered).
    #[default]
    Auto,
    /// The model must not call a tool.
    None,
    /// The model must call at least one tool.
    Required,
    /// The model must call this tool.
    Function(String),
}

impl ToolChoice {
    /// Whether an answer without a tool call breaks this choice.
    pub fn forces_a_call(&self) -> bool {
        matches!(self, Self::Required | Self::Function(_))
    }
}

/// The tools a request offers, and how the model may use them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tools {
    pub definitions: Vec<Tool>,
    pub choice: ToolChoice,
    /// `Some(false)`: at most one call per answer. `None`: the provider's default.
    pub parallel_calls: Option<bool>,
}

impl Tools {
    /// The definitions as the text a provider's prompt holds them in, for counting their
    /// tokens: OpenAI bills tools as prompt tokens, and they take room in the context window.
    pub fn counted_text(&self) -> String {
        let mut text = String::new();
        for tool in &self.definitions {
            text.push_str(&tool.name);
            text.push('\n');
            if let Some(description) = &tool.description {
                text.push_str(description);
                text.push('\n');
            }
            if let Some(parameters) = &tool.parameters {
                text.push_str(&parameters.to_string());
                text.push('\n');
            }
        }
        text
    }
}

/// A call the model made: which function, with what arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, which the tool's result refers to (`tool_call_id`).
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, as the model wrote them.
    pub arguments: String,
}

/// A piece of a tool call in a streamed answer. The first piece of each call (by `index`)
/// carries its `id` and `name`; later pieces carry more of its `arguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallDelta {
    /// Which call of the answer (0 for the first), as OpenAI numbers them.
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

impl ToolCallDelta {
    /// A whole call delivered as one piece (Ollama sends its calls whole).
    pub fn whole(index: u32, call: ToolCall) -> Self {
        Self {
            index,
            id: Some(call.id),
            name: Some(call.name),
            arguments: call.arguments,
        }
    }
}

/// What a model wrote in an answer, for counting its tokens: its text, and the names and
/// arguments of the tools it called.
pub fn written<'a>(text: &'a str, calls: &[ToolCall]) -> Cow<'a, str> {
    if calls.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut written = text.to_owned();
    for call in calls {
        written.push_str(&call.name);
        written.push_str(&call.arguments);
    }
    Cow::Owned(written)
}

/// An id for a call whose provider gives none (Ollama), in OpenAI's `call_` form.
pub fn new_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counted_text_holds_every_name_description_and_schema() {
        let tools = Tools {
            definitions: vec![Tool {
                name: "weather".into(),
                description: Some("The weather in a city".into()),
                parameters: Some(serde_json::json!({"type": "object"})),
                strict: None,
            }],
            ..Tools::default()
        };
        let text = tools.counted_text();
        assert!(text.contains("weather") && text.contains("The weather in a city"));
        assert!(text.contains(r#"{"type":"object"}"#), "{text}");
    }

    #[test]
    fn an_object_schema_always_says_its_type() {
        let tool = |parameters| Tool {
            name: "ping".into(),
            description: None,
            parameters,
            strict: None,
        };
        assert_eq!(
            tool(None).object_schema(),
            serde_json::json!({"type": "object", "properties": {}})
        );
        assert_eq!(
            tool(Some(serde_json::json!({}))).object_schema(),
            serde_json::json!({"type": "object"})
        );
        let given = serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert_eq!(tool(Some(given.clone())).object_schema(), given);
    }

    #[test]
    fn call_ids_look_like_openais() {
        let id = new_call_id();
        assert!(id.starts_with("call_") && id.len() == 37, "{id}");
        assert_ne!(id, new_call_id());
    }
}
