//! `changes` (commit and import) as the engine reads them: it joins every value with a newline
//! and parses the result as one Dockerfile (buildkit's parser). A line that ends in the escape
//! character continues on the next one, a first line `# escape=…` changes the escape
//! character, and comments are dropped. Checking the values one by one misses all three: a
//! trailing `\` swallowed the label the gate appends after them.

/// The logical instructions of `changes`, as the engine will parse them, refusing what could
/// make the engine read them differently from the gate (parser directives and comments), and a
/// last line that continues onto whatever follows it.
pub fn instructions(changes: &[&str]) -> Result<Vec<String>, String> {
    let text = changes.join("\n");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.starts_with('#') {
            return Err(format!("'{line}': comments and parser directives (# …) are not allowed"));
        }
        if trimmed.is_empty() {
            continue;
        }
        let (body, continues) = match continuation(line) {
            Some(body) => (body, true),
            None => (line, false),
        };
        let logical = current.get_or_insert_with(String::new);
        logical.push_str(body);
        if !continues {
            out.push(current.take().expect("set above").trim().to_string());
        }
    }
    if let Some(open) = current {
        return Err(format!("'{}': the last instruction ends with a line continuation ('\\'), which would join it to the next one", open.trim()));
    }
    Ok(out)
}

/// `line` without its continuation (`\` then spaces or tabs at the end), if it has one.
fn continuation(line: &str) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    t.strip_suffix('\\')
}

/// Whether an instruction sets the label `key`: `LABEL`, or `ONBUILD LABEL`, naming it after
/// quotes and escapes are removed (conservative: a value that spells the key counts too).
pub fn sets_label(instruction: &str, key: &str) -> bool {
    let mut words = instruction.split_whitespace();
    let mut word = words.next().unwrap_or("");
    let mut rest = instruction.trim_start()[word.len()..].to_string();
    if word.eq_ignore_ascii_case("ONBUILD") {
        word = words.next().unwrap_or("");
        let r = rest.trim_start();
        rest = r[word.len().min(r.len())..].to_string();
    }
    if !word.eq_ignore_ascii_case("LABEL") {
        return false;
    }
    let plain: String = rest.chars().filter(|c| !matches!(c, '"' | '\'' | '\\')).collect();
    plain.contains(key)
}

/// `changes` may not set the scope `key`, and must end where the gate's own `LABEL` begins.
pub fn check_changes(changes: &[&str], key: &str) -> Result<(), String> {
    for i in instructions(changes)? {
        if sets_label(&i, key) {
            return Err(format!("'{i}': a LABEL may not set the scope key '{key}'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_one_dockerfile() {
        assert_eq!(instructions(&["ENV a=b", "CMD x"]).unwrap(), vec!["ENV a=b", "CMD x"]);
        assert_eq!(instructions(&["ENV a=b \\", "  c=d", "CMD x"]).unwrap(), vec!["ENV a=b   c=d", "CMD x"]);
        assert_eq!(instructions(&["ENV a=b \\\n c=d"]).unwrap(), vec!["ENV a=b  c=d"]);
        assert_eq!(instructions(&["ENV a=b \\\r", "c=d"]).unwrap(), vec!["ENV a=b c=d"]);
    }

    #[test]
    fn a_trailing_continuation_is_refused() {
        for changes in [&["CMD x \\"][..], &["CMD x\\ \t"], &["ENV a=b", "CMD x \\", ""], &["CMD x \\\n"], &["CMD x \\\r"]] {
            let e = instructions(changes).unwrap_err();
            assert!(e.contains("line continuation"), "{changes:?}: {e}");
        }
    }

    #[test]
    fn directives_and_comments_are_refused() {
        for changes in [&["# escape=`", "LABEL a=b `"][..], &["#escape=`"], &["ENV a=b \\", "# c", "c=d"], &["  # x"]] {
            assert!(instructions(changes).unwrap_err().contains("parser directives"), "{changes:?}");
        }
    }

    #[test]
    fn the_scope_key_cannot_be_set() {
        for changes in [
            &["LABEL berth.tenant=red"][..],
            &["label \"berth.te\\nant\"=red"],
            &["ENV a=b", "LABEL \\", "berth.tenant=red"],
            &["ONBUILD LABEL berth.tenant=red"],
            &["LABEL x=1 'berth.tenant'=red"],
        ] {
            assert!(check_changes(changes, "berth.tenant").unwrap_err().contains("scope key"), "{changes:?}");
        }
        assert!(check_changes(&["ENV berth.tenant=1", "CMD [\"sh\"]", "LABEL x=1"], "berth.tenant").is_ok());
    }
}
