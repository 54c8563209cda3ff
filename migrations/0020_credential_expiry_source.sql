-- Where a registry credential's expiry date came from, so "no date" can mean
-- "the robot never expires" as well as "nobody said": 'typed' (the form),
-- 'token' (the token is a JWT whose `exp` Berth read), 'never' (the person
-- said it does not expire; expires_on is then NULL). NULL: saved before this
-- column existed, or without a date.
ALTER TABLE registry_credentials
    ADD COLUMN expiry_source TEXT CHECK (expiry_source IN ('typed', 'token', 'never'));

-- The dashboard asks for every credential of a person's namespaces that
-- expires soon: by date, for rows that have one.
CREATE INDEX registry_credentials_expiry ON registry_credentials (expires_on)
    WHERE expires_on IS NOT NULL;
