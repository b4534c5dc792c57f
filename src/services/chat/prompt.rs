//! The grounded prompt: the numbered sources in a system message that tells the model to
//! cite them as `[n]`, ahead of the conversation. The same numbering goes to the provider as
//! `context` (which the local extractive provider answers from) and to the client as the
//! order of `citations`, so `[2]` in an answer is `citations[1]`.

use crate::services::llm::{ChatMessage, ContextSource, Role};
use crate::services::retrieval::Citation;

const INSTRUCTIONS: &str = "Answer using the numbered sources below, which come from the \
user's documents. Cite every source you use with its number in square brackets, like [1] or \
[2][3]. If the sources do not contain the answer, say so plainly instead of guessing.";

/// What a provider receives for a conversation grounded in sources.
#[derive(Debug)]
pub struct Grounded {
    pub messages: Vec<ChatMessage>,
    pub context: Vec<ContextSource>,
}

impl AsRef<[ChatMessage]> for Grounded {
    fn as_ref(&self) -> &[ChatMessage] {
        &self.messages
    }
}

/// The messages and context a provider receives for `messages` grounded in `citations`.
pub fn grounded(messages: &[ChatMessage], citations: &[Citation]) -> Grounded {
    if citations.is_empty() {
        return Grounded {
            messages: messages.to_vec(),
            context: Vec::new(),
        };
    }
    let context: Vec<ContextSource> = citations
        .iter()
        .enumerate()
        .map(|(index, citation)| ContextSource {
            number: index + 1,
            label: label(citation),
            text: citation.text.clone(),
        })
        .collect();
    let mut system = String::from(INSTRUCTIONS);
    for source in &context {
        system.push_str(&format!(
            "\n\n[{}] {}\n{}",
            source.number, source.label, source.text
        ));
    }
    let mut prompt = Vec::with_capacity(messages.len() + 1);
    prompt.push(ChatMessage::new(Role::System, system));
    prompt.extend_from_slice(messages);
    Grounded {
        messages: prompt,
        context,
    }
}

fn label(citation: &Citation) -> String {
    match citation.page {
        Some(page) => format!("{} (page {page})", citation.filename),
        None => citation.filename.clone(),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    pub fn citation(filename: &str, text: &str, page: Option<i64>) -> Citation {
        Citation {
            document_id: Uuid::now_v7(),
            filename: filename.to_owned(),
            chunk_index: 0,
            text: text.to_owned(),
            score: 1.0,
            page,
            char_start: 0,
            char_end: i64::try_from(text.len()).unwrap_or(0),
        }
    }

    #[test]
    fn without_citations_the_conversation_is_unchanged() {
        let messages = vec![ChatMessage::new(Role::User, "Hi")];
        let Grounded {
            messages: prompt,
            context,
        } = grounded(&messages, &[]);
        assert_eq!(prompt, messages);
        assert!(context.is_empty());
    }

    #[test]
    fn sources_are_numbered_in_a_leading_system_message_and_in_the_context() {
        let messages = vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, "How tall?"),
        ];
        let citations = [
            citation("a.md", "The tower is 300 m tall.", None),
            citation("b.pdf", "It was built in 1889.", Some(4)),
        ];
        let Grounded {
            messages: prompt,
            context,
        } = grounded(&messages, &citations);

        assert_eq!(prompt.len(), 3);
        assert_eq!(prompt[0].role, Role::System);
        assert!(
            prompt[0]
                .content
                .contains("[1] a.md\nThe tower is 300 m tall.")
        );
        assert!(
            prompt[0]
                .content
                .contains("[2] b.pdf (page 4)\nIt was built in 1889.")
        );
        assert_eq!(&prompt[1..], &messages[..]);
        assert_eq!(context.iter().map(|s| s.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(context[1].text, "It was built in 1889.");
    }
}
