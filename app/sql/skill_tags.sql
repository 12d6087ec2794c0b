-- Skills tagged to a response or a tool instance (spec §3.4, exercise_skills).

-- name: usable_skills
-- Of the given ids (a JSON array), the skills this user may tag: the master list, approved
-- custom skills, and their own custom skills.
SELECT s.id
FROM skills s
WHERE s.id IN (SELECT value FROM json_each(?1))
  AND (s.is_custom = 0 OR s.review_status = 'approved' OR s.created_by = ?2);

-- name: delete_own_tags
-- The tags of answer or tool entry ?1, only when that row is reader ?2's.
DELETE FROM exercise_skills
WHERE exercise_instance_id = ?1
  AND (EXISTS (SELECT 1 FROM exercise_responses WHERE id = ?1 AND user_id = ?2)
       OR EXISTS (SELECT 1 FROM tool_instances WHERE id = ?1 AND user_id = ?2));

-- name: insert_own_tags
-- Tags for answer or tool entry ?1 from ?2, a JSON array of [tag id, skill id] pairs, only
-- when that row is reader ?4's.
INSERT INTO exercise_skills (id, exercise_instance_id, skill_id, created_at)
SELECT json_extract(t.value, '$[0]'), ?1, json_extract(t.value, '$[1]'), ?3
FROM json_each(?2) AS t
WHERE EXISTS (SELECT 1 FROM exercise_responses WHERE id = ?1 AND user_id = ?4)
   OR EXISTS (SELECT 1 FROM tool_instances WHERE id = ?1 AND user_id = ?4);

-- name: tags_of_own
-- The skills tagged on answer or tool entry ?1 of reader ?2.
SELECT t.skill_id
FROM exercise_skills t
WHERE t.exercise_instance_id = ?1
  AND (EXISTS (SELECT 1 FROM exercise_responses WHERE id = ?1 AND user_id = ?2)
       OR EXISTS (SELECT 1 FROM tool_instances WHERE id = ?1 AND user_id = ?2))
ORDER BY t.created_at, t.skill_id;

-- name: delete_own_tags_many
-- The tags of the answers and tool entries whose ids are in ?1 (a JSON array), only for the
-- rows that are reader ?2's.
DELETE FROM exercise_skills
WHERE exercise_instance_id IN (SELECT value FROM json_each(?1))
  AND (exercise_instance_id IN (SELECT id FROM exercise_responses WHERE user_id = ?2)
       OR exercise_instance_id IN (SELECT id FROM tool_instances WHERE user_id = ?2));

-- name: insert_own_tags_many
-- Tags from ?1, a JSON array of [tag id, answer or tool entry id, skill id], each only when
-- that row is reader ?3's.
INSERT INTO exercise_skills (id, exercise_instance_id, skill_id, created_at)
SELECT t.tag_id, t.instance_id, t.skill_id, ?2
FROM (SELECT json_extract(value, '$[0]') AS tag_id, json_extract(value, '$[1]') AS instance_id,
             json_extract(value, '$[2]') AS skill_id
      FROM json_each(?1)) AS t
WHERE t.instance_id IN (SELECT id FROM exercise_responses WHERE user_id = ?3)
   OR t.instance_id IN (SELECT id FROM tool_instances WHERE user_id = ?3);
