-- Search, customers, orders, payments and the one-round-trip order placement.
-- Append-only like 0001: fix forward in 0003_..., never edit a released file.

-- Full-text search over name and description. 'english' stems ("masks" finds
-- "Mask"); the two-argument to_tsvector is immutable, as a generated column needs.
ALTER TABLE products
    ADD COLUMN search tsvector GENERATED ALWAYS AS (
        to_tsvector('english', name || ' ' || description)
    ) STORED,
    -- Bumped on every change; the Redis cache only ever replaces an entry with
    -- a newer version, so a slow reader cannot put back what a writer replaced.
    ADD COLUMN version bigint NOT NULL DEFAULT 1;
CREATE INDEX products_search_idx ON products USING gin (search);

-- The JSON body of a product exactly as the API returns and the cache stores it.
-- Built by PostgreSQL so that every path (read, write-back) produces the same bytes.
CREATE VIEW product_documents AS
SELECT p.id, p.version, c.name AS category, p.search,
       json_build_object(
           'id', p.id, 'sku', p.sku, 'name', p.name, 'description', p.description,
           'category', c.name, 'price_cents', p.price_cents, 'stock', p.stock,
           'version', p.version, 'updated_at', p.updated_at
       )::text AS body
FROM products p JOIN categories c ON c.id = p.category_id;

CREATE TABLE customers (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id              bigserial PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers (id),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'paid', 'shipped', 'failed')),
    total_cents     bigint NOT NULL CHECK (total_cents >= 0),
    -- NULL for orders that did not come through checkout (bulk seed data).
    -- UNIQUE makes a retried checkout find the first attempt's order instead
    -- of creating a second one, even when the retries race each other.
    idempotency_key text UNIQUE,
    request_hash    text,
    failure_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Order history per customer, newest first.
CREATE INDEX orders_customer_id_id_idx ON orders (customer_id, id DESC);

CREATE TABLE order_items (
    order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id  bigint NOT NULL REFERENCES products (id),
    quantity    integer NOT NULL CHECK (quantity > 0),
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (order_id, product_id)
);

