//! Kubernetes Events (and pod waiting states) in plain words.
//!
//! The apiserver and kubelet write messages for operators; a student needs to
//! know what is wrong and what to do. These functions are pure and look only
//! at the reason and the message text, so they are unit-tested with messages
//! copied from the real components' formats. Anything not recognised is
//! passed through unchanged: a raw message beats a wrong explanation.

use crate::kube::quantity;

/// What Berth knows of the registry credential a workload pulls with, so a
/// refused pull can say whether the robot token expired or was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullCredential {
    /// The robot account name.
    pub robot: String,
    /// `YYYY-MM-DD` when the recorded expiry date has come (today or before),
    /// `None` when it has not or none was recorded.
    pub expired_on: Option<String>,
}

/// An event's reason and message turned into a sentence.
pub fn describe(reason: &str, message: &str) -> String {
    describe_with(reason, message, None)
}

/// [`describe`], knowing the workload's pull credential.
pub fn describe_with(reason: &str, message: &str, credential: Option<&PullCredential>) -> String {
    let message = message.trim();
    if let Some(sentence) = quota(message) {
        return sentence;
    }
    if let Some(sentence) = must_specify(message) {
        return sentence;
    }
    match reason {
        "Failed" | "ErrImagePull" | "ImagePullBackOff" | "BackOff" if is_pull_message(message) => {
            pull(message, credential)
        }
        "BackOff" if message.contains("restarting failed container") => crash_loop(),
        "FailedScheduling" => scheduling(message),
        _ if message.is_empty() => reason.to_owned(),
        _ => message.to_owned(),
    }
}

/// A container's waiting state (from the pod's status) in plain words, when
/// it is a problem; `None` for the ordinary `ContainerCreating`.
pub fn describe_waiting(reason: &str, message: &str) -> Option<String> {
    describe_waiting_with(reason, message, None)
}

/// [`describe_waiting`], knowing the workload's pull credential.
pub fn describe_waiting_with(
    reason: &str,
    message: &str,
    credential: Option<&PullCredential>,
) -> Option<String> {
    let message = message.trim();
    match reason {
        "ContainerCreating" | "PodInitializing" | "" => None,
        "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName" => {
            Some(pull(message, credential))
        }
        "CrashLoopBackOff" => Some(crash_loop()),
        "CreateContainerConfigError" => Some(format!(
            "the container's configuration refers to something missing: {message}"
        )),
        _ if message.is_empty() => Some(reason.to_owned()),
        _ => Some(format!("{reason}: {message}")),
    }
}

fn crash_loop() -> String {
    "the container keeps crashing: it stops soon after it starts, and Kubernetes waits longer \
     before each restart. Its logs say why."
        .to_owned()
}

/// What a quota key is called in a sentence.
fn quota_label(key: &str) -> &str {
    match key {
        "requests.memory" | "memory" => "memory",
        "limits.memory" => "memory limit",
        "requests.cpu" | "cpu" => "CPU",
        "limits.cpu" => "CPU limit",
        "pods" | "count/pods" => "pod",
        "requests.storage" => "storage",
        "persistentvolumeclaims" => "volume claim",
        "services" => "service",
        "services.loadbalancers" => "load balancer",
        "services.nodeports" => "node port",
        other => other,
    }
}

fn key_values(list: &str) -> Vec<(&str, &str)> {
    list.split(',')
        .filter_map(|pair| pair.trim().split_once('='))
        .collect()
}

