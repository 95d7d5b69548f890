-- The dashboard's funnel from daily roll-ups (issue 14; src/dashboard/funnel-rollups.ts).
--
-- 1. Per UTC day of planned_at and (campaign, step, variant, composer): how many campaign
--    follow-ups were planned, sent, answered by the fan within 24 h of that send, and the
--    opt-outs, hand-offs and conversions counted for them (each for the fan's last send before
--    it). Counts only: no lead, phone or text (an LGPD erasure has nothing to remove here).
CREATE TABLE funnel_rollups (
  day      date NOT NULL,
  campaign text NOT NULL,
  step     integer,
  variant  integer,
  composer text,
  planned  integer NOT NULL,
  sent     integer NOT NULL,
  replied  integer NOT NULL,
  opted_out  integer NOT NULL,
  handed_off integer NOT NULL,
  converted  integer NOT NULL
);
CREATE INDEX funnel_rollups_day_idx ON funnel_rollups (day);

-- 2. The days rolled up (rolled_at null: to be rolled). Only closed days are listed: a day
--    ends at least 2 days before the refresh (now() - 2 days), so the last days are always
--    computed live. A refresher locks the day rows it rolls (FOR UPDATE SKIP LOCKED): several
--    processes can refresh at once, each day is rolled by one of them.
CREATE TABLE funnel_rollup_days (
  day       date PRIMARY KEY,
  rolled_at timestamptz
);

-- 3. A day whose counts changed after it was rolled: one row per change, appended by the
--    triggers below in the transaction that makes the change (no row is updated, so writers
--    never wait for one another or for a refresher). A day with a mark is read live until a
--    refresh rolls it again and deletes the marks it saw (those committed before it read).
CREATE TABLE funnel_rollup_marks (
  id  bigserial PRIMARY KEY,
  day date NOT NULL
);
CREATE INDEX funnel_rollup_marks_day_idx ON funnel_rollup_marks (day);

-- A follow-up planned more than a day ago was inserted (a backdated enrollment), sent (a late
-- send: after a pause, a backlog, a retry), regrouped or deleted. The 1 day (against the 2 days
-- before a day can be rolled) leaves a day's margin for a transaction that started before the
-- refresh. The WHEN clauses keep the send path free of any call for a follow-up sent on time.
CREATE FUNCTION funnel_rollup_mark_followup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.campaign IS NOT NULL THEN
    INSERT INTO funnel_rollup_marks (day) VALUES ((OLD.planned_at AT TIME ZONE 'UTC')::date);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.campaign IS NOT NULL
     AND (TG_OP = 'INSERT' OR OLD.campaign IS NULL OR (NEW.planned_at AT TIME ZONE 'UTC')::date <> (OLD.planned_at AT TIME ZONE 'UTC')::date) THEN
    INSERT INTO funnel_rollup_marks (day) VALUES ((NEW.planned_at AT TIME ZONE 'UTC')::date);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER follow_ups_funnel_rollup_insert AFTER INSERT ON follow_ups
  FOR EACH ROW WHEN (NEW.campaign IS NOT NULL AND NEW.planned_at < now() - interval '1 day')
  EXECUTE FUNCTION funnel_rollup_mark_followup();
CREATE TRIGGER follow_ups_funnel_rollup_update AFTER UPDATE OF sent_at, planned_at, lead_id, campaign, step, variant, composer ON follow_ups
  FOR EACH ROW WHEN ((OLD.campaign IS NOT NULL OR NEW.campaign IS NOT NULL)
                     AND LEAST(OLD.planned_at, NEW.planned_at) < now() - interval '1 day'
                     AND (OLD.sent_at IS DISTINCT FROM NEW.sent_at OR OLD.planned_at IS DISTINCT FROM NEW.planned_at
                          OR OLD.lead_id IS DISTINCT FROM NEW.lead_id OR OLD.campaign IS DISTINCT FROM NEW.campaign
                          OR OLD.step IS DISTINCT FROM NEW.step OR OLD.variant IS DISTINCT FROM NEW.variant
                          OR OLD.composer IS DISTINCT FROM NEW.composer))
  EXECUTE FUNCTION funnel_rollup_mark_followup();