-- Every status an order has been in, in order: the audit trail behind the
-- order page and the WebSocket feed.
CREATE TABLE order_events (
    id         bigserial PRIMARY KEY,
    order_id   bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status     text NOT NULL,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_order_id_id_idx ON order_events (order_id, id);

-- One charge per order at most: the provider call is made only by the request
-- that created the order, and this constraint holds even if that were not so.
CREATE TABLE payments (
    id             bigserial PRIMARY KEY,
    order_id       bigint NOT NULL UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
    amount_cents   bigint NOT NULL CHECK (amount_cents >= 0),
    status         text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    failure_reason text,
    provider_ref   text,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Reserve stock and create a pending order in one statement (one round trip,
-- one transaction). Rows are locked in id order, so two orders for the same
-- products cannot deadlock. If any product is short or unknown, nothing is
-- changed and the offending product ids come back with a NULL order id.
-- The caller passes each product once (a cart is a hash keyed by product).
CREATE FUNCTION place_order(
    p_customer_id bigint,
    p_idempotency_key text,
    p_request_hash text,
    p_product_ids bigint[],
    p_quantities integer[]
) RETURNS TABLE (
    order_id bigint,
    total_cents bigint,
    short_ids bigint[],
    product_ids bigint[],
    versions bigint[]
) LANGUAGE plpgsql
-- Custom plans (PL/pgSQL's default for the first calls, and whenever they look
-- cheaper) re-plan every statement on every call: measured, half of the
-- function's time. These statements have one good plan whatever the arrays hold.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_short bigint[];
    v_total bigint;
    v_order bigint;
BEGIN
    IF cardinality(p_product_ids) IS DISTINCT FROM cardinality(p_quantities)
       OR cardinality(p_product_ids) = 0 THEN
        RAISE EXCEPTION 'place_order: product ids and quantities must be non-empty and equal in length';
    END IF;

    -- Lock, check and price in one statement: the rows are locked (in id order)
    -- before their stock is compared.
    SELECT coalesce(array_agg(w.product_id ORDER BY w.product_id)
                        FILTER (WHERE p.id IS NULL OR p.stock < w.quantity), '{}'),
           sum(p.price_cents::bigint * w.quantity)
      INTO v_short, v_total
      FROM unnest(p_product_ids, p_quantities) AS w(product_id, quantity)
      LEFT JOIN (SELECT id, stock, price_cents FROM products
                  WHERE id = ANY (p_product_ids) ORDER BY id FOR UPDATE) p
             ON p.id = w.product_id;
    IF cardinality(v_short) > 0 THEN
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, v_short, NULL::bigint[], NULL::bigint[];
        RETURN;
    END IF;

    INSERT INTO orders (customer_id, total_cents, idempotency_key, request_hash)
    VALUES (p_customer_id, v_total, p_idempotency_key, p_request_hash)
    RETURNING id INTO v_order;
    INSERT INTO order_items (order_id, product_id, quantity, price_cents)
    SELECT v_order, p.id, w.quantity, p.price_cents
      FROM unnest(p_product_ids, p_quantities) AS w(product_id, quantity)
      JOIN products p ON p.id = w.product_id;
    INSERT INTO order_events (order_id, status) VALUES (v_order, 'pending');

    RETURN QUERY
    WITH changed AS (
        UPDATE products p
           SET stock = p.stock - w.quantity, version = p.version + 1, updated_at = now()
          FROM unnest(p_product_ids, p_quantities) AS w(product_id, quantity)
         WHERE p.id = w.product_id
     RETURNING p.id, p.version
    )
    SELECT v_order, v_total, '{}'::bigint[],
           array_agg(changed.id ORDER BY changed.id),
           array_agg(changed.version ORDER BY changed.id)
      FROM changed;
END;
$$;

-- An order as the API returns it: the order, its items and its status history.
-- PL/pgSQL rather than SQL: a SQL function called from another function is
-- planned afresh on every call, PL/pgSQL keeps its plan for the session.
CREATE FUNCTION order_document(p_order_id bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT json_build_object(
        'id', o.id, 'customer_id', o.customer_id, 'status', o.status,
        'total_cents', o.total_cents, 'failure_reason', o.failure_reason,
        'created_at', o.created_at, 'updated_at', o.updated_at,
        'items', (SELECT coalesce(json_agg(json_build_object(
                      'product_id', i.product_id, 'quantity', i.quantity,
                      'price_cents', i.price_cents) ORDER BY i.product_id), '[]')
                    FROM order_items i WHERE i.order_id = o.id),
        'events', (SELECT coalesce(json_agg(json_build_object(
                       'status', e.status, 'reason', e.reason, 'at', e.created_at) ORDER BY e.id), '[]')
                     FROM order_events e WHERE e.order_id = o.id)
    )::text
    FROM orders o WHERE o.id = p_order_id);
END;
$$;

-- pending → paid with its payment record, in one transaction. Returns the order
-- document, or NULL if the order was not pending (nothing changed then).
CREATE FUNCTION mark_paid(p_order_id bigint, p_provider_ref text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_total bigint;
BEGIN
    UPDATE orders SET status = 'paid', updated_at = now()
     WHERE id = p_order_id AND status = 'pending'
    RETURNING total_cents INTO v_total;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO payments (order_id, amount_cents, status, provider_ref)
    VALUES (p_order_id, v_total, 'succeeded', p_provider_ref);
    INSERT INTO order_events (order_id, status) VALUES (p_order_id, 'paid');
    RETURN order_document(p_order_id);
END;
$$;

-- pending → failed: records the failed payment (when there was an attempt)
-- and gives the stock back, in one transaction. Returns the products whose
-- stock changed with their new versions (for the cache) and the order
-- document; no row if the order was not pending.
CREATE FUNCTION fail_order(p_order_id bigint, p_reason text, p_payment_attempted boolean)
RETURNS TABLE (product_ids bigint[], versions bigint[], document text)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE orders SET status = 'failed', failure_reason = p_reason, updated_at = now()
     WHERE id = p_order_id AND status = 'pending';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_payment_attempted THEN
        INSERT INTO payments (order_id, amount_cents, status, failure_reason)
        SELECT id, total_cents, 'failed', p_reason FROM orders WHERE id = p_order_id;
    END IF;
    INSERT INTO order_events (order_id, status, reason) VALUES (p_order_id, 'failed', p_reason);
    RETURN QUERY
    WITH changed AS (
        UPDATE products p
           SET stock = p.stock + i.quantity, version = p.version + 1, updated_at = now()
          FROM order_items i
         WHERE i.order_id = p_order_id AND p.id = i.product_id
     RETURNING p.id, p.version
    )
    SELECT array_agg(changed.id ORDER BY changed.id),
           array_agg(changed.version ORDER BY changed.id),
           order_document(p_order_id)
      FROM changed;
END;
$$;

-- paid → shipped. Returns the order document, or NULL if the order was not paid.
CREATE FUNCTION ship_order(p_order_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE orders SET status = 'shipped', updated_at = now()
     WHERE id = p_order_id AND status = 'paid';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO order_events (order_id, status) VALUES (p_order_id, 'shipped');
    RETURN order_document(p_order_id);
END;
$$;
