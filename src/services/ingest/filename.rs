//! Making a user-supplied filename safe to keep as metadata.
//!
//! Stored files are named by UUID, so the user's name never reaches the filesystem; it is still
//! shown in lists and citations, where a path, a NUL or a right-to-left override that disguises
//! the extension would mislead whoever reads it.

/// Longest sanitized name, in bytes (the common filesystem limit, so names look familiar).
const MAX_FILENAME_BYTES: usize = 255;

/// What an upload without a usable name is called.
const FALLBACK_FILENAME: &str = "document";

/// Reduces `raw` to its last path component without control or bidi-formatting characters,
/// trimmed, at most 255 bytes (keeping a short extension), never empty, never `.` or `..`.
pub fn sanitize_filename(raw: &str) -> String {
    let last_component = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last_component
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        return FALLBACK_FILENAME.to_owned();
    }
    truncate_keeping_extension(trimmed, MAX_FILENAME_BYTES)
}

/// Characters that reorder how text displays, e.g. `invoice\u{202E}fdp.exe` shown as
/// `invoiceexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn truncate_keeping_extension(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        return name.to_owned();
    }
    let extension = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 => &name[dot..],
        _ => "",
    };
    let stem_budget = max_bytes - extension.len();
    let mut stem_end = stem_budget;
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{extension}", &name[..stem_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components_and_traversal_are_removed() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(sanitize_filename(".."), "document");
        assert_eq!(sanitize_filename("dir/.."), "document");
        assert_eq!(sanitize_filename("..hidden"), "hidden");
    }

    #[test]
    fn nul_control_and_bidi_characters_are_removed() {
        assert_eq!(sanitize_filename("a\0b\r\n.txt"), "ab.txt");
        assert_eq!(
            sanitize_filename("invoice\u{202E}fdp.exe"),
            "invoicefdp.exe"
        );
    }

    #[test]
    fn a_name_is_never_empty() {
        assert_eq!(sanitize_filename(""), "document");
        assert_eq!(sanitize_filename("  \0 /"), "document");
    }

    #[test]
    fn long_names_are_bounded_on_a_char_boundary_keeping_the_extension() {
        let long = format!("{}.pdf", "é".repeat(300));
        let sanitized = sanitize_filename(&long);
        assert!(sanitized.len() <= MAX_FILENAME_BYTES);
        assert!(sanitized.ends_with(".pdf"));
        assert!(sanitized.starts_with('é'));
    }

    #[test]
    fn ordinary_unicode_names_are_kept() {
        assert_eq!(sanitize_filename("Résumé 2024.docx"), "Résumé 2024.docx");
    }
}
