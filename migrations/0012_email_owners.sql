-- Each email address belongs to the first (issuer, subject) that signed in
-- with it. Memberships and the cluster identity are keyed by email, so if a
-- person could change their address at the identity provider to someone
-- else's and sign in, they would become that person; with this table Berth
-- refuses the second account instead. Rows are never updated.
CREATE TABLE email_owners (
    email      TEXT    PRIMARY KEY COLLATE NOCASE,
    issuer     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    bound_at   INTEGER NOT NULL             -- unix seconds
) STRICT;

-- People who signed in before this table existed keep their address: the
-- earliest account with it wins.
INSERT OR IGNORE INTO email_owners (email, issuer, subject, bound_at)
    SELECT email, issuer, subject, first_login_at FROM users ORDER BY first_login_at, id;
