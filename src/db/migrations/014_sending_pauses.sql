-- The campaign team's dashboard and the operator's pause .
--
-- 1. Operator pauses: one row per pause, from when it was asked (`at`, `who`, `reason`)
--    to when it was lifted (`resumed_at`, `resumed_by`, `resume_reason`). The rows are the
--    audit trail too: every pause and every resume with its time, reason and author.
--    scope 'all' holds every follow-up; 'campaign' those of one campaign; 'number' one
--    WhatsApp number (015_whatsapp_numbers.sql gives numbers their own rows). Held follow-ups are deferred with
--    defer_reason 'operator_paused', never dropped.
CREATE TABLE sending_pauses (
  id            bigserial PRIMARY KEY,
  scope         text NOT NULL CHECK (scope IN ('all', 'campaign', 'number')),
  campaign      text,
  number        text,
  reason        text NOT NULL,
  who           text NOT NULL,
  at            timestamptz NOT NULL,
  resumed_at    timestamptz,
  resumed_by    text,
  resume_reason text,
  CHECK ((scope = 'campaign') = (campaign IS NOT NULL)),
  CHECK ((scope = 'number') = (number IS NOT NULL))
);
-- At most one active pause per target: pausing again what is already paused changes nothing.
CREATE UNIQUE INDEX sending_pauses_one_active
  ON sending_pauses (scope, COALESCE(campaign, ''), COALESCE(number, '')) WHERE resumed_at IS NULL;
CREATE INDEX sending_pauses_at_idx ON sending_pauses (at DESC, id DESC);

-- 2. Which template variant was sent (the funnel per variant); null for other composers.
ALTER TABLE follow_ups ADD COLUMN variant integer;

-- 3. The dashboard's hot reads, kept to index ranges as history grows:
--    the funnel over follow-ups planned in a period, per campaign;
--    covering: the funnel reads only the index (no heap) for long periods.
CREATE INDEX follow_ups_campaign_planned_idx ON follow_ups (planned_at)
  INCLUDE (lead_id, campaign, step, variant, composer, sent_at) WHERE campaign IS NOT NULL;
--    the failures page and "failures in the last 24 h by reason";
CREATE INDEX follow_ups_failed_idx ON follow_ups (updated_at DESC) WHERE status = 'failed';
CREATE INDEX follow_up_events_failed_at_idx ON follow_up_events (at) WHERE to_status = 'failed';
--    replies and opt-outs per hour (the chart);
CREATE INDEX messages_inbound_at_idx ON messages (at) INCLUDE (lead_id) WHERE direction = 'in';
CREATE INDEX leads_opted_out_at_idx ON leads (opted_out_at) WHERE opted_out_at IS NOT NULL;
--    the funnel's stops: the few leads stamped in the period;
CREATE INDEX leads_handoff_at_idx ON leads (handoff_at) WHERE handoff_at IS NOT NULL;
CREATE INDEX leads_converted_at_idx ON leads (converted_at) WHERE converted_at IS NOT NULL;
--    a fan by name (prefix, case-insensitive).
CREATE INDEX leads_name_prefix_idx ON leads ((lower(name) COLLATE "C")) WHERE name IS NOT NULL;
