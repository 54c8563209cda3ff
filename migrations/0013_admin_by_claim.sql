-- Whether a person is an admin because their identity provider said so (the
-- admin group claim, or the dev sign-in's checkbox), as of their latest
-- sign-in. Admins by configuration are not stored: Berth checks its list at
-- every request, so taking someone off it takes effect at their next request.
ALTER TABLE users ADD COLUMN admin_by_claim INTEGER NOT NULL DEFAULT 0 CHECK (admin_by_claim IN (0, 1));
UPDATE users SET admin_by_claim = is_admin;
