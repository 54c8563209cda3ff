//! Queries for credentials and images. Tokens enter and leave this module only
//! sealed (in SQLite) or as [`SecretString`] (in memory).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sqlx::SqlitePool;

use crate::{
    clock::now,
    crypto::{Keyring, OpenError, Sealed},
    db::{Db, Memoized},
};

/// The associated data a credential's token is sealed with: the row's identity.
/// A ciphertext moved to another row (or namespace) no longer opens.
pub fn credential_aad(id: i64, namespace: &str) -> Vec<u8> {
    format!("berth/registry_credentials/v1/{id}/{namespace}").into_bytes()
}

/// A saved credential, without its token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    /// Row id.
    pub id: i64,
    /// Namespace that owns it.
    pub namespace: String,
    /// Registry `host[:port]`.
    pub host: String,
    /// Robot account name.
    pub robot: String,
    /// `YYYY-MM-DD` when the robot expires, if known.
    pub expires_on: Option<String>,
    /// Where that date came from: `typed`, `token`, `never` (see migration 0020).
    pub expiry_source: Option<String>,
    /// When the registry last accepted it (`None`: saved without a check).
    pub verified_at: Option<i64>,
    /// Who saved it first.
    pub created_by: String,
    /// When.
    pub created_at: i64,
    /// Who last replaced it.
    pub updated_by: String,
    /// When.
    pub updated_at: i64,
}

/// The credential columns, as a macro so queries stay `&'static str` literals.
macro_rules! credential_select {
    () => {
        "SELECT id, namespace, host, robot, expires_on, expiry_source, verified_at, \
         created_by, created_at, updated_by, updated_at FROM registry_credentials"
    };
}

/// What a new or replaced credential holds.
pub struct CredentialWrite<'a> {
    /// Robot account name.
    pub robot: &'a str,
    /// The token to seal.
    pub token: &'a SecretString,
    /// Expiry date, if known.
    pub expires_on: Option<&'a str>,
    /// Where it came from (`typed`, `token`, `never`).
    pub expiry_source: Option<&'a str>,
    /// Whether the registry accepted it just now.
    pub verified: bool,
    /// Who is saving it.
    pub actor: &'a str,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The namespace already has this robot for this registry.
    #[error("this namespace already has a credential for that robot on that registry")]
    Duplicate,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error
            && db.is_unique_violation()
        {
            return Self::Duplicate;
        }
        Self::Other(error.into())
    }
}

/// A namespace's credentials, as [`list_credentials`] last read them (the
/// workload page and the dashboard ask on every view). Every write of a
/// credential row forgets its namespace; nothing kept here is sealed, so
/// `berth rotate-keys` changes none of it.
struct Credentials;

impl Memoized for Credentials {
    type Key = String;
    type Value = Arc<[CredentialRow]>;
}

/// A credential write to `namespace` is committed: read its list anew.
fn changed(db: &Db, namespace: &str) {
    db.memo::<Credentials>().forget(&namespace.to_owned());
}

/// The namespace's credentials, by host and robot.
pub async fn list_credentials(db: &Db, namespace: &str) -> sqlx::Result<Arc<[CredentialRow]>> {
    let read = async {
        let rows: Vec<CredentialRow> = sqlx::query_as(concat!(
            credential_select!(),
            " WHERE namespace = ? ORDER BY host, robot"
        ))
        .bind(namespace)
        .fetch_all(db.pool())
        .await?;
        Ok(rows.into())
    };
    db.memo::<Credentials>()
        .get_or_read(namespace.to_owned(), read)
        .await
}

/// One credential of the namespace.
pub async fn credential(db: &Db, namespace: &str, id: i64) -> sqlx::Result<Option<CredentialRow>> {
    Ok(list_credentials(db, namespace)
        .await?
        .iter()
        .find(|row| row.id == id)
        .cloned())
}

