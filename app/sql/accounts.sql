-- Users, sessions, credentials (spec §2).

-- name: insert_user
INSERT INTO users (id, is_anonymous, workbook_complete, created_at, updated_at)
VALUES (?, 1, 0, ?, ?);

-- name: insert_default_settings
INSERT INTO user_settings (user_id, created_at, updated_at)
VALUES (?, ?, ?);

-- name: insert_session
INSERT INTO sessions (id, user_id, created_at, last_seen_at)
VALUES (?, ?, ?, ?);

-- name: session_with_user
SELECT s.user_id, s.created_at, s.last_seen_at, u.is_anonymous
FROM sessions s
JOIN users u ON u.id = s.user_id
WHERE s.id = ?;

-- name: session_exists
-- The reader's session still exists (a sign-out elsewhere may have ended it meanwhile).
SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?);

-- name: touch_session
UPDATE sessions SET last_seen_at = ? WHERE id = ?;

-- name: delete_session
DELETE FROM sessions WHERE id = ?;

-- name: me
SELECT u.id, u.is_anonymous, u.workbook_complete, u.created_at, e.email,
       st.background_color, st.text_color, st.font, st.personality_type
FROM users u
LEFT JOIN emails e ON e.user_id = u.id AND e.is_active = 1
LEFT JOIN user_settings st ON st.user_id = u.id
WHERE u.id = ?;

-- name: claim_user
UPDATE users SET is_anonymous = 0, updated_at = ? WHERE id = ? AND is_anonymous = 1;

-- name: insert_email
INSERT INTO emails (id, user_id, email, is_active, added_at)
VALUES (?, ?, ?, 1, ?);

-- name: insert_auth
INSERT INTO auth (id, user_id, type, password_hash, wrapped_data_key, created_at, updated_at)
VALUES (?, ?, 'password', ?, ?, ?, ?);

-- name: email_taken
SELECT EXISTS (SELECT 1 FROM emails WHERE email = ?);

-- name: credentials_by_email
SELECT a.user_id, a.password_hash, a.wrapped_data_key, a.updated_at
FROM emails e
JOIN auth a ON a.user_id = e.user_id
WHERE e.email = ? AND e.is_active = 1 AND a.type = 'password';

-- name: credentials_by_user
SELECT a.user_id, a.password_hash, a.wrapped_data_key, a.updated_at,
       (SELECT e.email FROM emails e WHERE e.user_id = a.user_id AND e.is_active = 1) AS email
FROM auth a
WHERE a.user_id = ? AND a.type = 'password';

-- name: replace_credentials
-- Only the credentials the work read (?5, ?6): a password change, recovery, re-hash or login
-- reset that raced another one changes nothing here, and changed() then refuses its batch.
-- The hash's salt is new at every change, so it tells two changes in one millisecond apart.
UPDATE auth SET password_hash = ?1, wrapped_data_key = ?2, updated_at = ?3
WHERE user_id = ?4 AND type = 'password' AND password_hash = ?5 AND updated_at = ?6;

-- name: credentials_unchanged
-- A guard's condition: the credentials a sign-in checked the password against still stand.
SELECT EXISTS (SELECT 1 FROM auth
               WHERE user_id = ?1 AND type = 'password' AND password_hash = ?2 AND updated_at = ?3);

-- name: delete_user_sessions
DELETE FROM sessions WHERE user_id = ?;

-- name: list_user_sessions
SELECT id, created_at, last_seen_at
FROM sessions
WHERE user_id = ?
ORDER BY last_seen_at DESC;

-- name: user_session
SELECT id FROM sessions WHERE id = ? AND user_id = ?;

-- name: delete_user_session
DELETE FROM sessions WHERE id = ? AND user_id = ?;

