-- Every index on `deliveries` is written twice on the hot path (the insert, then the update
-- after the send). Leased rows are all pending or retrying, so the partial due index finds
-- them at start-up; releases by id use the primary key. Keep in step with the other backend.
DROP INDEX deliveries_leased;
