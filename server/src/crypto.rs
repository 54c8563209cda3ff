//! Sealing secrets before they reach SQLite, and the master keys that do it.
//!
//! A secret (today: a registry robot's token) is sealed with XChaCha20-Poly1305
//! under the *active* master key, with a fresh random 192-bit nonce per write
//! (large enough that random nonces never collide in practice) and the row's
//! identity as associated data, so a ciphertext copied into another row does
//! not open. The key id is stored beside the ciphertext, so several keys can be
//! configured while `berth rotate-keys` (the registries feature, which knows
//! where the sealed rows are) moves every secret to the active one.
//!
//! Keys come from a file (a mounted Kubernetes Secret in the cluster) and/or
//! `BERTH_MASTER_KEYS`, as lines `keyid:base64-of-32-bytes`. When nothing is
//! configured, `berth serve` generates `<database folder>/master.key` (mode
//! 0600) on first start, so a local run works without setup.

use std::{
    collections::HashSet,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use clap::Args;
use rand::RngCore;
use secrecy::{
    ExposeSecret, SecretBox, SecretString,
    zeroize::{Zeroize, Zeroizing},
};

use crate::config::DatabaseConfig;

/// Length of a master key in bytes (XChaCha20-Poly1305 takes 256-bit keys).
pub const KEY_LEN: usize = 32;
/// Length of a nonce in bytes.
pub const NONCE_LEN: usize = 24;
/// Name of the key file `berth serve` generates beside the database.
pub const GENERATED_KEY_FILE: &str = "master.key";

/// Where the master keys come from.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyConfig {
    /// File of master keys, one `keyid:base64key` per line (32-byte keys; `#`
    /// starts a comment). In the cluster: a mounted Kubernetes Secret.
    #[arg(long, env = "BERTH_MASTER_KEYS_FILE")]
    pub master_keys_file: Option<PathBuf>,

    /// Master keys given directly, `keyid:base64key` separated by commas or
    /// newlines (prefer the file; never logged).
    #[arg(long, env = "BERTH_MASTER_KEYS", hide_env_values = true)]
    pub master_keys: Option<SecretString>,

    /// The key new secrets are sealed with. Default: the first key listed
    /// (the file's first, then the environment's).
    #[arg(long, env = "BERTH_ACTIVE_KEY_ID")]
    pub active_key_id: Option<String>,
}

/// `berth rotate-keys`: what it needs.
#[derive(Debug, Clone, Args)]
pub struct RotateKeysConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub keys: KeyConfig,
}

/// One master key; its bytes are zeroed when dropped and never printed.
struct MasterKey {
    id: String,
    bytes: SecretBox<[u8; KEY_LEN]>,
}

/// The configured master keys, one of them active.
pub struct Keyring {
    keys: Vec<MasterKey>,
    active: usize,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the ids: the key bytes never reach a log line.
        f.debug_struct("Keyring")
            .field("ids", &self.ids())
            .field("active", &self.active_id())
            .finish()
    }
}

/// A sealed secret as stored: which key, which nonce, the ciphertext (with tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the master key it was sealed under.
    pub key_id: String,
    /// The random nonce used for this write.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the 16-byte Poly1305 tag.
    pub ciphertext: Vec<u8>,
}

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// The key it was sealed under is not configured.
    #[error("it was sealed under master key `{0}`, which is not configured")]
    UnknownKey(String),
    /// Wrong key material, a tampered value, or a value moved from another row.
    #[error(
        "it does not open with master key `{0}` (wrong key, or the value was altered or moved)"
    )]
    Rejected(String),
}

