//! Glob lists for policies (globset): action allowlists, images, registries, drivers,
//! capabilities. `*` matches any run of characters (`/` included), `?` one, `[...]` a class,
//! `{a,b}` either; matching ignores case.

use std::fmt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Deserializer};

/// A compiled list of globs.
#[derive(Clone)]
pub struct Globs {
    patterns: Vec<String>,
    /// `None` when a pattern is a bare `*`: everything matches, and nothing is compiled (a
    /// glob set is a regex; the open policy of every CLI run holds nine of these lists).
    set: Option<GlobSet>,
}

impl Globs {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let owned = patterns.iter().map(|p| p.as_ref().to_string()).collect();
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = p.as_ref();
            let g = GlobBuilder::new(p).case_insensitive(true).literal_separator(false).build().map_err(|e| format!("\"{p}\" is not a glob: {e}"))?;
            b.add(g);
        }
        if patterns.iter().any(|p| p.as_ref() == "*") {
            return Ok(Globs { patterns: owned, set: None });
        }
        let set = b.build().map_err(|e| e.to_string())?;
        Ok(Globs { patterns: owned, set: Some(set) })
    }

    /// Matches everything.
    pub fn any() -> Self {
        Globs::new(&["*"]).expect("a valid glob")
    }

    pub fn none() -> Self {
        Globs::new::<&str>(&[]).expect("empty")
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.set.as_ref().is_none_or(|set| set.is_match(s))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl Default for Globs {
    fn default() -> Self {
        Globs::none()
    }
}

impl fmt::Debug for Globs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.patterns.fmt(f)
    }
}

impl PartialEq for Globs {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl<'de> Deserialize<'de> for Globs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        Globs::new(&v).map_err(serde::de::Error::custom)
    }
}

impl<S: AsRef<str>> From<&[S]> for Globs {
    /// For literals known to be valid; panics otherwise.
    fn from(p: &[S]) -> Self {
        Globs::new(p).expect("valid globs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let g = Globs::new(&["container.*", "*.list", "list *", "reg.example:5000/base/*"]).unwrap();
        assert!(g.is_match("container.stop") && g.is_match("image.list") && g.is_match("list container"));
        assert!(g.is_match("reg.example:5000/base/a/b:1"), "* crosses /");
        assert!(!g.is_match("system.ping"));
        assert!(Globs::new(&["NET_*"]).unwrap().is_match("net_admin"), "case is ignored");
        assert!(Globs::new(&["a[b"]).is_err());
        assert!(Globs::any().is_match("anything") && !Globs::none().is_match("x"));
        assert!(Globs::any().is_match("") && Globs::any().is_match("a/b:c"), "* matches everything, the empty name too");
        let g = Globs::new(&["x[", "*"]);
        assert!(g.is_err(), "a bad glob beside * is still an error");
    }
}
