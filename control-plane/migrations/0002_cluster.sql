-- The cluster: every write announces its revision on the `license_revisions` channel (delivered
-- at commit), so each control plane pushes it to its data planes; and the registry of data
-- planes that any control plane can list.

CREATE TABLE data_planes (
    id            uuid        PRIMARY KEY,
    hostname      text        NOT NULL,
    ip            text        NOT NULL,
    version       text        NOT NULL,
    revision      bigint,
    connected     boolean     NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
