//! The body of a chat completion call, serialized straight from ragd's request into
//! OpenAI's shapes: messages with their tool calls and results, the tools offered and the
//! tool choice.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::json;

use crate::services::llm::{
    ChatMessage, CompletionRequest, ResponseFormat, Sampling, Tool, ToolCall, ToolChoice,
};

#[derive(Serialize)]
pub struct ChatBody<'a> {
    model: &'a str,
    messages: WireMessages<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<WireTools<'a>>,
    /// Sent only when it is not OpenAI's default (`auto`), which some compatible servers
    /// do not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(flatten)]
    sampling: &'a Sampling,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireResponseFormat<'a>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    openai_fields: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl<'a> ChatBody<'a> {
    /// `official`: the body goes to OpenAI's own API, which wants `max_completion_tokens`.
    pub fn new(req: &'a CompletionRequest, stream: bool, official: bool) -> Self {
        let (max_tokens, max_completion_tokens) = if official {
            (None, Some(req.max_tokens))
        } else {
            (Some(req.max_tokens), None)
        };
        let tools = req.options.tools.as_deref();
        Self {
            model: &req.model,
            messages: WireMessages(&req.messages),
            temperature: req.temperature,
            max_tokens,
            max_completion_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            tools: tools.map(|tools| WireTools(&tools.definitions)),
            tool_choice: tools
                .map(|tools| &tools.choice)
                .filter(|choice| **choice != ToolChoice::Auto)
                .map(WireToolChoice),
            parallel_tool_calls: tools.and_then(|tools| tools.parallel_calls),
            sampling: &req.options.sampling,
            openai_fields: req.options.openai_fields.as_deref(),
            response_format: req
                .options
                .response_format
                .is_json()
                .then_some(WireResponseFormat(&req.options.response_format)),
        }
    }
}

/// The conversation in OpenAI's message shape, serialized straight from ragd's messages.
struct WireMessages<'a>(&'a [ChatMessage]);

impl Serialize for WireMessages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(WireMessage))
    }
}

struct WireMessage<'a>(&'a ChatMessage);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.0;
        let calls = !message.tool_calls.is_empty();
        let fields = 2 + usize::from(calls) + usize::from(message.tool_call_id.is_some());
        let mut map = serializer.serialize_map(Some(fields))?;
        map.serialize_entry("role", &message.role)?;
        // An assistant message that only calls tools has no content: OpenAI writes `null`.
        let content = (!(calls && message.content.is_empty())).then_some(&message.content);
        map.serialize_entry("content", &content)?;
        if calls {
            map.serialize_entry("tool_calls", &WireCalls(&message.tool_calls))?;
        }
        if let Some(id) = &message.tool_call_id {
            map.serialize_entry("tool_call_id", id)?;
        }
        map.end()
    }
}

struct WireCalls<'a>(&'a [ToolCall]);

impl Serialize for WireCalls<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|call| {
            json!({"id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.arguments}})
        }))
    }
}

struct WireTools<'a>(&'a [Tool]);

impl Serialize for WireTools<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Tool::openai_json))
    }
}

/// OpenAI's `response_format`: `{"type": "json_object"}`, or `json_schema` with its schema.
struct WireResponseFormat<'a>(&'a ResponseFormat);

impl Serialize for WireResponseFormat<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match self.0 {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema(format) => {
                let mut schema = json!({"name": format.name});
                if let Some(description) = &format.description {
                    schema["description"] = json!(description);
                }
                if let Some(body) = &format.schema {
                    schema["schema"] = body.clone();
                }
                if let Some(strict) = format.strict {
                    schema["strict"] = json!(strict);
                }
                json!({"type": "json_schema", "json_schema": schema})
            }
        };
        wire.serialize(serializer)
    }
}

struct WireToolChoice<'a>(&'a ToolChoice);

