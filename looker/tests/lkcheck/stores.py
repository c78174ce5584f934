"""The databases the SQL runs against.

PostgreSQL: a database of its own on the server in
KONG_LOOKER_TEST_POSTGRES, filled by the collector's seed example (the
reference traffic mix through the real codec and commit path). ClickHouse:
chdb in-process, with the tables from looker/ddl/clickhouse.sql and the
same rows copied from PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from . import ddl

POSTGRES_ENV = "KONG_LOOKER_TEST_POSTGRES"
SEED_ENV = "KONG_LOOKER_SEED_BIN"
HOW_TO_START = (
    f"{POSTGRES_ENV} is not set, so there is no PostgreSQL server to test the LookML against. "
    f"Run the suite beside a throwaway server with "
    f"`scripts/with-postgres $HOME/.cache/kong-looker/venv/bin/python -m pytest -q looker/tests` "
    f"from the repository root, or export {POSTGRES_ENV}=postgres://USER@HOST:PORT/DB for a server "
    f"where that user may CREATE DATABASE."
)


def with_database(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


def seed_binary(repo: Path) -> Path:
    """The seed example: $KONG_LOOKER_SEED_BIN, else built by cargo (a
    no-op when it is current)."""
    if os.environ.get(SEED_ENV):
        return Path(os.environ[SEED_ENV])
    out = subprocess.run(
        ["cargo", "build", "-q", "-p", "kong-looker-collector", "--example", "seed", "--message-format=json"],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "seed" and msg.get("executable"):
            return Path(msg["executable"])
    raise RuntimeError("cargo built no seed example")


class SeededPostgres:
    """A fresh database, seeded; drop() removes it."""

    def __init__(self, admin_url: str, repo: Path, workdir: Path, requests: int = 20000):
        self.admin_url = admin_url
        self.name = f"kong_looker_lookml_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.name}"')
        self.url = with_database(admin_url, self.name)
        self.truth_path = workdir / "truth.jsonl"
        run = subprocess.run(
            [str(seed_binary(repo)), "--store", self.url, "--requests", str(requests), "--truth", str(self.truth_path)],
            cwd=repo, check=True, capture_output=True, text=True,
        )
        self.summary = json.loads(run.stdout.strip().splitlines()[-1])
        self.conn = self.connect()

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True)
        # Looker's connection setting: Database Time Zone UTC.
        conn.execute("SET TIME ZONE 'UTC'")
        return conn

    def rows(self, sql: str, params=None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def drop(self):
        self.conn.close()
        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class ExistingPostgres:
    """A database something else filled (the end-to-end tests: the real
    filter through the real collector), with its ground truth; left as
    found."""

    def __init__(self, url: str, truth_path: Path):
        self.url = url
        self.truth_path = Path(truth_path)
        self.summary = None
        self.conn = SeededPostgres.connect(self)

    def rows(self, sql: str, params=None) -> list[tuple]:
        return SeededPostgres.rows(self, sql, params)

    def drop(self):
        self.conn.close()


class ClickHouseServer:
    """A ClickHouse server's database that the pipeline filled (the real
    filter, the real collector), queried over its HTTP interface, with the
    generator's ground truth."""

    def __init__(self, url: str, truth_path: Path):
        # http://USER@HOST:PORT/DB
        rest = url.removeprefix("http://")
        user, _, rest = rest.rpartition("@")
        host, _, db = rest.partition("/")
        self.endpoint, self.user, self.database = f"http://{host}", user or "default", db or "default"
        self.truth_path = Path(truth_path)
        self.summary = None

    def query(self, sql: str) -> bytes:
        import urllib.error
        import urllib.parse
        import urllib.request
        params = urllib.parse.urlencode({"database": self.database, "output_format_json_quote_64bit_integers": 0})
        req = urllib.request.Request(f"{self.endpoint}/?{params}", data=sql.encode(),
                                     headers={"X-ClickHouse-User": self.user})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{e.code}: {e.read().decode()[:2000]}\n{sql}") from None

    def rows(self, sql: str) -> list[tuple]:
        text = self.query(sql.rstrip().rstrip(";") + "\nFORMAT JSONCompact").decode()
        if not text.strip():
            return []
        return [tuple(r) for r in json.loads(text)["data"]]

    def version(self) -> str:
        return self.query("SELECT version()").decode().strip()

    def drop(self):
        pass


def _iso_utc(v):
    if v is None:
        return None
    if v.tzinfo is not None:
        v = v.astimezone(timezone.utc)
    return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class ClickHouse:
    """chdb in-process, with looker/ddl/clickhouse.sql applied in the
    default database."""

    def __init__(self, ddl_path: Path, workdir: Path):
        from chdb import session  # imported here: loading chdb takes a moment

        self.session = session.Session(str(workdir / "chdb"))
        # Plain JSON numbers for 64-bit integers, so results compare as numbers.
        self.session.query("SET output_format_json_quote_64bit_integers = 0")
        for stmt in ddl.statements(Path(ddl_path).read_text()):
            self.session.query(stmt)

    def execute(self, sql: str):
        self.session.query(sql)

    def rows(self, sql: str) -> list[tuple]:
        res = self.session.query(sql, "JSONCompact")
        text = res.bytes().decode() if hasattr(res, "bytes") else str(res)
        if not text.strip():
            return []
        return [tuple(r) for r in json.loads(text)["data"]]

    # Looker reads views; the rows live in these tables, with the keys
    # that collapse duplicates (collector/src/store/migrations/clickhouse).
    ROWS_TABLES = {"kong_looker_requests": "kong_looker_request_rows",
                   "kong_looker_batches": "kong_looker_batch_rows"}

    def copy_from(self, pg: SeededPostgres, table: str):
        """Copies a table's rows from PostgreSQL, times as UTC text, into
        the table behind the view, keyed as the collector keys them."""
        with pg.conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {table}")
            names = [d.name for d in cur.description]
            lines = []
            for i, row in enumerate(cur.fetchall()):
                obj = {}
                for n, v in zip(names, row):
                    obj[n] = _iso_utc(v) if hasattr(v, "strftime") else v
                if table == "kong_looker_requests":
                    obj["anonymous"] = int(obj["anonymous"])
                    obj["row_key"] = f"r:{obj['request_id']}" if obj["request_id"] else f"copy:{i}"
                    obj["version"] = 0
                elif table == "kong_looker_batches":
                    obj["state_rank"] = 1 if obj["state"] == "committed" else 0
                lines.append(json.dumps(obj))
        target = self.ROWS_TABLES.get(table, table)
        self.session.query(f"INSERT INTO {target} FORMAT JSONEachRow\n" + "\n".join(lines))

    def copy_rows_from_server(self, server: "ClickHouseServer"):
        """Copies the tables behind the views, row for row (duplicates and
        keys included, so FINAL does here what it does there), from a
        server the pipeline filled."""
        for table in self.ROWS_TABLES.values():
            data = server.query(f"SELECT * FROM {table} FORMAT JSONEachRow").decode()
            if data.strip():
                self.session.query(f"INSERT INTO {table} FORMAT JSONEachRow\n" + data)
