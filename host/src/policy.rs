//! What an invocation may ask of the engine. The host checks every engine call here before
//! it reaches the transport, whatever the component claims.

use http::Method;

/// Per-invocation policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Only GET and HEAD: set for actions declared read-only (and read-only tenants).
    pub read_only: bool,
    /// `(key, value)`: only objects carrying this label may be seen or touched (server mode).
    pub label_scope: Option<(String, String)>,
}

impl Policy {
    pub fn for_action(read_only: bool) -> Self {
        Policy { read_only, label_scope: None }
    }

    /// Ok, or the reason the call is refused.
    pub fn check(&self, action: &str, method: &Method, path: &str) -> Result<(), String> {
        if self.read_only && !(method == Method::GET || method == Method::HEAD) {
            return Err(format!(
                "{action} is read-only: {method} {path} refused (only GET and HEAD are allowed)"
            ));
        }
        Ok(())
    }
}

/// The methods the Engine API uses; anything else is refused as invalid.
pub fn parse_method(m: &str) -> Result<Method, String> {
    match m.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "HEAD" => Ok(Method::HEAD),
        "POST" => Ok(Method::POST),
        "PUT" => Ok(Method::PUT),
        "DELETE" => Ok(Method::DELETE),
        _ => Err(format!("HTTP method '{m}' is not used by the Engine API")),
    }
}

/// Headers the host owns; a guest may not set them.
pub fn guest_header_allowed(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !matches!(
        n.as_str(),
        "host" | "x-registry-auth" | "x-registry-config" | "authorization" | "content-length" | "transfer-encoding" | "connection" | "upgrade" | "te" | "trailer" | "proxy-authorization"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_allows_only_get_head() {
        let p = Policy::for_action(true);
        assert!(p.check("a", &Method::GET, "/x").is_ok());
        assert!(p.check("a", &Method::HEAD, "/x").is_ok());
        let e = p.check("system.info", &Method::POST, "/containers/x/stop").unwrap_err();
        assert!(e.contains("read-only") && e.contains("POST /containers/x/stop"), "{e}");
        assert!(p.check("a", &Method::DELETE, "/x").is_err());
        assert!(Policy::for_action(false).check("a", &Method::DELETE, "/x").is_ok());
    }

    #[test]
    fn methods_and_headers() {
        assert_eq!(parse_method("get").unwrap(), Method::GET);
        assert!(parse_method("CONNECT").is_err());
        assert!(!guest_header_allowed("X-Registry-Auth"));
        assert!(guest_header_allowed("Content-Type"));
    }
}