/// The credentials of `namespaces` that expire on or before `until`
/// (`YYYY-MM-DD`, so text order is date order), soonest first: what the
/// dashboard warns about.
pub async fn expiring_credentials(
    db: &Db,
    namespaces: &[String],
    until: &str,
) -> sqlx::Result<Vec<CredentialRow>> {
    let mut rows = Vec::new();
    for namespace in namespaces {
        rows.extend(
            list_credentials(db, namespace)
                .await?
                .iter()
                .filter(|row| row.expires_on.as_deref().is_some_and(|on| on <= until))
                .cloned(),
        );
    }
    rows.sort_by(|a, b| (&a.expires_on, a.id).cmp(&(&b.expires_on, b.id)));
    Ok(rows)
}

/// Saves a new credential. The row is inserted first (its id is part of the
/// associated data), then the sealed token is written, in one transaction:
/// the placeholder is empty, never the token.
pub async fn insert_credential(
    db: &Db,
    keys: &Keyring,
    namespace: &str,
    host: &str,
    write: &CredentialWrite<'_>,
) -> Result<i64, WriteError> {
    let at = now();
    let mut tx = crate::db::begin_write(db).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO registry_credentials
            (namespace, host, robot, key_id, nonce, sealed_token, expires_on, expiry_source,
             verified_at, created_by, created_at, updated_by, updated_at)
         VALUES (?, ?, ?, ?, x'', x'', ?, ?, ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(namespace)
    .bind(host)
    .bind(write.robot)
    .bind(keys.active_id())
    .bind(write.expires_on)
    .bind(write.expiry_source)
    .bind(write.verified.then_some(at))
    .bind(write.actor)
    .bind(at)
    .bind(write.actor)
    .bind(at)
    .fetch_one(&mut *tx)
    .await?;
    let sealed = keys.seal(
        write.token.expose_secret().as_bytes(),
        &credential_aad(id, namespace),
    )?;
    store_sealed(&mut tx, id, &sealed).await?;
    tx.commit().await?;
    changed(db, namespace);
    Ok(id)
}

/// Replaces robot, token and expiry of a credential; `false` if there is none.
pub async fn replace_credential(
    db: &Db,
    keys: &Keyring,
    namespace: &str,
    id: i64,
    write: &CredentialWrite<'_>,
) -> Result<bool, WriteError> {
    let sealed = keys.seal(
        write.token.expose_secret().as_bytes(),
        &credential_aad(id, namespace),
    )?;
    let at = now();
    let result = sqlx::query(
        "UPDATE registry_credentials
         SET robot = ?, key_id = ?, nonce = ?, sealed_token = ?, expires_on = ?,
             expiry_source = ?, verified_at = ?, updated_by = ?, updated_at = ?
         WHERE namespace = ? AND id = ?",
    )
    .bind(write.robot)
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(write.expires_on)
    .bind(write.expiry_source)
    .bind(write.verified.then_some(at))
    .bind(write.actor)
    .bind(at)
    .bind(namespace)
    .bind(id)
    .execute(db.pool())
    .await?;
    changed(db, namespace);
    Ok(result.rows_affected() == 1)
}

async fn store_sealed(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
    sealed: &Sealed,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE registry_credentials SET key_id = ?, nonce = ?, sealed_token = ? WHERE id = ?",
    )
    .bind(&sealed.key_id)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(id)
    .execute(tx)
    .await?;
    Ok(())
}

/// How a delete ended.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Gone.
    Deleted,
    /// No such credential in this namespace.
    NotFound,
    /// Registered images still use it.
    InUse(i64),
}

/// Forgets every image and credential of a namespace that is gone (or is
/// being made anew), so a namespace re-created with the same name starts
/// empty: a sealed token is only ever opened for the namespace it was saved
/// in, and that namespace no longer exists. Returns how many credentials went.
pub async fn forget_namespace(db: &Db, namespace: &str) -> sqlx::Result<u64> {
    let mut tx = crate::db::begin_write(db).await?;
    sqlx::query("DELETE FROM registry_images WHERE namespace = ?")
        .bind(namespace)
        .execute(&mut *tx)
        .await?;
    let credentials = sqlx::query("DELETE FROM registry_credentials WHERE namespace = ?")
        .bind(namespace)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    changed(db, namespace);
    Ok(credentials)
}

