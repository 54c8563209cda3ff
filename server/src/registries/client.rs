//! A small Registry v2 (OCI distribution) client: checks a robot's login,
//! resolves a tag to a digest, lists tags.
//!
//! Outbound requests are fenced, because the host comes from a student's form:
//! only hosts on the allow-list are contacted; every address a name resolves to
//! is checked at connect time (so DNS rebinding cannot slip past) and
//! link-local/metadata addresses are refused even for listed hosts; loopback
//! only for hosts listed *as* loopback; no proxy; redirects are followed only
//! within the same origin, so credentials never travel to another host.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, Response, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use url::Url;

use super::reference::valid_host;

/// Manifest media types Berth asks for, lists/indexes first so a multi-arch
/// tag resolves to the digest `docker pull` would record.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest or tag list Berth reads.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// At most this many tags are listed (pages of 200).
const MAX_TAGS: usize = 1000;

/// Which registries Berth may contact, and how.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The registry offered by default in forms.
    pub default_host: String,
    allowed: Vec<String>,
    insecure: Vec<String>,
}

impl Policy {
    /// Builds the policy; every entry must be a valid `host[:port]`.
    pub fn new(
        default_host: &str,
        allowed: &[String],
        insecure: &[String],
    ) -> anyhow::Result<Self> {
        let clean = |list: &[String]| -> anyhow::Result<Vec<String>> {
            list.iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .map(|h| {
                    if valid_host(&h) {
                        Ok(h)
                    } else {
                        anyhow::bail!("`{h}` is not a registry host[:port]")
                    }
                })
                .collect()
        };
        let default_host = default_host.trim().to_ascii_lowercase();
        if !valid_host(&default_host) {
            anyhow::bail!("the default registry `{default_host}` is not a host[:port]");
        }
        let mut allowed = clean(allowed)?;
        if allowed.is_empty() {
            allowed.push(default_host.clone());
        }
        Ok(Self {
            default_host,
            allowed,
            insecure: clean(insecure)?,
        })
    }

    /// Whether Berth may contact `host` (`host[:port]`, as in an image reference).
    pub fn is_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed.contains(&host)
    }

    /// The allowed hosts, for the form's help text.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    fn is_insecure(&self, host: &str) -> bool {
        self.insecure.contains(&host.to_ascii_lowercase())
    }

    /// `https://host/` (or `http://` for a host listed as insecure).
    fn base_url(&self, host: &str) -> Result<Url, RegistryError> {
        if !self.is_allowed(host) {
            return Err(RegistryError::NotAllowed {
                host: host.to_owned(),
            });
        }
        let scheme = if self.is_insecure(host) {
            "http"
        } else {
            "https"
        };
        Url::parse(&format!("{scheme}://{host}/")).map_err(|_| RegistryError::NotAllowed {
            host: host.to_owned(),
        })
    }

    /// Checks a URL the registry handed us (a token realm, a redirect): its
    /// host must be allowed and plain http only for hosts listed as insecure.
    fn check_url(&self, url: &Url) -> Result<(), RegistryError> {
        let host = origin_host(url);
        if !self.is_allowed(&host) {
            return Err(RegistryError::NotAllowed { host });
        }
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.is_insecure(&host) => Ok(()),
            _ => Err(RegistryError::Protocol {
                host: host.clone(),
                detail: format!(
                    "it asked Berth to send credentials over plain {}",
                    url.scheme()
                ),
            }),
        }
    }

    /// Whether a loopback address is acceptable for `name`: only when the
    /// listed host *is* loopback (`localhost`, `127.0.0.1`, `[::1]`), never
    /// because some DNS name happens to resolve there.
    fn loopback_listed(&self, name: &str) -> bool {
        let is_loopback_name = name == "localhost"
            || name
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let bare = |h: &str| h.trim_matches(['[', ']']).to_ascii_lowercase();
        is_loopback_name
            && self
                .allowed
                .iter()
                .any(|h| bare(host_name(h)) == bare(name))
    }

    /// IP-literal hosts never reach the resolver, so they are checked here.
    fn check_literal(&self, url: &Url) -> Result<(), RegistryError> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        match blocked_reason(ip, self.loopback_listed(&ip.to_string())) {
            Some(reason) => Err(RegistryError::Blocked {
                host: origin_host(url),
                detail: format!("it is {ip}, {reason}"),
            }),
            None => Ok(()),
        }
    }
}

