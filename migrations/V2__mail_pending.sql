-- The tenants that may have unsent mail in their outbox (`<schema>.mail_outbox`), so that
-- mail workers never scan every tenant's schema.
--
-- A tenant is marked (inserted, or its generation bumped) in the same transaction that puts
-- mail in its outbox. A worker reads the generation before it drains the outbox and removes
-- the mark only if the generation is unchanged and nothing unsent is left, so a mail enqueued
-- meanwhile is never stranded. Generations come from one sequence, so a mark removed and made
-- again never repeats the generation a slower worker read before (no ABA). `due_at` is when the
-- earliest unsent mail may be tried again; workers look only at marks that are due.

CREATE SEQUENCE control.mail_pending_generation;

CREATE TABLE control.mail_pending (
    tenant_id  uuid PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
    generation bigint NOT NULL DEFAULT nextval('control.mail_pending_generation'),
    marked_at  timestamptz NOT NULL DEFAULT now(),
    due_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_pending_due ON control.mail_pending (due_at);
