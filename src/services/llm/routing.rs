//! Which provider a model name selects, and the name that provider knows the model by.

/// The providers ragd can route to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderId {
    OpenAi,
    Anthropic,
    Ollama,
    Local,
}

impl ProviderId {
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Ollama => "ollama",
            Self::Local => "local",
        }
    }
}

/// A model name resolved to its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    pub provider: ProviderId,
    /// The name without the routing prefix, as sent to the provider.
    pub local_model: &'a str,
}

/// `ollama/NAME` goes to Ollama, `anthropic/NAME` or `claude-*` to Anthropic, `local/NAME`
/// to the built-in provider, anything else to the OpenAI-compatible provider unchanged
/// (so names such as `meta-llama/Llama-3-8B` reach a vLLM server intact).
pub fn route(model: &str) -> Route<'_> {
    let prefixed = [
        ("ollama/", ProviderId::Ollama),
        ("anthropic/", ProviderId::Anthropic),
        ("local/", ProviderId::Local),
    ];
    for (prefix, provider) in prefixed {
        if let Some(local_model) = model.strip_prefix(prefix) {
            return Route {
                provider,
                local_model,
            };
        }
    }
    let provider = if model.starts_with("claude-") {
        ProviderId::Anthropic
    } else {
        ProviderId::OpenAi
    };
    Route {
        provider,
        local_model: model,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_select_the_provider_and_are_stripped() {
        assert_eq!(
            route("ollama/llama3.2"),
            Route {
                provider: ProviderId::Ollama,
                local_model: "llama3.2"
            }
        );
        assert_eq!(
            route("anthropic/claude-3-5-haiku-latest").local_model,
            "claude-3-5-haiku-latest"
        );
        assert_eq!(
            route("claude-sonnet-4-0"),
            Route {
                provider: ProviderId::Anthropic,
                local_model: "claude-sonnet-4-0"
            }
        );
        assert_eq!(
            route("local/extractive"),
            Route {
                provider: ProviderId::Local,
                local_model: "extractive"
            }
        );
    }

    #[test]
    fn anything_else_goes_to_openai_unchanged() {
        assert_eq!(
            route("gpt-4o-mini"),
            Route {
                provider: ProviderId::OpenAi,
                local_model: "gpt-4o-mini"
            }
        );
        assert_eq!(
            route("meta-llama/Llama-3-8B").local_model,
            "meta-llama/Llama-3-8B"
        );
    }
}
