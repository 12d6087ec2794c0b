-- The workbook: content, progression (spec §12) and module completion (spec §4.2).
--
-- One deliberate change to the spec's progression queries: answers are matched to places of
-- the sequence by (part_id, module_id, exercise_id) instead of full_exercise_id. Publishing a
-- new version of an exercise changes its sequence row's full_exercise_id while the readers'
-- answers keep naming the version they answered (spec §14.2); joining by place keeps their
-- position. Where the versions agree, the two joins are the same (tests/test_workbook_api.py
-- runs the spec's literal queries next to these on every case the spec covers).
--
-- The spec's "next available exercise" subquery (COALESCE(MAX(sequence_order), 0) + 1 over the
-- reader's answers) is written out in next_exercise, exercise_blocks, exercise_sources and
-- workbook_state on purpose: each is one statement of a request's one read batch, a CTE does
-- not reach across statements, and the exact schema has no room for a view. Written out, each
-- query reads like the spec; tests/test_db_layer.py fails if the copies ever differ.

-- name: sequence_outline
-- Every place in order, with the first active block of its current version (the title's home).
SELECT es.full_exercise_id, es.part_id, es.module_id, es.exercise_id, es.version,
       es.sequence_order, es.unlocks_tool, es.is_required,
       (SELECT ec.content_text
          FROM exercise_content ec
         WHERE ec.is_active = 1 AND ec.full_exercise_id = es.full_exercise_id
         ORDER BY ec.display_order
         LIMIT 1) AS first_block
FROM exercise_sequence es
ORDER BY es.sequence_order;

-- name: content_fingerprint
-- What the outline's skeleton is built from, in one row: it changes whenever a re-seed changes
-- the sequence (places, versions, requirements, unlocks) or any content row (inserted,
-- edited or deactivated rows all move updated_at).
SELECT (SELECT group_concat(full_exercise_id || ':' || sequence_order || ':' || is_required || ':'
                            || coalesce(unlocks_tool, ''), ',')
          FROM exercise_sequence) AS sequence,
       (SELECT count(*) FROM exercise_content) AS content_rows,
       (SELECT total(is_active) FROM exercise_content) AS active_rows,
       (SELECT max(updated_at) FROM exercise_content) AS last_change;

-- name: openings
-- Part and module openings: the blocks of "exercise 0" (docs/content.md).
SELECT part_id, module_id, content_text
FROM exercise_content
WHERE is_active = 1 AND exercise_id = '0' AND display_order = 1;

-- name: answered_orders
-- spec §12 "current position", by place: every sequence position this user has answered.
SELECT es.sequence_order
FROM exercise_responses er
JOIN exercise_sequence es
  ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id
WHERE er.user_id = ?;

-- name: next_exercise
-- spec §12 "next available exercise", by place.
SELECT es.*
FROM exercise_sequence es
WHERE es.sequence_order = (
  SELECT COALESCE(MAX(es2.sequence_order), 0) + 1
  FROM exercise_responses er
  JOIN exercise_sequence es2
    ON es2.part_id = er.part_id AND es2.module_id = er.module_id AND es2.exercise_id = er.exercise_id
  WHERE er.user_id = ?
);

-- name: place_state
-- One place of the sequence by its current full id (?1), with what this reader (?2) has done
-- there, in one row: their answer's id, whether the place is open to them (spec §12: the
-- first place, or the one after a place they answered), whether the tool it unlocks was
-- already theirs, and whether its module was already complete.
SELECT es.*,
       (SELECT er.id FROM exercise_responses er
         WHERE er.user_id = ?2 AND er.part_id = es.part_id AND er.module_id = es.module_id
           AND er.exercise_id = es.exercise_id) AS response_id,
       (es.sequence_order = 1 OR EXISTS (
          SELECT 1
          FROM exercise_sequence prev
          JOIN exercise_responses er
            ON er.part_id = prev.part_id AND er.module_id = prev.module_id AND er.exercise_id = prev.exercise_id
          WHERE prev.sequence_order = es.sequence_order - 1 AND er.user_id = ?2)) AS is_open,
       (es.unlocks_tool IS NOT NULL AND EXISTS (
          SELECT 1
          FROM exercise_responses er
          JOIN exercise_sequence unlocking
            ON unlocking.part_id = er.part_id AND unlocking.module_id = er.module_id
           AND unlocking.exercise_id = er.exercise_id
          WHERE er.user_id = ?2 AND unlocking.unlocks_tool = es.unlocks_tool)) AS tool_was_unlocked
FROM exercise_sequence es
WHERE es.full_exercise_id = ?1;

-- name: exercise_blocks
-- The active blocks of exercise ?1, or, when ?1 is NULL, of reader ?2's next exercise
-- (spec §12 "next available exercise", by place).
SELECT content_type, content_text, display_order, variant_group
FROM exercise_content
WHERE is_active = 1
  AND full_exercise_id = coalesce(?1, (
        SELECT es.full_exercise_id
        FROM exercise_sequence es
        WHERE es.sequence_order = (
          SELECT COALESCE(MAX(es2.sequence_order), 0) + 1
          FROM exercise_responses er
          JOIN exercise_sequence es2
            ON es2.part_id = er.part_id AND es2.module_id = er.module_id AND es2.exercise_id = er.exercise_id
          WHERE er.user_id = ?2)))
ORDER BY display_order;

-- name: exercise_sources
-- The sources of exercise ?1, or, when ?1 is NULL, of reader ?2's next exercise.
SELECT cs.reference_id, cs.usage_type, cs.notes, r.citation_number, r.short_citation, r.full_citation
FROM content_sources cs
JOIN "references" r ON r.id = cs.reference_id
WHERE cs.exercise_id = coalesce(?1, (
        SELECT es.full_exercise_id
        FROM exercise_sequence es
        WHERE es.sequence_order = (
          SELECT COALESCE(MAX(es2.sequence_order), 0) + 1
          FROM exercise_responses er
          JOIN exercise_sequence es2
            ON es2.part_id = er.part_id AND es2.module_id = er.module_id AND es2.exercise_id = er.exercise_id
          WHERE er.user_id = ?2)))
ORDER BY r.citation_number;

-- name: response_at_exercise
-- Reader ?2's answer at the place of exercise ?1 (whichever version they answered).
SELECT er.id, er.full_exercise_id, er.version, er.response_json, er.responded_at
FROM exercise_sequence es
JOIN exercise_responses er
  ON er.part_id = es.part_id AND er.module_id = es.module_id AND er.exercise_id = es.exercise_id
WHERE es.full_exercise_id = ?1 AND er.user_id = ?2;

-- name: tags_at_exercise
-- The skills reader ?2 tagged on their answer at the place of exercise ?1.
SELECT t.skill_id
FROM exercise_sequence es
JOIN exercise_responses er
  ON er.part_id = es.part_id AND er.module_id = es.module_id AND er.exercise_id = es.exercise_id
JOIN exercise_skills t ON t.exercise_instance_id = er.id
WHERE es.full_exercise_id = ?1 AND er.user_id = ?2
ORDER BY t.created_at, t.skill_id;

-- name: insert_first_response
-- A reader's first answer at a place: written only while they have none there (one current
-- answer per reader and place; the schema has no unique index to say it).
INSERT INTO exercise_responses
  (id, user_id, part_id, module_id, exercise_id, version, full_exercise_id, response_json, responded_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
WHERE NOT EXISTS (
  SELECT 1 FROM exercise_responses
  WHERE user_id = ?2 AND part_id = ?3 AND module_id = ?4 AND exercise_id = ?5
);

-- name: update_response
UPDATE exercise_responses
SET version = ?, full_exercise_id = ?, response_json = ?, responded_at = ?
WHERE id = ? AND user_id = ?;

-- name: tool_unlocked
-- spec §12 "Check if tool is unlocked for user", by place.
SELECT EXISTS (
  SELECT 1
  FROM exercise_responses er
  JOIN exercise_sequence es
    ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id
  WHERE er.user_id = ?
    AND es.unlocks_tool = ?
) AS is_unlocked;

-- name: touch_module
-- A later answer in a completed module (spec §4.2 last_modified_at).
UPDATE user_modules SET last_modified_at = ?1 WHERE user_id = ?2 AND module_id = ?3 || '.' || ?4;

-- name: complete_module
-- spec §4.2: the module's row appears when every is_required exercise in it has an answer;
-- written at most once (first_completed_at never moves).
INSERT INTO user_modules (user_id, module_id, first_completed_at, last_modified_at)
SELECT ?2, ?3 || '.' || ?4, ?1, ?1
WHERE NOT EXISTS (
    SELECT 1 FROM user_modules WHERE user_id = ?2 AND module_id = ?3 || '.' || ?4
  )
  AND NOT EXISTS (
    SELECT 1
    FROM exercise_sequence es
    WHERE es.part_id = ?3 AND es.module_id = ?4 AND es.is_required = 1
      AND NOT EXISTS (
        SELECT 1 FROM exercise_responses er
        WHERE er.user_id = ?2 AND er.part_id = es.part_id AND er.module_id = es.module_id
          AND er.exercise_id = es.exercise_id
      )
  );

-- name: update_workbook_complete
-- workbook_complete follows every required exercise of the workbook having an answer.
UPDATE users
SET workbook_complete = state.done, updated_at = ?1
FROM (
  SELECT NOT EXISTS (
    SELECT 1
    FROM exercise_sequence es
    WHERE es.is_required = 1
      AND NOT EXISTS (
        SELECT 1 FROM exercise_responses er
        WHERE er.user_id = ?2 AND er.part_id = es.part_id AND er.module_id = es.module_id
          AND er.exercise_id = es.exercise_id
      )
  ) AS done
) AS state
WHERE users.id = ?2 AND users.workbook_complete <> state.done;

-- name: workbook_state
-- After an answer: whether the workbook is complete, and the reader's next exercise.
SELECT u.workbook_complete,
       (SELECT es.full_exercise_id
        FROM exercise_sequence es
        WHERE es.sequence_order = (
          SELECT COALESCE(MAX(es2.sequence_order), 0) + 1
          FROM exercise_responses er
          JOIN exercise_sequence es2
            ON es2.part_id = er.part_id AND es2.module_id = er.module_id AND es2.exercise_id = er.exercise_id
          WHERE er.user_id = u.id)) AS next_exercise_id
FROM users u
WHERE u.id = ?;

-- name: user_modules
SELECT module_id, first_completed_at, last_modified_at
FROM user_modules
WHERE user_id = ?
ORDER BY module_id;
