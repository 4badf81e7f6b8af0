//! `berth new NAME --lang rust|python|js`: a family that builds with the pinned toolchain and
//! passes its own test (`make test`) against an engine. The directory is written whole or
//! not at all: the files go to a temp directory beside it, renamed into place at the end.

use std::path::{Path, PathBuf};

use anyhow::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

const MAKEFILE: &str = include_str!("templates/Makefile");
const TEST: &str = include_str!("templates/test.sh");
const README: &str = include_str!("templates/README.md");

/// The berth checkout this binary was built from (its SDKs and WIT), unless told otherwise.
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A family name: lower-case letters, digits and '-', starting with a letter, at most 32.
pub fn valid_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("family name '{}' must be lower-case letters, digits and '-', start with a letter and be at most 32 long", name.escape_debug()))
    }
}

/// The files of a new family, relative to its directory.
pub fn files(name: &str, lang: Lang, root: &Path, berth: &Path) -> Vec<(PathBuf, String, bool)> {
    let (rules, sources): (&str, Vec<(&str, &str)>) = match lang {
        Lang::Rust => (
            include_str!("templates/rust.mk"),
            vec![("Cargo.toml", include_str!("templates/rust/Cargo.toml")), ("src/lib.rs", include_str!("templates/rust/lib.rs"))],
        ),
        Lang::Python => (include_str!("templates/python.mk"), vec![("app.py", include_str!("templates/python/app.py"))]),
        Lang::Js => (
            include_str!("templates/js.mk"),
            vec![("app.js", include_str!("templates/js/app.js")), ("package.json", include_str!("templates/js/package.json"))],
        ),
    };
    let source = sources[0].0;
    let fill = |t: &str| {
        t.replace("{{rules}}", rules)
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{lang}}", lang.name())
            .replace("{{root}}", &root.to_string_lossy())
            .replace("{{berth}}", &berth.to_string_lossy())
            .replace("{{source}}", if lang == Lang::Rust { "src/lib.rs" } else { source })
            .replace(
                "{{reference}}",
                match lang {
                    Lang::Rust => "actions/sdk/REFERENCE.md",
                    Lang::Python => "actions/sdk-python/REFERENCE.md",
                    Lang::Js => "actions/sdk-js/REFERENCE.md",
                },
            )
    };
    let mut out: Vec<(PathBuf, String, bool)> = sources.iter().map(|(p, t)| (PathBuf::from(p), fill(t), false)).collect();
    out.push(("Makefile".into(), fill(MAKEFILE), false));
    out.push(("test.sh".into(), fill(TEST), true));
    out.push(("README.md".into(), fill(README), false));
    out.push((".gitignore".into(), "*.wasm\n*.wasm.tmp\ntarget/\n.venv/\nnode_modules/\nbuild/\n".into(), false));
    out
}

/// Writes a new family into `dir` (which must not exist, or be empty).
pub fn create(name: &str, lang: Lang, dir: &Path, root: &Path, berth: &Path) -> anyhow::Result<Vec<PathBuf>> {
    valid_name(name).map_err(anyhow::Error::msg)?;
    let sdk = match lang {
        Lang::Rust => root.join("actions/sdk/Cargo.toml"),
        Lang::Python => root.join("actions/sdk-python/berth_sdk/__init__.py"),
        Lang::Js => root.join("actions/sdk-js/berth.js"),
    };
    if !sdk.is_file() || !root.join("wit/since_v0.2.0/berth.wit").is_file() {
        anyhow::bail!("cannot find berth's {} SDK and WIT under {}; pass --root with a berth checkout", lang.name(), root.display());
    }
    if dir.exists() && std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        anyhow::bail!("{} already exists and is not empty; nothing was written", dir.display());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = tempfile::Builder::new().prefix(".berth-new-").tempdir_in(&parent).with_context(|| format!("cannot write in {}", parent.display()))?;
    let mut written = Vec::new();
    for (rel, text, exec) in files(name, lang, root, berth) {
        let p = tmp.path().join(&rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
        if exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
        written.push(dir.join(rel));
    }
    if dir.exists() {
        std::fs::remove_dir(dir).with_context(|| format!("cannot replace the empty {}", dir.display()))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        anyhow::anyhow!("cannot move the new family into {}: {e}", dir.display())
    })?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("hunt").is_ok());
        assert!(valid_name("my-fam2").is_ok());
        for bad in ["", "Hunt", "2x", "a/b", "a.b", "x-", "a b", &"a".repeat(33)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for (p, text, _) in files("demo-x", lang, Path::new("/r"), Path::new("/b/berth")) {
                assert!(!text.contains("{{"), "{lang:?} {}: {text}", p.display());
            }
        }
        let rust = files("demo-x", Lang::Rust, Path::new("/r"), Path::new("/b/berth"));
        let mk = &rust.iter().find(|(p, _, _)| p == Path::new("Makefile")).unwrap().1;
        assert!(mk.contains("berth_action_demo_x.wasm") && mk.contains("BERTH ?= /b/berth"), "{mk}");
    }

    #[test]
    fn a_bad_name_or_a_full_directory_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let root = default_root();
        assert!(create("Bad", Lang::Python, &t.path().join("x"), &root, Path::new("berth")).is_err());
        assert!(!t.path().join("x").exists());
        std::fs::create_dir(t.path().join("full")).unwrap();
        std::fs::write(t.path().join("full/keep"), "mine").unwrap();
        let e = create("full", Lang::Js, &t.path().join("full"), &root, Path::new("berth")).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(std::fs::read_dir(t.path().join("full")).unwrap().count(), 1);
        let made = create("ok", Lang::Rust, &t.path().join("ok"), &root, Path::new("berth")).unwrap();
        assert!(made.iter().all(|p| p.exists()));
        // No temp directory is left beside it.
        assert_eq!(std::fs::read_dir(t.path()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".berth-new")).count(), 0);
    }
}
