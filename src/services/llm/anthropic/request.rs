//! The body of a Messages API call, mapped from ragd's request: system messages become the
//! top-level `system` field, tool calls become `tool_use` blocks, tool results `tool_result`
//! blocks in a user turn, and the tools and tool choice take Anthropic's shapes. A JSON
//! response format becomes one tool the model must call, whose input is the answer.

use serde::Serialize;
use serde_json::{Value, json};

use crate::services::llm::{
    ChatMessage, CompletionRequest, ResponseFormat, Role, Tool, ToolChoice, Tools,
};

/// Anthropic accepts temperatures in 0..=1; ragd's API allows up to 2.
const MAX_TEMPERATURE: f32 = 1.0;
/// The tool that carries a JSON-mode answer (a JSON schema's answer carries the schema's name).
const JSON_TOOL: &str = "json_answer";

/// The name of the tool whose input is the answer, when the answer must be JSON and may be
/// given: Anthropic has no JSON mode, and a tool the model must call is how its API makes it
/// write JSON to a schema. A call the client requires leaves no room for a JSON answer.
pub fn answer_tool_name(req: &CompletionRequest) -> Option<&str> {
    let forced_call = req
        .options
        .tools
        .as_ref()
        .is_some_and(|tools| tools.choice.forces_a_call());
    match &req.options.response_format {
        _ if forced_call => None,
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(JSON_TOOL),
        ResponseFormat::JsonSchema(format) => Some(&format.name),
    }
}

#[derive(Serialize)]
pub struct MessagesBody<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

/// One turn of the conversation: its text alone, or its blocks.
#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Content<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Blocks(Vec<Value>),
}

impl Content<'_> {
    fn into_blocks(self) -> Vec<Value> {
        match self {
            Self::Text(text) => vec![json!({"type": "text", "text": text})],
            Self::Blocks(blocks) => blocks,
        }
    }
}

impl<'a> MessagesBody<'a> {
    pub fn new(req: &'a CompletionRequest, stream: bool) -> Self {
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|message| message.role == Role::System)
            .map(|message| message.content.as_str())
            .collect();
        let mut system = (!system.is_empty()).then(|| system.join("\n\n"));
        let mut messages = turns(&req.messages);
        if messages.is_empty() {
            // Anthropic wants at least one message: instructions alone become the user's.
            if let Some(instructions) = system.take() {
                messages.push(Turn {
                    role: "user",
                    content: Content::Blocks(vec![json!({"type": "text", "text": instructions})]),
                });
            }
        }
        let (tools, tool_choice) = tools_and_choice(req);
        // Current Claude models refuse a request that sets both temperature and top_p.
        let top_p = req
            .options
            .sampling
            .top_p
            .filter(|_| req.temperature.is_none());
        Self {
            model: &req.model,
            max_tokens: req.max_tokens,
            system,
            messages,
            temperature: req
                .temperature
                .map(|temperature| temperature.clamp(0.0, MAX_TEMPERATURE)),
            top_p,
            // Anthropic refuses a stop sequence of white space alone (OpenAI clients send "\n").
            stop_sequences: req
                .options
                .sampling
                .stop
                .iter()
                .filter(|sequence| !sequence.trim().is_empty())
                .map(String::as_str)
                .collect(),
            stream,
            tools,
            tool_choice,
        }
    }
}

/// The non-system messages as Anthropic's turns. Tool results travel in the user's turn, and
/// consecutive messages of one role are joined into one turn of blocks, as the API expects
/// user and assistant turns to alternate.
fn turns(messages: &[ChatMessage]) -> Vec<Turn<'_>> {
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(messages.len());
    for message in messages {
        let (role, content) = match message.role {
            Role::System => continue,
            Role::User => ("user", Content::Text(&message.content)),
            Role::Tool => ("user", Content::Blocks(vec![tool_result(message)])),
            Role::Assistant if message.tool_calls.is_empty() => {
                ("assistant", Content::Text(&message.content))
            }
            Role::Assistant => ("assistant", Content::Blocks(tool_uses(message))),
        };
        match turns.last_mut() {
            Some(last) if last.role == role => {
                let previous = std::mem::replace(&mut last.content, Content::Blocks(Vec::new()));
                let mut blocks = previous.into_blocks();
                blocks.extend(content.into_blocks());
                last.content = Content::Blocks(blocks);
            }
            _ => turns.push(Turn { role, content }),
        }
    }
    turns
}

