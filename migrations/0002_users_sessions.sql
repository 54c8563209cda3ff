-- People who have signed in, their server-side sessions, and sign-ins in progress.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    issuer          TEXT    NOT NULL,      -- OIDC issuer URL, or 'dev' for the local dev sign-in
    subject         TEXT    NOT NULL,      -- the issuer's stable id for the person
    email           TEXT    NOT NULL COLLATE NOCASE,
    display_name    TEXT    NOT NULL,
    is_admin        INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),  -- recomputed at each sign-in
    first_login_at  INTEGER NOT NULL,      -- unix seconds
    last_login_at   INTEGER NOT NULL,
    UNIQUE (issuer, subject)
) STRICT;

CREATE INDEX users_email ON users (email);

-- The cookie carries a random token; only its SHA-256 is stored, so a copy of
-- the database holds no usable session.
CREATE TABLE sessions (
    id_hash        TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,       -- absolute end, whatever the activity
    flash_kind     TEXT,
    flash_message  TEXT
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- A sign-in that went to the identity provider and has not come back yet.
-- Keyed by the hash of a short-lived cookie, so the callback only completes in
-- the browser that started it, and deleted when used, so it works once.
CREATE TABLE pending_logins (
    browser_hash   TEXT    PRIMARY KEY,
    state          TEXT    NOT NULL,
    nonce          TEXT    NOT NULL,
    pkce_verifier  TEXT    NOT NULL,
    return_to      TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
