//! What the registry templates get: credentials and images as pages show
//! them, the values a failed form keeps (never a token), and the page types.

use askama::Template;
use time::{Date, OffsetDateTime};

use super::{
    forms::{self, CredentialForm, Expiry, ExpirySource, FieldErrors, Step},
    store::{CredentialRow, ImageRow},
};
use crate::{clock, web::Layout};

pub(super) fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// A credential as the pages show it.
pub struct CredentialView {
    pub(super) id: i64,
    pub(super) host: String,
    pub(super) robot: String,
    pub(super) expires_on: String,
    pub(super) expiry: Option<Expiry>,
    /// The person said it never expires.
    pub(super) never: bool,
    /// The date was read from the token itself.
    pub(super) from_token: bool,
    pub(super) verified: Option<String>,
    pub(super) updated: String,
    pub(super) updated_by: String,
}

impl CredentialView {
    pub(super) fn new(row: &CredentialRow, today: Date) -> Self {
        let source = row.expiry_source.as_deref().and_then(ExpirySource::parse);
        Self {
            id: row.id,
            host: row.host.clone(),
            robot: row.robot.clone(),
            never: source == Some(ExpirySource::Never),
            from_token: source == Some(ExpirySource::Token),
            expires_on: row.expires_on.clone().unwrap_or_default(),
            expiry: row
                .expires_on
                .as_deref()
                .and_then(|d| forms::expiry(d, today)),
            verified: row.verified_at.map(clock::display),
            updated: clock::display(row.updated_at),
            updated_by: row.updated_by.clone(),
        }
    }
}

/// The values a credential form shows again. There is no token here on
/// purpose: a token is never put back into a page.
#[derive(Default)]
pub struct CredentialValues {
    pub(super) host: String,
    pub(super) robot: String,
    pub(super) expires_on: String,
    pub(super) never_expires: bool,
    pub(super) check_repository: String,
    pub(super) save_anyway: bool,
}

impl CredentialValues {
    pub(super) fn from_form(form: &CredentialForm) -> Self {
        Self {
            host: form.host.trim().to_owned(),
            robot: form.robot.trim().to_owned(),
            expires_on: form.expires_on.trim().to_owned(),
            never_expires: form.never_expires.is_some(),
            check_repository: form.check_repository.trim().to_owned(),
            save_anyway: form.save_anyway.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "registries/credentials.html")]
pub(super) struct CredentialsPage {
    pub(super) layout: Layout,
    pub(super) namespace: String,
    pub(super) credentials: Vec<CredentialView>,
    pub(super) values: CredentialValues,
    pub(super) errors: FieldErrors,
    pub(super) allowed: String,
    pub(super) warn_days: i64,
}

#[derive(Template)]
#[template(path = "registries/replace.html")]
pub(super) struct ReplacePage {
    pub(super) layout: Layout,
    pub(super) namespace: String,
    pub(super) credential: CredentialView,
    pub(super) values: CredentialValues,
    pub(super) errors: FieldErrors,
    pub(super) warn_days: i64,
}

/// An image as the pages show it.
pub struct ImageView {
    pub(super) id: i64,
    pub(super) reference: String,
    pub(super) robot: String,
    pub(super) digest: Option<String>,
    pub(super) checked: Option<String>,
    pub(super) check_error: Option<String>,
}

impl ImageView {
    pub(super) fn new(row: &ImageRow) -> Self {
        Self {
            id: row.id,
            reference: row.reference(),
            robot: row.robot.clone(),
            digest: row.digest.clone(),
            checked: row.checked_at.map(clock::display),
            check_error: row.check_error.clone(),
        }
    }
}

/// A credential in the image form's drop-down.
pub struct CredentialOption {
    pub(super) id: i64,
    pub(super) label: String,
    pub(super) selected: bool,
}

/// The values the image form shows again.
#[derive(Default)]
pub struct ImageValues {
    pub(super) reference: String,
    pub(super) credential_id: String,
    pub(super) register_anyway: bool,
}

#[derive(Template)]
#[template(path = "registries/images.html")]
pub(super) struct ImagesPage {
    pub(super) layout: Layout,
    pub(super) namespace: String,
    pub(super) images: Vec<ImageView>,
    pub(super) credentials: Vec<CredentialOption>,
    pub(super) values: ImageValues,
    pub(super) errors: FieldErrors,
    pub(super) example: String,
}

#[derive(Template)]
#[template(path = "registries/image.html")]
pub(super) struct ImagePage {
    pub(super) layout: Layout,
    pub(super) namespace: String,
    pub(super) image: ImageView,
    pub(super) media_type: String,
    pub(super) tags: Vec<String>,
    pub(super) current_tag: String,
    pub(super) steps: Vec<Step>,
    pub(super) pull: Option<String>,
}

#[cfg(test)]
mod render_tests {
    //! Every registries template renders with sample data (a broken page fails CI).
    use super::*;

