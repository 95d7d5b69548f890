-- The agent sends through the service (POST /v1/leads/:phone/send).
-- A message it sends is logged in `messages` (source 'agent') before it goes out,
-- so Evolution's fromMe echo is recognised as ours; a retried request with the same
-- idempotency key finds that row instead of sending twice.
ALTER TABLE messages ADD COLUMN idempotency_key text;
ALTER TABLE messages ADD COLUMN idempotency_hash text;
CREATE UNIQUE INDEX messages_idempotency_key_key ON messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
