//! The Engine API's own route table: every `(method, path template)` of API v1.41 and v1.56,
//! taken from the spec files (`spec-routes.txt`). A request that matches no route is refused.
//!
//! Matching follows moby's router: the path is percent-decoded first (`%2F` is a `/`), and the
//! object parameter of containers, images, volumes, networks, exec, plugins and distribution
//! is greedy (`{name:.*}`), so `/containers/a/b/json` names the container `a/b` (a legacy
//! link alias), and `/images/reg:5000/x/tag` names the image `reg:5000/x`.

use std::sync::OnceLock;

use http::Method;

/// The spec's routes, one per line: `METHOD /path/{param} versions`.
const SPEC_ROUTES: &str = include_str!("spec-routes.txt");

/// One route of the Engine API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// The spec's template, e.g. `/containers/{id}/json`.
    pub template: &'static str,
    /// Literal segments before the parameter (or all of them).
    prefix: Vec<&'static str>,
    /// Literal segments after the parameter.
    suffix: Vec<&'static str>,
    /// Whether the template has a parameter.
    has_param: bool,
    /// Whether the parameter may span several segments (moby's `{name:.*}`).
    pub greedy: bool,
    /// The spec's operationId, e.g. `ContainerList`.
    pub operation: &'static str,
}

/// A request matched to its route, with the object it names (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: &'static Route,
    /// The path parameter as the engine will read it (percent-decoded; may hold `/`).
    pub param: Option<String>,
}

impl Matched {
    /// The first segment of the template: `containers`, `images`, `_ping`…
    pub fn family(&self) -> &'static str {
        self.route.prefix.first().copied().unwrap_or("")
    }

    /// The template's segments after the parameter, joined: `json`, `attach/ws`, ``.
    pub fn tail(&self) -> String {
        self.route.suffix.join("/")
    }

    /// The path to send: the template with `param` percent-encoded, so that the engine reads
    /// exactly the object the gate checked.
    pub fn path_with(&self, param: Option<&str>) -> String {
        let mut out = String::new();
        for s in &self.route.prefix {
            out.push('/');
            out.push_str(s);
        }
        if let Some(p) = param.or(self.param.as_deref()) {
            out.push('/');
            encode_segment(p, &mut out);
        }
        for s in &self.route.suffix {
            out.push('/');
            out.push_str(s);
        }
        out
    }
}

/// Families whose object parameter moby matches with `{name:.*}`.
const GREEDY: &[&str] = &["containers", "images", "volumes", "networks", "exec", "plugins", "distribution"];

/// The route table, parsed once.
pub fn table() -> &'static [Route] {
    static TABLE: OnceLock<Vec<Route>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut routes: Vec<Route> = SPEC_ROUTES
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let mut f = l.split_whitespace();
                let method = f.next().and_then(|m| m.parse::<Method>().ok()).expect("spec-routes.txt: method");
                let template = f.next().expect("spec-routes.txt: path");
                let operation = f.nth(1).expect("spec-routes.txt: operationId");
                let segs: Vec<&'static str> = template.trim_start_matches('/').split('/').collect();
                let param_at = segs.iter().position(|s| s.starts_with('{'));
                let (prefix, suffix, has_param) = match param_at {
                    Some(i) => (segs[..i].to_vec(), segs[i + 1..].to_vec(), true),
                    None => (segs, Vec::new(), false),
                };
                let greedy = has_param && prefix.first().is_some_and(|f| GREEDY.contains(f));
                Route { method, template, prefix, suffix, has_param, greedy, operation }
            })
            .collect();
        // Literal routes first (`/images/json` before `/images/{name}/json`), then the longest
        // literal tail first, as moby registers them.
        routes.sort_by_key(|r| (r.has_param, std::cmp::Reverse(r.suffix.len())));
        routes
    })
}

/// Why a path matches no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRoute(pub String);

