//! Image references (`host[:port]/path/repo[:tag][@sha256:…]`), parsed and
//! validated to the OCI distribution reference grammar.
//!
//! Berth always needs to know which registry an image lives in, so unlike
//! `docker pull` the registry host is required, not defaulted to Docker Hub.

use std::fmt;

/// Longest repository name the grammar allows (host included).
const MAX_NAME_LEN: usize = 255;

/// A validated image reference with an explicit registry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, with `:port` if given (`geddes-registry.rcac.purdue.edu`).
    pub host: String,
    /// Repository path inside the registry (`project/repo`).
    pub repository: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest (`sha256:` + 64 hex), if given.
    pub digest: Option<String>,
}

impl ImageRef {
    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `host/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Why a reference was refused, in words for the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Nothing typed.
    #[error("Enter an image reference, like registry.example.edu/project/app:1.0.")]
    Empty,
    /// No `host/` at the start.
    #[error(
        "Start with the registry host, like {0}/project/app:1.0 (Berth does not assume Docker Hub)."
    )]
    NoHost(String),
    /// Host part is not a valid host[:port].
    #[error(
        "`{0}` is not a valid registry host (letters, digits, dots and dashes, optional :port)."
    )]
    BadHost(String),
    /// Repository path breaks the grammar.
    #[error(
        "`{0}` is not a valid repository path: lowercase letters and digits, separated by \
         `/`, `.`, `_`, `__` or dashes, starting and ending with a letter or digit."
    )]
    BadRepository(String),
    /// Tag breaks the grammar.
    #[error(
        "`{0}` is not a valid tag: up to 128 letters, digits, `_`, `.` or `-`, not starting \
         with `.` or `-`."
    )]
    BadTag(String),
    /// Digest is not sha256 + 64 hex.
    #[error("`{0}` is not a valid digest: expected sha256: followed by 64 lowercase hex digits.")]
    BadDigest(String),
    /// Neither tag nor digest.
    #[error("Add a tag (like :1.0 or :latest) or a digest (@sha256:…) to say which image.")]
    NoTagOrDigest,
    /// Too long overall.
    #[error("The repository name is longer than {MAX_NAME_LEN} characters.")]
    TooLong,
}

/// Parses `text`; `default_host` only appears in the hint when the host is missing.
pub fn parse(text: &str, default_host: &str) -> Result<ImageRef, RefError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RefError::Empty);
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => {
            if !valid_digest(digest) {
                return Err(RefError::BadDigest(digest.to_owned()));
            }
            (rest, Some(digest.to_owned()))
        }
        None => (text, None),
    };
    // A tag is after the last ':' that comes after the last '/', so a port
    // in the host is not mistaken for a tag.
    let last_slash = rest.rfind('/').unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(pos) => {
            let pos = last_slash + pos;
            (&rest[..pos], Some(rest[pos + 1..].to_owned()))
        }
        None => (rest, None),
    };
    if let Some(tag) = &tag
        && !valid_tag(tag)
    {
        return Err(RefError::BadTag(tag.clone()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(RefError::TooLong);
    }
    let Some((host, repository)) = name.split_once('/') else {
        return Err(RefError::NoHost(default_host.to_owned()));
    };
    // distribution's rule: the first component is a host only if it has a
    // dot, a port, or is `localhost`; otherwise it is a Docker Hub path.
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(RefError::NoHost(default_host.to_owned()));
    }
    if !valid_host(host) {
        return Err(RefError::BadHost(host.to_owned()));
    }
    if !valid_repository(repository) {
        return Err(RefError::BadRepository(repository.to_owned()));
    }
    if tag.is_none() && digest.is_none() {
        return Err(RefError::NoTagOrDigest);
    }
    Ok(ImageRef {
        host: host.to_ascii_lowercase(),
        repository: repository.to_owned(),
        tag,
        digest,
    })
}

/// `host[:port]`: DNS-style components or an IPv4 address, or `[ipv6]`.
pub fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => return valid_port(port),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port
        && !valid_port(port)
    {
        return false;
    }
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|component| {
            let bytes = component.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// `path-component ('/' path-component)*`.
pub fn valid_repository(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(valid_path_component)
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `[_.]|__|[-]+`.
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A run of separator characters: one of `.`, `_`, `__`, or dashes only.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let run = &component[start..i];
        let ok = run == "." || run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-')
}

/// `sha256:` and 64 lowercase hex digits (the only algorithm registries use).
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_the_shapes_students_type() {
        let r = parse("geddes-registry.rcac.purdue.edu/cs101/add-two:1.0", "x").expect("ok");
        assert_eq!(r.host, "geddes-registry.rcac.purdue.edu");
        assert_eq!(r.repository, "cs101/add-two");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.reference(), "1.0");

        let r = parse("127.0.0.1:5000/demo/add_two__x/a.b-c:v1", "x").expect("ok");
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository, "demo/add_two__x/a.b-c");

        let r = parse(&format!("localhost/app@{D}"), "x").expect("ok");
        assert_eq!(r.tag, None);
        assert_eq!(r.reference(), D);

        let r = parse(&format!("reg.example.edu:443/p/app:1@{D}"), "x").expect("ok");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.reference(), D, "a pinned digest wins over the tag");
        assert_eq!(r.to_string(), format!("reg.example.edu:443/p/app:1@{D}"));

        let r = parse("[::1]:5000/p/app:1", "x").expect("ok");
        assert_eq!(r.host, "[::1]:5000");
    }

    #[test]
    fn refuses_what_the_grammar_refuses() {
        let cases: &[(&str, RefError)] = &[
            ("", RefError::Empty),
            ("ubuntu:22.04", RefError::NoHost("x".into())),
            ("library/ubuntu:22.04", RefError::NoHost("x".into())),
            ("reg.edu/App:1", RefError::BadRepository("App".into())),
            ("reg.edu/p/-app:1", RefError::BadRepository("p/-app".into())),
            ("reg.edu/p/a..b:1", RefError::BadRepository("p/a..b".into())),
            (
                "reg.edu/p/a___b:1",
                RefError::BadRepository("p/a___b".into()),
            ),
            ("reg.edu/p//a:1", RefError::BadRepository("p//a".into())),
            ("reg.edu/p/a:.x", RefError::BadTag(".x".into())),
            ("reg.edu/p/a:x y", RefError::BadTag("x y".into())),
            ("reg.edu/p/a", RefError::NoTagOrDigest),
            (
                "reg.edu/p/a@sha256:abc",
                RefError::BadDigest("sha256:abc".into()),
            ),
            ("-reg.edu/p/a:1", RefError::BadHost("-reg.edu".into())),
            (
                "reg.edu:99999/p/a:1",
                RefError::BadHost("reg.edu:99999".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text, "x").as_ref(), Err(expected), "{text}");
        }
        let long = format!("reg.edu/{}:1", "a".repeat(300));
        assert_eq!(parse(&long, "x"), Err(RefError::TooLong));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(!valid_digest(&D.to_uppercase()));
    }
}
