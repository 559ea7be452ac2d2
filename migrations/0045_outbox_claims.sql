-- Each outbox row set `sending` records who claimed it: the scheduler lease owner and the lease
-- term it held (the fencing token). A replica taking over knows at once that a `sending` row of
-- another owner is no longer being sent, and looks it up in Slack before posting it again.
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS claim_owner String DEFAULT '' AFTER thread_ts;
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS claim_term UInt64 DEFAULT 0 AFTER claim_owner;
