//! The stores under test: a fresh SQLite file, or a fresh database on the
//! PostgreSQL server that `make test` starts (its URL in
//! `KONG_LOOKER_TEST_POSTGRES`) or on its ClickHouse server
//! (`KONG_LOOKER_TEST_CLICKHOUSE`). Each is read back with its own client.

use std::sync::atomic::{AtomicU32, Ordering};

/// The PostgreSQL server's URL variable.
pub const PG_ENV: &str = "KONG_LOOKER_TEST_POSTGRES";
/// A shell command that restarts that server.
pub const PG_RESTART_ENV: &str = "KONG_LOOKER_TEST_POSTGRES_RESTART";

/// The ClickHouse server's URL variable (`http://USER@HOST:PORT/DB`).
pub const CH_ENV: &str = "KONG_LOOKER_TEST_CLICKHOUSE";

/// A store for one test.
pub enum TestStore {
    /// A SQLite file in its own folder.
    Sqlite(tempfile::TempDir),
    /// A database of its own.
    Postgres(String),
    /// A ClickHouse database of its own.
    ClickHouse(ClickHouse),
}

/// A database on a ClickHouse server.
#[derive(Clone, Debug)]
pub struct ClickHouse {
    /// `http://HOST:PORT`.
    pub endpoint: String,
    /// The user.
    pub user: String,
    /// Its password, or empty.
    pub password: String,
    /// The database.
    pub database: String,
}

impl ClickHouse {
    /// Runs one statement on the server, in this database; its output, or
    /// the server's error.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        http_query(self, Some(&self.database), sql)
    }

    /// The collector's `--store` for this database.
    pub fn store_url(&self) -> String {
        let (scheme, host) = self
            .endpoint
            .split_once("://")
            .unwrap_or(("http", &self.endpoint));
        let password = if self.password.is_empty() {
            String::new()
        } else {
            format!(":{}", percent(&self.password))
        };
        let secure = if scheme == "https" {
            "?secure=true"
        } else {
            ""
        };
        format!(
            "clickhouse://{}{password}@{host}/{}{secure}",
            percent(&self.user),
            self.database
        )
    }
}

/// Percent-encodes what a URL's user or password cannot hold as is.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn http_query(server: &ClickHouse, db: Option<&str>, sql: &str) -> Result<String, String> {
    let endpoint = &server.endpoint;
    // Plain JSON numbers for 64-bit integers, so counts read as numbers.
    let url = format!("{endpoint}/?output_format_json_quote_64bit_integers=0");
    let url = match db {
        Some(db) => format!("{url}&database={db}"),
        None => url,
    };
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.post(&url).header("X-ClickHouse-User", &server.user);
    if !server.password.is_empty() {
        request = request.header("X-ClickHouse-Key", &server.password);
    }
    let mut resp = request
        .send(sql)
        .map_err(|e| format!("cannot reach ClickHouse at {endpoint}: {e}"))?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
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

    /// A new database on the test ClickHouse server.
    pub fn clickhouse() -> TestStore {
        static N: AtomicU32 = AtomicU32::new(0);
        let server = ch_server_url();
        let rest = server
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{CH_ENV}={server}: expected http://USER@HOST:PORT/DB"));
        let (user, host) = rest.split_once('@').unwrap_or(("default", rest));
        let host = host.split('/').next().unwrap_or(host);
        let endpoint = format!("http://{host}");
        let database = format!(
            "kl_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let server = ClickHouse {
            endpoint,
            user: user.to_owned(),
            password: String::new(),
            database,
        };
        http_query(
            &server,
            None,
            &format!("CREATE DATABASE {}", server.database),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        TestStore::ClickHouse(server)
    }

    /// The collector's `--store`.
    pub fn url(&self) -> String {
        match self {
            TestStore::Sqlite(dir) => {
                format!("sqlite:{}", dir.path().join("kong_looker.sqlite").display())
            }
            TestStore::Postgres(url) => url.clone(),
            TestStore::ClickHouse(c) => c.store_url(),
        }
    }

    /// Which store, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            TestStore::Sqlite(_) => "sqlite",
            TestStore::Postgres(_) => "postgres",
            TestStore::ClickHouse(_) => "clickhouse",
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
            TestStore::ClickHouse(c) => {
                let sql = format!("{} FORMAT JSONCompact", sql.trim().trim_end_matches(';'));
                let text = c.query(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                if text.trim().is_empty() {
                    return Vec::new();
                }
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                let text_of = |v: &serde_json::Value| match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                doc["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_array().unwrap().iter().map(text_of).collect())
                    .collect()
            }
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

/// The ClickHouse server URL, or a failure that says how to start one.
pub fn ch_server_url() -> String {
    std::env::var(CH_ENV).unwrap_or_else(|_| {
        panic!(
            "{CH_ENV} is not set. These tests need a real ClickHouse server: run them with \
             `make test` (which starts a throwaway one), or `scripts/with-clickhouse cargo test …` \
             (apt-get install clickhouse-server if it is missing)"
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
