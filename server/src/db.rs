//! The SQLite store: connection pool, migrations, and the answers every page
//! reads kept in memory ([`Memo`]).
//!
//! SQLite holds only what the cluster does not (users, sessions, memberships,
//! sealed credentials, images, the audit log): the design's "Where truth lives".

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    hash::Hash,
    ops::Deref,
    path::Path,
    str::FromStr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    SqlitePool,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::config::DatabaseConfig;

/// Migrations from the repository's top-level `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The database: the pool, and the memos of what pages read on every view.
/// Derefs to the pool, so store functions that need no memo take
/// `&SqlitePool` and are called with `&state.db` all the same.
///
/// Berth is the only writer of its database while it serves (one replica;
/// `berth rotate-keys` touches only sealed secrets, which are not memoized).
/// Tests that write rows behind Berth's back call [`Db::forget_all`].
#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
    memos: Arc<Mutex<HashMap<TypeId, Arc<dyn Forget>>>>,
}

impl Deref for Db {
    type Target = SqlitePool;

    fn deref(&self) -> &SqlitePool {
        &self.pool
    }
}

impl Db {
    /// The database behind `pool`, with no memo filled yet.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            memos: Arc::default(),
        }
    }

    /// The pool itself, for sqlx calls made directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The memo `M` names (a marker type of the module that owns it),
    /// created empty on first use.
    pub fn memo<M: Memoized>(&self) -> Arc<Memo<M::Key, M::Value>> {
        let mut memos = self.memos.lock().unwrap_or_else(PoisonError::into_inner);
        let memo = memos
            .entry(TypeId::of::<M>())
            .or_insert_with(|| Arc::new(Memo::<M::Key, M::Value>::default()))
            .clone();
        memo.as_any()
            .downcast::<Memo<M::Key, M::Value>>()
            .unwrap_or_else(|_| unreachable!("a memo is stored under its own marker type"))
    }

    /// Forgets every memoized answer: after rows were changed behind Berth's
    /// back (tests), the next reads go to SQLite.
    pub fn forget_all(&self) {
        let memos = self.memos.lock().unwrap_or_else(PoisonError::into_inner);
        for memo in memos.values() {
            memo.forget_all();
        }
    }

    /// Closes the pool (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Names a memo: what it is keyed by and what it keeps.
pub trait Memoized: 'static {
    /// What an answer is looked up by.
    type Key: Eq + Hash + Send + 'static;
    /// The answer, cloned out on each hit.
    type Value: Clone + Send + 'static;
}

/// Answers read from SQLite, kept until a write could have changed them.
///
/// Each read of SQLite is a hand-off to one of sqlx's connection threads and
/// back, which costs more than the rest of a page, so the answers every page
/// needs (the session, the person's memberships) are kept here. Correctness
/// rests on a generation: every write that could change an answer calls
/// [`Memo::forget`] or [`Memo::forget_all`] *after* it is committed, which
/// moves the generation on; a reader notes the generation *before* it
/// queries and [`Memo::put`] keeps the answer only if the generation has not
/// moved since. So an answer read before a write can never be kept after it.
pub struct Memo<K, V> {
    state: Mutex<MemoState<K, V>>,
}

struct MemoState<K, V> {
    generation: u64,
    answers: HashMap<K, V>,
}

/// At most this many answers per memo; past it the memo starts over (an
/// answer is one query away).
const MEMO_CAPACITY: usize = 10_000;

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self {
            state: Mutex::new(MemoState {
                generation: 0,
                answers: HashMap::new(),
            }),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoState<K, V>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer kept for `key`, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        self.state().answers.get(key).cloned()
    }

    /// The generation to note before querying for an answer to [`Memo::put`].
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Keeps `value` for `key` if nothing was forgotten since `generation`.
    pub fn put(&self, key: K, generation: u64, value: V) {
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        if state.answers.len() >= MEMO_CAPACITY {
            state.answers.clear();
        }
        state.answers.insert(key, value);
    }

    /// The answer for `key`, or `read`'s (kept unless a write came between).
    pub async fn get_or_read<E>(
        &self,
        key: K,
        read: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let generation = self.generation();
        let value = read.await?;
        self.put(key, generation, value.clone());
        Ok(value)
    }

    /// A write changed what `key` answers: drop it, and refuse answers read
    /// before now.
    pub fn forget(&self, key: &K) {
        let mut state = self.state();
        state.generation += 1;
        state.answers.remove(key);
    }
}

