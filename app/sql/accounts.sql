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
SELECT a.user_id, a.password_hash, a.wrapped_data_key
FROM emails e
JOIN auth a ON a.user_id = e.user_id
WHERE e.email = ? AND e.is_active = 1 AND a.type = 'password';

-- name: credentials_by_user
SELECT a.user_id, a.password_hash, a.wrapped_data_key
FROM auth a
WHERE a.user_id = ? AND a.type = 'password';

-- name: update_credentials
UPDATE auth SET password_hash = ?, wrapped_data_key = ?, updated_at = ?
WHERE user_id = ? AND type = 'password';

-- name: delete_user_sessions
DELETE FROM sessions WHERE user_id = ?;

-- name: list_user_sessions
SELECT id, created_at, last_seen_at
FROM sessions
WHERE user_id = ?
ORDER BY last_seen_at DESC;

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

-- name: idle_anonymous_users
-- Anonymous users none of whose sessions was seen since the cutoff.
SELECT u.id, u.created_at,
       (SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id) AS last_seen_at
FROM users u
WHERE u.is_anonymous = 1
  AND u.created_at < ?1
  AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.last_seen_at >= ?1);

-- name: user_by_email
SELECT e.user_id FROM emails e WHERE e.email = ?;

-- name: responses_of_user
SELECT id FROM exercise_responses WHERE user_id = ?;

-- name: erase_response
-- responded_at stays: the answer keeps its place and its history, only its content is gone.
UPDATE exercise_responses SET response_json = ? WHERE id = ? AND user_id = ?;

-- name: delete_tool_skill_tags
DELETE FROM exercise_skills
WHERE exercise_instance_id IN (SELECT id FROM tool_instances WHERE user_id = ?);

-- name: erase_tool_instances
DELETE FROM tool_instances WHERE user_id = ?;
