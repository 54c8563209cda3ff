//! Sealed tokens at rest: never in the SQLite files in clear, bound to their
//! row, rotated under a new key, and a missing or wrong key stops Berth with a
//! clear message before anything changes. No registry needed: credentials
//! are saved with "save anyway" against a listed port where nothing listens.

use std::path::Path;

use crate::helpers::registries::{Berth, build, db_path, key_line};
use berth::{
    config::{Cli, Command, DatabaseConfig},
    crypto::{KeyConfig, Keyring},
    registries::store,
};
use clap::Parser;
use reqwest::StatusCode;

/// A listed registry where nothing answers (port 9, discard), over http.
fn unreachable_registry() -> Vec<String> {
    [
        "--default-registry",
        "127.0.0.1:9",
        "--allowed-registries",
        "127.0.0.1:9",
        "--insecure-registries",
        "127.0.0.1:9",
    ]
    .map(String::from)
    .to_vec()
}

fn with_keys(file: &Path) -> Vec<String> {
    let mut args = unreachable_registry();
    args.push("--master-keys-file".into());
    args.push(file.to_string_lossy().into_owned());
    args
}

async fn save(berth: &Berth, ns: &str, robot: &str, token: &str) {
    let response = berth
        .admin
        .submit(
            &format!("/namespaces/{ns}/registry"),
            &[
                ("host", "127.0.0.1:9"),
                ("robot", robot),
                ("token", token),
                ("save_anyway", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "saved anyway");
}

fn keyring(file: &Path) -> Keyring {
    Keyring::from_config(&KeyConfig {
        master_keys_file: Some(file.to_owned()),
        ..KeyConfig::default()
    })
    .expect("keys parse")
    .expect("keys configured")
}

async fn open_db(dir: &Path) -> sqlx::SqlitePool {
    berth::db::connect(&DatabaseConfig { path: db_path(dir) })
        .await
        .expect("database opens")
}

type Snapshot = Vec<(i64, String, Vec<u8>, Vec<u8>)>;

async fn snapshot(db: &sqlx::SqlitePool) -> Snapshot {
    sqlx::query_as("SELECT id, key_id, nonce, sealed_token FROM registry_credentials ORDER BY id")
        .fetch_all(db)
        .await
        .expect("rows")
}

/// `berth rotate-keys --database … --master-keys-file …`, parsed as the
/// binary parses it and run in-process (the shared target folder may hold
/// another branch's binary while tests run).
async fn rotate_keys(dir: &Path, keys_file: &Path) -> anyhow::Result<()> {
    let database = db_path(dir);
    let cli = Cli::try_parse_from([
        "berth".as_ref(),
        "rotate-keys".as_ref(),
        "--database".as_ref(),
        database.as_os_str(),
        "--master-keys-file".as_ref(),
        keys_file.as_os_str(),
    ])?;
    let Command::RotateKeys(config) = cli.command else {
        anyhow::bail!("not rotate-keys");
    };
    berth::registries::keys::rotate_keys(&config).await
}

fn token() -> String {
    format!("secret-{}", uuid::Uuid::new_v4().simple())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_saved_token_is_nowhere_in_the_database_files() {
    let dir = tempfile::tempdir().expect("dir");
    let berth = Berth::start(dir.path(), &unreachable_registry()).await;
    let secret = token();
    // A failed check first: the 422 page must not echo it either.
    let refused = berth
        .admin
        .submit(
            "/namespaces/cs101/registry",
            &[
                ("host", "127.0.0.1:9"),
                ("robot", "robot$cs101+ci"),
                ("token", &secret),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("body");
    assert!(html.contains("could not be reached"), "{html}");
    assert!(!html.contains(&secret));

    save(&berth, "cs101", "robot$cs101+ci", &secret).await;
    let page = berth.admin.html("/namespaces/cs101/registry").await;
    assert!(page.contains("robot$cs101+ci"));
    assert!(!page.contains(&secret), "never shown again");

    // It was really saved, and really opens with the generated key.
    let key_file = dir.path().join("master.key");
    let keys = keyring(&key_file);
    let id: i64 = sqlx::query_scalar("SELECT id FROM registry_credentials")
        .fetch_one(&berth.db)
        .await
        .expect("saved");
    let opened = store::open_token(&berth.db, &keys, "cs101", id)
        .await
        .expect("opens")
        .expect("exists");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), secret);

    let files = |dir: &Path| {
        let db = db_path(dir);
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| format!("{}{suffix}", db.display()))
            .filter(|path| Path::new(path).exists())
            .collect::<Vec<_>>()
    };
    let live = files(dir.path());
    assert!(
        live.iter().any(|f| f.ends_with("-wal")),
        "WAL mode: {live:?}"
    );
    for path in &live {
        let bytes = std::fs::read(path).expect("readable");
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "token bytes in {path}"
        );
    }
    berth.stop().await;
    // After shutdown (checkpointed into the main file) too.
    for path in files(dir.path()) {
        let bytes = std::fs::read(&path).expect("readable");
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "token bytes in {path}"
        );
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file)
            .expect("generated key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "generated key is private");
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_row_does_not_open() {
    let dir = tempfile::tempdir().expect("dir");
    let berth = Berth::start(dir.path(), &unreachable_registry()).await;
    save(&berth, "cs101", "robot$cs101+a", &token()).await;
    save(&berth, "cs102", "robot$cs102+b", &token()).await;
    let keys = keyring(&dir.path().join("master.key"));
    let rows = snapshot(&berth.db).await;
    let (first, second) = (rows[0].0, rows[1].0);
    sqlx::query(
        "UPDATE registry_credentials SET key_id = ?, nonce = ?, sealed_token = ? WHERE id = ?",
    )
    .bind(&rows[0].1)
    .bind(&rows[0].2)
    .bind(&rows[0].3)
    .bind(second)
    .execute(&berth.db)
    .await
    .expect("copying a ciphertext");
    assert!(
        store::open_token(&berth.db, &keys, "cs101", first)
            .await
            .is_ok()
    );
    let moved = store::open_token(&berth.db, &keys, "cs102", second).await;
    let error = format!("{:#}", moved.expect_err("a moved value must not open"));
    assert!(error.contains("does not open"), "{error}");
    berth.stop().await;
}

#[tokio::test]
async fn rotation_reseals_everything_and_the_old_key_can_go() {
    let dir = tempfile::tempdir().expect("dir");
    let keys_file = dir.path().join("keys");
    let old = key_line("old");
    let new = key_line("new");
    std::fs::write(&keys_file, &old).expect("write keys");
    let secrets = [token(), token()];
    let berth = Berth::start(dir.path(), &with_keys(&keys_file)).await;
    save(&berth, "cs101", "robot$cs101+a", &secrets[0]).await;
    save(&berth, "cs101", "robot$cs101+b", &secrets[1]).await;
    let before = snapshot(&berth.db).await;
    berth.stop().await;
    assert!(before.iter().all(|r| r.1 == "old"));

    // New key first (active), old still listed so the tokens open.
    std::fs::write(&keys_file, format!("{new}{old}")).expect("write keys");
    rotate_keys(dir.path(), &keys_file)
        .await
        .expect("rotate-keys succeeds");

    // The old key is removed from the configuration: everything still opens.
    std::fs::write(&keys_file, &new).expect("write keys");
    let berth = Berth::start(dir.path(), &with_keys(&keys_file)).await;
    let after = snapshot(&berth.db).await;
    assert!(after.iter().all(|r| r.1 == "new"), "{after:?}");
    for (b, a) in before.iter().zip(&after) {
        assert_ne!(b.2, a.2, "fresh nonce");
    }
    let keys = keyring(&keys_file);
    for (row, secret) in after.iter().zip(&secrets) {
        let opened = store::open_token(&berth.db, &keys, "cs101", row.0)
            .await
            .expect("opens under the new key")
            .expect("exists");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&opened),
            secret.as_str()
        );
    }
    berth.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let keys_file = dir.path().join("keys");
    std::fs::write(&keys_file, key_line("old")).expect("write keys");
    let berth = Berth::start(dir.path(), &with_keys(&keys_file)).await;
    save(&berth, "cs101", "robot$cs101+a", &token()).await;
    berth.stop().await;
    let db = open_db(dir.path()).await;
    let before = snapshot(&db).await;
    db.close().await;

    // Missing: only another key configured.
    let other_file = dir.path().join("other-keys");
    std::fs::write(&other_file, key_line("new")).expect("write keys");
    let error = build(dir.path(), &with_keys(&other_file))
        .await
        .err()
        .expect("start-up refuses");
    let message = format!("{error:#}");
    assert!(message.contains("master key `old`"), "{message}");
    assert!(message.contains("not configured"), "{message}");

    // Wrong bytes under the right id.
    let wrong_file = dir.path().join("wrong-keys");
    std::fs::write(&wrong_file, key_line("old")).expect("write keys");
    let error = build(dir.path(), &with_keys(&wrong_file))
        .await
        .err()
        .expect("start-up refuses");
    assert!(format!("{error:#}").contains("does not open with master key `old`"));

    // A configured key file that is missing: an error, no key generated.
    let missing = dir.path().join("no-such-file");
    let error = build(dir.path(), &with_keys(&missing))
        .await
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("no-such-file"));
    assert!(!dir.path().join("master.key").exists());

    // Nothing configured and no generated key, but sealed tokens exist.
    let error = build(dir.path(), &unreachable_registry())
        .await
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("no master key is configured"));
    assert!(
        !dir.path().join("master.key").exists(),
        "no new key invented"
    );

    // rotate-keys without the old key: fails, names it, writes nothing.
    let error = rotate_keys(dir.path(), &other_file)
        .await
        .expect_err("rotation without the old key");
    let said = format!("{error:#}");
    assert!(said.contains("`old`"), "{said}");
    assert!(said.contains("nothing was changed"), "{said}");

    let db = open_db(dir.path()).await;
    assert_eq!(snapshot(&db).await, before, "the database is unchanged");
    db.close().await;
}
