-- Version 12 of the default tenant template: a SCIM `userName` answers for one user only.
--
-- A user's `userName` is `user_name` when a directory set one, else their email address
-- (V11). V11 kept directory-set names unique among themselves, and the SCIM service refused a
-- name that was another user's address; but an invitation, a registration or a just-in-time
-- SSO user could still take an address that a directory had given someone as their name, and
-- two users then answered one `userName` (RFC 7643 §4.1.1 wants it unique). Now the database
-- holds it: one unique index over every user's `userName`, compared without case, which the
-- `userName eq` lookups directories make before creating a user also use.
--
-- A tenant that already has such a pair stops this step with the message below; rename one
-- of them (the directory's `userName`, or the other user's address) and run it again.
DO $$
DECLARE
    clash text;
BEGIN
    SELECT lower(coalesce(user_name, email)) INTO clash
    FROM users GROUP BY 1 HAVING count(*) > 1 LIMIT 1;
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION 'two users answer the SCIM userName %: rename one, then migrate again', clash;
    END IF;
END $$;

DROP INDEX users_user_name;
CREATE UNIQUE INDEX users_scim_user_name ON users (lower(coalesce(user_name, email)));