/// `host` or `host:port` of a URL, as the allow-list spells it.
fn origin_host(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(v6)) => format!("[{v6}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// The name part of `host[:port]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        host.split_once(']')
            .map_or(host, |(v6, _)| &host[..=v6.len()])
    } else {
        host.split_once(':').map_or(host, |(name, _)| name)
    }
}

/// Why an address must not be contacted, if it must not.
pub fn blocked_reason(ip: IpAddr, loopback_ok: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_link_local() {
                Some("a link-local address (where cloud metadata services live)")
            } else if o == [100, 100, 100, 200] || o == [192, 0, 0, 192] {
                Some("a cloud metadata address")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || o[0] == 0 {
                Some("not a unicast address")
            } else if v4.is_loopback() && !loopback_ok {
                Some("a loopback address of Berth's own machine")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return blocked_reason(IpAddr::V4(v4), loopback_ok);
            }
            let s = v6.segments();
            if s[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address (where cloud metadata services live)")
            } else if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
                Some("a cloud metadata address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a unicast address")
            } else if v6.is_loopback() && !loopback_ok {
                Some("a loopback address of Berth's own machine")
            } else {
                None
            }
        }
    }
}

/// The resolver error for a refused address; found again when classifying.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, {reason}; Berth does not connect there")]
struct BlockedAddress {
    host: String,
    ip: IpAddr,
    reason: &'static str,
}

/// Resolves with the system resolver, then refuses blocked addresses. It runs
/// for every connection, so the address checked is the address used.
struct FencedResolver {
    policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for FencedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let loopback_ok = policy.loopback_listed(&host);
            for addr in &addrs {
                if let Some(reason) = blocked_reason(addr.ip(), loopback_ok) {
                    return Err(Box::new(BlockedAddress {
                        host: host.clone(),
                        ip: addr.ip(),
                        reason,
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What went wrong talking to a registry, in words for a student. Never
/// carries a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The host is not on the allow-list.
    #[error(
        "Berth is not allowed to contact the registry {host}. Ask an admin to add it to the allowed registries."
    )]
    NotAllowed {
        /// The refused `host[:port]`.
        host: String,
    },
    /// The host resolves to a refused address.
    #[error("Berth refuses to contact {host}: {detail}.")]
    Blocked {
        /// The refused host.
        host: String,
        /// Which address and why.
        detail: String,
    },
    /// No connection or no answer.
    #[error(
        "The registry {host} could not be reached ({detail}). Check the host name, or try again later."
    )]
    Unreachable {
        /// The host.
        host: String,
        /// Connection refused, timeout, DNS failure…
        detail: String,
    },
    /// The TLS handshake failed (bad or self-signed certificate, wrong host name).
    #[error("A secure (TLS) connection to {host} failed: {detail}.")]
    Tls {
        /// The host.
        host: String,
        /// What the TLS library said.
        detail: String,
    },
    /// The registry refused the robot name and token.
    #[error(
        "The registry {host} refused this robot name and token. Check both (the token is shown only once in Harbor; create a new one if it is lost)."
    )]
    BadCredentials {
        /// The host.
        host: String,
    },
    /// Logged in, but no pull access to this repository.
    #[error(
        "These credentials are valid but have no access to the repository {repository}. Give the robot account pull access to it in the registry."
    )]
    NoAccess {
        /// The repository.
        repository: String,
    },
    /// The repository does not exist.
    #[error(
        "The registry has no repository {repository}. Push an image to it first, or check the spelling."
    )]
    UnknownRepository {
        /// The repository.
        repository: String,
    },
    /// No manifest for this tag or digest.
    #[error(
        "The repository {repository} has no image tagged or with digest {reference}. Push it first, or check the tag."
    )]
    UnknownManifest {
        /// The repository.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
    },
    /// The registry redirected somewhere Berth does not follow.
    #[error(
        "The registry {host} redirected to {to}; Berth does not send credentials to another host."
    )]
    Redirected {
        /// The host.
        host: String,
        /// Where it pointed.
        to: String,
    },
    /// The registry answered something unexpected.
    #[error("The registry {host} gave an unexpected answer: {detail}.")]
    Protocol {
        /// The host.
        host: String,
        /// What was unexpected.
        detail: String,
    },
}

