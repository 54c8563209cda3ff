//! The credential and image forms: raw fields as posted, validation into
//! domain values, messages per field, and the pure helpers the pages use
//! (expiry wording, the docker commands).

use secrecy::SecretString;
use serde::Deserialize;
use time::{Date, macros::format_description};

use super::reference::{self, ImageRef};

/// Messages keyed by field name, in form order, for the error summary and
/// for showing each message beside its field.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    /// Adds a message for `field`.
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// The message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Whether `field` has a message (for the `invalid` class).
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Every `(field, message)`, for the summary.
    pub fn all(&self) -> &[(&'static str, String)] {
        &self.0
    }

    /// No messages.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The credential form as posted (add and replace share it; replace ignores `host`).
#[derive(Debug, Default, Deserialize)]
pub struct CredentialForm {
    /// Registry host.
    #[serde(default)]
    pub host: String,
    /// Robot account name.
    #[serde(default)]
    pub robot: String,
    /// The token: used once, never echoed back into a page.
    #[serde(default)]
    pub token: SecretString,
    /// `YYYY-MM-DD` or empty.
    #[serde(default)]
    pub expires_on: String,
    /// Optional `project/repo` to check pull access to.
    #[serde(default)]
    pub check_repository: String,
    /// "Save anyway" checkbox.
    #[serde(default)]
    pub save_anyway: Option<String>,
}

/// A credential form that passed validation.
#[derive(Debug)]
pub struct ValidCredential {
    /// Registry `host[:port]`, lowercased.
    pub host: String,
    /// Robot account name, as typed (trimmed).
    pub robot: String,
    /// The token, trimmed.
    pub token: SecretString,
    /// Expiry as `YYYY-MM-DD`.
    pub expires_on: Option<String>,
    /// Repository whose pull access is checked.
    pub check_repository: Option<String>,
    /// Keep it even if the registry check fails.
    pub save_anyway: bool,
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

impl CredentialForm {
    /// Validates every field, collecting one message per bad field.
    pub fn validate(&self, today: Date) -> Result<ValidCredential, FieldErrors> {
        use secrecy::ExposeSecret;
        let mut errors = FieldErrors::default();
        let host = self.host.trim().to_ascii_lowercase();
        if !reference::valid_host(&host) {
            errors.add(
                "host",
                "Enter the registry's host name, like geddes-registry.rcac.purdue.edu.",
            );
        }
        let robot = self.robot.trim();
        if let Err(message) = validate_robot(robot) {
            errors.add("robot", message);
        }
        let token = self.token.expose_secret().trim();
        if token.is_empty() {
            errors.add("token", "Paste the robot account's token.");
        } else if token.len() > 8192 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.add(
                "token",
                "That does not look like a token: it should be one line without spaces.",
            );
        }
        let expires_on = match self.expires_on.trim() {
            "" => None,
            text => match Date::parse(text, DATE) {
                Ok(date) if date < today => {
                    errors.add(
                        "expires_on",
                        "That date has passed: the robot account would already be expired.",
                    );
                    None
                }
                Ok(date) => date.format(DATE).ok(),
                Err(_) => {
                    errors.add(
                        "expires_on",
                        "Enter a date as YYYY-MM-DD, or leave it empty.",
                    );
                    None
                }
            },
        };
        let check_repository = match self.check_repository.trim() {
            "" => None,
            repo if reference::valid_repository(repo) => Some(repo.to_owned()),
            _ => {
                errors.add(
                    "check_repository",
                    "Enter a repository path like project/app (lowercase), or leave it empty.",
                );
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidCredential {
            host,
            robot: robot.to_owned(),
            token: SecretString::from(token.to_owned()),
            expires_on,
            check_repository,
            save_anyway: self.save_anyway.is_some(),
        })
    }
}

/// Robot names as Harbor makes them (`robot$project+name`) or any registry
/// user name: letters, digits and `$ + . _ @ -`. No `:` (it would split the
/// Basic auth pair) and no spaces or quotes.
pub fn validate_robot(robot: &str) -> Result<(), &'static str> {
    if robot.is_empty() {
        return Err("Enter the robot account name, like robot$project+ci.");
    }
    if robot.len() > 255 {
        return Err("That name is longer than 255 characters.");
    }
    if !robot
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '$' | '+' | '.' | '_' | '@' | '-'))
    {
        return Err(
            "Use only letters, digits and $ + . _ @ - (Harbor robot names look like robot$project+ci).",
        );
    }
    Ok(())
}

/// The image form as posted.
#[derive(Debug, Default, Deserialize)]
pub struct ImageForm {
    /// `host/project/repo:tag` or `…@sha256:…`.
    #[serde(default)]
    pub reference: String,
    /// The credential to reach it with.
    #[serde(default)]
    pub credential_id: String,
    /// "Register anyway" checkbox (e.g. not pushed yet).
    #[serde(default)]
    pub register_anyway: Option<String>,
}

impl ImageForm {
    /// Parses the reference and credential id.
    pub fn validate(&self, default_host: &str) -> Result<(ImageRef, i64), FieldErrors> {
        let mut errors = FieldErrors::default();
        let image = reference::parse(&self.reference, default_host)
            .map_err(|e| errors.add("reference", e.to_string()))
            .ok();
        let credential = self
            .credential_id
            .trim()
            .parse::<i64>()
            .map_err(|_| {
                errors.add(
                    "credential_id",
                    "Pick the credential to reach the image with.",
                )
            })
            .ok();
        match (image, credential) {
            (Some(image), Some(credential)) => Ok((image, credential)),
            _ => Err(errors),
        }
    }
}

/// How an expiry date reads on a page, and whether to warn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// "expires in 12 days", "expires today", "expired 3 days ago".
    pub text: String,
    /// `ok`, `warn` or `bad`: picks the badge.
    pub level: &'static str,
}

