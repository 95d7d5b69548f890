-- An enrollment ends by itself: stopped when one of its follow-ups is cancelled
-- for a reason that ends all contact (the lead replied, opted out, ...), completed
-- when its last follow-up reaches a terminal state. A trigger covers every path
-- (worker, webhook, operator, sweeper) without each having to remember it.
CREATE FUNCTION settle_enrollments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE enrollments e
     SET status = 'stopped', stop_reason = s.cancel_reason, updated_at = now()
    FROM (SELECT DISTINCT ON (n.enrollment_id) n.enrollment_id, n.cancel_reason
            FROM changed n JOIN previous o ON o.id = n.id
           WHERE n.enrollment_id IS NOT NULL AND n.status = 'cancelled' AND o.status <> 'cancelled'
             AND n.cancel_reason IN ('lead_replied', 'opted_out', 'handoff', 'converted', 'erased', 'invalid_number')) s
   WHERE e.id = s.enrollment_id AND e.status = 'active';

  UPDATE enrollments e
     SET status = 'completed', updated_at = now()
   WHERE e.status = 'active'
     AND e.id IN (SELECT n.enrollment_id FROM changed n JOIN previous o ON o.id = n.id
                   WHERE n.enrollment_id IS NOT NULL AND n.status <> o.status
                     AND n.status IN ('executed', 'failed', 'cancelled'))
     AND NOT EXISTS (SELECT 1 FROM follow_ups f
                      WHERE f.enrollment_id = e.id AND f.status IN ('pending', 'queued', 'sending'));
  RETURN NULL;
END;
$$;

CREATE TRIGGER follow_ups_settle_enrollments
  AFTER UPDATE ON follow_ups REFERENCING OLD TABLE AS previous NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION settle_enrollments();
