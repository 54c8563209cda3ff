//! A workload as a validated domain type, and the validation of each field to
//! Kubernetes' own rules, so nothing invalid is ever sent to the apiserver.
//!
//! Parsing collects every problem, keyed by form field, so a failed form can
//! show each message beside its field.

/// Longest name that fits a Deployment's pods, its Service and its DNS label.
///
/// A Service name is a DNS-1035 label (≤ 63), and pod names add a ReplicaSet
/// hash and a random suffix (up to 17 characters) to the Deployment's name;
/// 47 keeps every generated name a valid label.
pub const MAX_NAME_LEN: usize = 47;

/// The deploy form's fields in the order the page shows them, so the error
/// summary at the top reads in the same order as the form. `quota` is the
/// quota panel below the fields.
pub const FORM_ORDER: [&str; 23] = [
    "name",
    "image_source",
    "image_id",
    "image",
    "replicas",
    "container_port",
    "command",
    "args",
    "env",
    "cpu_request",
    "cpu_limit",
    "memory_request",
    "memory_limit",
    "volume",
    "volume_size",
    "storage_class",
    "existing_claim",
    "mount_path",
    "exposure",
    "published_port",
    "target_port",
    "protocol",
    "quota",
];

pub use crate::web::FieldErrors;

/// No messages yet, kept in [`FORM_ORDER`] whatever order the checks run in.
pub fn field_errors() -> FieldErrors {
    FieldErrors::in_order(&FORM_ORDER)
}

/// Who may reach a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// No Service.
    None,
    /// A ClusterIP Service: only other workloads in the cluster.
    Cluster,
    /// A LoadBalancer on the default (campus) address pool.
    Campus,
    /// A LoadBalancer on the public pool (the configured annotation).
    Public,
}

impl Exposure {
    /// Parses the form value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "cluster" => Some(Self::Cluster),
            "campus" => Some(Self::Campus),
            "public" => Some(Self::Public),
            _ => None,
        }
    }

    /// The form value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Cluster => "cluster",
            Self::Campus => "campus",
            Self::Public => "public",
        }
    }
}

/// A transport protocol for a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// Kubernetes' spelling.
    pub fn as_k8s(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// Published port (what clients connect to) → target port (what the container listens on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// Port on the Service's address.
    pub published: u16,
    /// Port inside the container.
    pub target: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// Where the volume comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimSource {
    /// A PersistentVolumeClaim that already exists in the namespace.
    Existing(String),
    /// A new claim Berth creates, named after the workload.
    New {
        /// Requested size, a Kubernetes quantity (`10Gi`).
        size: String,
        /// Storage class; the cluster default when absent.
        storage_class: Option<String>,
    },
}

/// A persistent volume mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Which claim.
    pub claim: ClaimSource,
    /// Absolute path inside the container.
    pub mount_path: String,
}

/// CPU and memory requests and limits, each a Kubernetes quantity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// `requests.cpu`.
    pub cpu_request: Option<String>,
    /// `limits.cpu`.
    pub cpu_limit: Option<String>,
    /// `requests.memory`.
    pub memory_request: Option<String>,
    /// `limits.memory`.
    pub memory_limit: Option<String>,
}

/// Everything needed to build a workload's Kubernetes objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Namespace it lives in.
    pub namespace: String,
    /// Name of the Deployment, its Service, its claim.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Name of the image pull Secret, for a registered image.
    pub pull_secret: Option<String>,
    /// Desired pods.
    pub replicas: i32,
    /// Port the container listens on, if any.
    pub container_port: Option<u16>,
    /// Replaces the image's entrypoint when not empty.
    pub command: Vec<String>,
    /// Replaces the image's arguments when not empty.
    pub args: Vec<String>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Requests and limits.
    pub resources: Resources,
    /// An optional persistent volume.
    pub volume: Option<Volume>,
    /// Who may reach it.
    pub exposure: Exposure,
    /// Published → target ports (empty when not exposed).
    pub ports: Vec<PortMapping>,
    /// Email of who deployed it (an annotation).
    pub owner: String,
}

/// Checks a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, ≤ `max` characters).
pub fn check_dns_label(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("Enter a name.".to_owned());
    }
    if value.len() > max {
        return Err(format!(
            "Use at most {max} characters (this has {}).",
            value.len()
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("Use only lowercase letters, digits and '-'.".to_owned());
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err("Start and end with a letter or digit.".to_owned());
    }
    Ok(())
}

/// Checks a workload name: a DNS-1123 label that also fits a Service name
/// (which must start with a letter) and the generated pod names.
pub fn check_workload_name(value: &str) -> Result<(), String> {
    check_dns_label(value, MAX_NAME_LEN)?;
    if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("Start with a lowercase letter (Service names must).".to_owned());
    }
    Ok(())
}

