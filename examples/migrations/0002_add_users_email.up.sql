-- rollgate:allow=adding-not-nullable-field,require-concurrent-index-creation users is created by
-- 0001 and holds few rows: its scan and the SHARE lock last a moment. On a large live table use
-- a NOT VALID check and CONCURRENTLY instead (README "Zero-downtime changes").
ALTER TABLE users ADD COLUMN email text;
UPDATE users SET email = 'user' || id || '@example.invalid' WHERE email IS NULL;
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
