//! What every page's layout needs: who is signed in, the CSRF token, a flash.

use crate::db::Db;
use askama::Template;

use crate::{
    auth::{CurrentUser, session},
    error::AppResult,
};

/// The parts of `base.html` that change per request.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Version shown in the footer.
    pub version: &'static str,
    /// A one-off message from the previous request (Post/Redirect/Get).
    pub flash: Option<Flash>,
    /// Who is signed in, for the header.
    pub user: Option<Viewer>,
    /// The session's CSRF token, for the sign-out form and page forms.
    pub csrf_token: String,
    /// Show the "dev sign-in" warning banner.
    pub dev_banner: bool,
}

/// The signed-in person as the header shows them.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Email address.
    pub email: String,
    /// Name to show.
    pub display_name: String,
    /// Whether to show the admin navigation.
    pub is_admin: bool,
}

impl Layout {
    /// A layout with nobody signed in and no flash (error pages, sign-in).
    pub fn bare() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            ..Self::default()
        }
    }

    /// The layout for a signed-in page; takes the session's flash message.
    pub async fn for_user(db: &Db, user: &CurrentUser) -> AppResult<Self> {
        Ok(Self {
            version: env!("CARGO_PKG_VERSION"),
            flash: session::take_flash(db, &user.session).await?,
            user: Some(Viewer {
                email: user.email.clone(),
                display_name: user.display_name.clone(),
                is_admin: user.is_admin,
            }),
            csrf_token: user.csrf_token().to_owned(),
            dev_banner: false,
        })
    }

    /// Marks the page as served under the dev sign-in.
    pub fn with_dev_banner(mut self, on: bool) -> Self {
        self.dev_banner = on;
        self
    }
}

/// Leaves a flash message for the user's next page (Post/Redirect/Get).
pub async fn flash(db: &Db, user: &CurrentUser, kind: FlashKind, message: &str) -> AppResult<()> {
    session::set_flash(db, &user.session.id_hash, kind, message).await?;
    Ok(())
}

/// A message shown once at the top of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `success`, `info` or `error`: picks the colour.
    pub kind: FlashKind,
    /// Plain text; askama escapes it.
    pub message: String,
}

/// The tone of a flash message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    /// Something was done.
    Success,
    /// Something to know.
    Info,
    /// Something failed.
    Error,
}

impl FlashKind {
    /// CSS class suffix for the flash box.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Info => "info",
            Self::Error => "error",
        }
    }
}

/// "Are you sure?": the page a delete or remove link leads to, whose button
/// posts the change (so asking first works without JavaScript).
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    /// The layout.
    pub layout: Layout,
    /// Heading and title, e.g. "Delete the credential?".
    pub title: String,
    /// What will happen, in one sentence.
    pub question: String,
    /// What else to know (what goes with it, what stays).
    pub details: Vec<String>,
    /// Where the button posts.
    pub action: String,
    /// Extra hidden fields the post needs, `(name, value)`.
    pub hidden: Vec<(String, String)>,
    /// The button's words.
    pub button: String,
    /// Where "Cancel" goes.
    pub cancel: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirm_page_posts_with_the_token_and_its_fields() {
        let html = ConfirmPage {
            layout: Layout {
                csrf_token: "tok".into(),
                ..Layout::bare()
            },
            title: "Remove s@purdue.edu?".into(),
            question: "s@purdue.edu loses access to cs101.".into(),
            details: vec!["Their workloads keep running.".into()],
            action: "/admin/namespaces/cs101/members/remove".into(),
            hidden: vec![("email".into(), "s@purdue.edu".into())],
            button: "Remove".into(),
            cancel: "/admin/namespaces/cs101".into(),
        }
        .render()
        .expect("renders");
        assert!(
            html.contains(r#"<form method="post" action="/admin/namespaces/cs101/members/remove""#)
        );
        assert!(html.contains(r#"name="csrf_token" value="tok""#));
        assert!(html.contains(r#"name="email" value="s@purdue.edu""#));
        assert!(
            html.contains(
                r#"<a class="button secondary" href="/admin/namespaces/cs101">Cancel</a>"#
            )
        );
        assert!(html.contains("Their workloads keep running."));
    }
}
