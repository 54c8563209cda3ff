//! Driving the test world's real OIDC provider (Dex) like a browser would:
//! follow its redirects, fill in its password form, and stop at the redirect
//! back to Berth so tests can inspect or tamper with the code and state.

use reqwest::{StatusCode, Url, header};

use super::{TestApp, location, post_form};

/// The provider the test world runs, from its environment.
pub struct Provider {
    /// Issuer URL.
    pub issuer: String,
    /// Client id registered for Berth.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// `email → password` of the test users.
    users: Vec<(String, String)>,
}

impl Provider {
    /// Reads `TESTENV_OIDC_*`; panics with instructions when run outside testenv.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the tests under testenv/run (see README)")
            })
        };
        let users = var("TESTENV_OIDC_USERS")
            .split(',')
            .filter_map(|pair| pair.split_once(':'))
            .map(|(email, password)| (email.to_owned(), password.to_owned()))
            .collect();
        Self {
            issuer: var("TESTENV_OIDC_ISSUER"),
            client_id: var("TESTENV_OIDC_CLIENT_ID"),
            client_secret: var("TESTENV_OIDC_CLIENT_SECRET"),
            users,
        }
    }

    /// The provider the test world runs for Berth inside the cluster
    /// (`TESTENV_INCLUSTER_OIDC_ISSUER`): the same users and client.
    pub fn in_cluster_from_env() -> Self {
        let issuer = std::env::var("TESTENV_INCLUSTER_OIDC_ISSUER")
            .expect("TESTENV_INCLUSTER_OIDC_ISSUER is set by testenv/run");
        Self {
            issuer,
            ..Self::from_env()
        }
    }

    /// The password of a test user.
    pub fn password(&self, email: &str) -> &str {
        self.users
            .iter()
            .find(|(e, _)| e == email)
            .map(|(_, p)| p.as_str())
            .unwrap_or_else(|| panic!("{email} is not a test user"))
    }

    /// `berth serve` arguments that point Berth at this provider.
    pub fn berth_args(&self) -> Vec<String> {
        vec![
            "--oidc-issuer".into(),
            self.issuer.clone(),
            "--oidc-client-id".into(),
            self.client_id.clone(),
            "--oidc-client-secret".into(),
            self.client_secret.clone(),
        ]
    }
}

/// Starts Berth's sign-in and signs in at the provider as `email`; returns the
/// URL the provider redirected back to (Berth's callback with code and state),
/// without visiting it.
pub async fn authorize(
    app: &TestApp,
    client: &reqwest::Client,
    provider: &Provider,
    email: &str,
) -> Url {
    let start = client
        .get(app.url("/auth/start?next=%2F"))
        .send()
        .await
        .expect("starting sign-in");
    assert_eq!(
        start.status(),
        StatusCode::SEE_OTHER,
        "Berth redirects to the provider"
    );
    let next = Url::parse(&location(&start)).expect("authorize URL");
    assert!(
        next.as_str().starts_with(&provider.issuer),
        "redirected to the provider: {next}"
    );
    provider.log_in(client, next, email, &app.base).await
}

impl Provider {
    /// Follows the provider's pages from `authorize_url`, filling in the
    /// password form as `email`, until it redirects to a URL starting with
    /// `back_to`; returns that URL without visiting it.
    pub async fn log_in(
        &self,
        client: &reqwest::Client,
        authorize_url: Url,
        email: &str,
        back_to: &str,
    ) -> Url {
        let mut next = authorize_url;
        for _ in 0..10 {
            if next.as_str().starts_with(back_to) {
                return next;
            }
            let response = client
                .get(next.clone())
                .send()
                .await
                .expect("provider answers");
            match response.status() {
                s if s.is_redirection() => {
                    next = next.join(&location(&response)).expect("redirect URL");
                }
                StatusCode::OK => {
                    let html = response.text().await.expect("provider page");
                    let action = form_action(&html)
                        .unwrap_or_else(|| panic!("the provider's page has no login form: {html}"));
                    let form_url = next.join(&action).expect("form URL");
                    let posted = post_form(
                        client,
                        form_url.as_str(),
                        &[("login", email), ("password", self.password(email))],
                    )
                    .await;
                    assert!(
                        posted.status().is_redirection(),
                        "the provider accepted the password: {}",
                        posted.status()
                    );
                    next = form_url.join(&location(&posted)).expect("redirect URL");
                }
                other => panic!("unexpected answer {other} from the provider at {next}"),
            }
        }
        panic!("the provider never redirected back to {back_to}");
    }
}

/// Signs `client` in to Berth through the provider; returns Berth's callback response.
pub async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    provider: &Provider,
    email: &str,
) -> reqwest::Response {
    let callback = authorize(app, client, provider, email).await;
    client
        .get(callback)
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .expect("Berth's callback answers")
}

fn form_action(html: &str) -> Option<String> {
    let form = html.find("<form")?;
    let rest = &html[form..];
    let start = rest.find("action=\"")? + "action=\"".len();
    let end = rest[start..].find('"')? + start;
    Some(rest[start..end].replace("&amp;", "&"))
}
