-- Forwarding to the agent: every inbound lead message and every lifecycle event is forwarded to the
-- agent (AGENT_WEBHOOK_URL). The event is written here in the same transaction as what it
-- describes (the transactional outbox); the relay's dispatcher delivers it at least once,
-- in order per lead (src/forwarding/).

-- The switch the writers read (one row): on while a process configured with
-- AGENT_WEBHOOK_URL says so, off when a relay starts without it. The writers (webhook,
-- worker, API) need no forwarding settings of their own, and with forwarding off nothing
-- is written.
CREATE TABLE agent_forwarding (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  enabled    boolean NOT NULL DEFAULT false,
  -- AGENT_WEBHOOK_RAW: keep Evolution's raw webhook payload with message.received.
  raw        boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO agent_forwarding (singleton) VALUES (true);

CREATE TABLE agent_outbox (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Order of the events: every writer takes the lead's row lock before this is drawn, so
  -- for one lead it is the commit order (src/forwarding/record-agent-event.ts).
  seq             bigserial NOT NULL UNIQUE,
  lead_id         uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
  type            text NOT NULL,
  occurred_at     timestamptz NOT NULL,
  data            jsonb NOT NULL DEFAULT '{}'::jsonb,
  raw             jsonb,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'parked')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- A dispatcher delivering it holds it until then (a lease: nothing lives in a session).
  locked_until    timestamptz,
  last_error      text,
  delivered_at    timestamptz,
  parked_at       timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- The head of each lead's queue, and what is due.
CREATE INDEX agent_outbox_pending_idx ON agent_outbox (lead_id, seq) WHERE status = 'pending';
CREATE INDEX agent_outbox_parked_idx ON agent_outbox (seq) WHERE status = 'parked';
CREATE INDEX agent_outbox_delivered_idx ON agent_outbox (delivered_at) WHERE status = 'delivered';

-- ISO-8601 in UTC with milliseconds, as JavaScript's toISOString() writes it.
CREATE FUNCTION agent_iso(at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
