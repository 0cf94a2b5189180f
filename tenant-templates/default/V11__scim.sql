-- Version 11 of the default tenant template: SCIM 2.0 provisioning (RFC 7643/7644). A
-- directory (Okta, Entra ID, …) creates, changes and removes the tenant's users and groups.
--
-- A user's SCIM `userName` is `user_name` when the directory set one, else their email address.
-- Directory-set names are unique within the tenant, compared without case (RFC 7643 §4.1.1:
-- caseExact false); the SCIM service also refuses one that is another user's address.
-- `scim_attributes` keeps the rest of what the directory sent that has no column of its own
-- (name, emails, phone numbers, addresses, enterprise attributes), as the SCIM service shaped it.
ALTER TABLE users
    ADD COLUMN user_name       text,
    ADD COLUMN external_id     text,
    ADD COLUMN scim_attributes jsonb;
CREATE UNIQUE INDEX users_user_name ON users (lower(user_name));
CREATE INDEX users_external_id ON users (external_id) WHERE external_id IS NOT NULL;

-- A directory's groups. Their names are unique within the tenant (without case), so a group is
-- found by its name as directories look it up before creating it. A tenant admin may map a
-- group to a role (not `owner`): its members hold that role for as long as they are members.
CREATE TABLE scim_groups (
    id           uuid PRIMARY KEY,
    display_name text NOT NULL,
    external_id  text,
    role_name    text REFERENCES roles (name) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (lower(display_name));

CREATE TABLE scim_group_members (
    group_id uuid NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

-- Tenant admins make the directory's token (an API key with the scope `scim:manage`), so the
-- admin role of tenants made before this version learns the permission, as new tenants' does.
UPDATE roles SET permissions = array_append(permissions, 'scim:manage'), updated_at = now()
WHERE name = 'admin' AND built_in AND NOT ('scim:manage' = ANY (permissions));