impl RegistryError {
    /// Whether the answer means the registry could not be asked at all
    /// (so "save anyway" makes sense), rather than a definite no.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Tls { .. } | Self::Protocol { .. }
        )
    }
}

/// What a robot logs in with. `Debug` cannot print the token.
#[derive(Debug, Clone)]
pub struct Login {
    /// `host[:port]` of the registry.
    pub host: String,
    /// Robot account name, e.g. `robot$project+ci`.
    pub robot: String,
    /// The robot's token.
    pub token: SecretString,
}

/// A tag resolved by the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// `sha256:…` of the manifest bytes the registry serves.
    pub digest: String,
    /// Its media type, as the registry reported it.
    pub media_type: Option<String>,
}

/// The shared HTTP client with the fence described in the module docs.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// Which registries may be contacted.
    pub policy: Arc<Policy>,
}

impl RegistryClient {
    /// Builds the client for `policy`.
    pub fn new(policy: Policy) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(FencedResolver {
                policy: policy.clone(),
            }))
            // A proxy would resolve names itself, past the fence.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(8))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, policy })
    }

    /// Checks that the registry accepts the login at all (`GET /v2/`).
    pub async fn check_login(&self, login: &Login) -> Result<(), RegistryError> {
        let mut session = Session::start(self, login).await?;
        let response = session.send(Method::GET, "v2/", None, None).await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(RegistryError::BadCredentials {
                    host: login.host.clone(),
                })
            }
            s => Err(session.unexpected(s)),
        }
    }

    /// Checks pull access to `repository` by listing its tags.
    pub async fn check_pull(&self, login: &Login, repository: &str) -> Result<(), RegistryError> {
        self.tags(login, repository).await.map(|_| ())
    }

    /// Resolves `reference` (tag or digest) in `repository` to the manifest digest.
    pub async fn resolve(
        &self,
        login: &Login,
        repository: &str,
        reference: &str,
    ) -> Result<Resolved, RegistryError> {
        let mut session = Session::start(self, login).await?;
        let path = format!("v2/{repository}/manifests/{reference}");
        let scope = pull_scope(repository);
        let head = session
            .send(Method::HEAD, &path, Some(&scope), Some(MANIFEST_ACCEPT))
            .await?;
        session.refuse_errors(&head, repository, Some(reference))?;
        let media_type = header_text(&head, header::CONTENT_TYPE);
        if let Some(digest) = header_text(&head, "docker-content-digest")
            && super::reference::valid_digest(&digest)
        {
            return Ok(Resolved { digest, media_type });
        }
        // Some registries omit the digest header on HEAD: hash what GET serves.
        let get = session
            .send(Method::GET, &path, Some(&scope), Some(MANIFEST_ACCEPT))
            .await?;
        session.refuse_errors(&get, repository, Some(reference))?;
        let media_type = header_text(&get, header::CONTENT_TYPE);
        let body = read_limited(get, &login.host).await?;
        Ok(Resolved {
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&body))),
            media_type,
        })
    }

    /// The repository's tags, sorted, at most [`MAX_TAGS`].
    pub async fn tags(
        &self,
        login: &Login,
        repository: &str,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut session = Session::start(self, login).await?;
        let scope = pull_scope(repository);
        let mut path = format!("v2/{repository}/tags/list?n=200");
        let mut tags = Vec::new();
        loop {
            let response = session.send(Method::GET, &path, Some(&scope), None).await?;
            session.refuse_errors(&response, repository, None)?;
            let next = next_link(&response);
            let body = read_limited(response, &login.host).await?;
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    host: login.host.clone(),
                    detail: format!("the tag list is not JSON ({e})"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) if tags.len() < MAX_TAGS => path = next,
                _ => break,
            }
        }
        tags.sort();
        tags.dedup();
        tags.truncate(MAX_TAGS);
        Ok(tags)
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The next page of a tag list from a `Link: </v2/…>; rel="next"` header,
/// as a path relative to the registry root.
fn next_link(response: &Response) -> Option<String> {
    let link = header_text(response, header::LINK)?;
    let start = link.find('<')? + 1;
    let end = link[start..].find('>')? + start;
    if !link[end..].contains("rel=\"next\"") {
        return None;
    }
    // Only a path on the same registry; an absolute URL elsewhere is ignored.
    link[start..end]
        .strip_prefix('/')
        .filter(|p| p.starts_with("v2/"))
        .map(str::to_owned)
}