-- name: delete_user_skill_tags
-- exercise_skills has no foreign key to users (its parent is a response or a tool instance),
-- so account deletion removes the user's tags explicitly.
DELETE FROM exercise_skills
WHERE exercise_instance_id IN (SELECT id FROM exercise_responses WHERE user_id = ?1)
   OR exercise_instance_id IN (SELECT id FROM tool_instances WHERE user_id = ?1);

-- name: delete_user
DELETE FROM users WHERE id = ?;

-- name: user_has_answers
SELECT EXISTS (SELECT 1 FROM exercise_responses WHERE user_id = ?1)
    OR EXISTS (SELECT 1 FROM tool_instances WHERE user_id = ?1)
    OR EXISTS (SELECT 1 FROM user_competency_scores WHERE user_id = ?1);

-- name: user_has_no_answers
-- A guard's condition: the anonymous workbook a sign-in read as empty is still empty.
SELECT NOT EXISTS (SELECT 1 FROM exercise_responses WHERE user_id = ?1)
   AND NOT EXISTS (SELECT 1 FROM tool_instances WHERE user_id = ?1)
   AND NOT EXISTS (SELECT 1 FROM user_competency_scores WHERE user_id = ?1);

-- name: count_idle_anonymous_users
-- Anonymous users created before the cutoff none of whose sessions was seen since.
SELECT count(*)
FROM users u
WHERE u.is_anonymous = 1
  AND u.created_at < ?1
  AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.last_seen_at >= ?1);

-- name: delete_idle_anonymous_tags
-- The tags of the next ?2 idle anonymous users (the same users, in the same order, as
-- delete_idle_anonymous_users right after it in one batch; no foreign key reaches the tags).
DELETE FROM exercise_skills
WHERE exercise_instance_id IN (
    SELECT r.id FROM exercise_responses r
    WHERE r.user_id IN (SELECT u.id FROM users u
                        WHERE u.is_anonymous = 1 AND u.created_at < ?1
                          AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.last_seen_at >= ?1)
                        ORDER BY u.id LIMIT ?2)
    UNION ALL
    SELECT t.id FROM tool_instances t
    WHERE t.user_id IN (SELECT u.id FROM users u
                        WHERE u.is_anonymous = 1 AND u.created_at < ?1
                          AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.last_seen_at >= ?1)
                        ORDER BY u.id LIMIT ?2));

-- name: delete_idle_anonymous_users
-- The next ?2 idle anonymous users, decided inside the batch: one seen or claimed since the
-- operator's count is kept. Everything else of theirs cascades from the user row.
DELETE FROM users
WHERE id IN (SELECT u.id FROM users u
             WHERE u.is_anonymous = 1 AND u.created_at < ?1
               AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.last_seen_at >= ?1)
             ORDER BY u.id LIMIT ?2);

-- name: responses_of_email
SELECT r.id
FROM exercise_responses r
JOIN emails e ON e.user_id = r.user_id
WHERE e.email = ? AND e.is_active = 1;

-- name: erase_responses
-- Every answer in one statement: ?1 is a JSON array of [id, sealed erased marker].
-- responded_at stays: the answer keeps its place and its history, only its content is gone.
UPDATE exercise_responses
SET response_json = (SELECT json_extract(j.value, '$[1]') FROM json_each(?1) j
                     WHERE json_extract(j.value, '$[0]') = exercise_responses.id)
WHERE user_id = ?2 AND id IN (SELECT json_extract(value, '$[0]') FROM json_each(?1));

-- name: answers_all_known
-- A guard's condition: every answer of the user is one the work read (?2, a JSON array of
-- ids): an answer saved meanwhile would stay sealed under a key nobody holds any more.
SELECT NOT EXISTS (SELECT 1 FROM exercise_responses
                   WHERE user_id = ?1 AND id NOT IN (SELECT value FROM json_each(?2)));

-- name: delete_tool_skill_tags
DELETE FROM exercise_skills
WHERE exercise_instance_id IN (SELECT id FROM tool_instances WHERE user_id = ?);

-- name: erase_tool_instances
DELETE FROM tool_instances WHERE user_id = ?;
