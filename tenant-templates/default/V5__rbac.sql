-- Version 5 of the default tenant template: role-based access control beyond the built-ins.
-- A role may include other roles (inheritance: it grants their permissions too, transitively;
-- the application refuses cycles). A role assignment may carry conditions — source IP ranges
-- and time windows — outside of which it grants nothing.

CREATE TABLE role_includes (
    role_name text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    -- A role still included by another cannot be deleted.
    included  text NOT NULL REFERENCES roles (name) ON DELETE RESTRICT,
    PRIMARY KEY (role_name, included),
    CHECK (role_name <> included)
);
CREATE INDEX role_includes_included ON role_includes (included);

ALTER TABLE roles ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Conditions of the assignment, as validated by the application:
-- {"ip_ranges": ["10.0.0.0/8"], "time_window": {"days": ["mon"], "start": "09:00",
--  "end": "17:00", "utc_offset": "+01:00"}, "not_before": "<RFC 3339>", "not_after": "…"}.
-- NULL: unconditional.
ALTER TABLE user_roles ADD COLUMN conditions jsonb;