fn header_text(response: &Response, name: impl header::AsHeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn read_limited(mut response: Response, host: &str) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(RegistryError::Protocol {
                        host: host.to_owned(),
                        detail: "the answer is larger than Berth reads".to_owned(),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(error) => return Err(classify(host, &error)),
        }
    }
}

/// How requests to one registry are authenticated, learnt from its challenge.
enum Auth {
    /// The registry asks for nothing.
    Anonymous,
    /// `WWW-Authenticate: Basic`: the robot's name and token on each request.
    Basic,
    /// `WWW-Authenticate: Bearer realm=…,service=…`: a token from the realm per scope.
    Bearer {
        realm: Url,
        service: Option<String>,
        tokens: HashMap<String, SecretString>,
    },
}

/// One conversation with a registry on behalf of one login.
struct Session<'a> {
    client: &'a RegistryClient,
    login: &'a Login,
    base: Url,
    auth: Auth,
}

impl<'a> Session<'a> {
    /// Pings `/v2/` without credentials to learn how the registry authenticates.
    async fn start(client: &'a RegistryClient, login: &'a Login) -> Result<Self, RegistryError> {
        let base = client.policy.base_url(&login.host)?;
        let mut session = Self {
            client,
            login,
            base,
            auth: Auth::Anonymous,
        };
        let ping = session.raw(Method::GET, "v2/", None, None).await?;
        session.auth = match ping.status() {
            s if s.is_success() => Auth::Anonymous,
            StatusCode::UNAUTHORIZED => {
                let challenges: Vec<Challenge> = ping
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(Challenge::parse)
                    .collect();
                if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
                    let realm = bearer
                        .param("realm")
                        .and_then(|r| Url::parse(r).ok())
                        .ok_or_else(|| {
                            session.protocol("its Bearer challenge has no usable realm")
                        })?;
                    client.policy.check_url(&realm)?;
                    Auth::Bearer {
                        realm,
                        service: bearer.param("service").map(str::to_owned),
                        tokens: HashMap::new(),
                    }
                } else if challenges.iter().any(|c| c.scheme == "basic") {
                    Auth::Basic
                } else {
                    return Err(session.protocol("it asks for a login Berth does not know"));
                }
            }
            StatusCode::NOT_FOUND => {
                return Err(session.protocol("it does not serve the Registry v2 API at /v2/"));
            }
            s => return Err(session.unexpected(s)),
        };
        Ok(session)
    }

    fn protocol(&self, detail: &str) -> RegistryError {
        RegistryError::Protocol {
            host: self.login.host.clone(),
            detail: detail.to_owned(),
        }
    }

    fn unexpected(&self, status: StatusCode) -> RegistryError {
        self.protocol(&format!("HTTP {status}"))
    }

    fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.login.robot, self.login.token.expose_secret());
        format!("Basic {}", STANDARD.encode(pair))
    }

    /// Sends with the right credentials for `scope`, fetching a Bearer token
    /// first if needed.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        scope: Option<&str>,
        accept: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let authorization = match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic => Some(self.basic_header()),
            Auth::Bearer { .. } => {
                let token = self.bearer_token(scope.unwrap_or("")).await?;
                Some(format!("Bearer {}", token.expose_secret()))
            }
        };
        self.raw(method, path, authorization.map(SecretString::from), accept)
            .await
    }

    /// Gets (and caches) a token for `scope` from the realm, logging in with
    /// Basic. A 401/403 there means the robot name or token is wrong.
    async fn bearer_token(&mut self, scope: &str) -> Result<SecretString, RegistryError> {
        let basic = self.basic_header();
        let Auth::Bearer {
            realm,
            service,
            tokens,
        } = &mut self.auth
        else {
            return Err(self.protocol("no Bearer realm"));
        };
        if let Some(token) = tokens.get(scope) {
            return Ok(token.clone());
        }
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service.as_deref() {
                query.append_pair("service", service);
            }
            if !scope.is_empty() {
                query.append_pair("scope", scope);
            }
        }
        let realm_host = origin_host(&url);
        self.client.policy.check_literal(&url)?;
        let response = self
            .client
            .http
            .get(url)
            .header(header::AUTHORIZATION, basic)
            .send()
            .await
            .map_err(|e| classify(&realm_host, &e))?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(RegistryError::BadCredentials {
                    host: self.login.host.clone(),
                });
            }
            s if s.is_redirection() => {
                return Err(RegistryError::Redirected {
                    host: realm_host,
                    to: header_text(&response, header::LOCATION).unwrap_or_default(),
                });
            }
            s => {
                return Err(RegistryError::Protocol {
                    host: realm_host,
                    detail: format!("its token service answered HTTP {s}"),
                });
            }
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = read_limited(response, &realm_host).await?;
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|_| RegistryError::Protocol {
                host: realm_host.clone(),
                detail: "its token service did not answer JSON".to_owned(),
            })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| RegistryError::Protocol {
                host: realm_host.clone(),
                detail: "its token service sent no token".to_owned(),
            })?;
        tokens.insert(scope.to_owned(), token.clone());
        Ok(token)
    }

    /// One request to the registry; same-origin redirects are followed with
    /// the same credentials, others refused.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<SecretString>,
        accept: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|_| self.protocol("a request path did not form a URL"))?;
        for _ in 0..4 {
            self.client.policy.check_literal(&url)?;
            let mut request = self.client.http.request(method.clone(), url.clone());
            if let Some(auth) = &authorization {
                request = request.header(header::AUTHORIZATION, auth.expose_secret());
            }
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT, accept);
            }
            let response = request
                .send()
                .await
                .map_err(|e| classify(&self.login.host, &e))?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let to = header_text(&response, header::LOCATION).unwrap_or_default();
            let next = url.join(&to).map_err(|_| self.protocol("a bad redirect"))?;
            if next.origin() != self.base.origin() {
                return Err(RegistryError::Redirected {
                    host: self.login.host.clone(),
                    to: origin_host(&next),
                });
            }
            url = next;
        }
        Err(self.protocol("too many redirects"))
    }

    /// Turns refusals into plain errors: 401/403 after a successful login mean
    /// no access to the repository; 404 tells unknown repository from unknown tag.
    fn refuse_errors(
        &self,
        response: &Response,
        repository: &str,
        reference: Option<&str>,
    ) -> Result<(), RegistryError> {
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => match self.auth {
                // With Bearer the login already succeeded at the realm, so a
                // refusal here is about this repository (Harbor issues a token
                // without the access a robot lacks).
                Auth::Bearer { .. } => Err(RegistryError::NoAccess {
                    repository: repository.to_owned(),
                }),
                _ if status == StatusCode::FORBIDDEN => Err(RegistryError::NoAccess {
                    repository: repository.to_owned(),
                }),
                _ => Err(RegistryError::BadCredentials {
                    host: self.login.host.clone(),
                }),
            },
            StatusCode::NOT_FOUND => {
                // HEAD has no body; distribution tells them apart by error code
                // on GET only, so for HEAD a 404 is "no such tag", which is what
                // a student fixes either way.
                match reference {
                    Some(reference) => Err(RegistryError::UnknownManifest {
                        repository: repository.to_owned(),
                        reference: reference.to_owned(),
                    }),
                    None => Err(RegistryError::UnknownRepository {
                        repository: repository.to_owned(),
                    }),
                }
            }
            s => Err(self.unexpected(s)),
        }
    }
}