    fn failed_form() -> FieldErrors {
        let mut errors = FieldErrors::default();
        errors.add("robot", "Bad robot.");
        errors.add("reference", "Bad reference.");
        errors
    }

    fn credential() -> CredentialView {
        CredentialView {
            id: 3,
            host: "reg.example.edu".into(),
            robot: "robot$cs101+ci".into(),
            expires_on: "2026-12-01".into(),
            expiry: Some(Expiry {
                text: "expires in 5 days".into(),
                level: "warn",
            }),
            never: false,
            from_token: false,
            verified: None,
            updated: "2026-11-30 10:00 UTC".into(),
            updated_by: "a@purdue.edu".into(),
        }
    }

    #[test]
    fn every_page_renders_and_keeps_values_but_never_a_token() {
        let values = || CredentialValues {
            host: "reg.example.edu".into(),
            robot: "robot$cs101+ci".into(),
            ..CredentialValues::default()
        };
        let list = CredentialsPage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            credentials: vec![credential()],
            values: values(),
            errors: failed_form(),
            allowed: "reg.example.edu".into(),
            warn_days: 14,
        }
        .render()
        .expect("credentials page");
        assert!(list.contains("expires in 5 days") && list.contains("badge-warn"));
        assert!(list.contains("error-summary") && list.contains("Bad robot."));
        assert!(
            list.contains("name=\"token\" value=\"\""),
            "token field always empty"
        );

        let replace = ReplacePage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            credential: credential(),
            values: values(),
            errors: FieldErrors::default(),
            warn_days: 14,
        }
        .render()
        .expect("replace page");
        assert!(replace.contains("/namespaces/cs101/credentials/3/replace"));
        assert!(!replace.contains("error-summary"));

        let image = ImageView {
            id: 9,
            reference: "reg.example.edu/cs101/app:1.0".into(),
            robot: "robot$cs101+ci".into(),
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            checked: Some("2026-11-30 10:00 UTC".into()),
            check_error: Some("The registry could not be reached.".into()),
        };
        let images = ImagesPage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            images: vec![ImageView { ..image }],
            credentials: vec![CredentialOption {
                id: 3,
                label: "robot$cs101+ci on reg.example.edu".into(),
                selected: true,
            }],
            values: ImageValues::default(),
            errors: failed_form(),
            example: "reg.example.edu/cs101/app:1.0".into(),
        }
        .render()
        .expect("images page");
        assert!(images.contains("<option value=\"3\" selected>"));
        assert!(images.contains("Bad reference."));

        let page = ImagePage {
            layout: Layout::bare(),
            namespace: "cs101".into(),
            image: ImageView {
                id: 9,
                reference: "reg.example.edu/cs101/app:1.0".into(),
                robot: "robot$cs101+ci".into(),
                digest: None,
                checked: None,
                check_error: None,
            },
            media_type: String::new(),
            tags: vec!["1.0".into(), "2.0".into()],
            current_tag: "1.0".into(),
            steps: forms::docker_steps(
                "reg.example.edu",
                "cs101/app",
                Some("1.0"),
                "robot$cs101+ci",
            ),
            pull: None,
        }
        .render()
        .expect("image page");
        assert!(
            page.contains("--username &#x27;robot$cs101+ci&#x27;")
                || page.contains("--username &#39;robot$cs101+ci&#39;"),
            "{page}"
        );
        assert!(page.contains("not resolved yet"));
    }
}