/// Deletes a credential unless images still use it.
pub async fn delete_credential(db: &Db, namespace: &str, id: i64) -> sqlx::Result<DeleteOutcome> {
    let mut tx = crate::db::begin_write(db).await?;
    let in_use: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM registry_images WHERE credential_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if in_use > 0 {
        return Ok(DeleteOutcome::InUse(in_use));
    }
    let deleted = sqlx::query("DELETE FROM registry_credentials WHERE namespace = ? AND id = ?")
        .bind(namespace)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    changed(db, namespace);
    Ok(if deleted == 1 {
        DeleteOutcome::Deleted
    } else {
        DeleteOutcome::NotFound
    })
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    id: i64,
    namespace: String,
    key_id: String,
    nonce: Vec<u8>,
    sealed_token: Vec<u8>,
}

impl SealedRow {
    fn sealed(&self) -> Sealed {
        Sealed {
            key_id: self.key_id.clone(),
            nonce: self.nonce.clone(),
            ciphertext: self.sealed_token.clone(),
        }
    }

    fn aad(&self) -> Vec<u8> {
        credential_aad(self.id, &self.namespace)
    }
}

/// Opens the token of credential `id` in `namespace`.
pub async fn open_token(
    db: &SqlitePool,
    keys: &Keyring,
    namespace: &str,
    id: i64,
) -> anyhow::Result<Option<SecretString>> {
    let row: Option<SealedRow> = sqlx::query_as(
        "SELECT id, namespace, key_id, nonce, sealed_token FROM registry_credentials
         WHERE namespace = ? AND id = ?",
    )
    .bind(namespace)
    .bind(id)
    .fetch_optional(db)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => keys
            .open_string(&row.sealed(), &row.aad())
            .map(Some)
            .map_err(|e| anyhow::anyhow!("opening the token of credential {id}: {e}")),
    }
}

/// A sealed value and the associated data it should open with.
pub struct Sample {
    /// The stored value.
    pub sealed: Sealed,
    /// Its row identity.
    pub aad: Vec<u8>,
}

/// One sealed token per key id in use, to prove at start-up the keys open them.
pub async fn sealed_samples(db: &SqlitePool) -> sqlx::Result<Vec<Sample>> {
    let rows: Vec<SealedRow> = sqlx::query_as(
        "SELECT id, namespace, key_id, nonce, sealed_token FROM registry_credentials
         WHERE id IN (SELECT MIN(id) FROM registry_credentials GROUP BY key_id)",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .iter()
        .map(|row| Sample {
            sealed: row.sealed(),
            aad: row.aad(),
        })
        .collect())
}