/// Sorts a transport error into unreachable / TLS / refused address.
fn classify(host: &str, error: &reqwest::Error) -> RegistryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut tls = None;
    while let Some(current) = source {
        if let Some(blocked) = current.downcast_ref::<BlockedAddress>() {
            return RegistryError::Blocked {
                host: host.to_owned(),
                detail: format!("it resolves to {}, {}", blocked.ip, blocked.reason),
            };
        }
        let text = current.to_string();
        let lower = text.to_ascii_lowercase();
        if tls.is_none()
            && (lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("handshake"))
        {
            tls = Some(text);
        }
        source = current.source();
    }
    if let Some(detail) = tls {
        return RegistryError::Tls {
            host: host.to_owned(),
            detail,
        };
    }
    let detail = if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        let mut deepest = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            deepest = s.to_string();
            source = s.source();
        }
        format!("connection failed: {deepest}")
    } else {
        "the connection broke off".to_owned()
    };
    RegistryError::Unreachable {
        host: host.to_owned(),
        detail,
    }
}

/// One `WWW-Authenticate` challenge: scheme and parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased scheme: `basic` or `bearer`.
    pub scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// Parses `Scheme key="value", key2=token`; quoted values may hold commas
    /// and `\"` escapes.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (scheme, mut rest) = match text.split_once(char::is_whitespace) {
            Some((scheme, rest)) => (scheme, rest.trim_start()),
            None => (text, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let key = key
                .trim()
                .trim_start_matches(',')
                .trim()
                .to_ascii_lowercase();
            let after = after.trim_start();
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end?..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            };
            params.push((key, value));
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Self {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    /// A parameter's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_harbor_and_distribution_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://geddes-registry.rcac.purdue.edu/service/token",service="harbor-registry",scope="repository:cs101/app:pull,push""#,
        )
        .expect("parses");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(
            c.param("realm"),
            Some("https://geddes-registry.rcac.purdue.edu/service/token")
        );
        assert_eq!(c.param("service"), Some("harbor-registry"));
        assert_eq!(c.param("scope"), Some("repository:cs101/app:pull,push"));

        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).expect("parses");
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.param("realm"), Some("Registry Realm"));

        let c = Challenge::parse(r#"Bearer realm="a\"b", error=insufficient_scope"#).expect("ok");
        assert_eq!(c.param("realm"), Some("a\"b"));
        assert_eq!(c.param("error"), Some("insufficient_scope"));
        assert!(Challenge::parse(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn metadata_and_link_local_are_always_refused() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:169.254.169.254",
            "0.0.0.0",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(blocked_reason(ip, true).is_some(), "{ip}");
        }
        let lo: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(blocked_reason(lo, false).is_some());
        assert!(blocked_reason(lo, true).is_none());
        assert!(blocked_reason("128.210.1.1".parse().expect("ip"), false).is_none());
    }

    #[test]
    fn policy_allows_only_listed_hosts_and_listed_loopback() {
        let policy = Policy::new("geddes-registry.rcac.purdue.edu", &[], &[]).expect("policy");
        assert!(policy.is_allowed("geddes-registry.rcac.purdue.edu"));
        assert!(policy.is_allowed("GEDDES-registry.rcac.purdue.edu"));
        assert!(!policy.is_allowed("evil.example.com"));
        assert!(!policy.loopback_listed("localhost"));
        assert_eq!(
            policy
                .base_url("geddes-registry.rcac.purdue.edu")
                .expect("ok")
                .as_str(),
            "https://geddes-registry.rcac.purdue.edu/"
        );

        let local = Policy::new(
            "127.0.0.1:5000",
            &["127.0.0.1:5000".into(), "[::1]:5001".into()],
            &["127.0.0.1:5000".into()],
        )
        .expect("policy");
        assert!(local.loopback_listed("127.0.0.1"));
        assert!(local.loopback_listed("::1"));
        assert!(!local.loopback_listed("localhost"));
        assert_eq!(
            local.base_url("127.0.0.1:5000").expect("ok").as_str(),
            "http://127.0.0.1:5000/"
        );
        // A realm over plain http on a host not listed insecure is refused.
        let realm = Url::parse("http://[::1]:5001/token").expect("url");
        assert!(local.check_url(&realm).is_err());
        let realm = Url::parse("http://127.0.0.1:5000/token").expect("url");
        assert!(local.check_url(&realm).is_ok());
        let elsewhere = Url::parse("https://evil.example/token").expect("url");
        assert_eq!(
            local.check_url(&elsewhere),
            Err(RegistryError::NotAllowed {
                host: "evil.example".into()
            })
        );
        assert!(Policy::new("bad host", &[], &[]).is_err());
    }

    #[tokio::test]
    async fn a_listed_ip_literal_in_link_local_space_is_not_contacted() {
        // IP literals skip the resolver, so the client checks them itself.
        let client = RegistryClient::new(
            Policy::new("169.254.169.254", &[], &["169.254.169.254".into()]).expect("policy"),
        )
        .expect("client");
        let login = Login {
            host: "169.254.169.254".into(),
            robot: "r".into(),
            token: SecretString::from("t"),
        };
        let error = client.check_login(&login).await.expect_err("refused");
        assert!(matches!(error, RegistryError::Blocked { .. }), "{error:?}");
    }
}
