//! The body of an `/api/chat` call in Ollama's shapes: a call's arguments are a JSON object
//! rather than text, a tool's result names its tool, and the tool choice is approximated by
//! which tools are offered.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::services::llm::{
    ChatMessage, CompletionRequest, ResponseFormat, Sampling, Tool, ToolChoice,
};

#[derive(Serialize)]
pub struct ChatBody<'a> {
    model: &'a str,
    messages: WireMessages<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<WireTools<'a>>,
    /// `"json"` (JSON mode), or the JSON Schema the answer must follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Value>,
    stream: bool,
    options: Options<'a>,
}

impl<'a> ChatBody<'a> {
    pub fn new(req: &'a CompletionRequest, stream: bool) -> Self {
        // Ollama has no `tool_choice`: `none` is kept by offering no tools, and a named tool
        // by offering that one alone; `required` cannot be enforced (the model may still
        // answer in text).
        let tools = req
            .options
            .tools
            .as_deref()
            .and_then(|tools| match &tools.choice {
                ToolChoice::None => None,
                ToolChoice::Function(name) => Some(WireTools(
                    tools
                        .definitions
                        .iter()
                        .filter(|tool| tool.name == *name)
                        .collect(),
                )),
                ToolChoice::Auto | ToolChoice::Required => {
                    Some(WireTools(tools.definitions.iter().collect()))
                }
            });
        Self {
            model: &req.model,
            messages: WireMessages(&req.messages),
            tools,
            format: match &req.options.response_format {
                ResponseFormat::Text => None,
                ResponseFormat::JsonObject => Some(json!("json")),
                schema @ ResponseFormat::JsonSchema(_) => schema.schema(),
            },
            stream,
            options: Options {
                temperature: req.temperature,
                num_predict: req.max_tokens,
                sampling: &req.options.sampling,
            },
        }
    }
}

/// The conversation in Ollama's message shape: a call's arguments are a JSON object, not
/// text, and a tool's result names its tool (`tool_name`) rather than the call's id.
struct WireMessages<'a>(&'a [ChatMessage]);

impl Serialize for WireMessages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let messages = self.0;
        serializer.collect_seq(
            messages
                .iter()
                .map(|message| WireMessage { message, messages }),
        )
    }
}

struct WireMessage<'a> {
    message: &'a ChatMessage,
    /// The whole conversation, where a tool result finds the name of its call.
    messages: &'a [ChatMessage],
}

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let message = self.message;
        let tool_name = message
            .tool_call_id
            .as_deref()
            .and_then(|id| called_tool(self.messages, id));
        let calls = !message.tool_calls.is_empty();
        let fields = 2 + usize::from(calls) + usize::from(tool_name.is_some());
        let mut map = serializer.serialize_map(Some(fields))?;
        map.serialize_entry("role", &message.role)?;
        map.serialize_entry("content", &message.content)?;
        if calls {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"function": {"name": call.name,
                        "arguments": arguments_object(&call.arguments)}})
                })
                .collect();
            map.serialize_entry("tool_calls", &calls)?;
        }
        if let Some(name) = tool_name {
            map.serialize_entry("tool_name", name)?;
        }
        map.end()
    }
}

/// The arguments a model wrote, as the object Ollama wants back. Ollama refuses anything
/// else (the whole request fails), so arguments that are not a JSON object (empty, or cut at
/// `max_tokens`) go back empty, as to Anthropic.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({}),
    }
}

/// The name of the tool whose call had this id, from the assistant messages before it.
fn called_tool<'a>(messages: &'a [ChatMessage], id: &str) -> Option<&'a str> {
    messages
        .iter()
        .flat_map(|message| &message.tool_calls)
        .find(|call| call.id == id)
        .map(|call| call.name.as_str())
}

/// Tools in Ollama's shape, which is OpenAI's.
struct WireTools<'a>(Vec<&'a Tool>);

impl Serialize for WireTools<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|tool| {
            let mut wire = tool.openai_json();
            wire["function"]["parameters"] = tool.object_schema();
            wire
        }))
    }
}

#[derive(Serialize)]
struct Options<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// Ollama's name for the output token limit.
    num_predict: u32,
    #[serde(flatten)]
    sampling: &'a Sampling,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::services::llm::test_support::{tool, tool_round_trip, user_request};
    use crate::services::llm::{JsonSchemaFormat, Tools};

    fn body(req: &CompletionRequest) -> Value {
        serde_json::to_value(ChatBody::new(req, false)).unwrap()
    }

    fn with_tools(choice: ToolChoice) -> CompletionRequest {
        let mut req = user_request("llama3.2", "Weather?");
        req.options.tools = Some(Arc::new(Tools {
            definitions: vec![tool("get_weather"), tool("get_time")],
            choice,
            parallel_calls: None,
        }));
        req
    }

    fn offered(req: &CompletionRequest) -> Vec<String> {
        body(req)["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .map(|tool| tool["function"]["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn calls_go_back_with_object_arguments_and_results_name_their_tool() {
        let body = body(&tool_round_trip("llama3.2", "18C"));

        assert_eq!(
            body["messages"][2],
            json!({"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]})
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "content": "18C", "tool_name": "get_weather"})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "Weather in Paris?"})
        );
    }

    #[test]
    fn the_tool_choice_is_kept_by_the_tools_offered() {
        assert_eq!(
            offered(&with_tools(ToolChoice::Auto)),
            ["get_weather", "get_time"]
        );
        assert_eq!(
            offered(&with_tools(ToolChoice::Required)),
            ["get_weather", "get_time"]
        );
        assert_eq!(
            offered(&with_tools(ToolChoice::Function("get_time".into()))),
            ["get_time"]
        );
        assert!(body(&with_tools(ToolChoice::None)).get("tools").is_none());
        let tools = body(&with_tools(ToolChoice::Auto))["tools"].clone();
        assert_eq!(
            tools[0],
            json!({"type": "function", "function": {"name": "get_weather",
                "description": "the get_weather tool", "parameters": {"type": "object", "properties": {}}}})
        );
    }

    #[test]
    fn sampling_settings_go_in_the_options_and_the_format_takes_ollamas_shape() {
        let mut req = user_request("llama3.2", "Hi");
        req.options.sampling = Sampling {
            top_p: Some(0.9),
            stop: vec!["END".into(), "STOP".into()],
            seed: Some(42),
            presence_penalty: Some(0.5),
            frequency_penalty: Some(0.1),
        };
        req.options.response_format = ResponseFormat::JsonObject;
        let body = body(&req);
        assert_eq!(
            body["options"],
            json!({"temperature": 0.2f32, "num_predict": 64, "top_p": 0.9f32, "stop": ["END", "STOP"],
                "seed": 42, "presence_penalty": 0.5, "frequency_penalty": 0.1f32})
        );
        assert_eq!(body["format"], "json");

        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        req.options.response_format = ResponseFormat::JsonSchema(Arc::new(JsonSchemaFormat {
            name: "count".into(),
            description: None,
            schema: Some(schema.clone()),
            strict: None,
        }));
        assert_eq!(self::body(&req)["format"], schema);
        assert!(
            self::body(&user_request("llama3.2", "Hi"))
                .get("format")
                .is_none()
        );
    }

    #[test]
    fn arguments_that_are_not_an_object_go_back_empty() {
        assert_eq!(arguments_object("{\"a\":1}"), json!({"a": 1}));
        for written in ["", "[1]", "{\"cut\": "] {
            assert_eq!(arguments_object(written), json!({}), "{written}");
        }
    }
}
