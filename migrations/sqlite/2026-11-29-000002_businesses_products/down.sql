DROP TABLE idempotency_keys;
DROP TABLE audit_log;
DROP TABLE products;
DROP TABLE businesses;
