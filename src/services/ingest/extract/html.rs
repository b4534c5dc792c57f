//! HTML: the page's readable content, without scripts, styles or the site's navigation chrome,
//! with its headings kept as Markdown heading lines.
//!
//! html2text parses (html5ever, the browsers' algorithm, so broken markup still yields the
//! DOM a browser would show) and lays the text out. Between the two we prune the elements that
//! are not content. Its decorator hook is the one place that knows where a heading starts, so
//! ours writes a private marker there that [`collect_sections`] turns into a recorded heading.

use html2text::config::{self, Config};
use html2text::render::TextDecorator;
use html2text::{Element, Handle, RcDom};

use super::text::decode_text;
use super::{ExtractedText, SectionWriter};
use crate::services::ingest::{DocumentFormat, IngestError};

/// Elements that are never document content.
const ALWAYS_DROPPED: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "aside", "svg", "iframe", "object", "canvas",
    "form", "button", "select", "dialog",
];

/// Page chrome: dropped, except inside `article`/`main`, where they frame the content itself
/// (an article's `header` usually holds its title).
const CHROME: &[&str] = &["header", "footer"];

/// ARIA roles of navigation chrome built from plain `div`s.
const CHROME_ROLES: &[&str] = &["navigation", "banner", "contentinfo", "complementary"];

/// Opens and closes the heading marker: Unicode noncharacters, which no text means to contain.
const MARK_OPEN: char = '\u{FDD0}';
const MARK_CLOSE: char = '\u{FDD1}';

/// Lines are laid out this wide so that paragraphs stay on one line (wrapping would only
/// add line breaks that the chunker then has to see through).
const LAYOUT_WIDTH: usize = 100_000;

pub(super) fn extract_html(bytes: &[u8]) -> Result<ExtractedText, IngestError> {
    let source: String = decode_text(bytes)
        .chars()
        .filter(|c| *c != MARK_OPEN && *c != MARK_CLOSE)
        .collect();
    let rendered =
        render(&source).map_err(|error| IngestError::malformed(DocumentFormat::Html, error))?;
    Ok(collect_sections(&rendered))
}

fn render(source: &str) -> Result<String, html2text::Error> {
    let config = layout_config();
    let dom = config.parse_html(source.as_bytes())?;
    prune_non_content(&dom);
    let tree = config.dom_to_render_tree(&dom)?;
    config.render_to_string(tree, LAYOUT_WIDTH)
}

fn layout_config() -> Config<HeadingMarkers> {
    config::with_decorator(HeadingMarkers)
        .raw_mode(true)
        .allow_width_overflow()
}

/// Removes non-content elements. Iterative, because hostile pages nest thousands deep.
fn prune_non_content(dom: &RcDom) {
    let mut pending: Vec<(Handle, bool)> = vec![(dom.document.clone(), false)];
    while let Some((node, inside_content)) = pending.pop() {
        let inside_content =
            inside_content || matches!(element_name(&node), Some("article" | "main"));
        node.children
            .borrow_mut()
            .retain(|child| !is_non_content(child, inside_content));
        for child in node.children.borrow().iter() {
            pending.push((child.clone(), inside_content));
        }
    }
}

fn is_non_content(node: &Handle, inside_content: bool) -> bool {
    let Element { name, attrs, .. } = &node.data else {
        return false;
    };
    let tag: &str = &name.local;
    if ALWAYS_DROPPED.contains(&tag) || (!inside_content && CHROME.contains(&tag)) {
        return true;
    }
    attrs.borrow().iter().any(|attribute| {
        let key: &str = &attribute.name.local;
        (key == "role" && CHROME_ROLES.contains(&attribute.value.trim()))
            || (key == "hidden")
            || (key == "aria-hidden" && attribute.value.trim() == "true")
    })
}

fn element_name(node: &Handle) -> Option<&str> {
    match &node.data {
        Element { name, .. } => Some(&name.local),
        _ => None,
    }
}

/// Turns the rendered layout into text, recording marked lines as headings. A heading that
/// wrapped over several lines carries the marker on each; consecutive ones are one heading.
fn collect_sections(rendered: &str) -> ExtractedText {
    let mut writer = SectionWriter::default();
    let mut heading: Option<(u8, String)> = None;
    let mut paragraph = String::new();
    for line in rendered.lines() {
        if let Some((level, title)) = parse_marked_line(line) {
            if !paragraph.is_empty() {
                writer.paragraph(&std::mem::take(&mut paragraph));
            }
            match heading.as_mut() {
                Some((open_level, open_title)) if *open_level == level => {
                    open_title.push(' ');
                    open_title.push_str(title);
                }
                _ => {
                    if let Some((open_level, open_title)) = heading.take() {
                        writer.heading(open_level, &open_title);
                    }
                    heading = Some((level, title.to_owned()));
                }
            }
            continue;
        }
        if let Some((level, title)) = heading.take() {
            writer.heading(level, &title);
        }
        if line.trim().is_empty() {
            if !paragraph.is_empty() {
                writer.paragraph(&std::mem::take(&mut paragraph));
            }
        } else {
            if !paragraph.is_empty() {
                paragraph.push('\n');
            }
            paragraph.push_str(line.trim_end());
        }
    }
    if let Some((level, title)) = heading.take() {
        writer.heading(level, &title);
    }
    writer.paragraph(&paragraph);
    writer.finish()
}