/// `exceeded quota: <name>, requested: k=v,…, used: k=v,…, limited: k=v,…`
/// (the ResourceQuota admission plugin's words) → which part of the quota is
/// full, with its numbers.
fn quota(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("exceeded quota: ")?;
    let (_, rest) = rest.split_once(", requested: ")?;
    let (requested, rest) = rest.split_once(", used: ")?;
    let (used, limited) = rest.split_once(", limited: ")?;
    let requested = key_values(requested);
    let used = key_values(used);
    let limited = key_values(limited);
    let lookup = |list: &[(&str, &str)], key: &str| {
        list.iter()
            .find(|(k, _)| *k == key)
            .map_or("0", |(_, v)| *v)
            .to_owned()
    };
    let mut parts = Vec::new();
    let mut all = Vec::new();
    for (key, asked) in &requested {
        let used = lookup(&used, key);
        let Some((_, limit)) = limited.iter().find(|(k, _)| k == key) else {
            continue;
        };
        let over = match (
            quantity::parse(asked),
            quantity::parse(&used),
            quantity::parse(limit),
        ) {
            (Ok(a), Ok(u), Ok(l)) => a + u > l,
            // Numbers we cannot read: say it, rather than guess which is full.
            _ => true,
        };
        let label = quota_label(key);
        let sentence = if label == "pod" {
            format!(
                "your namespace's pod quota is full: {used} of {limit} pods in use, so another cannot start"
            )
        } else {
            format!(
                "your namespace's {label} quota is full: {used} of {limit} used and this pod asks for {asked}"
            )
        };
        if over {
            parts.push(sentence);
        } else {
            all.push(sentence);
        }
    }
    if parts.is_empty() {
        parts = all;
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "{}. Ask for less, remove or scale down something else, or ask an admin for more.",
        parts.join("; ")
    ))
}

/// `failed quota: <name>: must specify limits.memory for: web; requests.cpu for: web`
fn must_specify(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("must specify ")?;
    let keys: Vec<&str> = rest
        .split(';')
        .filter_map(|part| part.trim().split(" for:").next())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    Some(format!(
        "your namespace's quota needs every container to say how much it uses: set {} in the workload's resources.",
        keys.join(", ")
    ))
}

fn is_pull_message(message: &str) -> bool {
    let lower = message.to_lowercase();
    (lower.contains("pull") && lower.contains("image")) || lower.contains("errimagepull")
}

/// Why an image could not be pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFault {
    /// The registry refused the credentials (or had none).
    Credentials,
    /// The image (repository or tag) does not exist.
    Image,
    /// Something else (network, registry down), or not said in this message.
    Unknown,
}

/// Classifies an image pull message by its text. Credentials are checked
/// first: a registry that refuses a token also cannot say whether the image
/// exists.
pub fn pull_fault(message: &str) -> PullFault {
    let lower = message.to_lowercase();
    let credentials = [
        "unauthorized",
        "authentication required",
        "401",
        "403 forbidden",
        "no basic auth credentials",
        "insufficient_scope",
        "denied: requested access",
    ];
    let image = [
        "not found",
        "manifest unknown",
        "name unknown",
        "repository does not exist",
        "404",
    ];
    if credentials.iter().any(|m| lower.contains(m)) {
        PullFault::Credentials
    } else if image.iter().any(|m| lower.contains(m)) {
        PullFault::Image
    } else {
        PullFault::Unknown
    }
}

/// The first double-quoted string in a message (the image, in pull messages).
fn first_quoted(message: &str) -> Option<&str> {
    let start = message.find('"')? + 1;
    let end = message[start..].find('"')? + start;
    Some(&message[start..end])
}

fn pull(message: &str, credential: Option<&PullCredential>) -> String {
    let image = first_quoted(message)
        .map(|i| format!("the image {i}"))
        .unwrap_or_else(|| "the image".to_owned());
    match (pull_fault(message), credential) {
        (
            PullFault::Credentials,
            Some(PullCredential {
                robot,
                expired_on: Some(date),
            }),
        ) => {
            return format!(
                "the robot token {robot} expired on {date}, so the registry refused the credentials for {image}. Create a new token in the registry, replace the credential on the Registry page, then restart the workload."
            );
        }
        (PullFault::Credentials, Some(PullCredential { robot, .. })) => {
            return format!(
                "the registry refused the credentials (revoked or wrong token) of the robot {robot} for {image}. Replace the credential on the Registry page with a valid token, then restart the workload."
            );
        }
        _ => {}
    }
    match pull_fault(message) {
        PullFault::Image => format!(
            "{image} was not found in the registry: check the repository and tag, and that the image was pushed."
        ),
        PullFault::Credentials => format!(
            "the registry refused the credentials for {image}: the robot account's token may be wrong, expired, or without access to this project. Replace the credential on the Registry page."
        ),
        PullFault::Unknown if message.to_lowercase().starts_with("back-off pulling") => format!(
            "{image} could not be pulled; Kubernetes waits before trying again. The message before this one says why."
        ),
        PullFault::Unknown => format!("{image} could not be pulled: {message}"),
    }
}

