//! The namespace form and the member form, parsed into validated domain types.
//!
//! Everything the apiserver would refuse is refused here first, with a message
//! beside the field: names to Kubernetes' DNS label rules, quantities to its
//! quantity grammar, and the LimitRange defaults checked against the quota, so
//! pods that state no requests still fit.

use std::collections::{BTreeMap, HashMap};

use super::membership::Role;
use crate::{kube::quantity, web::FieldErrors};

/// What kind of value a setting holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cores: `2`, `500m`.
    Cpu,
    /// Bytes: `512Mi`, `4Gi`.
    Bytes,
    /// A whole number of objects.
    Count,
}

/// One quota or default setting: its Kubernetes key, its form field, its words.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The resource name in Kubernetes (`requests.memory`).
    pub key: &'static str,
    /// The form field (`requests_memory`).
    pub field: &'static str,
    /// Label on the form and on usage bars.
    pub label: &'static str,
    /// Help under the field.
    pub help: &'static str,
    /// How to check the value.
    pub kind: Kind,
}

/// The ResourceQuota's settings, in the order they are shown.
pub const QUOTA: [Setting; 8] = [
    Setting {
        key: "requests.cpu",
        field: "requests_cpu",
        label: "CPU requested",
        help: "Cores all pods may request together, e.g. 2 or 500m.",
        kind: Kind::Cpu,
    },
    Setting {
        key: "limits.cpu",
        field: "limits_cpu",
        label: "CPU limit",
        help: "Cores all pods may be limited to together.",
        kind: Kind::Cpu,
    },
    Setting {
        key: "requests.memory",
        field: "requests_memory",
        label: "Memory requested",
        help: "Memory all pods may request together, e.g. 4Gi.",
        kind: Kind::Bytes,
    },
    Setting {
        key: "limits.memory",
        field: "limits_memory",
        label: "Memory limit",
        help: "Memory all pods may be limited to together, e.g. 8Gi.",
        kind: Kind::Bytes,
    },
    Setting {
        key: "pods",
        field: "pods",
        label: "Pods",
        help: "How many pods may exist at once.",
        kind: Kind::Count,
    },
    Setting {
        key: "services.loadbalancers",
        field: "services_loadbalancers",
        label: "Load balancers",
        help: "Services reachable from the campus network or the internet.",
        kind: Kind::Count,
    },
    Setting {
        key: "persistentvolumeclaims",
        field: "persistentvolumeclaims",
        label: "Volumes",
        help: "How many persistent volume claims.",
        kind: Kind::Count,
    },
    Setting {
        key: "requests.storage",
        field: "requests_storage",
        label: "Storage",
        help: "Total size of all volumes, e.g. 20Gi.",
        kind: Kind::Bytes,
    },
];

/// The LimitRange's container defaults, for containers that state none.
pub const DEFAULTS: [Setting; 4] = [
    Setting {
        key: "defaultRequest.cpu",
        field: "default_request_cpu",
        label: "Default CPU request",
        help: "Given to containers that request no CPU, e.g. 100m.",
        kind: Kind::Cpu,
    },
    Setting {
        key: "defaultRequest.memory",
        field: "default_request_memory",
        label: "Default memory request",
        help: "Given to containers that request no memory, e.g. 256Mi.",
        kind: Kind::Bytes,
    },
    Setting {
        key: "default.cpu",
        field: "default_limit_cpu",
        label: "Default CPU limit",
        help: "Given to containers without a CPU limit.",
        kind: Kind::Cpu,
    },
    Setting {
        key: "default.memory",
        field: "default_limit_memory",
        label: "Default memory limit",
        help: "Given to containers without a memory limit.",
        kind: Kind::Bytes,
    },
];

/// A namespace's quota and container defaults, every value checked. Keys are
/// Kubernetes keys ([`Setting::key`]); a missing key means "no limit".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// ResourceQuota `spec.hard`.
    pub quota: BTreeMap<String, String>,
    /// LimitRange container `defaultRequest`, by resource (`cpu`, `memory`).
    pub default_request: BTreeMap<String, String>,
    /// LimitRange container `default` (limits), by resource.
    pub default_limit: BTreeMap<String, String>,
}

