//! User text on its way to places where it could do harm: titles (stored, shown in pages,
//! playlists and file names), `Content-Disposition` headers (RFC 6266 with `filename*`), and
//! base URLs embedded in generated scripts.
//!
//! HTML escaping is the templates' job (askama escapes every `{{ }}` in `.html` templates).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Longest title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Characters that change text direction or are invisible: they let a name look like something
/// else (`"clip\u{202E}4pm.exe"` shows as `clipexe.mp4`), so titles never keep them.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// A title as stored: control characters (CR, LF, tabs, ...) become spaces, direction
/// overrides and invisible characters are dropped, whitespace is collapsed, and the result is
/// cut to [`MAX_TITLE_CHARS`]. `None` when nothing is left.
pub fn clean_title(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len().min(MAX_TITLE_CHARS * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in raw.chars() {
        if is_bidi_or_invisible(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if count >= MAX_TITLE_CHARS {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
            if count >= MAX_TITLE_CHARS {
                break;
            }
        }
        out.push(c);
        count += 1;
    }
    let trimmed = out.trim_end();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// A title from an uploaded file's name: the extension goes (`Attack on Titan.mp4` ->
/// `Attack on Titan`), the rest is cleaned as any title.
pub fn title_from_file_name(name: &str) -> Option<String> {
    // Browsers send the bare name; some older ones sent a path.
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 5 => stem,
        _ => base,
    };
    clean_title(stem)
}

/// The suggested file name of a converted video: the title plus `3d.mp4`
/// (`attack-on-titan` -> `attack-on-titan3d.mp4`), or `stereospot-{id}3d.mp4` without a title.
pub fn download_file_name(title: Option<&str>, job_id: &str) -> String {
    let stem = title
        .and_then(clean_title)
        .map(|t| {
            t.chars()
                .map(|c| match c {
                    '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
                    c => c,
                })
                .collect::<String>()
        })
        .map(|t| t.trim_matches(['.', ' ']).to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("stereospot-{job_id}"));
    format!("{stem}3d.mp4")
}

/// RFC 5987 `attr-char`: everything else is percent-encoded in `filename*`.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment` (or `inline`) with an ASCII `filename` fallback and the exact UTF-8 name in
/// `filename*` (RFC 6266, RFC 8187). The result is always a valid header value: no control
/// characters, quotes or backslashes inside the quoted fallback.
pub fn content_disposition(disposition: &str, file_name: &str) -> String {
    let cleaned: String = file_name
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_or_invisible(*c))
        .collect();
    let fallback: String = cleaned
        .chars()
        .map(|c| match c {
            ' '..='~' if !matches!(c, '"' | '\\' | '%' | ';') => c,
            _ => '_',
        })
        .collect();
    let encoded = utf8_percent_encode(&cleaned, ATTR_CHAR);
    format!("{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// One line of an M3U playlist: no line breaks can get through.
pub fn m3u_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !is_bidi_or_invisible(*c))
        .collect()
}

/// A base URL safe to embed in a generated script: `http` or `https`, a host of letters,
/// digits, dots and hyphens (or a bracketed IPv6 address of hex digits and colons), an optional
/// port, no path, user, query or anything else. Returns the URL without a trailing slash.
pub fn safe_base_url(url: &str) -> Option<String> {
    let url = url.trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    safe_authority(rest).then(|| url.to_string())
}

/// `host[:port]` with a strict character set (see [`safe_base_url`]).
pub fn safe_authority(authority: &str) -> bool {
    if authority.is_empty() || authority.len() > 255 {
        return false;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => (v6, None),
            p => match p.strip_prefix(':') {
                Some(port) => (v6, Some(port)),
                None => return false,
            },
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !host.starts_with(['-', '.']);
        if !ok_host {
            return false;
        }
        (host, port)
    };
    let _ = host;
    match port {
        None => true,
        Some(p) => {
            !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()) && {
                p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_lose_controls_and_direction_overrides() {
        assert_eq!(
            clean_title("  a\r\nb\tc\u{202E}d\u{200F}  ").as_deref(),
            Some("a b cd")
        );
        assert_eq!(clean_title("\u{202E}\r\n"), None);
        assert_eq!(
            clean_title(&"x".repeat(500)).map(|t| t.chars().count()),
            Some(MAX_TITLE_CHARS)
        );
        // Right-to-left text itself is kept; only the overrides go.
        assert_eq!(clean_title("שלום").as_deref(), Some("שלום"));
    }

    #[test]
    fn file_names_become_titles() {
        assert_eq!(
            title_from_file_name("Attack on Titan.mp4").as_deref(),
            Some("Attack on Titan")
        );
        assert_eq!(
            title_from_file_name("C:\\x\\clip.final.mov").as_deref(),
            Some("clip.final")
        );
        assert_eq!(title_from_file_name(".mp4").as_deref(), Some(".mp4"));
    }

    #[test]
    fn download_names() {
        assert_eq!(
            download_file_name(Some("attack-on-titan"), "id"),
            "attack-on-titan3d.mp4"
        );
        assert_eq!(download_file_name(Some("a/b:c"), "id"), "a_b_c3d.mp4");
        assert_eq!(download_file_name(None, "abc"), "stereospot-abc3d.mp4");
        assert_eq!(
            download_file_name(Some(" .. "), "abc"),
            "stereospot-abc3d.mp4"
        );
    }

    #[test]
    fn content_disposition_is_rfc6266_and_header_safe() {
        let d = content_disposition("attachment", "a \"b\"\r\n\u{202E}é;%.mp4");
        assert_eq!(
            d,
            "attachment; filename=\"a _b____.mp4\"; filename*=UTF-8''a%20%22b%22%C3%A9%3B%25.mp4"
        );
        assert!(axum::http::HeaderValue::from_str(&d).is_ok());
    }

    #[test]
    fn base_urls_for_scripts() {
        assert_eq!(
            safe_base_url("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert!(safe_base_url("https://stereo.example").is_some());
        assert!(safe_base_url("http://[::1]:80").is_some());
        for bad in [
            "ftp://x",
            "http://",
            "http://a b",
            "http://x'; calc; '",
            "http://x\"",
            "http://x/path",
            "http://user@x",
            "http://x:99999",
            "http://x:80:80",
            "http://$(calc)",
            "http://x`y",
            "http://-x",
            "http://[::1]x",
        ] {
            assert!(safe_base_url(bad).is_none(), "{bad}");
        }
    }
}
