-- Registry credentials (a robot account a namespace's team shares) and the
-- images registered under them.
--
-- The token is never stored in clear: `sealed_token` is XChaCha20-Poly1305
-- ciphertext under master key `key_id` with a random `nonce`, bound to the
-- row's id and namespace (see server/src/crypto.rs), so a value copied to
-- another row does not open.
CREATE TABLE registry_credentials (
    id            INTEGER PRIMARY KEY,
    namespace     TEXT    NOT NULL,
    host          TEXT    NOT NULL,          -- registry host[:port]
    robot         TEXT    NOT NULL,          -- e.g. robot$project+ci
    key_id        TEXT    NOT NULL,
    nonce         BLOB    NOT NULL,
    sealed_token  BLOB    NOT NULL,
    expires_on    TEXT,                      -- YYYY-MM-DD, when the robot expires
    verified_at   INTEGER,                   -- when the registry last accepted it; NULL if saved anyway
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_by    TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (namespace, host, robot)
) STRICT;

CREATE INDEX registry_credentials_key ON registry_credentials (key_id);

-- An image reference registered in a namespace, resolved through a credential.
CREATE TABLE registry_images (
    id             INTEGER PRIMARY KEY,
    namespace      TEXT    NOT NULL,
    credential_id  INTEGER NOT NULL REFERENCES registry_credentials (id) ON DELETE RESTRICT,
    host           TEXT    NOT NULL,
    repository     TEXT    NOT NULL,         -- project/repo
    tag            TEXT,
    pinned_digest  TEXT,                     -- the digest typed in the reference, if any
    digest         TEXT,                     -- what the registry resolved it to at checked_at
    media_type     TEXT,
    tags           TEXT,                     -- the repository's tags at checked_at, newline-separated
    checked_at     INTEGER,
    check_error    TEXT,                     -- why the last check failed, in plain words
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- One registration per reference and namespace (COALESCE: NULLs would never collide).
CREATE UNIQUE INDEX registry_images_reference
    ON registry_images (namespace, host, repository, COALESCE(tag, ''), COALESCE(pinned_digest, ''));

CREATE INDEX registry_images_credential ON registry_images (credential_id);
