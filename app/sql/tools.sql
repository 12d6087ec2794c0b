-- Tools (spec §3.2 tool_instances, §5.5 tool_types, §12 unlocks): the catalogue with each
-- reader's unlocks and counts, and the reader's own tool instances.
--
-- Unlocks match answers to places by (part_id, module_id, exercise_id), like the workbook's
-- `tool_unlocked` (app/sql/workbook.sql explains why: a new content version must not lock a
-- tool again). Inserting and updating a row reuse `insert_tool_row` / `update_tool_row` of
-- app/sql/portability.sql; removing its skill tags reuses `delete_tags`.

-- name: tool_catalogue
-- Every active tool type with this reader's unlock flag and instance count, in one statement:
-- spec §12 "Check if tool is unlocked for user" for all tools at once (the set of tools named
-- by an answered place), ordered by where the workbook first unlocks each tool.
WITH unlocked AS (
  SELECT DISTINCT es.unlocks_tool AS tool_type
  FROM exercise_responses er
  JOIN exercise_sequence es
    ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id
  WHERE er.user_id = ?1
    AND es.unlocks_tool IS NOT NULL
),
counts AS (
  SELECT tool_type, count(*) AS instance_count
  FROM tool_instances
  WHERE user_id = ?1
  GROUP BY tool_type
),
unlock_points AS (
  SELECT unlocks_tool AS tool_type, min(sequence_order) AS unlock_order
  FROM exercise_sequence
  WHERE unlocks_tool IS NOT NULL
  GROUP BY unlocks_tool
)
SELECT tt.id, tt.singular_name, tt.plural_name, tt.icon_name, tt.has_reminder, tt.reminder_frequency,
       u.tool_type IS NOT NULL AS unlocked,
       COALESCE(c.instance_count, 0) AS instance_count
FROM tool_types tt
LEFT JOIN unlocked u ON u.tool_type = tt.id
LEFT JOIN counts c ON c.tool_type = tt.id
LEFT JOIN unlock_points p ON p.tool_type = tt.id
WHERE tt.is_active = 1
ORDER BY p.unlock_order IS NULL, p.unlock_order, tt.id;

-- name: tool_type_row
SELECT id, is_active FROM tool_types WHERE id = ?;

-- name: tool_instance_count
SELECT count(*) FROM tool_instances WHERE user_id = ? AND tool_type = ?;

-- name: tool_instances_of_type
-- Newest first: the most recently created on top (rowid breaks ties of equal timestamps).
SELECT id, tool_type, origin, content_json, content_hash, created_at, updated_at
FROM tool_instances
WHERE user_id = ? AND tool_type = ?
ORDER BY created_at DESC, rowid DESC;

-- name: tool_instance_of_user
SELECT id, tool_type, origin, content_json, content_hash, created_at, updated_at
FROM tool_instances
WHERE id = ? AND user_id = ?;

-- name: tool_origin_answered
-- An origin names an exercise this reader answered: at its place (?2 part, ?3 module,
-- ?4 exercise), under the version they answered or the place's current version (?5).
SELECT EXISTS (
  SELECT 1
  FROM exercise_responses er
  WHERE er.user_id = ?1 AND er.part_id = ?2 AND er.module_id = ?3 AND er.exercise_id = ?4
    AND (er.full_exercise_id = ?5 OR EXISTS (
      SELECT 1 FROM exercise_sequence es
      WHERE es.full_exercise_id = ?5
        AND es.part_id = ?2 AND es.module_id = ?3 AND es.exercise_id = ?4))
);

-- name: delete_tool_instance
DELETE FROM tool_instances WHERE id = ? AND user_id = ?;
