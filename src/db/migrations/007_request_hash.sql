-- An idempotency key names one request. A hash of the request it first came with
-- (normalised phone, text, intent, timing, lead) lets a repeat with the same key
-- but a different body be refused (409) instead of silently answered with the first
-- follow-up. NULL on rows written before this migration and on erased leads' rows.
ALTER TABLE follow_ups ADD COLUMN idempotency_hash text;
