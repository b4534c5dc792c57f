//! `POST /v1/embeddings`: vectors in OpenAI's shape. The configured `EMBEDDING_MODEL` (the
//! default) answers through the embedder ragd indexes documents with (cached, batched, offline
//! when local); any other model name goes to its provider through the gateway.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{ValidJson, Validate};
use crate::routes::openai::OpenAiErrorResponse;
use crate::services::llm::tokens;

/// Inputs per request at most, as OpenAI allows.
const MAX_INPUTS: usize = 2048;

/// One text or a list of texts.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingRequest {
    pub input: EmbeddingInput,
    /// Default: `EMBEDDING_MODEL`.
    #[schema(example = "text-embedding-3-small")]
    pub model: Option<String>,
    /// `float` (default) or `base64` (little-endian f32, what the Python SDK asks for).
    pub encoding_format: Option<String>,
}

impl EmbeddingRequest {
    fn inputs(&self) -> Vec<String> {
        match &self.input {
            EmbeddingInput::One(text) => vec![text.clone()],
            EmbeddingInput::Many(texts) => texts.clone(),
        }
    }

    fn base64(&self) -> bool {
        self.encoding_format.as_deref() == Some("base64")
    }
}

impl Validate for EmbeddingRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        match &self.input {
            EmbeddingInput::One(text) if text.is_empty() => {
                problems.push(FieldError::new("input", "must not be empty"));
            }
            EmbeddingInput::Many(texts) if texts.is_empty() || texts.len() > MAX_INPUTS => {
                problems.push(FieldError::new(
                    "input",
                    format!("must hold 1 to {MAX_INPUTS} texts"),
                ));
            }
            EmbeddingInput::Many(texts) => {
                if let Some(index) = texts.iter().position(String::is_empty) {
                    problems.push(FieldError::new(
                        format!("input[{index}]"),
                        "must not be empty",
                    ));
                }
            }
            EmbeddingInput::One(_) => {}
        }
        if !matches!(
            self.encoding_format.as_deref(),
            None | Some("float" | "base64")
        ) {
            problems.push(FieldError::new(
                "encoding_format",
                "must be float or base64",
            ));
        }
        problems
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbeddingList {
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<EmbeddingData>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbeddingData {
    #[schema(example = "embedding")]
    pub object: &'static str,
    pub index: usize,
    /// A list of floats, or a base64 string of little-endian f32 with `encoding_format: base64`.
    #[schema(value_type = Object)]
    pub embedding: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u32,
    pub total_tokens: u32,
}

/// Embeds a text or a list of texts.
#[utoipa::path(post, path = "/v1/embeddings", tag = "openai",
    security(("bearer" = []), ("password" = [])),
    request_body = EmbeddingRequest,
    responses(
        (status = 200, description = "one vector per input, in order", body = EmbeddingList),
        (status = 401, description = "missing, invalid or expired credentials", body = OpenAiErrorResponse),
        (status = 422, description = "invalid input", body = OpenAiErrorResponse),
        (status = 502, description = "the provider failed", body = OpenAiErrorResponse),
        (status = 503, description = "no provider is configured for the model", body = OpenAiErrorResponse),
    ))]
pub async fn embeddings(
    State(state): State<AppState>,
    _user: AuthUser,
    ValidJson(request): ValidJson<EmbeddingRequest>,
) -> Result<Json<EmbeddingList>, ApiError> {
    let inputs = request.inputs();
    let configured = state.embedder.model().to_owned();
    let model = request.model.clone().unwrap_or_else(|| configured.clone());
    let (vectors, prompt_tokens) = if model == configured {
        let vectors = state.embedder.embed(&inputs).await?;
        let counted = inputs
            .iter()
            .map(|text| tokens::count_text(&model, text))
            .fold(0, u32::saturating_add);
        (vectors, counted)
    } else {
        let routed = state.llm.embed(&model, &inputs).await?;
        (routed.value.vectors, routed.value.prompt_tokens)
    };
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| EmbeddingData {
            object: "embedding",
            index,
            embedding: if request.base64() {
                Value::String(base64_f32(&vector))
            } else {
                Value::from(vector)
            },
        })
        .collect();
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    }))
}

/// Standard base64 (with padding) of the vector as little-endian f32 bytes.
fn base64_f32(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (position, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if position <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        // 1.0f32 is 00 00 80 3f little-endian.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 1.0, 1.0]), "AACAPwAAgD8AAIA/");
        assert_eq!(base64_f32(&[]), "");
    }
}