/// Matches a guest's path (already checked by `engine::path::validate_path`) the way the
/// engine's router will.
pub fn match_route(method: &Method, raw_path: &str) -> Result<Matched, NoRoute> {
    let decoded = percent_decode(raw_path).ok_or_else(|| NoRoute(format!("engine path '{raw_path}' does not decode to UTF-8")))?;
    if decoded.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(NoRoute(format!("engine path '{raw_path}' holds control characters")));
    }
    let segs: Vec<&str> = decoded.trim_start_matches('/').split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(NoRoute(format!("engine path '{raw_path}' has an empty segment")));
    }
    for r in table().iter().filter(|r| r.method == *method) {
        if !r.has_param {
            if segs == r.prefix {
                return Ok(Matched { route: r, param: None });
            }
            continue;
        }
        let (p, s) = (r.prefix.len(), r.suffix.len());
        if segs.len() < p + s + 1 || segs[..p] != r.prefix[..] || segs[segs.len() - s..] != r.suffix[..] {
            continue;
        }
        let middle = &segs[p..segs.len() - s];
        if middle.len() > 1 && !r.greedy {
            continue;
        }
        return Ok(Matched { route: r, param: Some(middle.join("/")) });
    }
    Err(NoRoute(format!("{method} {raw_path} is not an Engine API route")))
}

/// Decodes strictly: a bad escape or a result that is not UTF-8 is `None`.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let bad_escape =
        b.iter().enumerate().any(|(i, &c)| c == b'%' && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)));
    if bad_escape {
        return None;
    }
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

/// What a path segment keeps unescaped: unreserved characters, `:` and `@`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b':').remove(b'@');

/// `s` encoded as one path segment ([`encode_segment`]).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    encode_segment(s, &mut out);
    out
}

