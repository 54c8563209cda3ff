//! The registry tokens' master keys at work: proving at start-up that the
//! configured keys open every stored token, and `berth rotate-keys`, which
//! re-seals them all under the active key. [`crate::crypto`] only seals and
//! opens; which rows hold sealed values is this feature's business.

use anyhow::bail;

use super::store;
use crate::crypto::{Keyring, RotateKeysConfig};

/// Checks that every sealed value in the database can be opened with the
/// configured keys: one sample per key id is opened, so a missing key *or* a
/// wrong key under a known id stops start-up before anything is written.
pub async fn check_database(db: &sqlx::SqlitePool, keys: &Keyring) -> anyhow::Result<()> {
    for sample in store::sealed_samples(db).await? {
        let key_id = sample.sealed.key_id.clone();
        keys.open(&sample.sealed, &sample.aad).map_err(|error| {
            anyhow::anyhow!(
                "the database holds registry tokens that cannot be opened: {error}. \
                 Configure master key `{key_id}` (--master-keys-file or BERTH_MASTER_KEYS); \
                 nothing was changed"
            )
        })?;
    }
    Ok(())
}

/// `berth rotate-keys`: re-seals every secret under the active key in one
/// transaction. If any secret does not open, nothing is written.
pub async fn rotate_keys(config: &RotateKeysConfig) -> anyhow::Result<()> {
    if !config.database.path.exists() {
        bail!(
            "there is no database at {}; nothing to rotate",
            config.database.path.display()
        );
    }
    let keys = Keyring::for_command(&config.keys, &config.database)?;
    let db = crate::db::connect(&config.database).await?;
    let result = store::reseal_all(&db, &keys).await;
    db.close().await;
    let count = result?;
    println!(
        "{}: re-sealed {count} secret(s) under master key `{}`",
        config.database.path.display(),
        keys.active_id()
    );
    Ok(())
}
