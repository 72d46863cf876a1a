-- When data planes last validated each license, moved out of `licenses`: telemetry batches of
-- up to every license used to update license rows, taking their row locks (so admin writes and
-- activations waited behind them, and deadlocked with them) and writing a new version of each
-- wide row. A narrow table of its own, without a foreign key (which would take a share lock on
-- the license row), is touched by nothing else. Rows of deleted licenses are removed with them.
CREATE TABLE license_activity (
    license_id        uuid        PRIMARY KEY,
    last_validated_at timestamptz NOT NULL
);
INSERT INTO license_activity (license_id, last_validated_at)
    SELECT id, last_validated_at FROM licenses WHERE last_validated_at IS NOT NULL;
ALTER TABLE licenses DROP COLUMN last_validated_at;
