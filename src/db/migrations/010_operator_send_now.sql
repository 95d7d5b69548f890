-- `followups send-now <id> --ignore-window`: the operator's "send it now, even outside
-- the sending window" is kept on the row, so whichever worker claims it honours it.
-- Every other rule (stop re-checks, weekly cap, pace, daily cap) still applies.
ALTER TABLE follow_ups ADD COLUMN ignore_window boolean NOT NULL DEFAULT false;
