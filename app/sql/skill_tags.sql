-- Skills tagged to a response or a tool instance (spec §3.4, exercise_skills).

-- name: usable_skills
-- Of the given ids (a JSON array), the skills this user may tag: the master list, approved
-- custom skills, and their own custom skills.
SELECT s.id
FROM skills s
WHERE s.id IN (SELECT value FROM json_each(?1))
  AND (s.is_custom = 0 OR s.review_status = 'approved' OR s.created_by = ?2);

-- name: delete_tags
DELETE FROM exercise_skills WHERE exercise_instance_id = ?;

-- name: insert_tag
INSERT INTO exercise_skills (id, exercise_instance_id, skill_id, created_at)
VALUES (?, ?, ?, ?);

-- name: tags_of
SELECT exercise_instance_id, skill_id
FROM exercise_skills
WHERE exercise_instance_id IN (SELECT value FROM json_each(?))
ORDER BY created_at, skill_id;
