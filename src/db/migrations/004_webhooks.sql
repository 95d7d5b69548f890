-- Conversation-aware sending: what the LGPD erasure needs from the database.
--
-- An erased lead keeps its row (statistics count it) but its phone becomes
-- 'erased:' || sha256(phone): the number itself is gone, yet a later contact from
-- the same number can be recognised. If that person had opted out, the new lead
-- starts opted out too: an opt-out is for good, and erasure must not undo it.
CREATE FUNCTION leads_carry_erased_opt_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  erased record;
BEGIN
  IF NEW.phone LIKE 'erased:%' OR NEW.opted_out_at IS NOT NULL THEN
    RETURN NEW;
  END IF;
  SELECT opted_out_at, opt_out_message_id INTO erased
    FROM leads
   WHERE phone = 'erased:' || encode(sha256(convert_to(NEW.phone, 'UTF8')), 'hex')
     AND opted_out_at IS NOT NULL;
  IF FOUND THEN
    NEW.opted_out_at := erased.opted_out_at;
    NEW.opt_out_message_id := erased.opt_out_message_id;
    NEW.opt_out_source := 'erased_lead';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER leads_carry_erased_opt_out
  BEFORE INSERT ON leads
  FOR EACH ROW EXECUTE FUNCTION leads_carry_erased_opt_out();

-- A follow-up already on its way when the lead was erased still completes; these
-- keep its text from being written back afterwards (worker: composed text,
-- executed row, conversation log; dry-run transport: its record).
CREATE FUNCTION scrub_erased_follow_up_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM leads WHERE id = NEW.lead_id AND erased_at IS NOT NULL) THEN
    NEW.sent_text := NULL;
    NEW.message := NULL;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER follow_ups_scrub_erased
  BEFORE UPDATE OF sent_text ON follow_ups
  FOR EACH ROW WHEN (NEW.sent_text IS NOT NULL AND NEW.sent_text IS DISTINCT FROM OLD.sent_text)
  EXECUTE FUNCTION scrub_erased_follow_up_text();

CREATE FUNCTION scrub_erased_message_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM leads WHERE id = NEW.lead_id AND erased_at IS NOT NULL) THEN
    NEW.text := NULL;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER messages_scrub_erased
  BEFORE INSERT ON messages
  FOR EACH ROW WHEN (NEW.text IS NOT NULL)
  EXECUTE FUNCTION scrub_erased_message_text();

CREATE FUNCTION scrub_erased_dry_run() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  hashed text := 'erased:' || encode(sha256(convert_to(NEW.number, 'UTF8')), 'hex');
BEGIN
  IF EXISTS (SELECT 1 FROM leads WHERE phone = hashed) THEN
    NEW.number := hashed;
    NEW.text := '';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER dry_run_messages_scrub_erased
  BEFORE INSERT ON dry_run_messages
  FOR EACH ROW EXECUTE FUNCTION scrub_erased_dry_run();
