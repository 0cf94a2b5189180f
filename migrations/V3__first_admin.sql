-- The address of a tenant's first admin, given at creation and seeded by provisioning.
ALTER TABLE control.provisioning_jobs ADD COLUMN admin_email text;