impl Serialize for WireToolChoice<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ToolChoice::Auto => serializer.serialize_str("auto"),
            ToolChoice::None => serializer.serialize_str("none"),
            ToolChoice::Required => serializer.serialize_str("required"),
            ToolChoice::Function(name) => {
                json!({"type": "function", "function": {"name": name}}).serialize(serializer)
            }
        }
    }
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::services::llm::test_support::{calling, tool_round_trip, user_request};
    use crate::services::llm::{JsonSchemaFormat, Tools};

    fn weather() -> Tool {
        Tool {
            name: "get_weather".into(),
            description: Some("Current weather in a city".into()),
            parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
            strict: Some(true),
        }
    }

    fn body(req: &CompletionRequest) -> Value {
        serde_json::to_value(ChatBody::new(req, false, false)).unwrap()
    }

    #[test]
    fn a_tool_round_trip_is_sent_in_openais_shapes() {
        let mut req = tool_round_trip("gpt-4o-mini", "18C and sunny");
        req.options.tools = Some(Arc::new(Tools {
            definitions: vec![weather()],
            choice: ToolChoice::Function("get_weather".into()),
            parallel_calls: Some(false),
        }));

        let body = body(&req);

        assert_eq!(
            body["messages"][2],
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "content": "18C and sunny", "tool_call_id": "call_1"})
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {"name": "get_weather",
                "description": "Current weather in a city", "strict": true,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(body["parallel_tool_calls"], false);
    }

    #[test]
    fn the_default_choice_and_a_request_without_tools_send_no_tool_fields() {
        let mut req = user_request("gpt-4o-mini", "Hi");
        let plain = body(&req);
        for field in ["tools", "tool_choice", "parallel_tool_calls"] {
            assert!(plain.get(field).is_none(), "{field}: {plain}");
        }
        assert_eq!(
            plain["messages"][1],
            json!({"role": "user", "content": "Hi"})
        );

        req.options.tools = Some(Arc::new(Tools {
            definitions: vec![weather()],
            ..Tools::default()
        }));
        let auto = body(&req);
        assert!(auto.get("tool_choice").is_none(), "{auto}");
        assert_eq!(auto["tools"][0]["function"]["name"], "get_weather");

        for (choice, wire) in [
            (ToolChoice::None, "none"),
            (ToolChoice::Required, "required"),
        ] {
            req.options.tools = Some(Arc::new(Tools {
                definitions: vec![weather()],
                choice,
                parallel_calls: None,
            }));
            assert_eq!(body(&req)["tool_choice"], wire);
        }
    }

    #[test]
    fn sampling_settings_and_the_response_format_are_passed_on_as_sent() {
        let mut req = user_request("gpt-4o-mini", "Hi");
        let plain = body(&req);
        for field in [
            "top_p",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "response_format",
        ] {
            assert!(plain.get(field).is_none(), "{field}: {plain}");
        }

        req.options.sampling = Sampling {
            top_p: Some(0.5),
            stop: vec!["END".into()],
            seed: Some(7),
            presence_penalty: Some(0.25),
            frequency_penalty: Some(-0.5),
        };
        req.options.response_format = ResponseFormat::JsonSchema(Arc::new(JsonSchemaFormat {
            name: "answer".into(),
            description: None,
            schema: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
            strict: Some(true),
        }));
        let body = body(&req);
        assert_eq!(body["top_p"], 0.5);
        assert_eq!(body["stop"], json!(["END"]));
        assert_eq!(body["seed"], 7);
        assert_eq!(body["presence_penalty"], 0.25);
        assert_eq!(body["frequency_penalty"], -0.5);
        assert_eq!(
            body["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
                "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}})
        );

        req.options.response_format = ResponseFormat::JsonObject;
        assert_eq!(
            self::body(&req)["response_format"],
            json!({"type": "json_object"})
        );
    }

    #[test]
    fn an_assistant_message_with_text_and_calls_keeps_its_text() {
        let mut req = user_request("gpt-4o-mini", "Hi");
        let mut call = calling("call_1", "get_weather", "{}");
        call.content = "Checking.".into();
        req.messages = vec![call].into();
        assert_eq!(body(&req)["messages"][0]["content"], "Checking.");
    }
}
