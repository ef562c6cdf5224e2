-- Signed events pushed to partners (webhooks). A subscription belongs to one partner and names
-- the event types it wants; its signing secret is kept in the clear because signing needs it
-- (Standard Webhooks: HMAC-SHA256), and is shown to the admin once.
CREATE TABLE webhook_subscriptions (
    id BIGSERIAL PRIMARY KEY,
    bank_partner_id BIGINT REFERENCES bank_partners (id),
    retail_partner_id BIGINT REFERENCES retail_partners (id),
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    -- Why it was disabled (deliveries failing for 24 hours), while it is.
    disabled_reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((bank_partner_id IS NULL) <> (retail_partner_id IS NULL))
);

-- The outbox: one row per event and subscription, written in the same transaction as the change
-- it reports. Delivered in id order per subscription, at least once; a redelivery is a new row
-- with the same message_id (the receiver's deduplication key, sent as webhook-id).
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES webhook_subscriptions (id),
    message_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A dispatcher that took the row sends it until then; after, another may (it died).
    leased_until TIMESTAMP,
    delivered_at TIMESTAMP,
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (subscription_id, id) WHERE delivered_at IS NULL;
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, id);
