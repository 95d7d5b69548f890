-- Several WhatsApp numbers (Evolution instances). Each number is a row, seeded
-- from the configuration at start (EVOLUTION_INSTANCE_NAME or EVOLUTION_INSTANCES) and
-- managed through /v1/numbers and `followups numbers`; its state holds or lets its leads'
-- follow-ups go. Pace and daily cap are enforced in Redis (send-limits.ts); the columns here
-- are the configured values, for the operator's view.
CREATE TABLE whatsapp_numbers (
  name            text PRIMARY KEY,
  state           text NOT NULL DEFAULT 'active'
                  CHECK (state IN ('active', 'paused_whatsapp', 'paused_operator', 'retired')),
  -- Why it is paused or retired (whatsapp_disconnected, evolution_unauthorized, an operator's note).
  state_reason    text,
  state_since     timestamptz NOT NULL DEFAULT now(),
  rate_per_minute integer NOT NULL,
  daily_cap       integer NOT NULL,
  -- In the configuration now (false: a number once configured, kept for its leads and history).
  configured      boolean NOT NULL DEFAULT true,
  -- Leads bound to it today (business day `assigned_on`): part of "room left today" for new leads.
  assigned_on     date,
  assigned_today  integer NOT NULL DEFAULT 0,
  -- Leads bound to it (kept by the statements that bind and move leads): the tie-break for new leads.
  lead_count      integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The number the lead last talked with (NULL: not bound yet; with a single number, that one).
ALTER TABLE leads ADD COLUMN whatsapp_number text;
CREATE INDEX leads_whatsapp_number_idx ON leads (whatsapp_number) WHERE whatsapp_number IS NOT NULL;

-- A lead moved from one number to another (its number retired, or it wrote to another number):
-- on the lead's timeline.
CREATE TABLE lead_number_events (
  id          bigserial PRIMARY KEY,
  lead_id     uuid NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
  at          timestamptz NOT NULL,
  from_number text,
  to_number   text NOT NULL,
  reason      text NOT NULL
);
CREATE INDEX lead_number_events_lead_idx ON lead_number_events (lead_id, at);
