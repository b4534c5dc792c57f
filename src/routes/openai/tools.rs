//! Tool calling in OpenAI's wire shapes: the `tools` and `tool_choice` of a request, the
//! `tool_calls` of the messages sent back, and the calls of an answer, whole or in pieces.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::error::FieldError;
use crate::services::llm::{Tool, ToolCall, ToolCallDelta, ToolChoice, Tools};

/// OpenAI's limit on the tools one request may offer.
const MAX_TOOLS: usize = 128;
/// OpenAI's limit on a function's (or a response schema's) name.
const MAX_NAME_CHARS: usize = 64;
/// The rule [`is_valid_name`] checks, as a client reads it.
pub const NAME_RULE: &str = "must be 1 to 64 letters, digits, _ or -";

/// Whether `name` is a name OpenAI accepts for a function or a response schema (and so do
/// Anthropic and Ollama for tools).
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// `{"type": "function", "function": {...}}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ToolIn {
    /// Only `function`.
    #[serde(rename = "type")]
    #[schema(example = "function")]
    pub kind: String,
    pub function: FunctionIn,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct FunctionIn {
    /// Letters, digits, `_` and `-`, at most 64.
    #[schema(example = "get_weather")]
    pub name: String,
    pub description: Option<String>,
    /// The JSON Schema of the arguments (an object).
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

/// `auto`, `none`, `required`, or one named function.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ToolChoiceIn {
    Mode(String),
    Object(ObjectToolChoice),
}

/// `{"type": "function", "function": {"name": ...}}`; OpenAI's other forms (`allowed_tools`,
/// `custom`) are read only to be refused by name.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ObjectToolChoice {
    /// Only `function`.
    #[serde(rename = "type")]
    pub kind: String,
    pub function: Option<ChosenFunction>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ChosenFunction {
    pub name: String,
}

/// A call an assistant message made, as the client sends it back.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ToolCallIn {
    pub id: String,
    /// Only `function`.
    #[serde(rename = "type", default = "function")]
    pub kind: String,
    pub function: CalledFunction,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CalledFunction {
    pub name: String,
    /// The arguments as JSON text, as the model wrote them.
    pub arguments: String,
}

fn function() -> String {
    "function".to_owned()
}

impl ToolCallIn {
    /// The call in ragd's terms, or the problem with one of its fields.
    pub fn translate(&self) -> Result<ToolCall, FieldError> {
        if self.kind != "function" {
            return Err(FieldError::new("type", "must be function"));
        }
        if self.id.is_empty() {
            return Err(FieldError::new("id", "must not be empty"));
        }
        if self.function.name.is_empty() {
            return Err(FieldError::new("function.name", "must not be empty"));
        }
        Ok(ToolCall {
            id: self.id.clone(),
            name: self.function.name.clone(),
            arguments: self.function.arguments.clone(),
        })
    }
}

/// The tools a request offers, in ragd's terms; `None` without tools. Problems are added to
/// `problems` with the field paths the client sent.
pub fn tools(
    offered: Option<&[ToolIn]>,
    choice: Option<&ToolChoiceIn>,
    parallel_calls: Option<bool>,
    problems: &mut Vec<FieldError>,
) -> Option<Tools> {
    let offered = offered.unwrap_or_default();
    if offered.len() > MAX_TOOLS {
        problems.push(FieldError::new(
            "tools",
            format!("at most {MAX_TOOLS} tools"),
        ));
    }
    let mut definitions = Vec::with_capacity(offered.len());
    for (index, tool) in offered.iter().enumerate() {
        match definition(tool) {
            Ok(tool) => definitions.push(tool),
            Err(problem) => problems.push(FieldError::new(
                format!("tools[{index}].{}", problem.field),
                problem.message,
            )),
        }
    }
    let choice = match choice {
        None => ToolChoice::Auto,
        Some(choice) => match translate_choice(choice) {
            Ok(choice) => choice,
            Err(message) => {
                problems.push(FieldError::new("tool_choice", message));
                ToolChoice::Auto
            }
        },
    };
    if let ToolChoice::Function(name) = &choice
        && !offered.is_empty()
        && !offered.iter().any(|tool| tool.function.name == *name)
    {
        problems.push(FieldError::new(
            "tool_choice",
            format!("names `{name}`, which is not among the tools"),
        ));
    }
    if offered.is_empty() {
        if choice.forces_a_call() {
            problems.push(FieldError::new(
                "tool_choice",
                "requires a tool call, but no tools are offered",
            ));
        }
        return None;
    }
    Some(Tools {
        definitions,
        choice,
        parallel_calls,
    })
}

fn definition(tool: &ToolIn) -> Result<Tool, FieldError> {
    if tool.kind != "function" {
        return Err(FieldError::new("type", "must be function"));
    }
    let function = &tool.function;
    if !is_valid_name(&function.name) {
        return Err(FieldError::new("function.name", NAME_RULE));
    }
    if function
        .parameters
        .as_ref()
        .is_some_and(|parameters| !parameters.is_object())
    {
        return Err(FieldError::new(
            "function.parameters",
            "must be a JSON Schema object",
        ));
    }
    Ok(Tool {
        name: function.name.clone(),
        description: function.description.clone(),
        parameters: function.parameters.clone(),
        strict: function.strict,
    })
}

fn translate_choice(choice: &ToolChoiceIn) -> Result<ToolChoice, &'static str> {
    match choice {
        ToolChoiceIn::Mode(mode) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err("must be auto, none, required or a named function"),
        },
        ToolChoiceIn::Object(choice) => match (choice.kind.as_str(), &choice.function) {
            ("function", Some(function)) => Ok(ToolChoice::Function(function.name.clone())),
            ("function", None) => Err("a function choice must name its function"),
            _ => Err("type must be function (allowed_tools and custom tools are not supported)"),
        },
    }
}

/// A call of an answer, as OpenAI writes it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolCallOut {
    #[schema(example = "call_0190f6a27c1e7d2b9a443f1b8e0c5d21")]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(example = "function")]
    pub kind: &'static str,
    pub function: CalledFunction,
}

impl From<ToolCall> for ToolCallOut {
    fn from(call: ToolCall) -> Self {
        Self {
            id: call.id,
            kind: "function",
            function: CalledFunction {
                name: call.name,
                arguments: call.arguments,
            },
        }
    }
}

/// A piece of a call in a `chat.completion.chunk`: the first piece of a call carries its
/// `id`, `type` and `function.name`, the later ones more of `function.arguments`.
#[derive(Serialize)]
pub struct ToolCallChunk<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionChunk<'a>,
}

#[derive(Serialize)]
struct FunctionChunk<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl<'a> From<&'a ToolCallDelta> for ToolCallChunk<'a> {
    fn from(delta: &'a ToolCallDelta) -> Self {
        Self {
            index: delta.index,
            id: delta.id.as_deref(),
            kind: delta.id.as_ref().map(|_| "function"),
            function: FunctionChunk {
                name: delta.name.as_deref(),
                arguments: &delta.arguments,
            },
        }
    }
}
