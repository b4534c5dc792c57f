//! The sampling settings and `response_format` of OpenAI's chat completion request, checked
//! against OpenAI's bounds and translated into ragd's terms.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::tools::{NAME_RULE, is_valid_name};
use crate::http::error::FieldError;
use crate::services::llm::{JsonSchemaFormat, ResponseFormat, Sampling};

/// OpenAI's limit on stop sequences.
const MAX_STOP_SEQUENCES: usize = 4;
/// A bound on one stop sequence, far above any real one.
const MAX_STOP_BYTES: usize = 1024;

/// One stop sequence or a list of them.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StopIn {
    One(String),
    Many(Vec<String>),
}

/// `{"type": "text" | "json_object"}` or `{"type": "json_schema", "json_schema": {...}}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ResponseFormatIn {
    #[serde(rename = "type")]
    #[schema(example = "json_schema")]
    pub kind: String,
    pub json_schema: Option<JsonSchemaIn>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct JsonSchemaIn {
    /// Letters, digits, `_` and `-`, at most 64.
    pub name: String,
    pub description: Option<String>,
    /// The JSON Schema the answer follows (an object).
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    pub strict: Option<bool>,
}

/// The sampling fields as the request sent them.
pub struct SamplingIn<'a> {
    pub top_p: Option<f32>,
    pub stop: Option<&'a StopIn>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
}

/// The sampling settings in ragd's terms; problems are added to `problems`.
pub fn sampling(sent: SamplingIn<'_>, problems: &mut Vec<FieldError>) -> Sampling {
    if sent
        .top_p
        .is_some_and(|top_p| !(0.0..=1.0).contains(&top_p))
    {
        problems.push(FieldError::new("top_p", "must be between 0 and 1"));
    }
    for (field, penalty) in [
        ("presence_penalty", sent.presence_penalty),
        ("frequency_penalty", sent.frequency_penalty),
    ] {
        if penalty.is_some_and(|penalty| !(-2.0..=2.0).contains(&penalty)) {
            problems.push(FieldError::new(field, "must be between -2 and 2"));
        }
    }
    let stop = match sent.stop {
        None => Vec::new(),
        Some(StopIn::One(sequence)) => vec![sequence.clone()],
        Some(StopIn::Many(sequences)) => sequences.clone(),
    };
    if stop.len() > MAX_STOP_SEQUENCES {
        problems.push(FieldError::new(
            "stop",
            format!("at most {MAX_STOP_SEQUENCES} sequences"),
        ));
    }
    if stop
        .iter()
        .any(|sequence| sequence.is_empty() || sequence.len() > MAX_STOP_BYTES)
    {
        problems.push(FieldError::new(
            "stop",
            format!("each sequence must be 1 to {MAX_STOP_BYTES} bytes"),
        ));
    }
    Sampling {
        top_p: sent.top_p,
        stop,
        seed: sent.seed,
        presence_penalty: sent.presence_penalty,
        frequency_penalty: sent.frequency_penalty,
    }
}

/// The response format in ragd's terms; a problem is added to `problems`.
pub fn response_format(
    sent: Option<&ResponseFormatIn>,
    problems: &mut Vec<FieldError>,
) -> ResponseFormat {
    let Some(sent) = sent else {
        return ResponseFormat::Text;
    };
    let mut refuse = |field: &str, message: &str| {
        problems.push(FieldError::new(field, message));
        ResponseFormat::Text
    };
    match (sent.kind.as_str(), &sent.json_schema) {
        ("text", _) => ResponseFormat::Text,
        ("json_object", _) => ResponseFormat::JsonObject,
        ("json_schema", None) => refuse("response_format.json_schema", "is required"),
        ("json_schema", Some(format)) => {
            if !is_valid_name(&format.name) {
                return refuse("response_format.json_schema.name", NAME_RULE);
            }
            if format
                .schema
                .as_ref()
                .is_some_and(|schema| !schema.is_object())
            {
                return refuse(
                    "response_format.json_schema.schema",
                    "must be a JSON Schema object",
                );
            }
            ResponseFormat::JsonSchema(Arc::new(JsonSchemaFormat {
                name: format.name.clone(),
                description: format.description.clone(),
                schema: format.schema.clone(),
                strict: format.strict,
            }))
        }
        _ => refuse(
            "response_format.type",
            "must be text, json_object or json_schema",
        ),
    }
}
