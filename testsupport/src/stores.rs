//! The stores under test: a fresh SQLite file, or a fresh database on the
//! PostgreSQL server that `.ci/run` starts (its URL in
//! `KONG_LOOKER_TEST_POSTGRES`). Both are read back with their own clients.

use std::sync::atomic::{AtomicU32, Ordering};

/// The PostgreSQL server's URL variable.
pub const PG_ENV: &str = "KONG_LOOKER_TEST_POSTGRES";
/// A shell command that restarts that server.
pub const PG_RESTART_ENV: &str = "KONG_LOOKER_TEST_POSTGRES_RESTART";

/// A store for one test.
pub enum TestStore {
    /// A SQLite file in its own folder.
    Sqlite(tempfile::TempDir),
    /// A database of its own.
    Postgres(String),
}

impl TestStore {
    /// A new SQLite file.
    pub fn sqlite() -> TestStore {
        TestStore::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A new database on the test server.
    pub fn postgres() -> TestStore {
        static N: AtomicU32 = AtomicU32::new(0);
        let server = server_url();
        let name = format!(
            "kl_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        block_on(async {
            let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server}: {e}"));
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        });
        let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
        TestStore::Postgres(format!("{base}/{name}"))
    }

    /// The collector's `--store`.
    pub fn url(&self) -> String {
        match self {
            TestStore::Sqlite(dir) => {
                format!("sqlite:{}", dir.path().join("kong_looker.sqlite").display())
            }
            TestStore::Postgres(url) => url.clone(),
        }
    }

    /// Which store, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            TestStore::Sqlite(_) => "sqlite",
            TestStore::Postgres(_) => "postgres",
        }
    }

    /// Every row of a query, each value as text (`None` for NULL).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            TestStore::Sqlite(dir) => {
                let conn =
                    rusqlite::Connection::open(dir.path().join("kong_looker.sqlite")).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    Ok((0..n)
                        .map(|i| match r.get::<_, rusqlite::types::Value>(i).unwrap() {
                            rusqlite::types::Value::Null => None,
                            rusqlite::types::Value::Integer(v) => Some(v.to_string()),
                            rusqlite::types::Value::Real(v) => Some(v.to_string()),
                            rusqlite::types::Value::Text(v) => Some(v),
                            rusqlite::types::Value::Blob(v) => Some(format!("{} bytes", v.len())),
                        })
                        .collect())
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            }
            TestStore::Postgres(url) => block_on(async {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                let mut out = Vec::new();
                for m in client.simple_query(sql).await.unwrap() {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        out.push((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect());
                    }
                }
                out
            }),
        }
    }

    /// A single number.
    pub fn count(&self, sql: &str) -> i64 {
        self.rows(sql)[0][0]
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap()
    }

    /// (rows producers sent, records they reported dropped).
    pub fn stored_and_dropped(&self) -> (u64, u64) {
        let n = |sql| u64::try_from(self.count(sql)).unwrap_or(0);
        (
            n(crate::stored::FILTER_ROWS),
            n(crate::stored::REPORTED_DROPS),
        )
    }

    /// Runs statements (no result).
    pub fn execute(&self, sql: &str) {
        let _ = self.rows(sql);
    }
}

/// The server URL, or a failure that says how to start one.
pub fn server_url() -> String {
    std::env::var(PG_ENV).unwrap_or_else(|_| {
        panic!(
            "{PG_ENV} is not set. These tests need a real PostgreSQL server: run them with \
             `make test` (which starts a throwaway one), or start one as in \
             ../shared/research/ci_postgres.md and set {PG_ENV}=postgres://postgres@127.0.0.1:PORT/postgres"
        )
    })
}

/// Restarts the test server (the command `.ci/run` exports).
pub fn restart_postgres() {
    let cmd = std::env::var(PG_RESTART_ENV)
        .unwrap_or_else(|_| panic!("{PG_RESTART_ENV} is not set; run the tests with `make test`"));
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .status()
        .unwrap();
    assert!(status.success(), "{cmd} failed");
}

/// Runs a future on a small runtime of its own.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
