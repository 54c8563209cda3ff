//! The kubeconfig file itself, as text: pure, so its shape is unit-tested.

use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};

/// Everything the file says.
pub struct KubeconfigFile<'a> {
    /// `https://host:port` of the apiserver.
    pub server: &'a str,
    /// PEM text of the CA certificates (`None`: the system's roots).
    pub ca_pem: Option<&'a str>,
    /// The namespace the context starts in.
    pub namespace: &'a str,
    /// The person's email (for the comment only).
    pub email: &'a str,
    /// The person's ServiceAccount name.
    pub account: &'a str,
    /// The token.
    pub token: &'a SecretString,
    /// When the token stops working, as `2026-11-30 14:05 UTC`.
    pub expires: &'a str,
    /// The same as RFC 3339.
    pub expires_rfc3339: &'a str,
}

/// DER certificates as PEM text.
pub fn pem_of(certificates: &[Vec<u8>]) -> String {
    let mut pem = String::new();
    for der in certificates {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let text = STANDARD.encode(der);
        for line in text.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// Names in the file say whose it is and until when, so a person with several
/// can tell them apart (`kubectl config get-contexts`).
pub fn context_name(namespace: &str) -> String {
    format!("berth-{namespace}")
}

/// The file's text: comments saying what it is and when it expires, then the
/// YAML (written through serde so every value is quoted as YAML needs).
pub fn render(file: &KubeconfigFile<'_>) -> Result<String, serde_saphyr::ser::Error> {
    let context = context_name(file.namespace);
    let user = format!("{}-until-{}", file.account, file.expires_rfc3339);
    let mut cluster = serde_json::json!({ "server": file.server });
    if let Some(pem) = file.ca_pem {
        cluster["certificate-authority-data"] = STANDARD.encode(pem).into();
    }
    let document = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "berth", "cluster": cluster }],
        "users": [{ "name": user, "user": { "token": file.token.expose_secret() } }],
        "contexts": [{
            "name": context,
            "context": { "cluster": "berth", "user": user, "namespace": file.namespace }
        }],
        "current-context": context,
        "preferences": {},
    });
    let yaml = serde_saphyr::to_string(&document)?;
    Ok(format!(
        "# kubeconfig from Berth for {email}, starting in namespace {ns}.\n\
         # Its token acts as {account} with exactly your memberships' rights.\n\
         # It expires at {expires} ({rfc}); download a new one from Berth then.\n\
         # Keep it private: anyone holding it acts as you until it expires.\n\
         {yaml}",
        email = file.email.replace(['\n', '\r'], " "),
        ns = file.namespace,
        account = file.account,
        expires = file.expires,
        rfc = file.expires_rfc3339,
    ))
}

/// How long a downloaded kubeconfig works, for the pages that offer it.
pub fn validity_words(hours: u32) -> String {
    if hours == 1 {
        "1 hour".to_owned()
    } else {
        format!("{hours} hours")
    }
}

/// The attachment's file name.
pub fn file_name(namespace: &str) -> String {
    format!("berth-{namespace}.kubeconfig")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_the_expiry_and_holds_only_the_token() {
        let token = SecretString::from("tok.en.value".to_owned());
        let text = render(&KubeconfigFile {
            server: "https://k8s.example:6443",
            ca_pem: Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            namespace: "cs101",
            email: "a@x.edu",
            account: "p-a-x-edu-0123456789abcdef",
            token: &token,
            expires: "2026-12-02 22:00 UTC",
            expires_rfc3339: "2026-12-02T22:00:00Z",
        })
        .expect("renders");
        assert!(
            text.contains("# It expires at 2026-12-02 22:00 UTC"),
            "{text}"
        );
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
        assert_eq!(value["current-context"], "berth-cs101");
        assert_eq!(value["contexts"][0]["context"]["namespace"], "cs101");
        assert_eq!(
            value["users"][0]["name"],
            "p-a-x-edu-0123456789abcdef-until-2026-12-02T22:00:00Z"
        );
        assert_eq!(
            value["users"][0]["user"],
            serde_json::json!({"token": "tok.en.value"})
        );
        assert_eq!(
            value["clusters"][0]["cluster"]["server"],
            "https://k8s.example:6443"
        );
        let ca = value["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .expect("CA");
        assert!(
            String::from_utf8(STANDARD.decode(ca).expect("base64"))
                .expect("PEM")
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }

    #[test]
    fn der_becomes_pem_in_64_column_lines() {
        let pem = pem_of(&[vec![0u8; 100]]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END CERTIFICATE-----"));
    }
}
