ALTER TABLE webhook_deliveries DROP COLUMN first_attempted_at;
ALTER TABLE webhook_subscriptions DROP COLUMN events_dropped;
ALTER TABLE webhook_subscriptions DROP COLUMN version;
DROP TABLE deployment;
ALTER TABLE users DROP COLUMN token_generation;
