//! Engines named in a request (Flint's model): the body's `_engine` object gives a `tcp://`
//! address and its TLS material as inline PEM. Only for a tenant whose `request_engines` allow
//! the address (CIDRs, or globs on `host:port`); none by default. The name is resolved once,
//! every address it resolves to is checked, and the connection goes to the address checked
//! (the TLS name stays the host's), so DNS cannot swap the engine after the check. Such an
//! engine gets no registry credentials: it is the tenant's, not the server's.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::engine::endpoint::Endpoint;
use crate::engine::tls::{Pem, TlsSettings};

/// One entry of a tenant's `request_engines`.
#[derive(Debug, Clone)]
pub enum Rule {
    /// `10.0.0.0/8`, `fd00::/8`, or one address.
    Net(IpAddr, u8),
    /// A glob on `host:port` (`docker-*.corp.example:2376`). The addresses it resolves to must
    /// still be routable ones: loopback, link-local and unspecified need a `Net` rule.
    Name(globset::GlobMatcher, String),
}

impl Rule {
    pub fn parse(s: &str) -> Result<Rule, String> {
        let s = s.trim();
        let (ip, bits) = s.split_once('/').map_or((s, None), |(a, b)| (a, Some(b)));
        if let Ok(ip) = ip.trim_matches(['[', ']']).parse::<IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("'{s}': the prefix must be 0 to {max}"))?,
            };
            return Ok(Rule::Net(ip, bits));
        }
        if !s.contains(':') {
            return Err(format!("'{s}': a CIDR, an address, or a host:port glob (the port too)"));
        }
        let g = globset::GlobBuilder::new(&s.to_ascii_lowercase()).literal_separator(false).build().map_err(|e| format!("'{s}': {e}"))?;
        Ok(Rule::Name(g.compile_matcher(), s.to_string()))
    }
}

fn in_net(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => bits == 0 || (u32::from(n) ^ u32::from(i)) >> (32 - bits as u32) == 0,
        (IpAddr::V6(n), IpAddr::V6(i)) => bits == 0 || (u128::from(n) ^ u128::from(i)) >> (128 - bits as u32) == 0,
        _ => false,
    }
}

