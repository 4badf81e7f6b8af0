//! Checks on what a guest may put in an engine request line.

/// A guest-supplied API path: absolute, no scheme or host, no `..`, no version prefix,
/// no query or fragment, only URI path characters.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.len() > 4096 {
        return Err("engine path is longer than 4096 bytes".into());
    }
    if !path.starts_with('/') {
        return Err(format!("engine path '{path}' must start with '/'"));
    }
    if path.starts_with("//") || path.contains("://") {
        return Err(format!("engine path '{path}' must not name a scheme or host"));
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !ok {
                    return Err(format!("engine path '{path}' has a bad percent-escape"));
                }
                i += 3;
                continue;
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => {}
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@' | b'/' => {}
            b'?' | b'#' => return Err(format!("engine path '{}' must not hold a query or fragment; pass query pairs separately", path.escape_default())),
            _ => return Err(format!("engine path '{}' holds a character not allowed in a URI path", path.escape_default())),
        }
        i += 1;
    }
    // Check the decoded path: the engine's router decodes before matching, so an encoded
    // slash must not smuggle in a `..` segment either.
    let decoded = percent_decode_lossy(path);
    if decoded.split(['/', '\\']).any(|seg| seg == ".." || seg == ".") {
        return Err(format!("engine path '{path}' must not contain '.' or '..' segments"));
    }
    if path.split('/').nth(1).is_some_and(|first| is_version_prefix(&percent_decode_lossy(first))) {
        return Err(format!("engine path '{path}' must not carry a version prefix; the host adds it"));
    }
    Ok(())
}

fn is_version_prefix(seg: &str) -> bool {
    let Some(rest) = seg.strip_prefix(['v', 'V']) else { return false };
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.') && rest.as_bytes()[0].is_ascii_digit()
}

/// Percent-decodes, leaving bad escapes as they are.
pub fn percent_decode_lossy(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// What a query key or value keeps unescaped: RFC 3986 unreserved characters.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `application/x-www-form-urlencoded`-style encoding of query pairs.
pub fn encode_query(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(percent_encoding::utf8_percent_encode(k, QUERY));
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(v, QUERY));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths() {
        for p in ["/_ping", "/containers/json", "/containers/abc%20def/json", "/images/busybox:latest/json", "/images/127.0.0.1:5000%2Fx/json", "/version"] {
            validate_path(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn bad_paths() {
        for p in [
            "",
            "containers/json",
            "//evil/containers",
            "http://evil/x",
            "/containers/../secrets",
            "/containers/%2e%2E/x",
            "/containers/./json",
            "/..",
            "/v1.41/containers/json",
            "/V1/containers/json",
            "/containers/json?all=1",
            "/containers/json#x",
            "/containers/a b",
            "/containers/\n",
            "/containers/%zz",
            "/containers/%2",
            "/images/a%2F..%2Fb/json",
        ] {
            assert!(validate_path(p).is_err(), "{p:?} should be refused");
        }
    }

    #[test]
    fn query_encoding() {
        let q = encode_query(&[("filters".into(), r#"{"a":["b c"]}"#.into()), ("all".into(), "1".into())]);
        assert_eq!(q, "filters=%7B%22a%22%3A%5B%22b%20c%22%5D%7D&all=1");
    }
}
