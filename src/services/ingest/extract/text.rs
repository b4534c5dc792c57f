//! Decoding text files (plain, CSV, JSON and the source of Markdown and HTML) to Rust strings.
//!
//! Uploads come from every editor and OS: UTF-8 with or without a BOM, UTF-16 from Windows
//! tools (always with a BOM), and legacy Latin-1 / Windows-1252. Anything that is not valid
//! UTF-8 and has no BOM is read as Windows-1252, the WHATWG superset of Latin-1, which maps
//! every byte.

use encoding_rs::{UTF_8, WINDOWS_1252};

use super::ExtractedText;

/// Plain text kept as is: CSV and JSON are readable and searchable without reshaping.
pub(super) fn extract_plain(bytes: &[u8]) -> ExtractedText {
    ExtractedText {
        text: decode_text(bytes),
        ..ExtractedText::default()
    }
}

/// Decodes `bytes` (BOM-sniffed UTF-8/UTF-16, else UTF-8, else Windows-1252) and removes the
/// control characters no text needs (NUL included), keeping tab, newlines and form feed.
pub(crate) fn decode_text(bytes: &[u8]) -> String {
    let decoded = match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, bom_length)) => {
            encoding.decode_without_bom_handling(&bytes[bom_length..]).0
        }
        None => match UTF_8.decode_without_bom_handling_and_without_replacement(bytes) {
            Some(text) => text,
            None => WINDOWS_1252.decode_without_bom_handling(bytes).0,
        },
    };
    strip_control_characters(&decoded)
}

/// Removes control characters other than `\t`, `\n`, `\r` and form feed.
pub(crate) fn strip_control_characters(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0C'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let bom: [u8; 2] = if big_endian {
            [0xFE, 0xFF]
        } else {
            [0xFF, 0xFE]
        };
        bom.into_iter()
            .chain(text.encode_utf16().flat_map(move |unit| {
                if big_endian {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                }
            }))
            .collect()
    }

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(decode_text("naïve café".as_bytes()), "naïve café");
        assert_eq!(decode_text(b"\xEF\xBB\xBFhello"), "hello");
    }

    #[test]
    fn utf16_little_and_big_endian_with_bom() {
        let sentence = "The quick brown fox — naïve";
        assert_eq!(decode_text(&utf16(sentence, false)), sentence);
        assert_eq!(decode_text(&utf16(sentence, true)), sentence);
    }

    #[test]
    fn latin1_and_windows_1252() {
        assert_eq!(decode_text(b"caf\xE9 cr\xE8me"), "café crème");
        assert_eq!(
            decode_text(b"\x93quoted\x94 \x80 5"),
            "\u{201C}quoted\u{201D} € 5"
        );
    }

    #[test]
    fn nul_and_control_characters_are_dropped_but_layout_is_kept() {
        assert_eq!(decode_text(b"a\0b\x07c\td\r\ne"), "abc\td\r\ne");
    }

    #[test]
    fn csv_and_json_stay_readable() {
        let extracted = extract_plain(b"name,city\nAda,London\n");
        assert_eq!(extracted.text, "name,city\nAda,London\n");
        assert!(extracted.pages.is_empty());
        assert!(!extracted.markdown);
    }
}