/// Percent-encodes one path segment: everything but unreserved characters, `:` and `@`.
pub fn encode_segment(s: &str, out: &mut String) {
    out.extend(percent_encoding::utf8_percent_encode(s, SEGMENT));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(template: &str, value: &str) -> String {
        let mut out = String::new();
        for seg in template.trim_start_matches('/').split('/') {
            out.push('/');
            if seg.starts_with('{') {
                encode_segment(value, &mut out);
            } else {
                out.push_str(seg);
            }
        }
        out
    }

    /// Every route of v1.41 and v1.56 matches itself, with the object it names.
    #[test]
    fn every_spec_route_matches_itself() {
        let mut versions = std::collections::BTreeMap::<&str, usize>::new();
        for line in SPEC_ROUTES.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let mut f = line.split_whitespace();
            let (m, t, vs) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            for v in vs.split(',') {
                *versions.entry(v).or_default() += 1;
            }
            let method: Method = m.parse().unwrap();
            for value in ["abc123", "reg.example:5000/team/app:1.0", "a/b", "x@sha256:00ff"] {
                let path = sample(t, value);
                let got = match_route(&method, &path);
                let greedy = GREEDY.iter().any(|g| t.starts_with(&format!("/{g}/{{")));
                if !t.contains('{') {
                    assert_eq!(got.unwrap().route.template, t);
                    break;
                }
                // An encoded slash is a slash to the engine: single-segment routes refuse it.
                if value.contains('/') && !greedy {
                    assert!(got.is_err() || got.as_ref().unwrap().route.template != t, "{m} {path}");
                    continue;
                }
                let got = got.unwrap_or_else(|e| panic!("{m} {path}: {e:?}"));
                assert_eq!((got.route.template, got.param.as_deref()), (t, Some(value)), "{m} {path}");
                // The canonical path names the same object.
                assert_eq!(match_route(&method, &got.path_with(None)).unwrap().param.as_deref(), Some(value));
            }
        }
        assert_eq!(versions.get("1.41"), Some(&106));
        assert_eq!(versions.get("1.56"), Some(&108));
    }

    #[test]
    fn the_spec_files_agree_when_present() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/engine-api");
        for v in ["v1.41", "v1.56"] {
            let Ok(text) = std::fs::read_to_string(dir.join(format!("{v}.yaml"))) else { return };
            // Path keys sit at two spaces under `paths:`; each names its methods below.
            let mut in_paths = false;
            let mut path = String::new();
            let mut n = 0;
            let (mut pending, mut ops) = (None::<&str>, 0);
            for line in text.lines() {
                if line == "paths:" {
                    in_paths = true;
                    continue;
                }
                if in_paths && !line.starts_with(' ') && !line.is_empty() {
                    break;
                }
                if in_paths && line.starts_with("  /") && line.ends_with(':') {
                    path = line.trim().trim_end_matches(':').to_string();
                } else if in_paths && line.starts_with("    ") && !line.starts_with("     ") {
                    let m = line.trim().trim_end_matches(':').to_ascii_uppercase();
                    if ["GET", "POST", "PUT", "DELETE", "HEAD"].contains(&m.as_str()) {
                        n += 1;
                        let method: Method = m.parse().unwrap();
                        let got = match_route(&method, &sample(&path, "x")).unwrap();
                        assert_eq!(got.route.template, path, "{v}: {m} {path}");
                        pending = Some(got.route.operation);
                    }
                } else if let (Some(op), Some(id)) = (pending, line.trim().strip_prefix("operationId: ")) {
                    assert_eq!(op, id.trim_matches('"'), "{v}: {path}");
                    pending = None;
                    ops += 1;
                }
            }
            assert!(n >= 106, "{v}: only {n} operations read");
            assert_eq!(ops, n, "{v}: every operation's operationId is in the route table");
        }
    }

    #[test]
    fn greedy_names_are_what_the_engine_reads() {
        let m = match_route(&Method::GET, "/containers/own/alias/json").unwrap();
        assert_eq!((m.route.template, m.param.as_deref()), ("/containers/{id}/json", Some("own/alias")));
        let m = match_route(&Method::POST, "/images/reg:5000/their/app/tag").unwrap();
        assert_eq!((m.route.template, m.param.as_deref()), ("/images/{name}/tag", Some("reg:5000/their/app")));
        let m = match_route(&Method::POST, "/images/reg:5000%2Ftheir%2Fapp/tag").unwrap();
        assert_eq!(m.param.as_deref(), Some("reg:5000/their/app"));
        assert_eq!(m.path_with(None), "/images/reg:5000%2Ftheir%2Fapp/tag");
        let m = match_route(&Method::DELETE, "/images/a/tag").unwrap();
        assert_eq!((m.route.template, m.param.as_deref()), ("/images/{name}", Some("a/tag")));
        let m = match_route(&Method::GET, "/images/get").unwrap();
        assert_eq!(m.route.template, "/images/get");
        let m = match_route(&Method::GET, "/images/x/history/json").unwrap();
        assert_eq!((m.route.template, m.param.as_deref()), ("/images/{name}/json", Some("x/history")));
        let m = match_route(&Method::GET, "/containers/json").unwrap();
        assert_eq!(m.route.template, "/containers/json");
        let m = match_route(&Method::GET, "/networks/a/b").unwrap();
        assert_eq!(m.param.as_deref(), Some("a/b"));
    }

    #[test]
    fn unknown_and_odd_paths_are_refused() {
        for (m, p) in [
            (Method::GET, "/containers"),
            (Method::GET, "/secrets/a/b"),
            (Method::GET, "/services/a%2Fb"),
            (Method::POST, "/containers/json"),
            (Method::GET, "/containers//json"),
            (Method::GET, "/containers/a/json/"),
            (Method::GET, "/nothing"),
            (Method::GET, "/containers/%ff/json"),
            (Method::GET, "/containers/a%0a/json"),
            (Method::PUT, "/containers/x/start"),
        ] {
            assert!(match_route(&m, p).is_err(), "{m} {p}");
        }
    }

    /// Any path built from slashes, dots, colons, `@` and their encodings either matches no
    /// route or names, through the canonical path, the same object the engine reads.
    #[test]
    fn property_paths_with_odd_characters() {
        let alphabet = ["a", "/", "%2F", "%2f", ".", ":", "@", "%40", "%3A", "json", "tag", "b"];
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let fam = ["containers", "images", "volumes", "networks", "exec", "secrets"][(next() % 6) as usize];
            let mut p = format!("/{fam}/");
            for _ in 0..(1 + next() % 6) {
                p.push_str(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            for method in [Method::GET, Method::POST, Method::DELETE] {
                if crate::engine::path::validate_path(&p).is_err() {
                    continue;
                }
                if let Ok(m) = match_route(&method, &p) {
                    let canon = m.path_with(None);
                    let again = match_route(&method, &canon).unwrap();
                    assert_eq!((again.route.template, &again.param), (m.route.template, &m.param), "{p} -> {canon}");
                    // What the engine decodes from the original equals what it decodes from ours.
                    assert_eq!(percent_decode(&canon), percent_decode(&p), "{p}");
                    if let Some(param) = &m.param {
                        assert!(!param.is_empty());
                        if !m.route.greedy {
                            assert!(!param.contains('/'));
                        }
                    }
                }
            }
        }
    }
}
