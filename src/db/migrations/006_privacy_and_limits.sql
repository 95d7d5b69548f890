-- Privacy and limits: erasure that cannot be reversed, inbound de-duplication per chat,
-- and a pace that holds while Redis is down.
--
-- 1. Erased phones as a keyed hash. Until now an erased lead's phone became
--    'erased:' || sha256(phone); Brazilian mobile numbers are few enough to
--    brute-force that in minutes. From now on it is 'erased:' || HMAC-SHA256(phone)
--    under ERASURE_KEY, which lives in the configuration, never in the database.
--    The database cannot compute it, so whoever inserts a lead passes the keyed
--    hash of its phone in `phone_hmac` (src/privacy/erasure-key.ts); the trigger
--    below uses it to carry an erased lead's opt-out over to the new lead and
--    then clears it: the column is never stored.
ALTER TABLE leads ADD COLUMN phone_hmac text;

-- 2. The old unsalted hashes cannot be converted (that needs the phone). They are
--    kept only where they still do a job: a lead that had opted out, whose
--    opt-out must carry over if the number comes back. Those become
--    'erased:sha256:<hash>' and are re-keyed the first time the number is seen
--    again (the trigger below). Every other old hash — no opt-out to honour, or an
--    older erasure of a number erased again — is dropped for 'erased:legacy:<id>'.
UPDATE leads SET phone = 'erased:sha256:' || substr(phone, 8)
 WHERE phone ~ '^erased:[0-9a-f]{64}$' AND opted_out_at IS NOT NULL;
UPDATE leads SET phone = 'erased:legacy:' || id::text
 WHERE phone LIKE 'erased:%' AND phone NOT LIKE 'erased:sha256:%';

CREATE OR REPLACE FUNCTION leads_carry_erased_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  keyed text;
  legacy text;
  opted_out timestamptz;
BEGIN
  keyed := 'erased:' || NEW.phone_hmac;
  NEW.phone_hmac := NULL;
  IF NEW.phone LIKE 'erased:%' OR NEW.opted_out_at IS NOT NULL OR keyed IS NULL THEN
    RETURN NEW;
  END IF;
  SELECT opted_out_at INTO opted_out FROM leads WHERE phone = keyed AND opted_out_at IS NOT NULL;
  IF opted_out IS NULL THEN
    legacy := 'erased:sha256:' || encode(sha256(convert_to(NEW.phone, 'UTF8')), 'hex');
    SELECT opted_out_at INTO opted_out FROM leads WHERE phone = legacy;
    IF opted_out IS NOT NULL THEN
      -- Seen again: the old hash gives way to the keyed one.
      UPDATE leads SET phone = CASE WHEN EXISTS (SELECT 1 FROM leads WHERE phone = keyed) THEN 'erased:legacy:' || id::text ELSE keyed END
       WHERE phone = legacy;
    END IF;
  END IF;
  IF opted_out IS NOT NULL THEN
    NEW.opted_out_at := opted_out;
    NEW.opt_out_source := 'erased_lead';
  END IF;
  RETURN NEW;
END;
$$;

-- The dry-run transport now writes an erased number's record already scrubbed
-- (it knows the keyed hash; the database does not).
DROP TRIGGER dry_run_messages_scrub_erased ON dry_run_messages;
DROP FUNCTION scrub_erased_dry_run();
UPDATE dry_run_messages SET number = 'erased:legacy', text = '' WHERE number LIKE 'erased:%';

-- 3. Inbound de-duplication per chat: a WhatsApp message id is unique within its
--    chat, not across chats, so (lead, id) — the lead is the chat — not the id alone.
ALTER TABLE messages DROP CONSTRAINT messages_provider_message_id_key;
CREATE UNIQUE INDEX messages_lead_provider_message_id ON messages (lead_id, provider_message_id);

-- 4. The pace and daily cap's stand-in while Redis is down (src/policy/send-limits.ts):
--    one row per limiter key, shared by every process through PostgreSQL, so N
--    workers never send N times the pace of one WhatsApp number.
CREATE TABLE send_limit_points (
  key        text PRIMARY KEY,
  points     int NOT NULL,
  expires_at timestamptz NOT NULL
);
