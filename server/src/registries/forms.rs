//! The credential and image forms: raw fields as posted, validation into
//! domain values, messages per field, and the pure helpers the pages use
//! (expiry wording, the docker commands).

use secrecy::SecretString;
use serde::Deserialize;
use time::{Date, macros::format_description};

use super::reference::{self, ImageRef};

pub use crate::web::FieldErrors;

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
    /// "This token never expires" checkbox.
    #[serde(default)]
    pub never_expires: Option<String>,
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
    /// Where the expiry came from.
    pub expiry_source: Option<ExpirySource>,
    /// Repository whose pull access is checked.
    pub check_repository: Option<String>,
    /// Keep it even if the registry check fails.
    pub save_anyway: bool,
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

/// How long a Harbor robot lives unless its maker says otherwise: the date
/// the form starts with.
pub const HARBOR_DEFAULT_DAYS: i64 = 30;

/// Where a credential's expiry date came from (stored in `expiry_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirySource {
    /// Typed into the form.
    Typed,
    /// Read from the token itself (a JWT's `exp`).
    Token,
    /// The person said the robot never expires.
    Never,
}

impl ExpirySource {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Typed => "typed",
            Self::Token => "token",
            Self::Never => "never",
        }
    }

    /// From the stored text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "typed" => Some(Self::Typed),
            "token" => Some(Self::Token),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// `today` plus Harbor's default lifetime, as the form shows it.
pub fn default_expiry(today: Date) -> String {
    (today + time::Duration::days(HARBOR_DEFAULT_DAYS))
        .format(DATE)
        .unwrap_or_default()
}

/// A date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    date.format(DATE).unwrap_or_default()
}

/// The expiry written in the token, when it is a JWT (three base64url parts,
/// a header with `alg`, a payload with a numeric `exp`): its UTC date. Any
/// other token (Harbor's robot secrets are random strings) gives `None`.
/// The signature is not checked: only the registry can, and the date is used
/// for a warning, never to grant anything.
pub fn jwt_expiry(token: &str) -> Option<Date> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut parts = token.split('.');
    let (header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let decode = |part: &str| -> Option<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    decode(header)?.get("alg")?.as_str()?;
    let exp = decode(payload)?.get("exp")?.as_f64()?;
    // Truncation is what we want: the second the token stops working.
    #[allow(clippy::cast_possible_truncation, reason = "exp is whole seconds")]
    let seconds = exp as i64;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .map(time::OffsetDateTime::date)
}

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
        // A date the token carries wins over the form: it cannot be mistyped.
        let (expires_on, expiry_source) = match jwt_expiry(token) {
            Some(date) if date < today => {
                errors.add(
                    "token",
                    format!(
                        "This token says it expired on {}: create a new one in the registry.",
                        format_date(date)
                    ),
                );
                (None, None)
            }
            Some(date) => (Some(format_date(date)), Some(ExpirySource::Token)),
            None if self.never_expires.is_some() => (None, Some(ExpirySource::Never)),
            None => match self.expires_on.trim() {
                "" => (None, None),
                text => match Date::parse(text, DATE) {
                    Ok(date) if date < today => {
                        errors.add(
                            "expires_on",
                            "That date has passed: the robot account would already be expired.",
                        );
                        (None, None)
                    }
                    Ok(date) => (Some(format_date(date)), Some(ExpirySource::Typed)),
                    Err(_) => {
                        errors.add(
                            "expires_on",
                            "Enter a date as YYYY-MM-DD, tick \"never expires\", or leave it empty.",
                        );
                        (None, None)
                    }
                },
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
            expiry_source,
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

/// Within this many days of expiry the pages warn.
pub const EXPIRY_WARN_DAYS: i64 = 7;

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
            never_expires: None,
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
        assert_eq!(e("2026-03-17").level, "warn");
        assert_eq!(e("2026-03-18").level, "ok");
        assert_eq!(e("2026-03-10").text, "expires today");
        assert_eq!(e("2026-03-11").text, "expires tomorrow");
        assert_eq!(e("2026-03-07").text, "expired 3 days ago");
        assert_eq!(e("2026-03-07").level, "bad");
        assert!(expiry("garbage", today).is_none());
    }

    fn jwt(payload: &serde_json::Value) -> String {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn a_jwt_says_when_it_expires_and_wins_over_the_form() {
        // 2026-04-01T12:00:00Z
        let token = jwt(&serde_json::json!({"sub": "robot$p+ci", "exp": 1_775_044_800}));
        assert_eq!(jwt_expiry(&token), Some(date!(2026 - 04 - 01)));
        let valid = CredentialForm {
            expires_on: "2026-12-31".into(),
            never_expires: Some("on".into()),
            ..form("robot$p+ci", &token)
        }
        .validate(date!(2026 - 03 - 01))
        .expect("valid");
        assert_eq!(valid.expires_on.as_deref(), Some("2026-04-01"));
        assert_eq!(valid.expiry_source, Some(ExpirySource::Token));
        let errors = form("robot$p+ci", &token)
            .validate(date!(2026 - 04 - 02))
            .expect_err("expired token");
        assert!(
            errors
                .get("token")
                .is_some_and(|m| m.contains("2026-04-01"))
        );
        for not_jwt in ["abc123", "a.b.c", &jwt(&serde_json::json!({"sub": "x"}))] {
            assert_eq!(jwt_expiry(not_jwt), None, "{not_jwt}");
        }
    }

    #[test]
    fn never_and_typed_dates_are_told_apart_and_the_default_is_harbors() {
        let never = CredentialForm {
            never_expires: Some("on".into()),
            expires_on: "2026-05-01".into(),
            ..form("r", "t")
        }
        .validate(date!(2026 - 03 - 01))
        .expect("valid");
        assert_eq!(
            (never.expires_on, never.expiry_source),
            (None, Some(ExpirySource::Never))
        );
        let typed = CredentialForm {
            expires_on: "2026-05-01".into(),
            ..form("r", "t")
        }
        .validate(date!(2026 - 03 - 01))
        .expect("valid");
        assert_eq!(typed.expiry_source, Some(ExpirySource::Typed));
        assert_eq!(default_expiry(date!(2026 - 03 - 01)), "2026-03-31");
        for source in [
            ExpirySource::Typed,
            ExpirySource::Token,
            ExpirySource::Never,
        ] {
            assert_eq!(ExpirySource::parse(source.as_str()), Some(source));
        }
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
