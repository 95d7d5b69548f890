-- The send path's cost per follow-up (as measured by bench/): every follow-up is
-- updated four times (relay claim, queued, sending, executed) and its lead once.
--
-- 1. Room for HOT updates. With full pages, even an update that changes no indexed
--    column (the relay's claim sets only claimed_until) must put the new row version
--    on another page and add it to every index. Existing pages keep their layout;
--    new ones (new follow-ups, and rows as they move) leave 20% free.
ALTER TABLE follow_ups SET (fillfactor = 80);
ALTER TABLE leads SET (fillfactor = 90);

-- 2. Most follow-ups have no idempotency key, yet a unique constraint indexes the
--    NULLs too, and every non-HOT update adds an entry for each. A partial unique
--    index gives the same guarantee for the keys that exist.
ALTER TABLE follow_ups DROP CONSTRAINT follow_ups_idempotency_key_key;
CREATE UNIQUE INDEX follow_ups_idempotency_key_key ON follow_ups (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- 3. The erased-lead scrubbers of 004 ran a PL/pgSQL function with a lookup per row
--    (each completion writes sent_text and a conversation row). The same rule, once
--    per statement over the rows it changed, starting from the (few) erased leads:
--    with none among them, the check is one probe of a small partial index.
CREATE INDEX leads_erased_idx ON leads (id) WHERE erased_at IS NOT NULL;
DROP TRIGGER follow_ups_scrub_erased ON follow_ups;
DROP TRIGGER messages_scrub_erased ON messages;
DROP FUNCTION scrub_erased_follow_up_text();
DROP FUNCTION scrub_erased_message_text();

-- The EXISTS guard matters: a statement-level trigger fires even for an UPDATE that
-- changes nothing, so the scrub's own UPDATE must not run again once nothing is left.
CREATE FUNCTION scrub_erased_follow_up_texts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM leads l
              WHERE l.erased_at IS NOT NULL
                AND l.id IN (SELECT n.lead_id FROM changed n WHERE n.sent_text IS NOT NULL OR n.message IS NOT NULL)) THEN
    UPDATE follow_ups f SET sent_text = NULL, message = NULL
      FROM changed n JOIN leads l ON l.id = n.lead_id
     WHERE f.id = n.id AND l.erased_at IS NOT NULL AND (n.sent_text IS NOT NULL OR n.message IS NOT NULL);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER follow_ups_scrub_erased
  AFTER UPDATE ON follow_ups REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION scrub_erased_follow_up_texts();

CREATE FUNCTION scrub_erased_message_texts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM leads l
              WHERE l.erased_at IS NOT NULL AND l.id IN (SELECT n.lead_id FROM inserted n WHERE n.text IS NOT NULL)) THEN
    UPDATE messages m SET text = NULL
      FROM inserted n JOIN leads l ON l.id = n.lead_id
     WHERE m.id = n.id AND l.erased_at IS NOT NULL AND n.text IS NOT NULL;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER messages_scrub_erased
  AFTER INSERT ON messages REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION scrub_erased_message_texts();