/// Within this many days of expiry the page warns.
pub const EXPIRY_WARN_DAYS: i64 = 14;

/// Words and level for an expiry date stored as `YYYY-MM-DD`.
pub fn expiry(expires_on: &str, today: Date) -> Option<Expiry> {
    let date = Date::parse(expires_on, DATE).ok()?;
    let days = (date - today).whole_days();
    let text = match days {
        d if d < -1 => format!("expired {} days ago", -d),
        -1 => "expired yesterday".to_owned(),
        0 => "expires today".to_owned(),
        1 => "expires tomorrow".to_owned(),
        d => format!("expires in {d} days"),
    };
    let level = if days < 0 {
        "bad"
    } else if days <= EXPIRY_WARN_DAYS {
        "warn"
    } else {
        "ok"
    };
    Some(Expiry { text, level })
}

/// Quotes `word` for a POSIX shell: as is when it holds only safe
/// characters, else in single quotes (so `$` in `robot$project+ci` survives).
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '_' | '-')
        });
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One step of the push recipe on the image page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step does.
    pub title: &'static str,
    /// The exact command.
    pub command: String,
}

/// The commands that build, tag, log in and push this image with docker.
pub fn docker_steps(host: &str, repository: &str, tag: Option<&str>, robot: &str) -> Vec<Step> {
    let tag = tag.unwrap_or("latest");
    let short = repository.rsplit('/').next().unwrap_or(repository);
    let local = shell_quote(&format!("{short}:{tag}"));
    let remote = shell_quote(&format!("{host}/{repository}:{tag}"));
    vec![
        Step {
            title: "Build the image from the folder that holds your Dockerfile",
            command: format!("docker build -t {local} ."),
        },
        Step {
            title: "Tag it with its name in the registry",
            command: format!("docker tag {local} {remote}"),
        },
        Step {
            title: "Log in as the robot account (paste its token when asked for the password)",
            command: format!(
                "docker login {} --username {}",
                shell_quote(host),
                shell_quote(robot)
            ),
        },
        Step {
            title: "Push it",
            command: format!("docker push {remote}"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn form(robot: &str, token: &str) -> CredentialForm {
        CredentialForm {
            host: "geddes-registry.rcac.purdue.edu".into(),
            robot: robot.into(),
            token: SecretString::from(token.to_owned()),
            ..CredentialForm::default()
        }
    }

    #[test]
    fn harbor_robot_names_are_accepted_with_their_dollar() {
        let valid = form(" robot$cs101+ci ", " abc123 ")
            .validate(date!(2026 - 01 - 01))
            .expect("valid");
        assert_eq!(valid.robot, "robot$cs101+ci");
        assert!(!valid.save_anyway);
        for bad in ["", "robot:x", "robot x", "robot'x", "robot\"x"] {
            assert!(validate_robot(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_field_gets_its_message() {
        let bad = CredentialForm {
            host: "not a host".into(),
            robot: "a b".into(),
            token: SecretString::from(String::new()),
            expires_on: "2025-13-01".into(),
            check_repository: "Bad/Repo".into(),
            save_anyway: None,
        };
        let errors = bad.validate(date!(2026 - 01 - 01)).expect_err("invalid");
        for field in ["host", "robot", "token", "expires_on", "check_repository"] {
            assert!(errors.has(field), "{field}: {errors:?}");
        }
        let past = CredentialForm {
            expires_on: "2025-12-31".into(),
            ..form("r", "t")
        };
        let errors = past.validate(date!(2026 - 01 - 01)).expect_err("past");
        assert!(
            errors
                .get("expires_on")
                .is_some_and(|m| m.contains("passed"))
        );
    }

    #[test]
    fn expiry_words_and_warnings() {
        let today = date!(2026 - 03 - 10);
        let e = |d: &str| expiry(d, today).expect("date");
        assert_eq!(e("2026-04-30").text, "expires in 51 days");
        assert_eq!(e("2026-04-30").level, "ok");
        assert_eq!(e("2026-03-20").level, "warn");
        assert_eq!(e("2026-03-10").text, "expires today");
        assert_eq!(e("2026-03-11").text, "expires tomorrow");
        assert_eq!(e("2026-03-07").text, "expired 3 days ago");
        assert_eq!(e("2026-03-07").level, "bad");
        assert!(expiry("garbage", today).is_none());
    }

    #[test]
    fn shell_quoting_keeps_the_dollar() {
        assert_eq!(shell_quote("robot$cs101+ci"), "'robot$cs101+ci'");
        assert_eq!(shell_quote("plain-name"), "plain-name");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let steps = docker_steps("reg.edu", "cs101/add-two", Some("1.0"), "robot$cs101+ci");
        assert_eq!(steps[0].command, "docker build -t add-two:1.0 .");
        assert_eq!(
            steps[1].command,
            "docker tag add-two:1.0 reg.edu/cs101/add-two:1.0"
        );
        assert_eq!(
            steps[2].command,
            "docker login reg.edu --username 'robot$cs101+ci'"
        );
        assert_eq!(steps[3].command, "docker push reg.edu/cs101/add-two:1.0");
    }

    #[test]
    fn image_form_needs_reference_and_credential() {
        let form = ImageForm {
            reference: "reg.edu/p/app:1".into(),
            credential_id: "7".into(),
            register_anyway: None,
        };
        let (image, credential) = form.validate("reg.edu").expect("valid");
        assert_eq!(image.repository, "p/app");
        assert_eq!(credential, 7);
        let bad = ImageForm::default()
            .validate("reg.edu")
            .expect_err("invalid");
        assert!(bad.has("reference") && bad.has("credential_id"));
    }
}
