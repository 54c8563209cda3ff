-- Courses: a roster of teams uploaded as CSV, each team in its own namespace
-- (<course>-<team>). The namespaces, quotas and RoleBindings live in
-- Kubernetes and the memberships in `memberships`; these tables keep what the
-- cluster does not: the course's settings and the roster last applied, so a
-- new upload is diffed against it (a person the roster no longer lists is
-- removed; people added by hand are left alone).
CREATE TABLE courses (
    name            TEXT    PRIMARY KEY,    -- prefix of its namespaces
    quota           TEXT    NOT NULL,       -- key=value,… as --default-quota
    ends_at         INTEGER NOT NULL,       -- unix seconds: scale to zero
    grace_secs      INTEGER NOT NULL,       -- then delete after this long
    delete_volumes  INTEGER NOT NULL CHECK (delete_volumes IN (0, 1)),
    created_by      TEXT    NOT NULL,       -- the admin the end-date sweep acts as
    applied_by      TEXT    NOT NULL,
    applied_at      INTEGER NOT NULL,
    scaled_at       INTEGER,                -- when the sweep scaled workloads to zero
    removed_at      INTEGER                 -- when it deleted them
) STRICT;

CREATE TABLE course_members (
    course  TEXT NOT NULL REFERENCES courses (name) ON DELETE CASCADE,
    team    TEXT NOT NULL,
    email   TEXT NOT NULL COLLATE NOCASE,
    role    TEXT NOT NULL CHECK (role IN ('owner', 'member')),
    PRIMARY KEY (course, team, email)
) STRICT;
