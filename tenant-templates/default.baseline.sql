-- The default template at version 12, as one script: the schema (and the one row) that
-- versions 1 to 12 (tenant-templates/default/V1__… to V12__…) leave in a new tenant, in plain
-- CREATE and INSERT statements, as pg_dump writes them. New tenants are made from it, and the
-- versions after 12 are applied on top (shared/src/template.rs says why). It is not edited by
-- hand: a change to the schema is a new version in tenant-templates/default/.
-- tests/api/templates.rs checks that this script and versions 1 to 12 make the same schema
-- and rows; docs/tenancy.md ("Templates") says how to move it to a newer version.

CREATE TABLE account_mail_sends (
    email text NOT NULL,
    purpose text NOT NULL,
    sent_at timestamp with time zone NOT NULL
);

CREATE TABLE api_keys (
    id uuid NOT NULL,
    name text NOT NULL,
    prefix text NOT NULL,
    secret_hash bytea NOT NULL,
    previous_secret_hash bytea,
    previous_valid_until timestamp with time zone,
    scopes text[] NOT NULL,
    allowed_ips text[],
    expires_at timestamp with time zone,
    created_by uuid,
    created_at timestamp with time zone NOT NULL,
    rotated_at timestamp with time zone,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone,
    use_count bigint DEFAULT 0 NOT NULL
);

CREATE TABLE backup_codes (
    user_id uuid NOT NULL,
    code_hash bytea NOT NULL,
    used_at timestamp with time zone
);

