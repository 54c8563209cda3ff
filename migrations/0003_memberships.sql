-- Who belongs to which Berth namespace. The namespace itself lives in
-- Kubernetes; each row here is mirrored into a RoleBinding there, which is what
-- the apiserver enforces. People can be added before they first sign in, so
-- rows are keyed by email, not by user id.
CREATE TABLE memberships (
    namespace   TEXT    NOT NULL,
    email       TEXT    NOT NULL COLLATE NOCASE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'member')),
    added_by    TEXT    NOT NULL,
    added_at    INTEGER NOT NULL,           -- unix seconds
    PRIMARY KEY (namespace, email)
) STRICT;

CREATE INDEX memberships_email ON memberships (email);
