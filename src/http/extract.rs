//! Owning the request boundary: JSON bodies that fail to parse or validate become our error
//! shape with field paths, never axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::http::error::{ApiError, FieldError};

/// Checks a parsed request beyond what its types say (ranges, lengths, formats).
pub trait Validate {
    /// Every problem found, empty when the value is valid.
    fn validate(&self) -> Vec<FieldError>;
}

/// `Json<T>` that answers 400 for malformed JSON and 422 (with the field path) for a body of
/// the wrong shape or failing [`Validate`].
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value: T = parse_json_body(req, state).await?;
        let errors = value.validate();
        if errors.is_empty() {
            Ok(Self(value))
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// A JSON body that answers 400 for malformed JSON and 422 for the wrong shape, for handlers
/// whose validation builds what they work with (and so is not done twice).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse_json_body(req, state).await.map(Self)
    }
}

/// Reads and deserializes a JSON body, mapping each failure to its status.
pub async fn parse_json_body<S, T>(req: Request, state: &S) -> Result<T, ApiError>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase) // media types are case-insensitive (RFC 9110)
        .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a body with Content-Type: application/json",
        ));
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })?;
    deserialize_json(&bytes)
}

/// Deserializes JSON, reporting syntax errors as 400 and shape errors as 422 with the path.
pub fn deserialize_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            let message = strip_position(&inner.to_string());
            let field = match (path.as_str(), missing_field(&message)) {
                (".", Some(missing)) => missing.to_owned(),
                (".", None) => "body".to_owned(),
                (_, Some(missing)) => format!("{path}.{missing}"),
                (_, None) => path,
            };
            ApiError::validation(vec![FieldError::new(field, message)])
        }
    })
}

/// The field a "missing field `name`" error names: serde reports it at the object holding
/// the field, not at the field itself, which is what the client needs to fix.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(name, _)| name)
}

/// serde_json appends " at line 1 column 42", which says nothing useful next to a field path.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        messages: Vec<Message>,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Message {
        #[allow(dead_code)]
        content: String,
    }

    #[test]
    fn shape_errors_name_the_field_path() {
        let err = deserialize_json::<Body>(br#"{"messages":[{"content":1}]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.details.unwrap()[0]["field"], "messages[0].content");
    }

    #[test]
    fn syntax_errors_are_400() {
        let err = deserialize_json::<Body>(b"{not json").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "malformed_json");
    }
}
