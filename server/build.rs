//! Embeds `static/` in the binary: writes `$OUT_DIR/static_files.rs`, a table
//! of every file under it with its bytes (`include_bytes!`), its content type
//! and an ETag, so a copied binary serves its stylesheet without a folder.
//!
//! Third-party browser code (the terminal, pinned in web/package-lock.json)
//! is not in the repository: `web/install.sh` installs it into a cache and
//! prints the folder, which `BERTH_VENDOR_DIR` names; its files are served
//! under `/static/vendor/`. Without it the build works and the page says the
//! terminal is unavailable.

use std::{
    collections::hash_map::DefaultHasher,
    fmt::Write as _,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
};

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("../static");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-env-changed=BERTH_VENDOR_DIR");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut sources: Vec<(PathBuf, PathBuf, &str)> = files
        .into_iter()
        .map(|file| (file, root.clone(), ""))
        .collect();
    if let Some(vendor) = std::env::var_os("BERTH_VENDOR_DIR").filter(|v| !v.is_empty()) {
        let vendor = PathBuf::from(vendor);
        println!("cargo:rerun-if-changed={}", vendor.display());
        let mut found = Vec::new();
        walk(&vendor, &mut found);
        found.sort();
        if found.is_empty() {
            println!(
                "cargo:warning=BERTH_VENDOR_DIR={} holds no files: the terminal will be unavailable",
                vendor.display()
            );
        }
        sources.extend(
            found
                .into_iter()
                .map(|file| (file, vendor.clone(), "vendor/")),
        );
    }
    let mut table = String::from("&[\n");
    for (file, root, prefix) in &sources {
        // Cargo re-runs this script when a file changes, not only the folder.
        println!("cargo:rerun-if-changed={}", file.display());
        let bytes = std::fs::read(file).expect("reading a static file");
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let relative = format!(
            "{prefix}{}",
            file.strip_prefix(root)
                .expect("under its folder")
                .to_string_lossy()
                .replace('\\', "/")
        );
        let absolute = file.canonicalize().expect("a static file's path");
        let _ = writeln!(
            table,
            "    StaticFile {{ path: {relative:?}, bytes: include_bytes!({absolute:?}), content_type: {:?}, etag: \"\\\"{:016x}\\\"\" }},",
            content_type(file),
            hasher.finish(),
        );
    }
    table.push(']');
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("static_files.rs");
    std::fs::write(out, table).expect("writing static_files.rs");
}
