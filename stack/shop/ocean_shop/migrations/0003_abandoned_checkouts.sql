-- Abandoned checkouts: only an order that reserved stock gives stock back, and the
-- sweeper finds the expired ones without reading order history (issue 25, Medium 6).
--
-- Only a checkout reserves stock (place_order), and only a checkout sets
-- idempotency_key: bulk seed orders (ocean_shop.bulk) are history, never took stock,
-- and have no key. About 3 % of them are pending, a year old: the sweeper used to
-- "restock" them (phantom stock) and, 100 a minute lowest id first, real abandoned
-- checkouts waited behind them for half an hour.

-- pending → failed as in 0002, but the stock goes back only if the order took it.
CREATE OR REPLACE FUNCTION fail_order(p_order_id bigint, p_reason text, p_payment_attempted boolean)
RETURNS TABLE (product_ids bigint[], versions bigint[], document text)
LANGUAGE plpgsql AS $$
DECLARE
    v_reserved boolean;
BEGIN
    UPDATE orders SET status = 'failed', failure_reason = p_reason, updated_at = now()
     WHERE id = p_order_id AND status = 'pending'
    RETURNING idempotency_key IS NOT NULL INTO v_reserved;
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
         WHERE v_reserved AND i.order_id = p_order_id AND p.id = i.product_id
     RETURNING p.id, p.version
    )
    SELECT array_agg(changed.id ORDER BY changed.id),
           array_agg(changed.version ORDER BY changed.id),
           order_document(p_order_id)
      FROM changed;
END;
$$;

-- The checkouts the sweeper may fail, oldest first: a handful of rows however much
-- history the table holds, so a pass reads only those.
CREATE INDEX orders_checkouts_pending_idx ON orders (created_at)
    WHERE status = 'pending' AND idempotency_key IS NOT NULL;