fn scheduling(message: &str) -> String {
    let lower = message.to_lowercase();
    let what = if lower.contains("insufficient memory") {
        "no node has enough free memory for this pod right now; it waits until room frees up. Ask for less memory, or ask an admin."
    } else if lower.contains("insufficient cpu") {
        "no node has enough free CPU for this pod right now; it waits until room frees up. Ask for less CPU, or ask an admin."
    } else if lower.contains("persistentvolumeclaim") {
        "its volume is not ready: the volume claim is missing or not bound yet."
    } else if lower.contains("taint") || lower.contains("affinity") || lower.contains("selector") {
        "no node matches where this pod is allowed to run."
    } else {
        return format!("the pod cannot be placed on a node yet: {message}");
    };
    what.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED: &str = "Failed to pull image \"reg.edu/cs101/add-two:1.0\": failed to pull and unpack image \"reg.edu/cs101/add-two:1.0\": failed to resolve reference \"reg.edu/cs101/add-two:1.0\": pulling from host reg.edu failed with status code [manifests 1.0]: 401 Unauthorized";

    #[test]
    fn a_refused_pull_says_whether_the_robot_token_expired_or_was_refused() {
        let expired = PullCredential {
            robot: "robot$cs101+ci".into(),
            expired_on: Some("2026-11-30".into()),
        };
        let text = describe_with("Failed", REFUSED, Some(&expired));
        assert!(
            text.starts_with("the robot token robot$cs101+ci expired on 2026-11-30"),
            "{text}"
        );
        let live = PullCredential {
            expired_on: None,
            ..expired.clone()
        };
        let text = describe_waiting_with("ErrImagePull", REFUSED, Some(&live)).expect("problem");
        assert!(
            text.starts_with("the registry refused the credentials (revoked or wrong token)"),
            "{text}"
        );
        // An image that is not there is not blamed on the token.
        let missing = REFUSED.replace("401 Unauthorized", "404 Not Found");
        assert!(describe_with("Failed", &missing, Some(&expired)).contains("was not found"));
        // Without a Berth credential, the old sentence.
        assert!(describe("Failed", REFUSED).contains("may be wrong, expired"));
    }

    #[test]
    fn a_memory_quota_hit_names_the_numbers() {
        let text = describe(
            "FailedCreate",
            "Error creating: pods \"web-7d4b9c-x2k8q\" is forbidden: exceeded quota: berth-quota, requested: requests.memory=2Gi, used: requests.memory=3Gi, limited: requests.memory=4Gi",
        );
        assert!(
            text.starts_with(
                "your namespace's memory quota is full: 3Gi of 4Gi used and this pod asks for 2Gi"
            ),
            "{text}"
        );
    }

    #[test]
    fn only_the_parts_of_the_quota_that_are_full_are_named() {
        let text = describe(
            "FailedCreate",
            "Error creating: pods \"web-1\" is forbidden: exceeded quota: berth-quota, requested: limits.memory=256Mi,pods=1,requests.memory=128Mi, used: limits.memory=256Mi,pods=2,requests.memory=128Mi, limited: limits.memory=8Gi,pods=2,requests.memory=4Gi",
        );
        assert!(
            text.starts_with(
                "your namespace's pod quota is full: 2 of 2 pods in use, so another cannot start."
            ),
            "{text}"
        );
        assert!(!text.contains("memory"), "{text}");
    }

    #[test]
    fn quota_that_needs_limits_says_which() {
        let text = describe(
            "FailedCreate",
            "Error creating: pods \"web-1\" is forbidden: failed quota: berth-quota: must specify limits.cpu for: web; limits.memory for: web",
        );
        assert!(text.contains("set limits.cpu, limits.memory"), "{text}");
    }

    #[test]
    fn pull_failures_blame_the_image_or_the_credentials() {
        let missing = describe(
            "Failed",
            "Failed to pull image \"geddes-registry.rcac.purdue.edu/cs101/add-two:2.0\": rpc error: code = NotFound desc = failed to pull and unpack image \"geddes-registry.rcac.purdue.edu/cs101/add-two:2.0\": failed to resolve reference \"geddes-registry.rcac.purdue.edu/cs101/add-two:2.0\": geddes-registry.rcac.purdue.edu/cs101/add-two:2.0: not found",
        );
        assert!(
            missing.starts_with(
                "the image geddes-registry.rcac.purdue.edu/cs101/add-two:2.0 was not found"
            ),
            "{missing}"
        );
        let refused = describe(
            "Failed",
            "Failed to pull image \"geddes-registry.rcac.purdue.edu/cs101/add-two:1.0\": rpc error: code = Unknown desc = failed to pull and unpack image \"geddes-registry.rcac.purdue.edu/cs101/add-two:1.0\": failed to resolve reference \"geddes-registry.rcac.purdue.edu/cs101/add-two:1.0\": failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://geddes-registry.rcac.purdue.edu/service/token?scope=repository%3Acs101%2Fadd-two%3Apull&service=harbor-registry: 401 Unauthorized",
        );
        assert!(
            refused.starts_with("the registry refused the credentials"),
            "{refused}"
        );
        let manifest = describe_waiting(
            "ErrImagePull",
            "failed to pull and unpack image \"docker.io/library/nginx:nope\": failed to resolve reference \"docker.io/library/nginx:nope\": docker.io/library/nginx:nope: manifest unknown",
        );
        assert!(
            manifest.is_some_and(|t| t.contains("was not found")),
            "manifest unknown is a missing image"
        );
        let auth = describe_waiting(
            "ErrImagePull",
            "rpc error: code = Unknown desc = Error response from daemon: Head \"https://reg/v2/x/manifests/1\": no basic auth credentials",
        );
        assert!(auth.is_some_and(|t| t.contains("refused the credentials")));
        let backoff = describe("BackOff", "Back-off pulling image \"reg/x:1\"");
        assert!(backoff.contains("waits before trying again"), "{backoff}");
    }

    #[test]
    fn crash_loops_and_scheduling() {
        let crash = describe(
            "BackOff",
            "Back-off restarting failed container web in pod web-7d4b9c-x2k8q_cs101(0b8e1d5c-1f6e-4a0c-9a55-3c1b1f7f2a10)",
        );
        assert!(crash.starts_with("the container keeps crashing"), "{crash}");
        assert_eq!(
            describe_waiting(
                "CrashLoopBackOff",
                "back-off 5m0s restarting failed container"
            ),
            Some(crash)
        );
        let memory = describe(
            "FailedScheduling",
            "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
        );
        assert!(
            memory.starts_with("no node has enough free memory"),
            "{memory}"
        );
        let claim = describe(
            "FailedScheduling",
            "0/2 nodes are available: persistentvolumeclaim \"jupyter-data\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
        );
        assert!(claim.contains("volume"), "{claim}");
    }

    #[test]
    fn other_events_pass_through() {
        assert_eq!(
            describe(
                "ScalingReplicaSet",
                "Scaled up replica set web-7d4b9c from 0 to 2"
            ),
            "Scaled up replica set web-7d4b9c from 0 to 2"
        );
        assert_eq!(describe("Started", ""), "Started");
        assert_eq!(describe_waiting("ContainerCreating", ""), None);
    }
}