/// `"\u{FDD0}2\u{FDD1}Title"` -> `(2, "Title")`.
fn parse_marked_line(line: &str) -> Option<(u8, &str)> {
    let rest = line.trim_start().strip_prefix(MARK_OPEN)?;
    let (level, title) = rest.split_once(MARK_CLOSE)?;
    Some((level.parse().ok()?, title.trim()))
}

/// html2text's plain decorator, minus link and emphasis punctuation, plus heading markers.
#[derive(Debug, Clone, Copy)]
struct HeadingMarkers;

impl TextDecorator for HeadingMarkers {
    type Annotation = ();

    fn decorate_link_start(&mut self, _url: &str) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_link_end(&mut self) -> String {
        String::new()
    }
    fn decorate_em_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_em_end(&self) -> String {
        String::new()
    }
    fn decorate_strong_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strong_end(&self) -> String {
        String::new()
    }
    fn decorate_strikeout_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }
    fn decorate_code_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_code_end(&self) -> String {
        String::new()
    }
    fn decorate_preformat_first(&self) {}
    fn decorate_preformat_cont(&self) {}
    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, ()) {
        (title.to_owned(), ())
    }
    fn header_prefix(&self, level: usize) -> String {
        format!("{MARK_OPEN}{level}{MARK_CLOSE}")
    }
    fn quote_prefix(&self) -> String {
        "> ".to_owned()
    }
    fn unordered_item_prefix(&self) -> String {
        "* ".to_owned()
    }
    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }
    fn make_subblock_decorator(&self) -> Self {
        *self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!DOCTYPE html>
<html><head><title>Guide</title><style>body { color: red }</style>
<script>var secret = "tracking code";</script></head>
<body>
<header><a href="/">Site logo</a></header>
<nav><ul><li><a href="/a">Menu entry</a></li></ul></nav>
<main>
<article>
<header><h1>Install ragd</h1></header>
<p>The <em>quick</em> brown fox installs <a href="https://x">ragd</a> on Linux.</p>
<h2>Linux &amp; BSD</h2>
<p>Copy the binary.</p>
<table><tr><td>cell one</td><td>cell two</td></tr></table>
</article>
</main>
<div role="navigation">More links</div>
<aside>Related posts</aside>
<footer>Copyright footer</footer>
<script>document.write("late script")</script>
</body></html>"#;

    #[test]
    fn content_is_kept_and_chrome_is_dropped() {
        let extracted = extract_html(PAGE.as_bytes()).unwrap();
        let text = &extracted.text;
        assert!(
            text.contains("The quick brown fox installs ragd on Linux."),
            "{text}"
        );
        assert!(text.contains("Copy the binary."), "{text}");
        assert!(
            text.contains("cell one") && text.contains("cell two"),
            "{text}"
        );
        for dropped in [
            "tracking code",
            "late script",
            "color: red",
            "Menu entry",
            "Site logo",
            "More links",
            "Related posts",
            "Copyright footer",
        ] {
            assert!(!text.contains(dropped), "{dropped:?} leaked into {text}");
        }
        assert!(!text.contains(MARK_OPEN), "{text}");
    }

    #[test]
    fn headings_become_markdown_lines_with_offsets() {
        let extracted = extract_html(PAGE.as_bytes()).unwrap();
        assert!(extracted.markdown);
        let titles: Vec<(u8, &str)> = extracted
            .headings
            .iter()
            .map(|heading| (heading.level, heading.title.as_str()))
            .collect();
        assert_eq!(titles, [(1, "Install ragd"), (2, "Linux & BSD")]);
        let second = &extracted.headings[1];
        assert!(extracted.text[second.start..].starts_with("## Linux & BSD\n\nCopy the binary."));
    }

    #[test]
    fn deeply_nested_markup_does_not_overflow_the_stack() {
        let depth = 20_000;
        let page = format!(
            "{}deep text{}",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        );
        let handle = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || extract_html(page.as_bytes()).unwrap())
            .unwrap_or_else(|error| panic!("spawn: {error}"));
        let extracted = handle
            .join()
            .unwrap_or_else(|_| panic!("extraction panicked"));
        assert!(extracted.text.contains("deep text"));
    }
}
