-- The opt-out confirmation is a follow-up like any other message we send (intent
-- `opt_out_confirmation`, scheduled in the transaction that records the opt-out, see
-- src/followups/opt-out-confirmation.ts): claimed, audited and shown in the lead's timeline.
-- A fan gets at most one, ever: a webhook delivered twice, a second "parar", the pre-send
-- check finding the same opt-out — the second insert finds this index and does nothing.
CREATE UNIQUE INDEX follow_ups_opt_out_confirmation_key ON follow_ups (lead_id) WHERE intent = 'opt_out_confirmation';