fn tool_result(message: &ChatMessage) -> Value {
    json!({
        "type": "tool_result",
        "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
        "content": message.content,
    })
}

/// An assistant message's text (if any) and its calls as `tool_use` blocks, whose `input` is
/// the arguments' JSON object.
fn tool_uses(message: &ChatMessage) -> Vec<Value> {
    let text =
        (!message.content.is_empty()).then(|| json!({"type": "text", "text": message.content}));
    let calls = message.tool_calls.iter().map(|call| {
        let input = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(value @ Value::Object(_)) => value,
            // Anthropic takes objects only; arguments a model wrote badly go back empty.
            _ => json!({}),
        };
        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
    });
    text.into_iter().chain(calls).collect()
}

fn tool(tool: &Tool) -> Value {
    let mut wire = json!({
        "name": tool.name,
        "input_schema": tool.object_schema(),
    });
    if let Some(description) = &tool.description {
        wire["description"] = json!(description);
    }
    wire
}

/// Whether Anthropic can be asked for this request's answer at all: a JSON answer is the input
/// of a tool, a tool's input must be an object, and the tool must not share a name with one
/// of the client's.
pub fn check_answer_tool(req: &CompletionRequest) -> Result<(), &'static str> {
    let Some(name) = answer_tool_name(req) else {
        return Ok(());
    };
    let root = req.options.response_format.schema();
    if let Some(kind) = root.as_ref().and_then(|schema| schema.get("type"))
        && kind != "object"
    {
        return Err(
            "a JSON schema whose root is not an object (Anthropic writes JSON as a tool's input)",
        );
    }
    let clashes = req
        .options
        .tools
        .as_ref()
        .is_some_and(|tools| tools.definitions.iter().any(|tool| tool.name == name));
    if clashes {
        return Err(
            "a JSON schema named like one of the tools (the answer is written as a tool's input)",
        );
    }
    Ok(())
}

/// The tools the model is offered and the choice it has among them. A JSON answer is one more
/// tool: forced when no other may be called, else one of those the model must choose from
/// (its answer, or a call of the client's tools). A conversation that holds calls but defines
/// no tool gets the tools it called defined again, bare, and may not call them: Anthropic
/// refuses `tool_use` blocks in a request without tools.
fn tools_and_choice(req: &CompletionRequest) -> (Vec<Value>, Option<Value>) {
    let offered = req.options.tools.as_deref();
    let mut tools: Vec<Value> = offered.map_or_else(Vec::new, |offered| {
        offered.definitions.iter().map(tool).collect()
    });
    let mut choice = match (answer_tool_name(req), offered) {
        (Some(name), _) => {
            tools.push(answer_tool(name, &req.options.response_format));
            let may_call = offered.is_some_and(|offered| offered.choice == ToolChoice::Auto);
            let parallel = offered.is_none_or(|offered| offered.parallel_calls != Some(false));
            let mut choice = if may_call {
                json!({"type": "any"})
            } else {
                json!({"type": "tool", "name": name})
            };
            if !(may_call && parallel) {
                choice["disable_parallel_tool_use"] = json!(true);
            }
            Some(choice)
        }
        (None, Some(offered)) => tool_choice(offered),
        (None, None) => None,
    };
    if tools.is_empty() {
        tools = history_tools(&req.messages);
        if !tools.is_empty() {
            choice = Some(json!({"type": "none"}));
        }
    }
    (tools, choice)
}

