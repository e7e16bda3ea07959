//! Files from the configured static folder (the meeting page lives here later), with content
//! types by extension and `index.html` for folders.
//!
//! Shell (tokio fs). Invariants: a path resolves only below the folder: `..`, hidden segments,
//! backslashes, NUL and symlinks that lead outside are refused; files over `MAX_FILE` are not
//! read into memory. Tests: `mod tests` below; tests/all/http.rs.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use hyper::StatusCode;

use super::{Resp, percent_decode, respond, text};

/// Largest file served.
const MAX_FILE: u64 = 64 << 20;

/// Serve `uri_path` from `root`.
pub(super) async fn serve(root: &Path, uri_path: &str, head: bool) -> Resp {
    let Some(rel) = safe_relative(uri_path) else {
        return text(StatusCode::BAD_REQUEST, "Bad path.\n");
    };
    let Ok(root) = tokio::fs::canonicalize(root).await else {
        return text(StatusCode::NOT_FOUND, "Not found.\n");
    };
    let mut path = root.join(&rel);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    // Symlinks may point anywhere; what they resolve to must still be below the root.
    let Ok(real) = tokio::fs::canonicalize(&path).await else {
        return text(StatusCode::NOT_FOUND, "Not found.\n");
    };
    if !real.starts_with(&root) {
        return text(StatusCode::NOT_FOUND, "Not found.\n");
    }
    let Ok(meta) = tokio::fs::metadata(&real).await else {
        return text(StatusCode::NOT_FOUND, "Not found.\n");
    };
    if !meta.is_file() {
        return text(StatusCode::NOT_FOUND, "Not found.\n");
    }
    if meta.len() > MAX_FILE {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "File too large to serve.\n");
    }
    let body = if head {
        Bytes::new()
    } else {
        match tokio::fs::read(&real).await {
            Ok(b) => Bytes::from(b),
            Err(_) => return text(StatusCode::NOT_FOUND, "Not found.\n"),
        }
    };
    let mut r = respond(StatusCode::OK, content_type(&real), body);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// The URI path as a relative path of plain segments, or `None` if it tries to escape.
fn safe_relative(uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(&uri_path.replace('+', "%2B"))?;
    let mut rel = PathBuf::new();
    for seg in decoded.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg.starts_with('.') || seg.contains(['\\', '\0']) {
            return None;
        }
        rel.push(seg);
    }
    Some(rel)
}

/// Content type by extension.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape() {
        assert_eq!(safe_relative("/a/b.css"), Some(PathBuf::from("a/b.css")));
        assert_eq!(safe_relative("/"), Some(PathBuf::new()));
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/.git/config",
            "/a\\b",
            "/a%00b",
            "/%zz",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("x/index.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
