//! Markdown: the source is already readable text, so it is kept verbatim (the chunker splits it
//! with a Markdown-aware splitter); pulldown-cmark finds the headings and their offsets.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::text::decode_text;
use super::{ExtractedText, Heading};

pub(super) fn extract_markdown(bytes: &[u8]) -> ExtractedText {
    let text = decode_text(bytes);
    let headings = find_headings(&text);
    ExtractedText {
        text,
        pages: Vec::new(),
        headings,
        markdown: true,
    }
}

fn find_headings(source: &str) -> Vec<Heading> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut headings = Vec::new();
    let mut open: Option<(u8, usize, String)> = None;
    for (event, range) in Parser::new_ext(source, options).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                open = Some((heading_level(level), range.start, String::new()));
            }
            Event::Text(piece) | Event::Code(piece) => {
                if let Some((_, _, title)) = open.as_mut() {
                    title.push_str(&piece);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, title)) = open.as_mut() {
                    title.push(' ');
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, start, title)) = open.take() {
                    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
                    if !title.is_empty() {
                        headings.push(Heading {
                            level,
                            title,
                            start,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    headings
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = "# Install\n\nragd ships as one binary.\n\n## Linux `x86_64`\n\n\
                         Copy it to /usr/local/bin.\n\nSetext title\n============\n\nEnd.\n";

    #[test]
    fn text_is_kept_and_headings_are_recorded_with_offsets() {
        let extracted = extract_markdown(GUIDE.as_bytes());
        assert_eq!(extracted.text, GUIDE);
        assert!(extracted.markdown);
        let titles: Vec<(u8, &str)> = extracted
            .headings
            .iter()
            .map(|heading| (heading.level, heading.title.as_str()))
            .collect();
        assert_eq!(
            titles,
            [(1, "Install"), (2, "Linux x86_64"), (1, "Setext title")]
        );
        let linux = &extracted.headings[1];
        assert!(extracted.text[linux.start..].starts_with("## Linux"));
    }

    #[test]
    fn a_hash_inside_a_code_block_is_not_a_heading() {
        let extracted = extract_markdown(b"```\n# not a heading\n```\n\ntext\n");
        assert!(extracted.headings.is_empty());
    }
}
