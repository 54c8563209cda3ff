-- The audit log: every state change Berth makes, who made it and how it ended.
-- Rows are only ever appended (and pruned by retention), never edited.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,            -- unix seconds
    actor       TEXT    NOT NULL,            -- email of the signed-in user, or 'system'
    action      TEXT    NOT NULL,            -- e.g. 'sign_in', 'credential.create'
    namespace   TEXT,                        -- Kubernetes namespace, when there is one
    target      TEXT,                        -- what was acted on (a name, never a secret)
    outcome     TEXT    NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
    detail      TEXT                         -- plain-words reason for denied/failed
) STRICT;

CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE INDEX audit_log_namespace ON audit_log (namespace, at);