/// Loopback, link-local, unspecified, broadcast or multicast (`ip` already canonical).
fn special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.is_loopback() || v.is_link_local() || v.is_unspecified() || v.is_broadcast() || v.is_multicast(),
        IpAddr::V6(v) => v.is_loopback() || v.is_unspecified() || v.is_multicast() || (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether `rules` let a request reach `ip` named as `host:port`.
pub fn allowed(rules: &[Rule], host: &str, port: u16, ip: IpAddr) -> bool {
    // An IPv4-mapped IPv6 address is the IPv4 address.
    let ip = ip.to_canonical();
    let by_net = rules.iter().any(|r| matches!(r, Rule::Net(n, b) if in_net(*n, *b, ip)));
    let by_name = rules.iter().any(|r| matches!(r, Rule::Name(g, _) if g.is_match(format!("{}:{port}", host.to_ascii_lowercase()))));
    by_net || (by_name && !special(ip))
}

/// The `_engine` of a request body, taken out of the params.
pub fn take(params: &mut Map<String, Value>) -> Option<Value> {
    params.remove("_engine")
}

/// The endpoint for `spec` (the `_engine` object), checked against `rules` and pinned to the
/// address checked. Errors say what was wrong; the PEM material is never echoed.
pub async fn endpoint(rules: &[Rule], spec: &Value) -> Result<Endpoint, (bool, String)> {
    let bad = |m: String| (false, m);
    let denied = |m: String| (true, m);
    let Value::Object(m) = spec else {
        return Err(bad("_engine must be an object: {\"host\": \"tcp://HOST:PORT\", \"ca\", \"cert\", \"key\": PEM text}".into()));
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "host" | "ca" | "cert" | "key" | "server_name" | "verify") {
            return Err(bad(format!("_engine: unknown key '{k}' (host, ca, cert, key, server_name, verify)")));
        }
    }
    let text = |k: &str| -> Result<Option<String>, (bool, String)> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("_engine.{k} must be text"))),
        }
    };
    let host = text("host")?.ok_or_else(|| bad("_engine needs host: tcp://HOST:PORT".into()))?;
    let pem = |k: &str| -> Result<Option<Pem>, (bool, String)> {
        match text(k)? {
            None => Ok(None),
            Some(s) if s.contains("-----BEGIN") => Ok(Some(Pem::Inline(s))),
            Some(_) => Err(bad(format!("_engine.{k} must be PEM text (a path is not read)"))),
        }
    };
    let (ca, cert, key) = (pem("ca")?, pem("cert")?, pem("key")?);
    let verify = match m.get("verify") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("_engine.verify must be true or false".into())),
    };
    let tls = ca.is_some() || cert.is_some() || key.is_some() || !verify;
    let normal = crate::engine::transport::normalize_host(&host, tls);
    let Some(hostport) = normal.strip_prefix("tcp://") else { return Err(bad(format!("_engine.host must be a tcp:// address, not '{host}'"))) };
    if hostport.contains('@') || hostport.contains('/') {
        return Err(bad("_engine.host is tcp://HOST:PORT, without credentials or a path".into()));
    }
    let (name, port) = hostport.rsplit_once(':').ok_or_else(|| bad(format!("_engine.host '{host}' has no port")))?;
    let port: u16 = port.parse().map_err(|_| bad(format!("_engine.host '{host}': bad port")))?;
    let name = name.trim_matches(['[', ']']).to_string();
    let resolved: Vec<IpAddr> = match name.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match tokio::time::timeout(std::time::Duration::from_secs(5), tokio::net::lookup_host((name.as_str(), port))).await {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            Ok(Err(e)) => return Err(bad(format!("_engine.host: cannot resolve '{name}': {e}"))),
            Err(_) => return Err(bad(format!("_engine.host: resolving '{name}' took more than 5 s"))),
        },
    };
    if resolved.is_empty() {
        return Err(bad(format!("_engine.host: '{name}' resolves to no address")));
    }
    // Every address the name has must be allowed: a name with one good address and one bad
    // one is refused, whichever the connection would have used.
    if let Some(ip) = resolved.iter().find(|ip| !allowed(rules, &name, port, **ip)) {
        return Err(denied(format!("the engine {name}:{port} ({ip}) is not among this tenant's request_engines")));
    }
    let ip = resolved[0];
    let pinned = match ip {
        IpAddr::V4(v) => format!("tcp://{v}:{port}"),
        IpAddr::V6(v) => format!("tcp://[{v}]:{port}"),
    };
    let tls = tls.then(|| TlsSettings {
        verify,
        ca,
        cert,
        key,
        server_name: text("server_name").ok().flatten().or_else(|| name.parse::<IpAddr>().is_err().then(|| name.clone())),
    });
    if let Some(t) = &tls {
        t.client_config().map_err(|e| bad(format!("_engine TLS: {e:#}")))?;
    }
    Ok(Endpoint { host: pinned, tls, auth: None, api_version: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_take_cidrs_and_host_globs() {
        let rules: Vec<Rule> = ["10.0.0.0/8", "fd00::/8", "docker-*.corp.example:2376"].iter().map(|r| Rule::parse(r).unwrap()).collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allowed(&rules, "10.1.2.3", 2376, ip("10.1.2.3")));
        assert!(!allowed(&rules, "11.1.2.3", 2376, ip("11.1.2.3")));
        assert!(allowed(&rules, "x", 1, ip("fd12::1")));
        assert!(allowed(&rules, "docker-a.corp.example", 2376, ip("192.0.2.7")));
        assert!(!allowed(&rules, "docker-a.corp.example", 2375, ip("192.0.2.7")), "the port is part of the glob");
        assert!(!allowed(&rules, "docker-a.corp.example", 2376, ip("127.0.0.1")), "a name resolving to loopback needs a CIDR");
        assert!(!allowed(&rules, "docker-a.corp.example", 2376, ip("::ffff:127.0.0.1")));
        assert!(allowed(&rules, "x", 1, ip("::ffff:10.0.0.1")), "a mapped IPv4 address is the IPv4 address");
        assert!(Rule::parse("10.0.0.0/33").is_err() && Rule::parse("docker.corp").is_err());
        assert!(allowed(&[Rule::parse("127.0.0.1").unwrap()], "localhost", 1, ip("127.0.0.1")));
    }
}
