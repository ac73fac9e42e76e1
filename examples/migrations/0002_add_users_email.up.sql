ALTER TABLE users ADD COLUMN email text;
UPDATE users SET email = 'user' || id || '@example.invalid' WHERE email IS NULL;
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
