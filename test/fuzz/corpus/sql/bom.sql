-- rollgate:no-transaction
CREATE INDEX CONCURRENTLY i ON t (c);