CREATE TABLE console_cookies (
    digest bytea NOT NULL,
    session_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE login_attempts (
    id uuid NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    email text NOT NULL,
    user_id uuid,
    method text NOT NULL,
    outcome text NOT NULL,
    ip inet,
    user_agent text
);

CREATE TABLE login_throttle (
    email text NOT NULL,
    failures integer NOT NULL,
    first_failure_at timestamp with time zone NOT NULL,
    locked_until timestamp with time zone
);

CREATE TABLE mail_outbox (
    id uuid NOT NULL,
    to_address text NOT NULL,
    subject text NOT NULL,
    body_text text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    next_attempt_at timestamp with time zone DEFAULT now() NOT NULL,
    sent_at timestamp with time zone,
    last_error text,
    CONSTRAINT mail_outbox_attempts_check CHECK ((attempts >= 0))
);

CREATE TABLE mfa_challenges (
    token_hash bytea NOT NULL,
    user_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    failures integer DEFAULT 0 NOT NULL,
    ip inet,
    user_agent text
);

CREATE TABLE password_history (
    user_id uuid NOT NULL,
    password_hash text NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

CREATE TABLE record_collections (
    name text NOT NULL,
    sensitive_fields text[] DEFAULT '{}'::text[] NOT NULL,
    access text DEFAULT 'shared'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT record_collections_access_check CHECK ((access = ANY (ARRAY['shared'::text, 'owner'::text]))),
    CONSTRAINT record_collections_name_check CHECK ((name ~ '^[a-z][a-z0-9_]{0,62}$'::text))
);

CREATE TABLE records (
    id uuid NOT NULL,
    collection text NOT NULL,
    owner_id uuid,
    data jsonb NOT NULL,
    sealed bytea,
    key_version integer,
    version bigint NOT NULL,
    size_bytes bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT records_check CHECK (((sealed IS NULL) = (key_version IS NULL))),
    CONSTRAINT records_data_check CHECK ((jsonb_typeof(data) = 'object'::text)),
    CONSTRAINT records_size_bytes_check CHECK ((size_bytes >= 0)),
    CONSTRAINT records_version_check CHECK ((version > 0))
);

CREATE TABLE refresh_tokens (
    token_hash bytea NOT NULL,
    session_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    used_at timestamp with time zone
);

CREATE TABLE role_includes (
    role_name text NOT NULL,
    included text NOT NULL,
    CONSTRAINT role_includes_check CHECK ((role_name <> included))
);

CREATE TABLE roles (
    name text NOT NULL,
    description text NOT NULL,
    permissions text[] NOT NULL,
    built_in boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE scim_group_members (
    group_id uuid NOT NULL,
    user_id uuid NOT NULL
);

CREATE TABLE scim_groups (
    id uuid NOT NULL,
    display_name text NOT NULL,
    external_id text,
    role_name text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE sessions (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    amr text[] NOT NULL,
    ip inet,
    user_agent text,
    revoked_at timestamp with time zone,
    revoked_reason text,
    idp text
);

CREATE TABLE settings (
    key text NOT NULL,
    value jsonb NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE signing_keys (
    kid text NOT NULL,
    algorithm text NOT NULL,
    public_key bytea NOT NULL,
    private_key bytea NOT NULL,
    data_key_version integer NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    retired_at timestamp with time zone
);

CREATE TABLE sso_consumed_assertions (
    provider_id uuid NOT NULL,
    assertion_id text NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE sso_domains (
    domain text NOT NULL,
    provider_id uuid NOT NULL,
    require_sso boolean DEFAULT false NOT NULL,
    CONSTRAINT sso_domains_domain_check CHECK ((domain = lower(domain)))
);

CREATE TABLE sso_handoff_codes (
    code_digest bytea NOT NULL,
    user_id uuid NOT NULL,
    provider_id uuid NOT NULL,
    redirect_uri text NOT NULL,
    code_challenge text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

CREATE TABLE sso_identities (
    provider_id uuid NOT NULL,
    subject text NOT NULL,
    user_id uuid NOT NULL,
    groups text[] DEFAULT '{}'::text[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_login_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE sso_login_transactions (
    state_digest bytea NOT NULL,
    provider_id uuid NOT NULL,
    nonce text,
    pkce_verifier text,
    return_to text,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    consumed_at timestamp with time zone,
    browser_digest bytea,
    is_test boolean DEFAULT false NOT NULL,
    app_redirect_uri text,
    app_code_challenge text,
    app_state text
);

CREATE TABLE sso_providers (
    id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    display_name text DEFAULT ''::text NOT NULL,
    settings jsonb NOT NULL,
    client_secret bytea,
    secret_key_version integer,
    enabled boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sso_providers_kind_check CHECK ((kind = ANY (ARRAY['oidc'::text, 'oauth2'::text, 'saml'::text]))),
    CONSTRAINT sso_providers_name_check CHECK ((name ~ '^[a-z][a-z0-9-]{1,39}$'::text)),
    CONSTRAINT sso_providers_settings_check CHECK ((jsonb_typeof(settings) = 'object'::text))
);

CREATE TABLE sso_test_results (
    id uuid NOT NULL,
    provider_id uuid NOT NULL,
    result jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE storage_usage (
    id integer NOT NULL,
    record_bytes bigint NOT NULL,
    CONSTRAINT storage_usage_id_check CHECK ((id = 1)),
    CONSTRAINT storage_usage_record_bytes_check CHECK ((record_bytes >= 0))
);

CREATE TABLE tenant_profile (
    id integer NOT NULL,
    display_name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT tenant_profile_id_check CHECK ((id = 1))
);

CREATE TABLE user_roles (
    user_id uuid NOT NULL,
    role_name text NOT NULL,
    granted_at timestamp with time zone DEFAULT now() NOT NULL,
    conditions jsonb
);

CREATE TABLE user_tokens (
    token_hash bytea NOT NULL,
    user_id uuid NOT NULL,
    purpose text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT user_tokens_purpose_check CHECK ((purpose = ANY (ARRAY['activation'::text, 'invitation'::text, 'email_verification'::text, 'password_reset'::text])))
);

CREATE TABLE users (
    id uuid NOT NULL,
    email text NOT NULL,
    display_name text DEFAULT ''::text NOT NULL,
    status text NOT NULL,
    email_verified_at timestamp with time zone,
    password_hash text,
    password_changed_at timestamp with time zone,
    totp_secret bytea,
    totp_key_version integer,
    totp_enabled_at timestamp with time zone,
    totp_last_step bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    user_name text,
    external_id text,
    scim_attributes jsonb,
    CONSTRAINT users_status_check CHECK ((status = ANY (ARRAY['invited'::text, 'pending'::text, 'active'::text, 'disabled'::text])))
);

INSERT INTO storage_usage VALUES (1, 0);

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_prefix_key UNIQUE (prefix);

ALTER TABLE ONLY backup_codes
    ADD CONSTRAINT backup_codes_pkey PRIMARY KEY (user_id, code_hash);

ALTER TABLE ONLY console_cookies
    ADD CONSTRAINT console_cookies_pkey PRIMARY KEY (digest);

ALTER TABLE ONLY login_attempts
    ADD CONSTRAINT login_attempts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY login_throttle
    ADD CONSTRAINT login_throttle_pkey PRIMARY KEY (email);

ALTER TABLE ONLY mail_outbox
    ADD CONSTRAINT mail_outbox_pkey PRIMARY KEY (id);

ALTER TABLE ONLY mfa_challenges
    ADD CONSTRAINT mfa_challenges_pkey PRIMARY KEY (token_hash);

ALTER TABLE ONLY password_history
    ADD CONSTRAINT password_history_pkey PRIMARY KEY (user_id, created_at);

ALTER TABLE ONLY record_collections
    ADD CONSTRAINT record_collections_pkey PRIMARY KEY (name);

ALTER TABLE ONLY records
    ADD CONSTRAINT records_pkey PRIMARY KEY (id);

ALTER TABLE ONLY refresh_tokens
    ADD CONSTRAINT refresh_tokens_pkey PRIMARY KEY (token_hash);

ALTER TABLE ONLY role_includes
    ADD CONSTRAINT role_includes_pkey PRIMARY KEY (role_name, included);

ALTER TABLE ONLY roles
    ADD CONSTRAINT roles_pkey PRIMARY KEY (name);

ALTER TABLE ONLY scim_group_members
    ADD CONSTRAINT scim_group_members_pkey PRIMARY KEY (group_id, user_id);

ALTER TABLE ONLY scim_groups
    ADD CONSTRAINT scim_groups_pkey PRIMARY KEY (id);

ALTER TABLE ONLY sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY settings
    ADD CONSTRAINT settings_pkey PRIMARY KEY (key);

ALTER TABLE ONLY signing_keys
    ADD CONSTRAINT signing_keys_pkey PRIMARY KEY (kid);

ALTER TABLE ONLY sso_consumed_assertions
    ADD CONSTRAINT sso_consumed_assertions_pkey PRIMARY KEY (provider_id, assertion_id);

ALTER TABLE ONLY sso_domains
    ADD CONSTRAINT sso_domains_pkey PRIMARY KEY (domain);

ALTER TABLE ONLY sso_handoff_codes
    ADD CONSTRAINT sso_handoff_codes_pkey PRIMARY KEY (code_digest);

ALTER TABLE ONLY sso_identities
    ADD CONSTRAINT sso_identities_pkey PRIMARY KEY (provider_id, subject);

ALTER TABLE ONLY sso_login_transactions
    ADD CONSTRAINT sso_login_transactions_pkey PRIMARY KEY (state_digest);

ALTER TABLE ONLY sso_providers
    ADD CONSTRAINT sso_providers_name_key UNIQUE (name);

ALTER TABLE ONLY sso_providers
    ADD CONSTRAINT sso_providers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY sso_test_results
    ADD CONSTRAINT sso_test_results_pkey PRIMARY KEY (id);

ALTER TABLE ONLY storage_usage
    ADD CONSTRAINT storage_usage_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tenant_profile
    ADD CONSTRAINT tenant_profile_pkey PRIMARY KEY (id);

ALTER TABLE ONLY user_roles
    ADD CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role_name);

ALTER TABLE ONLY user_tokens
    ADD CONSTRAINT user_tokens_pkey PRIMARY KEY (token_hash);

ALTER TABLE ONLY users
    ADD CONSTRAINT users_email_key UNIQUE (email);

ALTER TABLE ONLY users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX account_mail_sends_recent ON account_mail_sends USING btree (email, purpose, sent_at);

CREATE INDEX api_keys_created ON api_keys USING btree (created_at, id);

CREATE INDEX console_cookies_by_session ON console_cookies USING btree (session_id);

CREATE INDEX login_attempts_at ON login_attempts USING btree (at);

CREATE INDEX mail_outbox_unsent ON mail_outbox USING btree (next_attempt_at) WHERE (sent_at IS NULL);

CREATE INDEX records_by_created ON records USING btree (collection, created_at, id);

CREATE INDEX records_by_updated ON records USING btree (collection, updated_at, id);

CREATE INDEX records_data ON records USING gin (data jsonb_path_ops);

CREATE INDEX refresh_tokens_session ON refresh_tokens USING btree (session_id);

CREATE INDEX role_includes_included ON role_includes USING btree (included);

CREATE INDEX scim_group_members_user ON scim_group_members USING btree (user_id);

CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups USING btree (lower(display_name));

CREATE INDEX sessions_live_by_user ON sessions USING btree (user_id, created_at) WHERE (revoked_at IS NULL);

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys USING btree ((true)) WHERE (retired_at IS NULL);

CREATE INDEX sso_domains_provider ON sso_domains USING btree (provider_id);

CREATE INDEX sso_handoff_codes_by_expiry ON sso_handoff_codes USING btree (expires_at);

CREATE INDEX sso_identities_user ON sso_identities USING btree (user_id);

CREATE INDEX sso_login_transactions_expiry ON sso_login_transactions USING btree (expires_at);

CREATE INDEX user_tokens_user ON user_tokens USING btree (user_id, purpose);

CREATE INDEX users_external_id ON users USING btree (external_id) WHERE (external_id IS NOT NULL);

CREATE UNIQUE INDEX users_scim_user_name ON users USING btree (lower(COALESCE(user_name, email)));

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (created_by) REFERENCES users(id) ON DELETE SET NULL;

ALTER TABLE ONLY backup_codes
    ADD CONSTRAINT backup_codes_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY console_cookies
    ADD CONSTRAINT console_cookies_session_id_fkey FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE;

ALTER TABLE ONLY mfa_challenges
    ADD CONSTRAINT mfa_challenges_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY password_history
    ADD CONSTRAINT password_history_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY records
    ADD CONSTRAINT records_collection_fkey FOREIGN KEY (collection) REFERENCES record_collections(name);

ALTER TABLE ONLY refresh_tokens
    ADD CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES sessions(id) ON DELETE CASCADE;

ALTER TABLE ONLY role_includes
    ADD CONSTRAINT role_includes_included_fkey FOREIGN KEY (included) REFERENCES roles(name) ON DELETE RESTRICT;

ALTER TABLE ONLY role_includes
    ADD CONSTRAINT role_includes_role_name_fkey FOREIGN KEY (role_name) REFERENCES roles(name) ON DELETE CASCADE;

ALTER TABLE ONLY scim_group_members
    ADD CONSTRAINT scim_group_members_group_id_fkey FOREIGN KEY (group_id) REFERENCES scim_groups(id) ON DELETE CASCADE;

ALTER TABLE ONLY scim_group_members
    ADD CONSTRAINT scim_group_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY scim_groups
    ADD CONSTRAINT scim_groups_role_name_fkey FOREIGN KEY (role_name) REFERENCES roles(name) ON DELETE SET NULL;

ALTER TABLE ONLY sessions
    ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_consumed_assertions
    ADD CONSTRAINT sso_consumed_assertions_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_domains
    ADD CONSTRAINT sso_domains_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_handoff_codes
    ADD CONSTRAINT sso_handoff_codes_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_handoff_codes
    ADD CONSTRAINT sso_handoff_codes_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_identities
    ADD CONSTRAINT sso_identities_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_identities
    ADD CONSTRAINT sso_identities_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_login_transactions
    ADD CONSTRAINT sso_login_transactions_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE;

ALTER TABLE ONLY sso_test_results
    ADD CONSTRAINT sso_test_results_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES sso_providers(id) ON DELETE CASCADE;

ALTER TABLE ONLY user_roles
    ADD CONSTRAINT user_roles_role_name_fkey FOREIGN KEY (role_name) REFERENCES roles(name) ON DELETE CASCADE;

ALTER TABLE ONLY user_roles
    ADD CONSTRAINT user_roles_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY user_tokens
    ADD CONSTRAINT user_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
