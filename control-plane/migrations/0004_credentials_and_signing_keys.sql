-- LicenseSpring API credentials and the cluster's Ed25519 signing keys: both replicated to data
-- planes through the change feed (revision + tombstones), like products and licenses.

CREATE TABLE api_credentials (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    api_key     text        NOT NULL UNIQUE,
    -- Needed in clear to check HMAC signatures; leaves the control plane only over mTLS.
    shared_key  text        NOT NULL,
    product_ids uuid[]      NOT NULL,
    revision    bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_credentials_revision ON api_credentials (revision);

-- Exactly one active key signs; older ones stay published so that what they signed verifies.
CREATE TABLE signing_keys (
    id          uuid        PRIMARY KEY,
    kid         text        NOT NULL UNIQUE,
    -- The 32-byte Ed25519 seed.
    private_key bytea       NOT NULL CHECK (length(private_key) = 32),
    active      boolean     NOT NULL,
    revision    bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active;
CREATE INDEX signing_keys_revision ON signing_keys (revision);

ALTER TABLE tombstones DROP CONSTRAINT tombstones_entity_check;
ALTER TABLE tombstones ADD CONSTRAINT tombstones_entity_check
    CHECK (entity IN ('product', 'customer', 'license', 'credential', 'signing_key'));
