//! Image references read as the engine reads them (the `distribution/reference` grammar and
//! its normalisation): `busybox`, `library/busybox:latest`, `docker.io/library/busybox` and
//! `index.docker.io/library/busybox:latest` all name one image, and a digest names the image
//! whatever the tag beside it says. The gate compares references only in this form.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `registry.example:5000`, `localhost`.
    pub domain: String,
    /// `library/busybox`, `team/app`.
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:…`
    pub digest: Option<String>,
}

fn component_ok(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let label = |l: &str| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'-');
    host.split('.').all(label) && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()))
}

fn tag_ok(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn digest_ok(d: &str) -> bool {
    match d.split_once(':') {
        Some((algo, hex)) => {
            !algo.is_empty()
                && algo.bytes().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'+' | b'.' | b'_' | b'-'))
                && hex.len() >= 32
                && hex.bytes().all(|x| x.is_ascii_hexdigit() && !x.is_ascii_uppercase())
        }
        None => false,
    }
}

/// The engine's split of a name into its registry and path: a first component is a registry
/// when it has a '.' or ':', is "localhost", or has an upper-case letter; `index.docker.io`
/// is `docker.io`. Holds for names the engine would refuse too (it is how their registry is
/// named for credentials).
pub fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, remainder)) if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first => (first, remainder),
        _ => (DEFAULT_DOMAIN, name),
    };
    let domain = if domain == "index.docker.io" { DEFAULT_DOMAIN } else { domain };
    (domain.to_string(), path.to_string())
}

impl Reference {
    /// Parses `s` as the engine does, or says why the engine would refuse it.
    pub fn parse(s: &str) -> Result<Reference, String> {
        let bad = |why: &str| Err(format!("'{s}' is not a valid image reference ({why})"));
        if s.is_empty() || s.len() > 255 + 64 + 130 {
            return bad("empty or too long");
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !digest_ok(d) {
                    return bad("bad digest");
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].split_once(':') {
            Some((_, t)) => {
                if !tag_ok(t) {
                    return bad("bad tag");
                }
                (&rest[..rest.len() - t.len() - 1], Some(t.to_string()))
            }
            None => (rest, None),
        };
        let (domain, mut path) = split_domain(name);
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("library/{path}");
        }
        if !domain_ok(&domain) {
            return bad("bad registry host");
        }
        if path.to_lowercase() != path {
            return bad("repository names must be lowercase");
        }
        if !path.split('/').all(component_ok) {
            return bad("bad repository name");
        }
        Ok(Reference { domain, path, tag, digest })
    }

    /// The same reference with `latest` where neither a tag nor a digest is given.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// `docker.io/library/busybox` → `busybox`; the name the docker CLI shows.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix("library/").filter(|p| !p.contains('/')).unwrap_or(&self.path).to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The docker CLI's form: `busybox:latest`, `registry:5000/app@sha256:…`.
    pub fn familiar(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix())
    }

    /// Every spelling a tenant's glob may have meant: familiar and full.
    pub fn spellings(&self) -> [String; 2] {
        [self.familiar(), self.to_string()]
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.full_name(), self.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_as_the_engine_does() {
        for s in ["busybox", "library/busybox", "docker.io/busybox", "docker.io/library/busybox", "index.docker.io/library/busybox"] {
            let r = Reference::parse(s).unwrap().with_default_tag();
            assert_eq!(r.to_string(), "docker.io/library/busybox:latest", "{s}");
            assert_eq!(r.familiar(), "busybox:latest", "{s}");
        }
        let r = Reference::parse("berth-test/busybox:1").unwrap();
        assert_eq!(r.familiar(), "berth-test/busybox:1");
        assert_eq!(r.to_string(), "docker.io/berth-test/busybox:1");
        let r = Reference::parse("localhost:5000/x/y:2").unwrap();
        assert_eq!((r.domain.as_str(), r.path.as_str(), r.tag.as_deref()), ("localhost:5000", "x/y", Some("2")));
        let r = Reference::parse("Registry/app").unwrap();
        assert_eq!(r.domain, "Registry", "an upper-case first component is a registry host");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("app:1@{d}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (Some("1"), Some(d.as_str())));
        assert_eq!(r.familiar(), format!("app:1@{d}"));
    }

    #[test]
    fn what_the_engine_refuses_is_refused() {
        for s in ["x:v9:v8", "Busybox", "app/UP", "a//b", "-a", "a:", "a@sha256:zz", "a:-t", "", "app:t@", "a b"] {
            assert!(Reference::parse(s).is_err(), "{s}");
        }
    }
}