impl Keyring {
    /// A keyring from explicit `(id, key)` pairs; the first is active.
    pub fn from_keys(keys: Vec<(String, [u8; KEY_LEN])>) -> anyhow::Result<Self> {
        let keys = keys
            .into_iter()
            .map(|(id, bytes)| {
                validate_key_id(&id)?;
                Ok(MasterKey {
                    id,
                    bytes: SecretBox::new(Box::new(bytes)),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Self::build(keys, None)
    }

    fn build(keys: Vec<MasterKey>, active_id: Option<&str>) -> anyhow::Result<Self> {
        let mut seen = HashSet::new();
        for key in &keys {
            if !seen.insert(key.id.clone()) {
                bail!("master key id `{}` is listed twice", key.id);
            }
        }
        let active = match active_id {
            Some(id) => keys.iter().position(|k| k.id == id).with_context(|| {
                format!("the active key id `{id}` is not among the configured master keys")
            })?,
            None => 0,
        };
        if keys.is_empty() {
            bail!("no master keys are configured");
        }
        Ok(Self { keys, active })
    }

    /// The keys configured by flags/environment, or `None` if nothing is.
    /// A configured file that is missing or malformed is an error, never a
    /// reason to fall back to a generated key.
    pub fn from_config(config: &KeyConfig) -> anyhow::Result<Option<Self>> {
        let mut keys = Vec::new();
        if let Some(path) = &config.master_keys_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the master keys file {}", path.display()))?,
            );
            keys.extend(
                parse_keys(&text)
                    .with_context(|| format!("in the master keys file {}", path.display()))?,
            );
            if keys.is_empty() {
                bail!("the master keys file {} holds no keys", path.display());
            }
        }
        if let Some(env) = &config.master_keys {
            let text = Zeroizing::new(env.expose_secret().replace(',', "\n"));
            keys.extend(parse_keys(&text).context("in BERTH_MASTER_KEYS")?);
        }
        if keys.is_empty() {
            if let Some(id) = &config.active_key_id {
                bail!("--active-key-id {id} is set but no master keys are configured");
            }
            return Ok(None);
        }
        Self::build(keys, config.active_key_id.as_deref()).map(Some)
    }

    /// The keys for `berth serve`: the configured ones, else the generated
    /// key file beside the database, created (mode 0600) if it does not exist
    /// and the database holds no secret yet (a new key could not open them).
    pub fn for_serve(
        config: &KeyConfig,
        database: &DatabaseConfig,
        database_has_secrets: bool,
    ) -> anyhow::Result<Self> {
        if let Some(keyring) = Self::from_config(config)? {
            return Ok(keyring);
        }
        let path = generated_key_path(database);
        if path.exists() {
            return Self::from_generated_file(&path);
        }
        if database_has_secrets {
            bail!(
                "the database holds sealed registry tokens, but no master key is configured \
                 (--master-keys-file or BERTH_MASTER_KEYS) and {} does not exist; \
                 nothing was changed",
                path.display()
            );
        }
        generate_key_file(&path)?;
        tracing::warn!(
            path = %path.display(),
            "no master keys configured: generated one for this local run; keep this file \
             with the database, or configure --master-keys-file for a real deployment"
        );
        Self::from_generated_file(&path)
    }

    /// The keys for commands that must not invent one (`rotate-keys`): the
    /// configured ones, else an existing generated key file.
    pub fn for_command(config: &KeyConfig, database: &DatabaseConfig) -> anyhow::Result<Self> {
        if let Some(keyring) = Self::from_config(config)? {
            return Ok(keyring);
        }
        let path = generated_key_path(database);
        if path.exists() {
            return Self::from_generated_file(&path);
        }
        bail!(
            "no master keys are configured (--master-keys-file or BERTH_MASTER_KEYS) and \
             there is no {} beside the database",
            path.display()
        )
    }

    fn from_generated_file(path: &Path) -> anyhow::Result<Self> {
        warn_if_readable_by_others(path);
        let config = KeyConfig {
            master_keys_file: Some(path.to_owned()),
            ..KeyConfig::default()
        };
        Self::from_config(&config)?.context("the generated key file holds no keys")
    }

    /// Id of the key new secrets are sealed with.
    pub fn active_id(&self) -> &str {
        &self.keys[self.active].id
    }

    /// Ids of every configured key.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Whether a key with this id is configured.
    pub fn has(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Seals `plaintext` under the active key with a fresh random nonce, bound
    /// to `aad` (the row's identity).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Sealed> {
        let key = &self.keys[self.active];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(key.bytes.expose_secret().into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Encryption only fails for absurdly long inputs.
            .map_err(|_| anyhow::anyhow!("sealing a secret failed"))?;
        Ok(Sealed {
            key_id: key.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens a sealed value; fails if the key is unknown, wrong, or `aad` is
    /// not the identity it was sealed with.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| OpenError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.nonce.len() != NONCE_LEN {
            return Err(OpenError::Rejected(key.id.clone()));
        }
        let cipher = XChaCha20Poly1305::new(key.bytes.expose_secret().into());
        cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Rejected(key.id.clone()))
    }

    /// Opens a sealed UTF-8 secret straight into a [`SecretString`].
    pub fn open_string(&self, sealed: &Sealed, aad: &[u8]) -> Result<SecretString, OpenError> {
        let mut bytes = self.open(sealed, aad)?;
        let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
            // Keep the bytes zeroed even on this unlikely path.
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            OpenError::Rejected(sealed.key_id.clone())
        })?;
        Ok(SecretString::from(text))
    }
}

/// A key id: short, printable, no separator characters.
fn validate_key_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        bail!("master key id `{id}` must be 1–64 letters, digits, `-`, `_` or `.`")
    }
}

/// Parses `keyid:base64key` lines. Error messages name the line and key id,
/// never the key.
fn parse_keys(text: &str) -> anyhow::Result<Vec<MasterKey>> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = index + 1;
        let Some((id, encoded)) = line.split_once(':') else {
            bail!("line {number} is not `keyid:base64key`");
        };
        let id = id.trim();
        validate_key_id(id).with_context(|| format!("line {number}"))?;
        let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| {
            anyhow::anyhow!("line {number}: master key `{id}` is not valid base64")
        })?);
        let bytes: [u8; KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "line {number}: master key `{id}` is {} bytes, it must be {KEY_LEN}",
                decoded.len()
            )
        })?;
        keys.push(MasterKey {
            id: id.to_owned(),
            bytes: SecretBox::new(Box::new(bytes)),
        });
    }
    Ok(keys)
}

