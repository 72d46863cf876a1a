-- The identity of this database's license set. Data planes remember which set their state came
-- from; one that resumes against another database (restored, reset, re-pointed) gets a full
-- snapshot instead of deltas that would leave stale licenses behind.
CREATE TABLE cluster_identity (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id        uuid    NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO cluster_identity DEFAULT VALUES;