CREATE TRIGGER follow_ups_funnel_rollup_delete AFTER DELETE ON follow_ups
  FOR EACH ROW WHEN (OLD.campaign IS NOT NULL AND OLD.planned_at < now() - interval '1 day')
  EXECUTE FUNCTION funnel_rollup_mark_followup();

-- A message from a fan (recorded, moved or removed) decides "replied within 24 h" for the
-- lead's campaign follow-ups sent in the 24 h before it: their days are marked when they were
-- planned more than a day ago (a reply recorded late, with the time WhatsApp gave it, too).
CREATE FUNCTION funnel_rollup_mark_reply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.direction = 'in' THEN
    INSERT INTO funnel_rollup_marks (day)
    SELECT DISTINCT (f.planned_at AT TIME ZONE 'UTC')::date FROM follow_ups f
     WHERE f.lead_id = OLD.lead_id AND f.campaign IS NOT NULL AND f.sent_at < OLD.at AND f.sent_at >= OLD.at - interval '24 hours'
       AND f.planned_at < now() - interval '1 day';
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.direction = 'in' THEN
    INSERT INTO funnel_rollup_marks (day)
    SELECT DISTINCT (f.planned_at AT TIME ZONE 'UTC')::date FROM follow_ups f
     WHERE f.lead_id = NEW.lead_id AND f.campaign IS NOT NULL AND f.sent_at < NEW.at AND f.sent_at >= NEW.at - interval '24 hours'
       AND f.planned_at < now() - interval '1 day';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER messages_funnel_rollup_insert AFTER INSERT ON messages
  FOR EACH ROW WHEN (NEW.direction = 'in') EXECUTE FUNCTION funnel_rollup_mark_reply();
CREATE TRIGGER messages_funnel_rollup_update AFTER UPDATE OF lead_id, direction, at ON messages
  FOR EACH ROW WHEN ((OLD.direction = 'in' OR NEW.direction = 'in')
                     AND (OLD.lead_id IS DISTINCT FROM NEW.lead_id OR OLD.direction IS DISTINCT FROM NEW.direction OR OLD.at IS DISTINCT FROM NEW.at))
  EXECUTE FUNCTION funnel_rollup_mark_reply();
CREATE TRIGGER messages_funnel_rollup_delete AFTER DELETE ON messages
  FOR EACH ROW WHEN (OLD.direction = 'in') EXECUTE FUNCTION funnel_rollup_mark_reply();

-- A fan stopped (opted out, handed off, converted; or the stamp moved or cleared): the stop counts
-- for the fan's last send before it, which may be weeks old. And a send recorded for a fan already
-- stopped (a send in flight when the stop came): it may take a stop over from the send before it.
-- Every send updates leads.last_outbound_at in the statement that sets sent_at (markExecutedBatch),
-- so this trigger sees it; its WHEN keeps it to fans who were stopped. The days of the fan's sent
-- campaign follow-ups planned more than a day ago are marked (a fan has a few).
CREATE FUNCTION funnel_rollup_mark_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO funnel_rollup_marks (day)
  SELECT DISTINCT (f.planned_at AT TIME ZONE 'UTC')::date FROM follow_ups f
   WHERE f.lead_id = NEW.id AND f.campaign IS NOT NULL AND f.sent_at IS NOT NULL AND f.planned_at < now() - interval '1 day';
  RETURN NULL;
END $$;

CREATE TRIGGER leads_funnel_rollup_stop AFTER UPDATE OF opted_out_at, handoff_at, converted_at ON leads
  FOR EACH ROW WHEN (OLD.opted_out_at IS DISTINCT FROM NEW.opted_out_at OR OLD.handoff_at IS DISTINCT FROM NEW.handoff_at
                     OR OLD.converted_at IS DISTINCT FROM NEW.converted_at)
  EXECUTE FUNCTION funnel_rollup_mark_lead();
CREATE TRIGGER leads_funnel_rollup_send AFTER UPDATE OF last_outbound_at ON leads
  FOR EACH ROW WHEN (NEW.opted_out_at IS NOT NULL OR NEW.handoff_at IS NOT NULL OR NEW.converted_at IS NOT NULL)
  EXECUTE FUNCTION funnel_rollup_mark_lead();