/// What [`Db`] needs of a memo without knowing its types.
trait Forget: Any + Send + Sync {
    fn forget_all(&self);
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<K: Send + 'static, V: Send + 'static> Forget for Memo<K, V> {
    fn forget_all(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.answers.clear();
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl<K: Eq + Hash + Send + 'static, V: Clone + Send + 'static> Memo<K, V> {
    /// A write changed answers of many keys: drop them all.
    pub fn forget_all(&self) {
        Forget::forget_all(self);
    }
}

/// Opens (creating if needed) the database file and applies pending migrations.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<SqlitePool> {
    let path = &config.path;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the database folder {}", parent.display()))?;
    }
    let pool = open(path).await?;
    MIGRATOR
        .run(&pool)
        .await
        .with_context(|| format!("applying migrations to {}", path.display()))?;
    Ok(pool)
}

async fn open(path: &Path) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        // WAL lets page views read while a form submit writes.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Writers queue instead of failing with SQLITE_BUSY under a burst of submits.
        .busy_timeout(Duration::from_secs(5));
    // Each connection is a thread of sqlx's and a page cache of SQLite's; on
    // a 2-core node four keep both cores busy (WAL readers run in parallel).
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("opening the database {}", path.display()))
}

/// `berth migrate`: apply migrations and report what was done.
pub async fn migrate_only(config: &DatabaseConfig) -> anyhow::Result<()> {
    let pool = connect(config).await?;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await?;
    println!(
        "{}: {applied} migration(s) applied, schema is current",
        config.path.display()
    );
    pool.close().await;
    Ok(())
}

/// A transaction that will write: `BEGIN IMMEDIATE`, so it holds the write
/// lock from the start. A deferred one that reads and then writes is refused
/// at once ("database is locked") when another connection wrote in between,
/// since SQLite cannot upgrade a stale snapshot; the busy timeout does not
/// apply to that.
pub async fn begin_write(
    pool: &SqlitePool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Answers whether the database can serve a query (for `/readyz`).
pub async fn ping(pool: &SqlitePool) -> bool {
    sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(pool)
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Numbers;

    impl Memoized for Numbers {
        type Key = &'static str;
        type Value = u32;
    }

    struct Others;

    impl Memoized for Others {
        type Key = &'static str;
        type Value = u32;
    }

    fn db() -> Db {
        let pool = SqlitePoolOptions::new()
            .connect_lazy("sqlite::memory:")
            .expect("a lazy pool");
        Db::new(pool)
    }

    #[tokio::test]
    async fn an_answer_read_before_a_write_is_never_kept_after_it() {
        let db = db();
        let memo = db.memo::<Numbers>();
        let before = memo.generation();
        // A write lands (and forgets) while the read is under way.
        memo.forget(&"one");
        memo.put("one", before, 1);
        assert_eq!(memo.get(&"one"), None, "the stale answer was dropped");

        let now = memo.generation();
        memo.put("one", now, 2);
        assert_eq!(memo.get(&"one"), Some(2));
        // Forgetting another key keeps this one, but refuses reads begun before.
        let before = memo.generation();
        memo.forget(&"two");
        assert_eq!(memo.get(&"one"), Some(2));
        memo.put("two", before, 3);
        assert_eq!(memo.get(&"two"), None);
    }

    #[tokio::test]
    async fn get_or_read_reads_once_and_errors_are_not_kept() {
        let db = db();
        let memo = db.memo::<Numbers>();
        let failed: Result<u32, &str> = memo.get_or_read("n", async { Err("no") }).await;
        assert_eq!(failed, Err("no"));
        assert_eq!(memo.get_or_read("n", async { Ok::<_, ()>(7) }).await, Ok(7));
        assert_eq!(
            memo.get_or_read("n", async { Ok::<_, ()>(8) }).await,
            Ok(7),
            "the kept answer, no second read"
        );
    }

    #[tokio::test]
    async fn memos_are_per_marker_and_shared_by_clones_and_forget_all_empties_each() {
        let db = db();
        let numbers = db.memo::<Numbers>();
        numbers.put("a", numbers.generation(), 1);
        let others = db.clone().memo::<Others>();
        others.put("a", others.generation(), 2);
        assert_eq!(db.clone().memo::<Numbers>().get(&"a"), Some(1));
        assert_eq!(db.memo::<Others>().get(&"a"), Some(2));
        db.forget_all();
        assert_eq!(numbers.get(&"a"), None);
        assert_eq!(others.get(&"a"), None);
    }

    #[tokio::test]
    async fn a_full_memo_starts_over() {
        let db = db();
        let memo = db.memo::<Numbers>();
        let keys: Vec<&'static str> = (0..=MEMO_CAPACITY)
            .map(|i| &*Box::leak(i.to_string().into_boxed_str()))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            memo.put(key, memo.generation(), u32::try_from(i).unwrap_or(0));
        }
        assert_eq!(memo.get(&keys[0]), None, "dropped when full");
        assert_eq!(memo.get(keys.last().expect("a key")), Some(10_000));
    }
}
