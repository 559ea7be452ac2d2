-- Hysteresis: an incident resolves only after its scope has been clear for a quiet period, so it
-- does not flap (resolve and re-open) through a short lull. `last_breach_at` is the last
-- evaluation instant at which any point of the sustain period still breached.
ALTER TABLE alert_incidents ADD COLUMN IF NOT EXISTS last_breach_at Nullable(DateTime64(3, 'UTC')) AFTER acked_at;
