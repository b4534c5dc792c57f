//! How the model should write, beyond temperature and length: the sampling settings clients
//! of OpenAI's API send (`top_p`, `stop`, `seed`, the penalties) and the response format
//! (JSON mode, or JSON that follows a schema). Each provider passes on what its API knows.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::Tools;

/// Sampling settings; `None` (or no stop sequences): the provider's default. Serialized with
/// the names OpenAI's API and Ollama's `options` share, leaving out what was not set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sampling {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sequences that end the answer where they would appear (not included in it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
}

/// How the model should answer beyond temperature and length, as one request asked: the tools
/// it may call, the sampling settings, the answer's format and OpenAI's own fields. Carried
/// whole from the route to the provider; every part defaults to "as the provider likes".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerOptions {
    /// The tools the model may call (`None`: no tools were offered).
    pub tools: Option<Arc<Tools>>,
    pub sampling: Sampling,
    pub response_format: ResponseFormat,
    /// `None`: the client sent none of them.
    pub openai_fields: Option<OpenAiFields>,
}

/// Fields of OpenAI's chat completions that only OpenAI and the servers that speak its API
/// know (`reasoning_effort`, `user`, `logit_bias`...), sent to them as the client wrote them.
/// The other providers have no equivalent and do not receive them.
pub type OpenAiFields = Arc<serde_json::Map<String, Value>>;

/// What shape the answer's text must have.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// A JSON object, of any shape.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema(Arc<JsonSchemaFormat>),
}

impl ResponseFormat {
    pub fn is_json(&self) -> bool {
        !matches!(self, Self::Text)
    }

    /// The schema the answer must follow: the client's, or any object for JSON mode (and for a
    /// JSON schema format that gives no schema).
    pub fn schema(&self) -> Option<Value> {
        let any_object = || serde_json::json!({"type": "object", "additionalProperties": true});
        match self {
            Self::Text => None,
            Self::JsonObject => Some(any_object()),
            Self::JsonSchema(format) => Some(format.schema.clone().unwrap_or_else(any_object)),
        }
    }
}

/// OpenAI's `response_format.json_schema`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchemaFormat {
    pub name: String,
    pub description: Option<String>,
    pub schema: Option<Value>,
    pub strict: Option<bool>,
}
