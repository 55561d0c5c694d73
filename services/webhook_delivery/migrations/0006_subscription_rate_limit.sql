-- When each attempt was due (the delivery's next_attempt_at when it was claimed): how late
-- attempts start is `attempted_at - due_at`.
ALTER TABLE delivery_attempts ADD COLUMN due_at timestamptz;