/// Checks a Kubernetes quantity (`500m`, `1.5`, `2Gi`, `1e3`) to the
/// apiserver's grammar, and that it is not negative.
pub fn check_quantity(value: &str) -> Result<(), String> {
    crate::kube::quantity::amount(value)
        .map(|_| ())
        .map_err(|e| format!("'{value}' is not an amount Kubernetes understands. {e}"))
}

/// Checks an environment variable name the way the apiserver does
/// (`[-._a-zA-Z][-._a-zA-Z0-9]*`).
pub fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '-' || c == '.');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid variable name: use letters, digits, '_', '-' and '.', not starting with a digit."
        ))
    }
}

/// Checks a mount path: absolute, no `..` segment, no `:`.
pub fn check_mount_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("Use an absolute path, like /workspace.".to_owned());
    }
    if path.split('/').any(|segment| segment == "..") || path.contains(':') {
        return Err("The path may not contain '..' or ':'.".to_owned());
    }
    if path == "/" {
        return Err("Mount the volume in a folder, not at /.".to_owned());
    }
    Ok(())
}

/// Parses a port number 1–65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "'{}' is not a port: use a number from 1 to 65535.",
            text.trim()
        )),
        Ok(port) => Ok(port),
    }
}

/// Splits a command line the way a POSIX shell would (quotes kept together).
pub fn split_command(text: &str) -> Result<Vec<String>, String> {
    shell_words::split(text).map_err(|_| {
        "This has an unclosed quote. Close it, or escape the quote with \\.".to_owned()
    })
}

/// Parses `NAME=value` lines; blank lines are skipped.
pub fn parse_env(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("Line {}: write NAME=value.", number + 1));
        };
        let name = name.trim();
        check_env_name(name).map_err(|e| format!("Line {}: {e}", number + 1))?;
        if vars.iter().any(|(n, _): &(String, String)| n == name) {
            return Err(format!("Line {}: {name} is set twice.", number + 1));
        }
        vars.push((name.to_owned(), value.to_owned()));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_follow_kubernetes_rules() {
        assert!(check_workload_name("add-two").is_ok());
        assert!(check_workload_name("a").is_ok());
        assert!(check_workload_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        for bad in [
            "", "Add-Two", "add_two", "-add", "add-", "2fast", "add.two", "naïve",
        ] {
            assert!(check_workload_name(bad).is_err(), "{bad}");
        }
        assert!(check_workload_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn quantities_follow_the_apiserver_grammar() {
        for good in [
            "1", "500m", "0.5", "2Gi", "512Mi", "1e3", "1E-2", "+1", "100k", "1.5Gi",
        ] {
            assert!(check_quantity(good).is_ok(), "{good}");
        }
        for bad in ["", "-1", "1GB", "abc", "1..5", "Gi", "1 Gi", "1e", "m"] {
            assert!(check_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_lines_parse_and_refuse_bad_names_and_duplicates() {
        assert_eq!(
            parse_env("A=1\n\nBASE_URL=/lab?x=a=b\r\nEMPTY=\n").expect("valid"),
            vec![
                ("A".into(), "1".into()),
                ("BASE_URL".into(), "/lab?x=a=b".into()),
                ("EMPTY".into(), String::new())
            ]
        );
        assert!(parse_env("1A=x").is_err());
        assert!(parse_env("NOEQUALS").is_err());
        assert!(
            parse_env("A=1\nA=2")
                .expect_err("duplicate")
                .contains("twice")
        );
    }

    #[test]
    fn commands_split_like_a_shell() {
        assert_eq!(
            split_command(r#"python -c "print('hi there')" --x"#).expect("valid"),
            vec!["python", "-c", "print('hi there')", "--x"]
        );
        assert!(split_command("echo 'unclosed").is_err());
        assert!(split_command("").expect("empty").is_empty());
    }

    #[test]
    fn ports_and_paths() {
        assert_eq!(parse_port("5000"), Ok(5000));
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("http").is_err());
        assert!(check_mount_path("/workspace").is_ok());
        for bad in ["workspace", "/", "/a/../b", "/a:b"] {
            assert!(check_mount_path(bad).is_err(), "{bad}");
        }
    }
}