/// Re-seals every token under the active key in one transaction; any token
/// that does not open aborts the whole rotation with nothing written.
pub async fn reseal_all(db: &SqlitePool, keys: &Keyring) -> anyhow::Result<usize> {
    let mut tx = crate::db::begin_write(db).await?;
    let rows: Vec<SealedRow> = sqlx::query_as(
        "SELECT id, namespace, key_id, nonce, sealed_token FROM registry_credentials ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let plain = keys
            .open(&row.sealed(), &row.aad())
            .map_err(|e: OpenError| {
                anyhow::anyhow!(
                    "credential {} ({}) cannot be opened: {e}; nothing was changed",
                    row.id,
                    row.namespace
                )
            })?;
        let sealed = keys.seal(&plain, &row.aad())?;
        store_sealed(&mut tx, row.id, &sealed).await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// A registered image, with the robot of its credential.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageRow {
    /// Row id.
    pub id: i64,
    /// Namespace.
    pub namespace: String,
    /// Credential used to reach it.
    pub credential_id: i64,
    /// That credential's robot name.
    pub robot: String,
    /// Registry `host[:port]`.
    pub host: String,
    /// `project/repo`.
    pub repository: String,
    /// Tag, if registered by tag.
    pub tag: Option<String>,
    /// Digest typed in the reference, if pinned.
    pub pinned_digest: Option<String>,
    /// Digest the registry resolved it to at `checked_at`.
    pub digest: Option<String>,
    /// Manifest media type.
    pub media_type: Option<String>,
    /// Repository tags at `checked_at`, newline-separated.
    pub tags: Option<String>,
    /// When the registry was last asked.
    pub checked_at: Option<i64>,
    /// Why the last check failed.
    pub check_error: Option<String>,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at: i64,
}

impl ImageRow {
    /// The reference as typed: `host/repo[:tag][@digest]`.
    pub fn reference(&self) -> String {
        let mut text = format!("{}/{}", self.host, self.repository);
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.pinned_digest {
            text.push('@');
            text.push_str(digest);
        }
        text
    }

    /// The tag or digest to ask the registry for.
    pub fn lookup(&self) -> &str {
        self.pinned_digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The repository's tags as a list.
    pub fn tag_list(&self) -> Vec<&str> {
        self.tags
            .as_deref()
            .map(|t| t.lines().filter(|l| !l.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// The image columns with the credential's robot, as a macro (see above).
macro_rules! image_select {
    () => {
        "SELECT i.id, i.namespace, i.credential_id, c.robot, i.host, \
         i.repository, i.tag, i.pinned_digest, i.digest, i.media_type, i.tags, i.checked_at, \
         i.check_error, i.created_by, i.created_at \
         FROM registry_images i JOIN registry_credentials c ON c.id = i.credential_id"
    };
}

/// The namespace's images.
pub async fn list_images(db: &SqlitePool, namespace: &str) -> sqlx::Result<Vec<ImageRow>> {
    sqlx::query_as(concat!(
        image_select!(),
        " WHERE i.namespace = ? ORDER BY i.host, i.repository, i.tag"
    ))
    .bind(namespace)
    .fetch_all(db)
    .await
}

/// One image of the namespace.
pub async fn image(db: &SqlitePool, namespace: &str, id: i64) -> sqlx::Result<Option<ImageRow>> {
    sqlx::query_as(concat!(
        image_select!(),
        " WHERE i.namespace = ? AND i.id = ?"
    ))
    .bind(namespace)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// What a check of an image found.
pub struct CheckResult<'a> {
    /// Resolved digest and media type, or `None` when the check failed.
    pub resolved: Option<(&'a str, Option<&'a str>)>,
    /// The repository's tags (kept from before when `None`).
    pub tags: Option<&'a [String]>,
    /// Why it failed.
    pub error: Option<&'a str>,
}

/// A new image to register.
pub struct NewImage<'a> {
    /// Credential to reach it with.
    pub credential_id: i64,
    /// Registry host.
    pub host: &'a str,
    /// `project/repo`.
    pub repository: &'a str,
    /// Tag.
    pub tag: Option<&'a str>,
    /// Pinned digest.
    pub pinned_digest: Option<&'a str>,
    /// Who registers it.
    pub actor: &'a str,
}

/// Registers an image with the result of its first check.
pub async fn insert_image(
    db: &SqlitePool,
    namespace: &str,
    image: &NewImage<'_>,
    check: &CheckResult<'_>,
) -> Result<i64, WriteError> {
    let at = now();
    let id = sqlx::query_scalar(
        "INSERT INTO registry_images
            (namespace, credential_id, host, repository, tag, pinned_digest, digest, media_type,
             tags, checked_at, check_error, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(namespace)
    .bind(image.credential_id)
    .bind(image.host)
    .bind(image.repository)
    .bind(image.tag)
    .bind(image.pinned_digest)
    .bind(check.resolved.map(|(d, _)| d))
    .bind(check.resolved.and_then(|(_, m)| m))
    .bind(check.tags.map(|t| t.join("\n")))
    .bind(at)
    .bind(check.error)
    .bind(image.actor)
    .bind(at)
    .fetch_one(db)
    .await?;
    Ok(id)
}

/// Records a re-check. A failed check keeps the last known digest and tags,
/// so a registry outage does not erase what was known.
pub async fn update_check(db: &SqlitePool, id: i64, check: &CheckResult<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE registry_images
         SET digest = COALESCE(?, digest), media_type = COALESCE(?, media_type),
             tags = COALESCE(?, tags), checked_at = ?, check_error = ?
         WHERE id = ?",
    )
    .bind(check.resolved.map(|(d, _)| d))
    .bind(check.resolved.and_then(|(_, m)| m))
    .bind(check.tags.map(|t| t.join("\n")))
    .bind(now())
    .bind(check.error)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes an image registration; `false` if there was none.
pub async fn delete_image(db: &SqlitePool, namespace: &str, id: i64) -> sqlx::Result<bool> {
    let result = sqlx::query("DELETE FROM registry_images WHERE namespace = ? AND id = ?")
        .bind(namespace)
        .bind(id)
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;

    #[tokio::test]
    async fn expiring_credentials_are_those_of_the_namespaces_asked_soonest_first() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = Db::new(
            crate::db::connect(&DatabaseConfig {
                path: dir.path().join("berth.db"),
            })
            .await
            .expect("the store"),
        );
        for (ns, robot, expires) in [
            ("a", "r1", Some("2026-12-09")),
            ("a", "r2", Some("2026-12-04")),
            ("a", "r3", Some("2027-06-01")),
            ("a", "r4", None),
            ("b", "r5", Some("2026-12-01")),
            ("c", "r6", Some("2026-12-02")),
        ] {
            sqlx::query(
                "INSERT INTO registry_credentials (namespace, host, robot, key_id, nonce,
                     sealed_token, expires_on, created_by, created_at, updated_by, updated_at)
                 VALUES (?, 'h', ?, 'k', x'00', x'00', ?, 'x', 0, 'x', 0)",
            )
            .bind(ns)
            .bind(robot)
            .bind(expires)
            .execute(db.pool())
            .await
            .expect("a row");
        }
        let robots =
            |rows: Vec<CredentialRow>| rows.into_iter().map(|r| r.robot).collect::<Vec<_>>();
        let mine = ["a".to_owned(), "b".to_owned()];
        let rows = expiring_credentials(&db, &mine, "2026-12-10")
            .await
            .expect("query");
        assert_eq!(
            robots(rows),
            ["r5", "r2", "r1"],
            "not c's, not later, not undated"
        );
        let none = expiring_credentials(&db, &[], "2026-12-10")
            .await
            .expect("query");
        assert!(none.is_empty());
    }

    /// Saving, replacing and deleting are seen by the next read, though
    /// reads are answered from the memo.
    #[tokio::test]
    async fn credential_writes_are_seen_by_the_next_read() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = Db::new(
            crate::db::connect(&DatabaseConfig {
                path: dir.path().join("berth.db"),
            })
            .await
            .expect("the store"),
        );
        let keys = Keyring::from_keys(vec![("k1".to_owned(), [7; crate::crypto::KEY_LEN])])
            .expect("a keyring");
        let token = SecretString::from("t0ken");
        let write = |robot, expires_on| CredentialWrite {
            robot,
            token: &token,
            expires_on,
            expiry_source: Some("typed"),
            verified: false,
            actor: "ann@purdue.edu",
        };
        let robots =
            |rows: &[CredentialRow]| rows.iter().map(|r| r.robot.clone()).collect::<Vec<_>>();
        assert!(list_credentials(&db, "a").await.expect("list").is_empty());
        let id = insert_credential(&db, &keys, "a", "h", &write("r1", None))
            .await
            .expect("saved");
        assert_eq!(
            robots(&list_credentials(&db, "a").await.expect("list")),
            ["r1"]
        );
        assert!(
            expiring_credentials(&db, &["a".to_owned()], "2026-12-10")
                .await
                .expect("query")
                .is_empty()
        );
        replace_credential(&db, &keys, "a", id, &write("r2", Some("2026-12-05")))
            .await
            .expect("replaced");
        let row = credential(&db, "a", id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(
            (row.robot.as_str(), row.expires_on.as_deref()),
            ("r2", Some("2026-12-05"))
        );
        assert_eq!(
            robots(
                &expiring_credentials(&db, &["a".to_owned()], "2026-12-10")
                    .await
                    .expect("query")
            ),
            ["r2"]
        );
        assert_eq!(
            delete_credential(&db, "a", id).await.expect("delete"),
            DeleteOutcome::Deleted
        );
        assert!(credential(&db, "a", id).await.expect("read").is_none());
        insert_credential(&db, &keys, "a", "h", &write("r3", None))
            .await
            .expect("saved");
        assert_eq!(forget_namespace(&db, "a").await.expect("forget"), 1);
        assert!(list_credentials(&db, "a").await.expect("list").is_empty());
    }
}
