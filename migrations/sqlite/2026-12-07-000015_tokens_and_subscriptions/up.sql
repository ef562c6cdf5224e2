-- Issue 28, items 5, 7 and 15. A user's tokens carry its generation: a password change, a new
-- role or partner and a disable raise it, and the tokens issued before stop working. Tokens name
-- the deployment that issued them, one random id per database (made at the first start, made
-- again by a restore), so that a copy with the same JWT_SECRET or a restored database refuses
-- them. Subscriptions get the version every other resource has, and count the events dropped
-- from a queue held over its bound (the oldest go first). A delivery's 24 hours of failures
-- count from its first attempt, not from its event: an event held while its subscription was
-- paused gets its full day once the subscription is active again.
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 1;
CREATE TABLE deployment (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL
);
ALTER TABLE webhook_subscriptions ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE webhook_subscriptions ADD COLUMN events_dropped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhook_deliveries ADD COLUMN first_attempted_at TIMESTAMP;
