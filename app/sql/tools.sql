-- Tools (spec §3.2 tool_instances, §5.5 tool_types, §12 unlocks): the catalogue with each
-- reader's unlocks and counts, and the reader's own tool instances.
--
-- Unlocks match answers to places by (part_id, module_id, exercise_id), like the workbook's
-- `tool_unlocked` (app/sql/workbook.sql explains why: a new content version must not lock a
-- tool again). Every statement that reads or changes an entry names its reader, and the
-- writes guard themselves (docs/engines.md): a create counts the reader's entries inside the
-- INSERT, an edit changes only the row it read. Tags go through skill_tags.sql's owner-scoped
-- `delete_own_tags` / `insert_own_tags` / `tags_of_own`.

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

-- name: tool_for_reader
-- Tool ?2 as reader ?1 meets it when creating an entry, in one row: whether it is active,
-- whether they unlocked it (spec §12 "Check if tool is unlocked for user", by place) and how
-- many entries of it they have. No row for an unknown tool.
SELECT tt.is_active,
       EXISTS (
         SELECT 1
         FROM exercise_responses er
         JOIN exercise_sequence es
           ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id
         WHERE er.user_id = ?1
           AND es.unlocks_tool = tt.id
       ) AS unlocked,
       (SELECT count(*) FROM tool_instances ti WHERE ti.user_id = ?1 AND ti.tool_type = tt.id) AS instance_count
FROM tool_types tt
WHERE tt.id = ?2;

-- name: tool_instances_of_type
-- Newest first: the most recently created on top (rowid breaks ties of equal timestamps).
SELECT id, tool_type, origin, content_json, content_hash, created_at, updated_at
FROM tool_instances
WHERE user_id = ? AND tool_type = ?
ORDER BY created_at DESC, rowid DESC;

-- name: tool_tags_of_type
-- The skills tagged on every entry of tool ?2 of reader ?1, in one statement (not one per entry).
SELECT t.exercise_instance_id, t.skill_id
FROM tool_instances ti
JOIN exercise_skills t ON t.exercise_instance_id = ti.id
WHERE ti.user_id = ?1 AND ti.tool_type = ?2
ORDER BY t.created_at, t.skill_id;

-- name: tool_instance_of_user
SELECT id, tool_type, origin, content_json, content_hash, created_at, updated_at
FROM tool_instances
WHERE id = ? AND user_id = ?;

-- name: tool_instance_head
-- Entry ?1 of reader ?2 without its content: what an edit or a delete decides on.
SELECT id, tool_type, origin, created_at, updated_at
FROM tool_instances
WHERE id = ?1 AND user_id = ?2;

-- name: tool_instance_to_edit
-- Entry ?1 of reader ?2 with its stored content: an edit keeps the fields an import kept
-- that the tool's shape does not know (tool_shapes.with_kept).
SELECT id, tool_type, origin, content_json, created_at, updated_at
FROM tool_instances
WHERE id = ?1 AND user_id = ?2;

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

-- name: insert_tool_instance
-- A new entry (?1 id, ?2 reader, ?3 tool, ?4 origin, ?5 sealed content, ?6 content hash,
-- ?7 creation time), written only while the reader has fewer than ?8 entries of that tool:
-- the limit holds whatever was created since the count was read (0 rows changed otherwise).
INSERT INTO tool_instances (id, user_id, tool_type, origin, content_json, content_hash, created_at, updated_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7
WHERE (SELECT count(*) FROM tool_instances WHERE user_id = ?2 AND tool_type = ?3) < ?8;

-- name: update_tool_instance
-- An edit of entry ?4 of reader ?5 (?1 sealed content, ?2 content hash, ?3 time), only while
-- it is the row the edit read (updated_at ?6): 0 rows changed when it was edited or deleted
-- meanwhile. tool_type, origin and created_at never change.
UPDATE tool_instances
SET content_json = ?1, content_hash = ?2, updated_at = ?3
WHERE id = ?4 AND user_id = ?5 AND updated_at = ?6;

-- name: delete_tool_instance
DELETE FROM tool_instances WHERE id = ? AND user_id = ?;
