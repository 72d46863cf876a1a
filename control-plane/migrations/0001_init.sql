-- Initial schema: products, customers, licenses, activations, admin tokens, and the revision
-- counter and tombstones behind the change feed (DESIGN §3, §4).

-- One row. Every write to a replicated entity updates it LAST in its transaction and stamps the
-- new value on what it wrote; the row lock serialises writers from that point to commit, so
-- revision order equals commit order and a reader of "changes after R" never skips one.
CREATE TABLE revision_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    value     bigint  NOT NULL
);
INSERT INTO revision_counter (singleton, value) VALUES (true, 0);

CREATE TABLE products (
    id                   uuid        PRIMARY KEY,
    code                 text        NOT NULL UNIQUE,
    name                 text        NOT NULL,
    authorization_method text        NOT NULL CHECK (authorization_method IN ('license-key', 'user')),
    key_prefix           text,
    metadata             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    revision             bigint      NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_revision ON products (revision);

CREATE TABLE customers (
    id           uuid        PRIMARY KEY,
    email        text        NOT NULL,
    first_name   text,
    last_name    text,
    company_name text,
    reference    text,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    revision     bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX customers_email ON customers (lower(email));
CREATE INDEX customers_revision ON customers (revision);

CREATE TABLE licenses (
    id              uuid        PRIMARY KEY,
    number          bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    key             text        NOT NULL UNIQUE,
    product_id      uuid        NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    customer_id     uuid        NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    edition         text,
    status          text        NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    license_type    text        NOT NULL
                    CHECK (license_type IN ('perpetual', 'time-limited', 'subscription', 'consumption')),
    max_activations integer     CHECK (max_activations >= 0),
    features        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(features) = 'object'),
    starts_at       timestamptz,
    expires_at      timestamptz,
    notes           text,
    private_notes   text,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    revision        bigint      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (starts_at IS NULL OR expires_at IS NULL OR starts_at < expires_at)
);
CREATE INDEX licenses_revision ON licenses (revision);
CREATE INDEX licenses_product ON licenses (product_id);
CREATE INDEX licenses_customer ON licenses (customer_id);

-- A device on a license. History is kept: deactivation sets deactivated_at.
CREATE TABLE activations (
    id             uuid        PRIMARY KEY,
    license_id     uuid        NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    device_id      text        NOT NULL,
    device_name    text,
    client_facts   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    activated_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    deactivated_at timestamptz
);
CREATE UNIQUE INDEX activations_active_device
    ON activations (license_id, device_id) WHERE deactivated_at IS NULL;

-- What was deleted at which revision, so a data plane resuming after R learns of it.
CREATE TABLE tombstones (
    revision   bigint      PRIMARY KEY,
    entity     text        NOT NULL CHECK (entity IN ('product', 'customer', 'license')),
    entity_id  uuid        NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tombstones_deleted_at ON tombstones (deleted_at);

CREATE TABLE admin_tokens (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL UNIQUE,
    token_hash   bytea       NOT NULL UNIQUE,
    read_only    boolean     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
