//! Compiles the crisis templates, exercise scenarios and console catalogues from `assets/` into
//! the binary: every `*.toml` file there becomes an `include_str!` entry.

use std::fmt::Write;
use std::path::Path;

fn embed(out: &mut String, constant: &str, dir: &str) {
    println!("cargo:rerun-if-changed={dir}");
    // The manifest directory of this build, read when the script runs: the
    // compiled script may be reused for a checkout elsewhere.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&manifest).join(dir);
    // A binary without its templates must never build quietly.
    let mut files: Vec<_> = match std::fs::read_dir(&root) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) => panic!("cannot read {}: {e}", root.display()),
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let _ = writeln!(out, "pub static {constant}: &[(&str, &str)] = &[");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    let _ = writeln!(out, "];");
}

fn main() {
    let mut out = String::new();
    embed(&mut out, "TEMPLATE_SOURCES", "assets/templates");
    embed(&mut out, "SCENARIO_SOURCES", "assets/scenarios");
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("embedded.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
    let mut languages = String::new();
    embed(&mut languages, "LANGUAGE_SOURCES", "assets/lang");
    let dest = dest.with_file_name("languages.rs");
    if let Err(e) = std::fs::write(&dest, languages) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
