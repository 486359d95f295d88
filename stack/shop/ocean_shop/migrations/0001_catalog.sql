-- Product catalogue. Migrations are append-only: never edit this file once
-- released; add 0002_... instead.

CREATE TABLE categories (
    id   serial PRIMARY KEY,
    name text NOT NULL UNIQUE
);

CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    sku         text NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    category_id integer NOT NULL REFERENCES categories (id),
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    stock       integer NOT NULL CHECK (stock >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Listing by category pages in id order; (category_id, id) serves both the
-- filter and the ORDER BY without a sort.
CREATE INDEX products_category_id_id_idx ON products (category_id, id);