impl Limits {
    /// The value of a setting, if set.
    pub fn get(&self, setting: &Setting) -> Option<&str> {
        if let Some(resource) = setting.key.strip_prefix("defaultRequest.") {
            self.default_request.get(resource)
        } else if let Some(resource) = setting.key.strip_prefix("default.") {
            self.default_limit.get(resource)
        } else {
            self.quota.get(setting.key)
        }
        .map(String::as_str)
    }

    fn set(&mut self, setting: &Setting, value: String) {
        if let Some(resource) = setting.key.strip_prefix("defaultRequest.") {
            self.default_request.insert(resource.to_owned(), value);
        } else if let Some(resource) = setting.key.strip_prefix("default.") {
            self.default_limit.insert(resource.to_owned(), value);
        } else {
            self.quota.insert(setting.key.to_owned(), value);
        }
    }

    /// Parses `key=value,key=value` (the `--default-quota` flag).
    pub fn from_flag(text: &str) -> Result<Self, String> {
        let mut values = HashMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let setting = all_settings()
                .find(|s| s.key == key.trim())
                .ok_or_else(|| format!("unknown setting `{key}`"))?;
            values.insert(setting.field.to_owned(), value.trim().to_owned());
        }
        parse_limits(&values).map_err(|errors| {
            errors
                .iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// Every setting, quota first.
pub fn all_settings() -> impl Iterator<Item = &'static Setting> {
    QUOTA.iter().chain(DEFAULTS.iter())
}

/// How many quota and default settings there are.
pub const SETTINGS: usize = QUOTA.len() + DEFAULTS.len();

/// A form's field names, top to bottom: `before`, every setting (quota
/// first), then `after`. `N` is their number, checked when compiled.
pub const fn form_order<const N: usize>(
    before: &[&'static str],
    after: &[&'static str],
) -> [&'static str; N] {
    let mut order = [""; N];
    let mut at = 0;
    let mut i = 0;
    while i < before.len() {
        order[at] = before[i];
        at += 1;
        i += 1;
    }
    i = 0;
    while i < QUOTA.len() {
        order[at] = QUOTA[i].field;
        at += 1;
        i += 1;
    }
    i = 0;
    while i < DEFAULTS.len() {
        order[at] = DEFAULTS[i].field;
        at += 1;
        i += 1;
    }
    i = 0;
    while i < after.len() {
        order[at] = after[i];
        at += 1;
        i += 1;
    }
    assert!(at == N, "N is not the number of fields");
    order
}

/// The namespace form's fields, top to bottom.
pub const FORM_ORDER: [&str; 2 + SETTINGS] = form_order(&["name", "description"], &[]);

/// The member form's fields, top to bottom.
pub const MEMBER_FORM_ORDER: [&str; 2] = ["email", "role"];

/// Messages for the namespace form, in its order.
pub fn field_errors() -> FieldErrors {
    FieldErrors::in_order(&FORM_ORDER)
}

/// Sets `message` for `field` unless an earlier check gave it one: the
/// first problem found with a field is the one shown beside it.
fn keep_first(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    if !errors.has(field) {
        errors.add(field.to_owned(), message);
    }
}

/// A validated namespace form.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceSpec {
    /// The namespace's name (a DNS label).
    pub name: String,
    /// What it is for, shown to admins and members.
    pub description: String,
    /// Quota and container defaults.
    pub limits: Limits,
}

/// Longest description kept (it lives in an annotation).
pub const MAX_DESCRIPTION: usize = 500;

/// Parses the namespace form. `fixed_name` is the name when editing (the
/// name of an existing namespace cannot change).
pub fn parse_namespace(
    form: &HashMap<String, String>,
    fixed_name: Option<&str>,
) -> Result<NamespaceSpec, FieldErrors> {
    let mut errors = field_errors();
    let name = match fixed_name {
        Some(name) => name.to_owned(),
        None => {
            let name = form.get("name").map(|n| n.trim()).unwrap_or_default();
            if let Err(message) = check_namespace_name(name) {
                errors.add("name", message);
            }
            name.to_owned()
        }
    };
    let description = form
        .get("description")
        .map(|d| d.trim().replace("\r\n", "\n"))
        .unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION {
        errors.add(
            "description",
            format!("Keep it under {MAX_DESCRIPTION} characters."),
        );
    } else if description.chars().any(|c| c.is_control() && c != '\n') {
        errors.add("description", "Use plain text.");
    }
    let limits = match parse_limits(form) {
        Ok(limits) => Some(limits),
        Err(more) => {
            errors.extend(more);
            None
        }
    };
    match limits {
        Some(limits) if errors.is_empty() => Ok(NamespaceSpec {
            name,
            description,
            limits,
        }),
        _ => Err(errors),
    }
}

/// Checks a namespace name against Kubernetes' rules (RFC 1123 label) and the
/// names that belong to the cluster itself.
pub fn check_namespace_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Enter a name, like cs101-fall or alice-project.".to_owned());
    }
    if name.len() > 63 {
        return Err("Use at most 63 characters.".to_owned());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("Use only lower-case letters, digits and hyphens (-).".to_owned());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("Start and end with a letter or a digit.".to_owned());
    }
    if name == "default" || name.starts_with("kube-") || name == "berth-system" {
        return Err("That name belongs to the cluster itself; pick another.".to_owned());
    }
    Ok(())
}

/// Parses and cross-checks the quota and default fields (keyed by form field).
pub fn parse_limits(form: &HashMap<String, String>) -> Result<Limits, FieldErrors> {
    let mut errors = field_errors();
    let mut limits = Limits::default();
    let mut numbers: HashMap<&str, f64> = HashMap::new();
    for setting in all_settings() {
        let value = form
            .get(setting.field)
            .map(|v| v.trim())
            .unwrap_or_default();
        if value.is_empty() {
            continue;
        }
        let parsed = match setting.kind {
            #[expect(clippy::cast_precision_loss, reason = "counts are small")]
            Kind::Count => quantity::count(value).map(|n| n as f64),
            Kind::Cpu | Kind::Bytes => quantity::amount(value),
        };
        match parsed {
            Ok(number) => {
                if let Err(message) = unit_sense(setting, value) {
                    errors.add(setting.field, message);
                } else {
                    numbers.insert(setting.key, number);
                    limits.set(setting, value.to_owned());
                }
            }
            Err(problem) => errors.add(setting.field, problem.to_string()),
        }
    }
    if errors.is_empty() {
        cross_check(&numbers, &mut errors);
    }
    if errors.is_empty() {
        Ok(limits)
    } else {
        Err(errors)
    }
}

/// Catches the classic slip of memory written without a unit (`512` is 512
/// bytes, not megabytes), which Kubernetes would accept and no pod would fit.
fn unit_sense(setting: &Setting, value: &str) -> Result<(), String> {
    if setting.kind == Kind::Bytes
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && quantity::parse(value).is_ok_and(|v| v > 0.0 && v < 1024.0 * 1024.0)
    {
        return Err(format!(
            "{value} would mean {value} bytes; add a unit, like {value}Mi or {value}Gi."
        ));
    }
    Ok(())
}

/// Checks the defaults against each other and the quota. A default may fail
/// two checks; the first stays beside it.
fn cross_check(n: &HashMap<&str, f64>, errors: &mut FieldErrors) {
    for (resource, unit) in [("cpu", "CPU"), ("memory", "memory")] {
        let request = n
            .get(format!("defaultRequest.{resource}").as_str())
            .copied();
        let limit = n.get(format!("default.{resource}").as_str()).copied();
        let quota_request = n.get(format!("requests.{resource}").as_str()).copied();
        let quota_limit = n.get(format!("limits.{resource}").as_str()).copied();
        if let (Some(r), Some(l)) = (request, limit)
            && r > l
        {
            keep_first(
                errors,
                &format!("default_request_{resource}"),
                format!("The default {unit} request cannot be more than the default {unit} limit."),
            );
        }
        // Kubernetes uses the default limit as the request when only a limit is given.
        let effective_request = request.or(limit);
        if quota_request.is_some() && effective_request.is_none() {
            keep_first(
                errors,
                &format!("default_request_{resource}"),
                format!(
                    "The quota caps {unit} requests, so set a default {unit} request; otherwise pods that state none are refused."
                ),
            );
        }
        if quota_limit.is_some() && limit.is_none() {
            keep_first(
                errors,
                &format!("default_limit_{resource}"),
                format!(
                    "The quota caps {unit} limits, so set a default {unit} limit; otherwise pods that state none are refused."
                ),
            );
        }
        if let (Some(r), Some(q)) = (effective_request, quota_request)
            && r > q
        {
            keep_first(
                errors,
                &format!("default_request_{resource}"),
                format!(
                    "The default {unit} request is more than the whole quota, so no pod would fit."
                ),
            );
        }
        if let (Some(l), Some(q)) = (limit, quota_limit)
            && l > q
        {
            keep_first(
                errors,
                &format!("default_limit_{resource}"),
                format!(
                    "The default {unit} limit is more than the whole quota, so no pod would fit."
                ),
            );
        }
    }
}

/// A validated "add member" form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    /// Lower-cased email.
    pub email: String,
    /// Owner or member.
    pub role: Role,
}

