CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

CREATE TABLE orders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint        NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    status       order_status  NOT NULL DEFAULT 'pending',
    total_cents  bigint        NOT NULL CHECK (total_cents >= 0),
    created_at   timestamptz   NOT NULL DEFAULT now()
);

CREATE INDEX orders_user_id_created_at_idx ON orders (user_id, created_at DESC);
