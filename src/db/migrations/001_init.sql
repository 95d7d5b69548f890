-- nautico-followups: initial schema. Runs unchanged on PostgreSQL, Supabase and PGlite.

CREATE TABLE leads (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Canonical digits (55 + area code + number, mobile with the 9th digit).
  -- After an LGPD erasure this holds 'erased:' || sha256(phone) instead.
  phone              text NOT NULL UNIQUE,
  name               text,
  time_zone          text,
  opted_out_at       timestamptz,
  opt_out_message_id text,
  opt_out_source     text,
  handoff_at         timestamptz,
  converted_at       timestamptz,
  last_inbound_at    timestamptz,
  last_outbound_at   timestamptz,
  whatsapp_jid       text,
  number_checked_at  timestamptz,
  number_valid       boolean,
  erased_at          timestamptz,
  metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The conversation log: what the agent, the follow-ups, a person and the lead said.
CREATE TABLE messages (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  lead_id             uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
  direction           text NOT NULL CHECK (direction IN ('in', 'out')),
  source              text NOT NULL CHECK (source IN ('lead', 'agent', 'followup', 'human')),
  text                text,
  message_type        text,
  provider_message_id text UNIQUE,
  follow_up_id        uuid,
  at                  timestamptz NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_lead_at_idx ON messages (lead_id, at);

CREATE TABLE enrollments (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
  campaign    text NOT NULL,
  status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'stopped')),
  stop_reason text,
  anchor_at   timestamptz NOT NULL,
  -- How far the window, pace or cap pushed the sequence; later steps move by as much.
  shift_ms    bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX enrollments_one_active_per_lead ON enrollments (lead_id) WHERE status = 'active';

CREATE TABLE follow_ups (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  lead_id             uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
  enrollment_id       uuid REFERENCES enrollments(id) ON DELETE SET NULL,
  campaign            text,
  step                integer,
  intent              text,
  -- Explicit text, or null: the composer writes it at send time.
  message             text,
  due_at              timestamptz NOT NULL,
  -- When it was first planned for; due_at only ever moves later than this.
  planned_at          timestamptz NOT NULL,
  -- A message from the lead after this instant stops the follow-up (the worker re-checks it).
  anchor_at           timestamptz NOT NULL,
  status              text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'queued', 'sending', 'executed', 'failed', 'cancelled')),
  attempts            integer NOT NULL DEFAULT 0,
  last_error          text,
  cancel_reason       text,
  defer_reason        text,
  provider_message_id text,
  sent_text           text,
  composer            text,
  sent_at             timestamptz,
  -- When the current send attempt claimed the row: reconciliation looks for our text after it.
  sending_started_at  timestamptz,
  -- Failed attempts to ask the provider whether an ambiguous send went out.
  reconcile_attempts  integer NOT NULL DEFAULT 0,
  idempotency_key     text UNIQUE,
  -- A relay's claim on a pending row while it publishes it (expires, so a crashed relay loses nothing).
  claimed_until       timestamptz,
  -- Deadline of the queued/sending stage; the sweeper recovers rows past it.
  lease_until         timestamptz,
  lead_info           jsonb,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
-- The relay's hot query: due pending rows in due order.
CREATE INDEX follow_ups_due_pending_idx ON follow_ups (due_at) WHERE status = 'pending';
-- The sweeper's query: in-flight rows past their lease.
CREATE INDEX follow_ups_lease_idx ON follow_ups (lease_until) WHERE status IN ('queued', 'sending');
CREATE INDEX follow_ups_lead_idx ON follow_ups (lead_id, created_at);
CREATE INDEX follow_ups_created_idx ON follow_ups (created_at DESC, id DESC);
CREATE INDEX follow_ups_enrollment_idx ON follow_ups (enrollment_id) WHERE enrollment_id IS NOT NULL;

CREATE TABLE follow_up_events (
  id           bigserial PRIMARY KEY,
  follow_up_id uuid NOT NULL REFERENCES follow_ups(id) ON DELETE CASCADE,
  at           timestamptz NOT NULL,
  from_status  text,
  to_status    text NOT NULL,
  reason       text,
  detail       jsonb
);
CREATE INDEX follow_up_events_follow_up_idx ON follow_up_events (follow_up_id, id);

-- Idempotency for POST routes: a retried request returns the first answer.
CREATE TABLE idempotency_keys (
  key         text PRIMARY KEY,
  route       text NOT NULL,
  response    jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Small shared state every process reads: sending paused (and why), WhatsApp connection state.
CREATE TABLE system_state (
  key        text PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the dry-run transport "sent": printed and recorded here, so reconciliation works as with Evolution.
CREATE TABLE dry_run_messages (
  id                  bigserial PRIMARY KEY,
  provider_message_id text NOT NULL UNIQUE,
  number              text NOT NULL,
  text                text NOT NULL,
  at                  timestamptz NOT NULL
);
CREATE INDEX dry_run_messages_number_idx ON dry_run_messages (number, at);

-- Wake relays when a follow-up becomes pending: one notification per statement,
-- carrying the earliest due time (epoch ms), so a bulk insert wakes them once.
CREATE FUNCTION notify_followups_pending() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  earliest timestamptz;
BEGIN
  SELECT min(due_at) INTO earliest FROM changed WHERE status = 'pending';
  IF earliest IS NOT NULL THEN
    PERFORM pg_notify('followups_pending', (floor(extract(epoch FROM earliest) * 1000))::bigint::text);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER follow_ups_pending_insert
  AFTER INSERT ON follow_ups REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION notify_followups_pending();

-- On UPDATE, only rows that became pending or moved their due time count (a relay's
-- claim also updates pending rows, and must not wake the other relays).
CREATE FUNCTION notify_followups_repending() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  earliest timestamptz;
BEGIN
  SELECT min(n.due_at) INTO earliest
    FROM changed n JOIN previous o ON o.id = n.id
   WHERE n.status = 'pending' AND (o.status <> 'pending' OR o.due_at <> n.due_at);
  IF earliest IS NOT NULL THEN
    PERFORM pg_notify('followups_pending', (floor(extract(epoch FROM earliest) * 1000))::bigint::text);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER follow_ups_pending_update
  AFTER UPDATE ON follow_ups REFERENCING OLD TABLE AS previous NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION notify_followups_repending();