/// Parses the "add member" form.
pub fn parse_member(form: &HashMap<String, String>) -> Result<MemberSpec, FieldErrors> {
    let mut errors = FieldErrors::in_order(&MEMBER_FORM_ORDER);
    let email = form
        .get("email")
        .map(|e| e.trim().to_lowercase())
        .unwrap_or_default();
    if !valid_email(&email) {
        errors.add("email", "Enter an email address, like student@purdue.edu.");
    }
    let role = form.get("role").and_then(|r| Role::parse(r));
    if role.is_none() {
        errors.add("role", "Choose owner or member.");
    }
    match role {
        Some(role) if errors.is_empty() => Ok(MemberSpec { email, role }),
        _ => Err(errors),
    }
}

/// An email the impersonation header and a RoleBinding subject can carry.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && email.bytes().all(|b| b.is_ascii_graphic())
}

#[expect(clippy::unwrap_used, reason = "tests")]
#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("name", "cs101-fall"),
            ("description", "Intro course"),
            ("requests_cpu", "2"),
            ("limits_cpu", "4"),
            ("requests_memory", "4Gi"),
            ("limits_memory", "8Gi"),
            ("pods", "20"),
            ("services_loadbalancers", "2"),
            ("persistentvolumeclaims", "5"),
            ("requests_storage", "20Gi"),
            ("default_request_cpu", "100m"),
            ("default_request_memory", "256Mi"),
            ("default_limit_cpu", "500m"),
            ("default_limit_memory", "512Mi"),
        ]
    }

    #[test]
    fn a_complete_form_parses() {
        let spec = parse_namespace(&form(&complete()), None).unwrap();
        assert_eq!(spec.name, "cs101-fall");
        assert_eq!(spec.limits.quota["requests.memory"], "4Gi");
        assert_eq!(spec.limits.quota.len(), 8);
        assert_eq!(spec.limits.default_request["cpu"], "100m");
        assert_eq!(spec.limits.default_limit["memory"], "512Mi");
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        for bad in [
            "",
            "CS101",
            "cs_101",
            "-cs",
            "cs-",
            "kube-system",
            "default",
            &"a".repeat(64),
        ] {
            assert!(check_namespace_name(bad).is_err(), "{bad:?}");
        }
        for good in ["cs101", "a", "alice-project-2", &"a".repeat(63)] {
            assert!(check_namespace_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn bad_values_are_reported_beside_their_fields() {
        let mut pairs = complete();
        pairs.retain(|(k, _)| *k != "requests_memory" && *k != "pods");
        pairs.push(("requests_memory", "4 gigs"));
        pairs.push(("pods", "1.5"));
        let errors = parse_namespace(&form(&pairs), None).unwrap_err();
        assert_eq!(errors.fields(), vec!["requests_memory", "pods"]);
    }

    #[test]
    fn memory_without_a_unit_is_caught() {
        let mut pairs = complete();
        pairs.retain(|(k, _)| *k != "limits_memory");
        pairs.push(("limits_memory", "512"));
        let errors = parse_namespace(&form(&pairs), None).unwrap_err();
        assert_eq!(errors.fields()[0], "limits_memory");
        assert!(errors.get("limits_memory").unwrap().contains("512Mi"));
    }

    #[test]
    fn a_memory_quota_needs_defaults_that_fit_it() {
        let errors = parse_limits(&form(&[
            ("requests_memory", "1Gi"),
            ("limits_memory", "1Gi"),
        ]))
        .unwrap_err();
        assert_eq!(
            errors.fields(),
            vec!["default_request_memory", "default_limit_memory"]
        );

        let errors = parse_limits(&form(&[
            ("limits_memory", "1Gi"),
            ("default_limit_memory", "2Gi"),
        ]))
        .unwrap_err();
        assert!(
            errors
                .iter()
                .next()
                .unwrap()
                .1
                .contains("more than the whole quota")
        );

        let errors = parse_limits(&form(&[
            ("default_request_cpu", "2"),
            ("default_limit_cpu", "1"),
        ]))
        .unwrap_err();
        assert_eq!(errors.fields()[0], "default_request_cpu");
    }

    #[test]
    fn a_default_failing_two_checks_keeps_the_first_message() {
        let errors = parse_limits(&form(&[
            ("requests_cpu", "1"),
            ("limits_cpu", "4"),
            ("default_request_cpu", "2"),
            ("default_limit_cpu", "1"),
        ]))
        .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors
                .get("default_request_cpu")
                .unwrap()
                .contains("cannot be more than the default CPU limit")
        );
    }

    #[test]
    fn messages_stand_in_form_order() {
        assert_eq!(FORM_ORDER[..3], ["name", "description", "requests_cpu"]);
        assert_eq!(FORM_ORDER.last(), Some(&"default_limit_memory"));
        let errors = parse_namespace(
            &form(&[
                ("name", "Bad"),
                ("requests_memory", "1Gi"),
                ("default_limit_cpu", "many"),
                ("pods", "lots"),
            ]),
            None,
        )
        .unwrap_err();
        assert_eq!(errors.fields(), ["name", "pods", "default_limit_cpu"]);
    }

    #[test]
    fn empty_fields_mean_no_limit() {
        let limits = parse_limits(&form(&[("pods", "3"), ("requests_cpu", "")])).unwrap();
        assert_eq!(limits.quota.len(), 1);
    }

    #[test]
    fn the_default_flag_parses_and_is_checked() {
        let limits =
            Limits::from_flag("pods=5, requests.memory=1Gi, defaultRequest.memory=128Mi").unwrap();
        assert_eq!(limits.quota["pods"], "5");
        assert_eq!(limits.default_request["memory"], "128Mi");
        assert!(Limits::from_flag("bogus=1").is_err());
        assert!(Limits::from_flag("pods=many").is_err());
    }

    #[test]
    fn members_need_an_email_and_a_role() {
        let spec =
            parse_member(&form(&[("email", " Bob@Purdue.edu "), ("role", "owner")])).unwrap();
        assert_eq!(spec.email, "bob@purdue.edu");
        assert_eq!(spec.role, Role::Owner);
        let errors = parse_member(&form(&[("email", "bob"), ("role", "king")])).unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
