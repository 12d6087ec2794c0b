-- Export, import and merge (spec §9): a reader's whole workbook, read and written by user_id.

-- name: settings_of_user
SELECT background_color, text_color, font, personality_type, created_at, updated_at
FROM user_settings WHERE user_id = ?;

-- name: scores_of_user
SELECT id, competency_id, score, assessed_at
FROM user_competency_scores WHERE user_id = ?
ORDER BY competency_id;

-- name: modules_of_user
SELECT module_id, first_completed_at, last_modified_at
FROM user_modules WHERE user_id = ?;

-- name: answers_of_user
SELECT id, part_id, module_id, exercise_id, version, full_exercise_id, response_json, responded_at
FROM exercise_responses WHERE user_id = ?
ORDER BY part_id, module_id, exercise_id;

-- name: tools_of_user
SELECT id, tool_type, origin, content_json, content_hash, created_at, updated_at
FROM tool_instances WHERE user_id = ?
ORDER BY created_at, id;

-- name: custom_skills_of_user
SELECT id, name, category FROM skills WHERE is_custom = 1 AND created_by = ? ORDER BY name;

-- name: skills_for_matching
-- What a custom skill of an import may be the same as: the shared list and the reader's own.
SELECT id, name, category FROM skills
WHERE is_custom = 0 OR review_status = 'approved' OR created_by = ?;

-- name: insert_custom_skill
INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at)
VALUES (?, ?, ?, 1, ?, 'pending', ?);

-- name: id_taken_response
SELECT EXISTS (SELECT 1 FROM exercise_responses WHERE id = ?);

-- name: id_taken_tool
SELECT EXISTS (SELECT 1 FROM tool_instances WHERE id = ?);

-- name: id_taken_skill
SELECT EXISTS (SELECT 1 FROM skills WHERE id = ?);

-- name: places_all
SELECT full_exercise_id, part_id, module_id, exercise_id, version FROM exercise_sequence;

-- name: known_competencies
SELECT id FROM competencies;

-- name: known_tool_types
SELECT id FROM tool_types;

-- name: known_personality_types
SELECT code FROM personality_types;

-- name: upsert_score
INSERT INTO user_competency_scores (id, user_id, competency_id, score, assessed_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (user_id, competency_id) DO UPDATE SET score = excluded.score, assessed_at = excluded.assessed_at;

-- name: update_settings_all
UPDATE user_settings
SET background_color = ?, text_color = ?, font = ?, personality_type = ?, updated_at = ?
WHERE user_id = ?;

-- name: upsert_module
INSERT INTO user_modules (user_id, module_id, first_completed_at, last_modified_at)
VALUES (?, ?, ?, ?)
ON CONFLICT (user_id, module_id) DO UPDATE
SET first_completed_at = excluded.first_completed_at, last_modified_at = excluded.last_modified_at;

-- name: insert_tool_row
INSERT INTO tool_instances (id, user_id, tool_type, origin, content_json, content_hash, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: update_tool_row
UPDATE tool_instances
SET tool_type = ?, origin = ?, content_json = ?, content_hash = ?, created_at = ?, updated_at = ?
WHERE id = ? AND user_id = ?;

-- name: update_response_row
UPDATE exercise_responses
SET version = ?, full_exercise_id = ?, response_json = ?, responded_at = ?
WHERE id = ? AND user_id = ?;

-- name: required_modules_done
-- Modules of which every required exercise is answered by this user (spec §4.2).
SELECT es.part_id || '.' || es.module_id AS module_id
FROM exercise_sequence es
GROUP BY es.part_id, es.module_id
HAVING sum(CASE WHEN es.is_required = 1 AND NOT EXISTS (
    SELECT 1 FROM exercise_responses er
    WHERE er.user_id = ? AND er.part_id = es.part_id AND er.module_id = es.module_id
      AND er.exercise_id = es.exercise_id) THEN 1 ELSE 0 END) = 0;
