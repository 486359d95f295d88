"""Setting a PostgreSQL role's password without the password reaching the server.

`CREATE ROLE shop LOGIN PASSWORD 'secret'` is a statement like any other:
pg_stat_statements kept its text, readable by anyone granted pg_read_all_stats, and the
server log has it whenever the statement is logged (log_statement, a statement slower
than log_min_duration_statement on a busy machine, an error). Issue 25, Medium 9. So:

* the client computes the SCRAM-SHA-256 verifier itself (RFC 5802 and 7677, as
  PostgreSQL's ``scram_build_secret`` does) and sends that: the server stores a
  verifier as it is, and the plaintext never leaves this process;
* the statement runs in a transaction with pg_stat_statements tracking and statement
  logging off (``SET LOCAL``: superuser settings, gone at commit), so not even the
  verifier is kept where other users can read it.

psycopg has no helper for the verifier (libpq's PQencryptPasswordConn is not exposed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import psycopg
from psycopg import sql

# PostgreSQL's default (scram_iterations, 4096 up to 15); more costs every login.
ITERATIONS = 4096
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN

# What the password statement must not leave behind: its pg_stat_statements entry
# and its line in the log, for each way a statement gets logged.
NOT_TRACKED = "SET LOCAL pg_stat_statements.track = 'none'"
QUIET = (
    NOT_TRACKED,
    "SET LOCAL log_statement = 'none'",
    "SET LOCAL log_min_duration_statement = -1",
    "SET LOCAL log_min_error_statement = 'panic'",
)
# Entries an older toolkit left behind (it sent `… PASSWORD '<plaintext>'`).
LEAKED_ROLE_STATEMENTS = (
    "SELECT userid, dbid, queryid FROM pg_stat_statements"
    r" WHERE query ~* '\m(ROLE|USER)\M.*\mPASSWORD\M'"
)


def scram_verifier(
    password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` for ``password``."""
    if not password.isascii():
        # PostgreSQL runs SASLprep on non-ASCII passwords first; an ASCII one it
        # takes as it is. Ours are generated ASCII (secrets.token_urlsafe).
        raise ValueError("only an ASCII password can be pre-hashed exactly as PostgreSQL would")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_password(conn: psycopg.Connection, role: str, password: str, *, create: bool) -> None:
    """Create ``role`` (LOGIN) with ``password``, or change its password; as a superuser
    on an autocommit connection. Neither the password nor its verifier is tracked or
    logged."""
    verb = "CREATE ROLE {} LOGIN PASSWORD {}" if create else "ALTER ROLE {} PASSWORD {}"
    statement = sql.SQL(verb).format(sql.Identifier(role), sql.Literal(scram_verifier(password)))
    with conn.transaction():
        for setting in QUIET:
            conn.execute(setting)
        conn.execute(statement)


def forget_password_statements(conn: psycopg.Connection) -> int:
    """Drop pg_stat_statements' entries of statements that set a password (left by an
    older toolkit, in plaintext); how many. ``conn``: a superuser's, in the database
    holding the extension."""
    with conn.transaction():
        conn.execute(NOT_TRACKED)  # this query's text matches itself
        rows = conn.execute(LEAKED_ROLE_STATEMENTS).fetchall()
        for userid, dbid, queryid in rows:
            conn.execute("SELECT pg_stat_statements_reset(%s, %s, %s)", (userid, dbid, queryid))
    return len(rows)
