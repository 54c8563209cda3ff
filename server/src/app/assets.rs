//! The files under `/static/`: the copy of `static/` built into the binary
//! (by `server/build.rs`), so a copied binary serves its stylesheet, or, for
//! development, a folder given with `--static-dir` (edits show on reload).

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};

/// One embedded file.
#[derive(Debug)]
pub struct StaticFile {
    /// Path under `static/`, with `/` separators.
    pub path: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
    /// `Content-Type`, from the extension.
    pub content_type: &'static str,
    /// A strong ETag: a hash of the bytes.
    pub etag: &'static str,
}

/// Every file of `static/`, as it was at build time.
pub static EMBEDDED: &[StaticFile] = include!(concat!(env!("OUT_DIR"), "/static_files.rs"));

/// The embedded file at `path`.
pub fn embedded(path: &str) -> Option<&'static StaticFile> {
    EMBEDDED.iter().find(|f| f.path == path)
}

async fn serve_embedded(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = embedded(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = HeaderValue::from_static(file.etag);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == file.etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            ),
            (header::ETAG, etag),
        ],
        file.bytes,
    )
        .into_response()
}

/// The `/static` service: the folder if one is given, else the embedded copy.
pub fn router(dir: Option<&std::path::Path>) -> Router {
    let files = match dir {
        Some(dir) => Router::new().fallback_service(ServeDir::new(dir)),
        None => Router::new().route("/{*path}", get(serve_embedded)),
    };
    // Stylesheet and icons change only with a release; an hour keeps pages
    // fast without making an upgrade look broken for long.
    files.layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_static_is_embedded_with_its_type() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../static");
        let names: Vec<String> = std::fs::read_dir(dir)
            .expect("static/")
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().any(|n| n == "berth.css"), "{names:?}");
        for name in &names {
            let file = embedded(name).unwrap_or_else(|| panic!("{name} is not embedded"));
            let on_disk = std::fs::read(format!("{dir}/{name}")).expect("reading it");
            assert_eq!(file.bytes, on_disk.as_slice(), "{name} is current");
        }
        assert_eq!(
            embedded("berth.css").map(|f| f.content_type),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(
            embedded("icon.svg").map(|f| f.content_type),
            Some("image/svg+xml")
        );
    }
}