/// The tool a JSON answer is written through: its input schema is the answer's.
fn answer_tool(name: &str, format: &ResponseFormat) -> Value {
    let mut schema = format.schema();
    if let Some(Value::Object(fields)) = &mut schema {
        fields
            .entry("type")
            .or_insert_with(|| Value::String("object".to_owned()));
    }
    let description = match format {
        ResponseFormat::JsonSchema(format) => format.description.clone(),
        _ => None,
    }
    .unwrap_or_else(|| "Put your whole answer, as JSON, in this tool's input.".to_owned());
    json!({"name": name, "description": description, "input_schema": schema})
}

/// The tools called earlier in the conversation, bare.
fn history_tools(messages: &[ChatMessage]) -> Vec<Value> {
    let mut names: Vec<&str> = Vec::new();
    for call in messages.iter().flat_map(|message| &message.tool_calls) {
        if !names.contains(&call.name.as_str()) {
            names.push(&call.name);
        }
    }
    names
        .into_iter()
        .map(|name| json!({"name": name, "input_schema": {"type": "object"}}))
        .collect()
}

/// Anthropic's `tool_choice`, sent only when it is not the default (`auto`, parallel calls
/// allowed).
fn tool_choice(tools: &Tools) -> Option<Value> {
    let single = tools.parallel_calls == Some(false);
    let mut choice = match &tools.choice {
        ToolChoice::Auto if !single => return None,
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => return Some(json!({"type": "none"})),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
    };
    if single {
        choice["disable_parallel_tool_use"] = json!(true);
    }
    Some(choice)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::services::llm::test_support::{calling, tool_result};
    use crate::services::llm::{AnswerOptions, JsonSchemaFormat, Sampling, ToolCall};

    fn request(messages: Vec<ChatMessage>, tools: Option<Tools>) -> CompletionRequest {
        CompletionRequest {
            model: "claude-x".into(),
            messages: messages.into(),
            temperature: None,
            max_tokens: 64,
            context: Vec::new(),
            options: AnswerOptions {
                tools: tools.map(Arc::new),
                ..AnswerOptions::default()
            },
        }
    }

    fn body(req: &CompletionRequest) -> Value {
        serde_json::to_value(MessagesBody::new(req, false)).unwrap()
    }

    fn weather_call(id: &str, arguments: &str) -> ChatMessage {
        calling(id, "weather", arguments)
    }

    #[test]
    fn tool_calls_and_their_results_become_tool_use_and_tool_result_blocks() {
        let mut calls = weather_call("toolu_1", r#"{"city":"Paris"}"#);
        calls.content = "Let me check.".into();
        calls.tool_calls.push(ToolCall {
            id: "toolu_2".into(),
            name: "weather".into(),
            arguments: r#"{"city":"Rome"}"#.into(),
        });
        let req = request(
            vec![
                ChatMessage::new(Role::User, "Weather in Paris and Rome?"),
                calls,
                tool_result("toolu_1", "18C"),
                tool_result("toolu_2", "25C"),
                ChatMessage::new(Role::User, "Which is warmer?"),
            ],
            None,
        );

        assert_eq!(
            body(&req)["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"},
                    {"type": "text", "text": "Which is warmer?"},
                ]},
            ])
        );
    }

    #[test]
    fn arguments_that_are_not_an_object_go_back_as_an_empty_input() {
        let req = request(vec![weather_call("toolu_1", "not json")], None);
        assert_eq!(body(&req)["messages"][0]["content"][0]["input"], json!({}));
    }

    #[test]
    fn tools_take_anthropics_shape_and_the_choice_its_names() {
        let tools = |choice, parallel_calls| Tools {
            definitions: vec![Tool {
                name: "weather".into(),
                description: Some("Weather in a city".into()),
                parameters: None,
                strict: Some(true),
            }],
            choice,
            parallel_calls,
        };
        let ask = |tools| {
            body(&request(
                vec![ChatMessage::new(Role::User, "Hi")],
                Some(tools),
            ))
        };

        let auto = ask(tools(ToolChoice::Auto, None));
        assert_eq!(
            auto["tools"],
            json!([{"name": "weather", "description": "Weather in a city",
                "input_schema": {"type": "object", "properties": {}}}])
        );
        assert!(auto.get("tool_choice").is_none(), "{auto}");
        assert_eq!(
            ask(tools(ToolChoice::Required, None))["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            ask(tools(ToolChoice::None, None))["tool_choice"],
            json!({"type": "none"})
        );
        assert_eq!(
            ask(tools(ToolChoice::Function("weather".into()), Some(false)))["tool_choice"],
            json!({"type": "tool", "name": "weather", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            ask(tools(ToolChoice::Auto, Some(false)))["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
    }

    #[test]
    fn a_history_of_calls_without_tools_defines_the_tools_called_and_forbids_calls() {
        let req = request(
            vec![
                ChatMessage::new(Role::User, "Weather in Paris and Rome?"),
                weather_call("toolu_1", r#"{"city":"Paris"}"#),
                tool_result("toolu_1", "18C"),
                weather_call("toolu_2", r#"{"city":"Rome"}"#),
                tool_result("toolu_2", "25C"),
                ChatMessage::new(Role::User, "Sum it up."),
            ],
            None,
        );
        let body = body(&req);
        assert_eq!(
            body["tools"],
            json!([{"name": "weather", "input_schema": {"type": "object"}}])
        );
        assert_eq!(body["tool_choice"], json!({"type": "none"}));

        let plain = self::body(&request(vec![ChatMessage::new(Role::User, "Hi")], None));
        assert!(plain.get("tools").is_none() && plain.get("tool_choice").is_none());
    }

    #[test]
    fn a_json_answer_is_asked_for_as_the_input_of_one_tool_the_model_must_call() {
        let mut req = request(vec![ChatMessage::new(Role::User, "Count to 3")], None);
        req.options.response_format = ResponseFormat::JsonSchema(Arc::new(JsonSchemaFormat {
            name: "count".into(),
            description: None,
            schema: Some(json!({"properties": {"n": {"type": "integer"}}})),
            strict: Some(true),
        }));
        req.options.sampling = Sampling {
            top_p: Some(0.8),
            stop: vec!["END".into()],
            ..Sampling::default()
        };
        let body = body(&req);
        assert_eq!(
            body["tools"],
            json!([{"name": "count", "description": "Put your whole answer, as JSON, in this tool's input.",
                "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}])
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": "count", "disable_parallel_tool_use": true})
        );
        assert_eq!(body["top_p"], 0.8f32);
        assert_eq!(body["stop_sequences"], json!(["END"]));

        req.options.response_format = ResponseFormat::JsonObject;
        let body = self::body(&req);
        assert_eq!(body["tools"][0]["name"], JSON_TOOL);
        assert_eq!(
            body["tools"][0]["input_schema"],
            json!({"type": "object", "additionalProperties": true})
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "tool", "name": JSON_TOOL, "disable_parallel_tool_use": true})
        );
    }

    /// The client's `weather` tool, offered with `choice`.
    fn offered(choice: ToolChoice) -> Tools {
        Tools {
            definitions: vec![Tool {
                name: "weather".into(),
                description: None,
                parameters: None,
                strict: None,
            }],
            choice,
            parallel_calls: None,
        }
    }

    #[test]
    fn a_json_answer_and_the_clients_tools_share_one_choice() {
        let ask = |choice| {
            let mut req = request(
                vec![ChatMessage::new(Role::User, "Weather?")],
                Some(offered(choice)),
            );
            req.options.response_format = ResponseFormat::JsonObject;
            body(&req)
        };
        let names = |body: &Value| -> Vec<String> {
            body["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|tool| tool["name"].as_str().unwrap().to_owned())
                .collect()
        };

        // The model calls a tool of the client's or answers through the answer's tool.
        let auto = ask(ToolChoice::Auto);
        assert_eq!(names(&auto), ["weather", JSON_TOOL]);
        assert_eq!(auto["tool_choice"], json!({"type": "any"}));
        // No call allowed: the answer is forced, the client's tools stay defined.
        let none = ask(ToolChoice::None);
        assert_eq!(names(&none), ["weather", JSON_TOOL]);
        assert_eq!(none["tool_choice"]["name"], JSON_TOOL);
        // A call required: no room for a JSON answer.
        let required = ask(ToolChoice::Required);
        assert_eq!(names(&required), ["weather"]);
        assert_eq!(required["tool_choice"], json!({"type": "any"}));
    }

    #[test]
    fn a_json_answer_over_a_history_of_calls_offers_no_tool_of_the_history() {
        let mut req = request(
            vec![
                ChatMessage::new(Role::User, "Weather?"),
                weather_call("toolu_1", r#"{"city":"Paris"}"#),
                tool_result("toolu_1", "18C"),
            ],
            None,
        );
        req.options.response_format = ResponseFormat::JsonObject;
        let body = body(&req);
        let names: Vec<&str> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [JSON_TOOL], "the answer's tool defines tools enough");
        assert_eq!(body["tool_choice"]["name"], JSON_TOOL);
    }

    #[test]
    fn a_json_answer_anthropic_cannot_write_is_refused_before_the_call() {
        let asking = |schema, tools: Option<Tools>| {
            let mut req = request(vec![ChatMessage::new(Role::User, "Hi")], tools);
            req.options.response_format = ResponseFormat::JsonSchema(Arc::new(JsonSchemaFormat {
                name: "weather".into(),
                description: None,
                schema: Some(schema),
                strict: None,
            }));
            req
        };
        assert!(check_answer_tool(&asking(json!({"type": "array"}), None)).is_err());
        assert!(check_answer_tool(&asking(json!({"type": "object"}), None)).is_ok());
        assert!(check_answer_tool(&asking(json!({"properties": {}}), None)).is_ok());
        // Named like one of the client's tools: refused where the answer's tool is offered.
        let clash = asking(json!({"type": "object"}), Some(offered(ToolChoice::Auto)));
        assert!(check_answer_tool(&clash).is_err());
        // A call required: no answer's tool, so neither its schema nor its name matter.
        let required = asking(
            json!({"type": "array"}),
            Some(offered(ToolChoice::Required)),
        );
        assert!(check_answer_tool(&required).is_ok());
        assert!(answer_tool_name(&required).is_none());
    }

    #[test]
    fn top_p_gives_way_to_temperature_and_blank_stop_sequences_are_left_out() {
        let mut req = request(vec![ChatMessage::new(Role::User, "Hi")], None);
        req.temperature = Some(0.5);
        req.options.sampling = Sampling {
            top_p: Some(0.9),
            stop: vec!["\n".into(), " ".into(), "END".into()],
            ..Sampling::default()
        };
        let body = self::body(&req);
        assert_eq!(body["temperature"], 0.5);
        assert!(body.get("top_p").is_none(), "{body}");
        assert_eq!(body["stop_sequences"], json!(["END"]));

        req.temperature = None;
        req.options.sampling.stop = vec!["\n".into()];
        let body = self::body(&req);
        assert_eq!(body["top_p"], 0.9f32);
        assert!(body.get("stop_sequences").is_none(), "{body}");
    }

    #[test]
    fn a_conversation_of_instructions_alone_sends_them_as_the_users_turn() {
        let req = request(vec![ChatMessage::new(Role::System, "Write a haiku.")], None);
        let body = body(&req);
        assert!(body.get("system").is_none(), "{body}");
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "Write a haiku."}]}])
        );
    }
}
