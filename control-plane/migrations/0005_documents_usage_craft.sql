-- Kong and Craft dialects and usage telemetry.

-- A Kong license document imported as signed by a trusted issuer, served back verbatim;
-- NULL for licenses whose document the control plane signs itself.
ALTER TABLE licenses ADD COLUMN imported_document text;
-- When a data plane last validated the license (from telemetry; not replicated, no revision).
ALTER TABLE licenses ADD COLUMN last_validated_at timestamptz;
-- Craft's numeric `pluginId`.
ALTER TABLE products ADD COLUMN number bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX products_number ON products (number);

-- Requests served per month, per data plane, summed from telemetry batches.
CREATE TABLE usage_counters (
    bucket        text   NOT NULL CHECK (bucket ~ '^[0-9]{4}-[0-9]{2}$'),
    node_id       uuid   NOT NULL,
    request_count bigint NOT NULL CHECK (request_count >= 0),
    PRIMARY KEY (bucket, node_id)
);

-- Telemetry batches already counted: a batch resent after a reconnect is acknowledged again
-- but not counted twice.
CREATE TABLE usage_batches (
    node_id     uuid        NOT NULL,
    sequence    bigint      NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, sequence)
);