/// Where `berth serve` keeps a generated key: beside the database.
pub fn generated_key_path(database: &DatabaseConfig) -> PathBuf {
    database
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join(GENERATED_KEY_FILE)
}

/// A fresh random key as a `keyid:base64key` line (for `berth generate-key`
/// style use and the generated key file).
pub fn new_key_line(id: &str) -> Zeroizing<String> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rng().fill_bytes(&mut *key);
    Zeroizing::new(format!("{id}:{}\n", STANDARD.encode(*key)))
}

fn generate_key_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the folder {}", parent.display()))?;
    }
    let id = format!("local-{}", crate::clock::now());
    let line = new_key_line(&id);
    // create_new: never overwrite a key that might already seal something.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating the master key file {}", path.display()))?;
    file.write_all(
        b"# Berth master key, generated for a local run. Losing it loses every saved token.\n",
    )
    .and_then(|()| file.write_all(line.as_bytes()))
    .and_then(|()| file.sync_all())
    .with_context(|| format!("writing the master key file {}", path.display()))?;
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the master key file is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(ids: &[&str]) -> Keyring {
        Keyring::from_keys(
            ids.iter()
                .enumerate()
                .map(|(i, id)| ((*id).to_owned(), [i as u8 + 1; KEY_LEN]))
                .collect(),
        )
        .expect("keyring")
    }

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let keys = keyring(&["a"]);
        let one = keys.seal(b"token", b"row 1").expect("seal");
        let two = keys.seal(b"token", b"row 1").expect("seal");
        assert_ne!(one.nonce, two.nonce, "a fresh nonce per write");
        assert_ne!(one.ciphertext, two.ciphertext);
        assert!(!one.ciphertext.windows(5).any(|w| w == b"token"));
        assert_eq!(&*keys.open(&one, b"row 1").expect("open"), b"token");
    }

    #[test]
    fn a_value_moved_to_another_row_does_not_open() {
        let keys = keyring(&["a"]);
        let sealed = keys.seal(b"token", b"row 1").expect("seal");
        assert_eq!(
            keys.open(&sealed, b"row 2"),
            Err(OpenError::Rejected("a".into()))
        );
    }

    #[test]
    fn unknown_and_wrong_keys_are_told_apart() {
        let sealed = keyring(&["a"]).seal(b"token", b"r").expect("seal");
        assert_eq!(
            keyring(&["b"]).open(&sealed, b"r"),
            Err(OpenError::UnknownKey("a".into()))
        );
        // Same id, other bytes.
        let other = Keyring::from_keys(vec![("a".into(), [9; KEY_LEN])]).expect("keyring");
        assert_eq!(
            other.open(&sealed, b"r"),
            Err(OpenError::Rejected("a".into()))
        );
    }

    #[test]
    fn key_lines_parse_and_errors_never_show_the_key() {
        let line = new_key_line("k1");
        let keys = parse_keys(&format!("# comment\n\n{}", &*line)).expect("parses");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].id, "k1");
        let short = format!("k2:{}", STANDARD.encode([1u8; 16]));
        let error = format!("{:#}", parse_keys(&short).err().expect("too short"));
        assert!(error.contains("16 bytes"), "{error}");
        assert!(!error.contains(&STANDARD.encode([1u8; 16])), "{error}");
        assert!(parse_keys("no-colon").is_err());
        assert!(parse_keys("bad id:AAAA").is_err());
    }

    #[test]
    fn active_key_is_chosen_by_id_and_must_exist() {
        let a = new_key_line("a");
        let b = new_key_line("b");
        let env = format!("{},{}", a.trim(), b.trim());
        let config = KeyConfig {
            master_keys: Some(SecretString::from(env)),
            active_key_id: Some("b".into()),
            ..KeyConfig::default()
        };
        let keys = Keyring::from_config(&config).expect("ok").expect("some");
        assert_eq!(keys.active_id(), "b");
        assert_eq!(keys.seal(b"x", b"y").expect("seal").key_id, "b");
        let missing = KeyConfig {
            active_key_id: Some("c".into()),
            ..config
        };
        let error = format!("{:#}", Keyring::from_config(&missing).expect_err("no c"));
        assert!(error.contains("`c`"), "{error}");
    }

    #[test]
    fn a_configured_but_missing_file_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().expect("dir");
        let config = KeyConfig {
            master_keys_file: Some(dir.path().join("nope")),
            ..KeyConfig::default()
        };
        let database = DatabaseConfig {
            path: dir.path().join("berth.db"),
        };
        assert!(Keyring::for_serve(&config, &database, false).is_err());
        assert!(!generated_key_path(&database).exists(), "nothing generated");
    }

    #[test]
    fn serve_generates_a_private_key_file_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let database = DatabaseConfig {
            path: dir.path().join("data/berth.db"),
        };
        let first = Keyring::for_serve(&KeyConfig::default(), &database, false).expect("generated");
        let path = generated_key_path(&database);
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = first.seal(b"t", b"r").expect("seal");
        let second = Keyring::for_serve(&KeyConfig::default(), &database, false).expect("loaded");
        assert_eq!(&*second.open(&sealed, b"r").expect("same key"), b"t");
    }
}
