-- Never after a reply, even when webhooks are lost: the pre-send reply check.
--
-- 1. The fan's @lid (WhatsApp's privacy id), when a webhook showed one: the
--    pre-send check asks findMessages under it as well as under both phone JIDs.
ALTER TABLE leads ADD COLUMN whatsapp_lid text;

-- 2. Whether Evolution's webhooks still reach us, per WhatsApp number (instance).
--    The API stamps last_webhook_at / last_echo_at as webhooks arrive (at most once
--    a second per process); the sending roles compare them with what was sent and
--    mark the number silent. Every process reads the same row: /health/ready on
--    any API replica, the pre-send check in any worker.
CREATE TABLE webhook_health (
  instance        text PRIMARY KEY,
  last_webhook_at timestamptz NOT NULL,
  -- The last echo of one of our own sends (fromMe messages.upsert, send.message, messages.update).
  last_echo_at    timestamptz NOT NULL,
  silent_since    timestamptz,
  -- echoes_missing | no_webhooks
  silent_reason   text,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- When a number went silent and when webhooks flowed again: the audit trail of the detector.
CREATE TABLE webhook_health_events (
  id       bigserial PRIMARY KEY,
  instance text NOT NULL,
  at       timestamptz NOT NULL,
  kind     text NOT NULL CHECK (kind IN ('silent', 'flowing')),
  reason   text,
  detail   jsonb
);
CREATE INDEX webhook_health_events_instance_idx ON webhook_health_events (instance, id);

-- 3. "Sends since the last echo": the detector's range scan over recent sends.
CREATE INDEX follow_ups_sent_at_idx ON follow_ups (sent_at) WHERE sent_at IS NOT NULL;
