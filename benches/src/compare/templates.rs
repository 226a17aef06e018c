//! The peers' configuration files: templates in `benches/templates/` (compiled in), `{{NAME}}`
//! placeholders filled from a list of values.

use std::path::Path;

/// Every template, by file name.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "nginx-backend.conf",
        include_str!("../../templates/nginx-backend.conf"),
    ),
    (
        "nginx-proxy.conf",
        include_str!("../../templates/nginx-proxy.conf"),
    ),
    (
        "nginx-https.conf",
        include_str!("../../templates/nginx-https.conf"),
    ),
    (
        "ringway-https.toml",
        include_str!("../../templates/ringway-https.toml"),
    ),
    ("haproxy.cfg", include_str!("../../templates/haproxy.cfg")),
    (
        "rathole-server.toml",
        include_str!("../../templates/rathole-server.toml"),
    ),
    (
        "rathole-client.toml",
        include_str!("../../templates/rathole-client.toml"),
    ),
];

/// Fills template `name` with `vars`; every placeholder must get a value.
pub fn render(name: &str, vars: &[(&str, String)]) -> Result<String, String> {
    let (_, text) = TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("no template {name} in benches/templates"))?;
    let mut out = (*text).to_owned();
    for (key, value) in vars {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = out.find("{{") {
        let rest = &out[at..];
        let end = rest.find("}}").map_or(rest.len(), |e| e + 2);
        return Err(format!(
            "template {name}: no value for {}",
            &rest[..end.min(40)]
        ));
    }
    Ok(out)
}

/// Renders `name` into `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, vars: &[(&str, String)]) -> Result<String, String> {
    let path = dir.join(name);
    std::fs::write(&path, render(name, vars)?)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder() {
        let vars = [
            ("WORK", "/tmp/w".to_owned()),
            ("NOFILE", "4096".to_owned()),
            ("PORT", "1".to_owned()),
            ("BACKEND_PORT", "2".to_owned()),
        ];
        let text = render("nginx-proxy.conf", &vars).unwrap();
        assert!(text.contains("server 127.0.0.1:2; keepalive 64;"));
        assert!(text.contains("listen 127.0.0.1:1 backlog=4096;"));
    }

    #[test]
    fn the_https_templates_pin_the_same_parameters() {
        let vars = [
            ("WORK", "/tmp/w".to_owned()),
            ("NOFILE", "4096".to_owned()),
            ("PORT", "1".to_owned()),
            ("BACKEND_PORT", "2".to_owned()),
            ("HOST", "bench.test".to_owned()),
            ("TLS_CERT", "/tmp/w/tls/cert.pem".to_owned()),
            ("TLS_KEY", "/tmp/w/tls/key.pem".to_owned()),
            ("TLS_CIPHER", "TLS_AES_128_GCM_SHA256".to_owned()),
            ("TLS_GROUP", "X25519".to_owned()),
        ];
        let nginx = render("nginx-https.conf", &vars).unwrap();
        assert!(nginx.contains("listen 127.0.0.1:1 ssl backlog=4096;"));
        assert!(nginx.contains("ssl_session_tickets off;"));
        let ringway = render("ringway-https.toml", &vars).unwrap();
        assert!(ringway.contains("session_tickets = false"));
        assert!(ringway.contains("cert = \"/tmp/w/tls/cert.pem\""));
    }

    #[test]
    fn a_missing_value_is_named() {
        let err = render("haproxy.cfg", &[("WORK", "/w".to_owned())]).unwrap_err();
        assert!(err.contains("{{MAXCONN}}"), "{err}");
    }
}
