-- Export, import and merge (spec §9): a reader's whole workbook, read in one batch and merged
-- in one guarded write batch (app/domain/portability/, docs/portability.md).
--
-- Lists travel as one JSON parameter read with json_each(?), cut into chunks of at most
-- ~1.4 MB: a few statements however large the file (D1 counts statements per batch and caps a
-- statement at 100 bound parameters). Every write names the reader, so no row id a file
-- proposes can reach another reader's rows, and is followed by a `changed` guard where it
-- must touch an exact number of rows, so a decision made on stale reads never writes.

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

-- name: tool_rows_of_user
-- What a merge needs of the reader's tool entries: never their content (the keyed
-- content_hash decides whether an incoming entry is already there).
SELECT id, tool_type, origin, content_hash, created_at, updated_at
FROM tool_instances WHERE user_id = ?;

-- name: tags_of_user
-- The skills tagged on every answer and tool entry of reader ?1.
SELECT t.exercise_instance_id, t.skill_id
FROM exercise_skills t
WHERE t.exercise_instance_id IN (SELECT id FROM exercise_responses WHERE user_id = ?1)
   OR t.exercise_instance_id IN (SELECT id FROM tool_instances WHERE user_id = ?1)
ORDER BY t.created_at, t.skill_id;

-- name: custom_skills_of_user
SELECT id, name, category FROM skills WHERE is_custom = 1 AND created_by = ? ORDER BY name;

-- name: password_of_user
-- Re-entering the password before an export: the reader's credentials, read with the export.
SELECT password_hash, wrapped_data_key FROM auth WHERE user_id = ? AND type = 'password';

-- name: skills_for_matching
-- What a custom skill of an import may be the same as, and what a reader may tag: the shared
-- list and the reader's own (skill_tags.sql `usable_skills` is the same rule).
SELECT id, name, category, is_custom, review_status, coalesce(created_by = ?1, 0) AS mine
FROM skills
WHERE is_custom = 0 OR review_status = 'approved' OR created_by = ?1;

-- name: places_all
SELECT full_exercise_id, part_id, module_id, exercise_id, version, is_required FROM exercise_sequence;

-- name: versions_here
-- Every exercise id that exists here: a current place, or a version some content row names.
SELECT full_exercise_id FROM exercise_sequence
UNION
SELECT full_exercise_id FROM exercise_content;

-- name: known_competencies
SELECT id FROM competencies;

-- name: tool_types_here
SELECT id, singular_name FROM tool_types WHERE is_active = 1;

-- name: known_personality_types
SELECT code FROM personality_types;

-- name: row_ids_taken
-- Of the ids in ?1, those any reader's answer or tool entry already has: exercise_skills
-- points at both tables with one id, so an id is free only when neither holds it (nor a
-- stray tag row names it).
SELECT value FROM json_each(?1)
WHERE value IN (SELECT id FROM exercise_responses)
   OR value IN (SELECT id FROM tool_instances)
   OR value IN (SELECT exercise_instance_id FROM exercise_skills);

-- name: skill_ids_taken
SELECT id FROM skills WHERE id IN (SELECT value FROM json_each(?1));

-- name: workbook_fingerprint
-- Everything of reader ?1 a merge of their workbook reads, in one value: it changes when any
-- of it does (a new, edited or deleted answer, tool entry, score, tag, setting or skill).
SELECT (SELECT count(*) || '/' || coalesce(max(responded_at), '') || '/' || total(length(response_json))
          FROM exercise_responses WHERE user_id = ?1)
    || '|' || (SELECT count(*) || '/' || coalesce(max(updated_at), '') || '/' || total(length(content_json))
                 FROM tool_instances WHERE user_id = ?1)
    || '|' || (SELECT count(*) || '/' || coalesce(max(assessed_at), '') || '/' || total(score)
                 FROM user_competency_scores WHERE user_id = ?1)
    || '|' || (SELECT count(*) FROM exercise_skills
                WHERE exercise_instance_id IN (SELECT id FROM exercise_responses WHERE user_id = ?1)
                   OR exercise_instance_id IN (SELECT id FROM tool_instances WHERE user_id = ?1))
    || '|' || (SELECT count(*) FROM skills WHERE created_by = ?1)
    || '|' || coalesce((SELECT updated_at FROM user_settings WHERE user_id = ?1), '')
    || '|' || (SELECT count(*) || '/' || coalesce(max(last_modified_at), '') FROM user_modules WHERE user_id = ?1);

-- name: import_insert_skills
-- New custom skills of reader ?1 from ?3, a JSON array of [id, name, category]: only while
-- the id is free and the reader sees no skill of that name (ASCII case ignored).
INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at)
SELECT s.id, s.name, s.category, 1, ?1, 'pending', ?2
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS name,
             json_extract(value, '$[2]') AS category
      FROM json_each(?3)) AS s
WHERE NOT EXISTS (SELECT 1 FROM skills WHERE id = s.id)
  AND NOT EXISTS (SELECT 1 FROM skills k
                  WHERE (k.is_custom = 0 OR k.review_status = 'approved' OR k.created_by = ?1)
                    AND lower(k.name) = lower(s.name));

-- name: import_update_settings
-- The reader's settings, only while the row is the one the merge read (updated_at ?7).
UPDATE user_settings
SET background_color = ?1, text_color = ?2, font = ?3, personality_type = ?4, updated_at = ?5
WHERE user_id = ?6 AND updated_at = ?7;

-- name: import_insert_settings
-- A reader whose settings row is missing (every account gets one at creation) gets the file's.
INSERT INTO user_settings (user_id, background_color, text_color, font, personality_type, created_at, updated_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6
WHERE NOT EXISTS (SELECT 1 FROM user_settings WHERE user_id = ?1);

-- name: import_insert_scores
-- ?2: a JSON array of [id, competency_id, score, assessed_at], for competencies reader ?1
-- has no score for.
INSERT INTO user_competency_scores (id, user_id, competency_id, score, assessed_at)
SELECT s.id, ?1, s.competency_id, s.score, s.assessed_at
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS competency_id,
             json_extract(value, '$[2]') AS score, json_extract(value, '$[3]') AS assessed_at
      FROM json_each(?2)) AS s
WHERE NOT EXISTS (SELECT 1 FROM user_competency_scores
                  WHERE user_id = ?1 AND competency_id = s.competency_id);

-- name: import_update_scores
-- ?2: a JSON array of [competency_id, score, assessed_at, the assessed_at the merge read].
UPDATE user_competency_scores
SET score = s.score, assessed_at = s.assessed_at
FROM (SELECT json_extract(value, '$[0]') AS competency_id, json_extract(value, '$[1]') AS score,
             json_extract(value, '$[2]') AS assessed_at, json_extract(value, '$[3]') AS was
      FROM json_each(?2)) AS s
WHERE user_competency_scores.user_id = ?1
  AND user_competency_scores.competency_id = s.competency_id
  AND user_competency_scores.assessed_at = s.was;

-- name: answers_insertable
-- ?2: a JSON array of [id, part, module, exercise] of the answers about to be inserted for
-- reader ?1: true while reader ?1 has no answer at any of those places and no answer or tool
-- entry of anyone has any of those ids. The guard in front of `import_insert_answers`, so
-- that the insert never reads its own table (an INSERT … SELECT that does makes SQLite stage
-- every row in a temporary table first, all of it while the writer is held).
SELECT NOT EXISTS (
  SELECT 1 FROM json_each(?2) AS j
  WHERE EXISTS (SELECT 1 FROM exercise_responses er
                WHERE er.user_id = ?1 AND er.part_id = json_extract(j.value, '$[1]')
                  AND er.module_id = json_extract(j.value, '$[2]')
                  AND er.exercise_id = json_extract(j.value, '$[3]'))
     OR EXISTS (SELECT 1 FROM exercise_responses WHERE id = json_extract(j.value, '$[0]'))
     OR EXISTS (SELECT 1 FROM tool_instances WHERE id = json_extract(j.value, '$[0]')));

-- name: import_insert_answers
-- ?2: a JSON array of [id, part, module, exercise, version, full_exercise_id, sealed answer,
-- responded_at]: written after `answers_insertable` held for the same rows (each place empty,
-- each id free in both tables).
INSERT INTO exercise_responses
  (id, user_id, part_id, module_id, exercise_id, version, full_exercise_id, response_json, responded_at)
SELECT json_extract(value, '$[0]'), ?1, json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       json_extract(value, '$[6]'), json_extract(value, '$[7]')
FROM json_each(?2);

-- name: import_update_answers
-- ?2: a JSON array of [id, version, full_exercise_id, sealed answer, responded_at, the
-- responded_at the merge read]: reader ?1's answers, only those unchanged since the read.
UPDATE exercise_responses
SET version = a.version, full_exercise_id = a.full_exercise_id, response_json = a.response_json,
    responded_at = a.responded_at
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS version,
             json_extract(value, '$[2]') AS full_exercise_id, json_extract(value, '$[3]') AS response_json,
             json_extract(value, '$[4]') AS responded_at, json_extract(value, '$[5]') AS was
      FROM json_each(?2)) AS a
WHERE exercise_responses.id = a.id AND exercise_responses.user_id = ?1
  AND exercise_responses.responded_at = a.was;

-- name: tools_insertable
-- ?2: a JSON array of [id, tool_type, content_hash] of the entries about to be inserted for
-- reader ?1: true while no answer or tool entry of anyone has any of those ids and reader ?1
-- has no entry of that tool with the same content (keyed hash). The guard in front of
-- `import_insert_tools` (why a separate guard: `answers_insertable`).
SELECT NOT EXISTS (
  SELECT 1 FROM json_each(?2) AS j
  WHERE EXISTS (SELECT 1 FROM tool_instances WHERE id = json_extract(j.value, '$[0]'))
     OR EXISTS (SELECT 1 FROM exercise_responses WHERE id = json_extract(j.value, '$[0]'))
     OR EXISTS (SELECT 1 FROM tool_instances  -- by content_hash's index (the unary + keep the
                                              -- planner off user and type: thousands of rows)
                WHERE content_hash = json_extract(j.value, '$[2]') AND +user_id = ?1
                  AND +tool_type = json_extract(j.value, '$[1]')));

-- name: import_insert_tools
-- ?2: a JSON array of [id, tool_type, origin, sealed content, content_hash, created_at,
-- updated_at]: written after `tools_insertable` held for the same rows.
INSERT INTO tool_instances (id, user_id, tool_type, origin, content_json, content_hash, created_at, updated_at)
SELECT json_extract(value, '$[0]'), ?1, json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       json_extract(value, '$[6]')
FROM json_each(?2);

-- name: import_update_tools
-- ?2: a JSON array of [id, sealed content, content_hash, updated_at, the updated_at the merge
-- read]: reader ?1's entries, only those unchanged since the read.
UPDATE tool_instances
SET content_json = t.content_json, content_hash = t.content_hash, updated_at = t.updated_at
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS content_json,
             json_extract(value, '$[2]') AS content_hash, json_extract(value, '$[3]') AS updated_at,
             json_extract(value, '$[4]') AS was
      FROM json_each(?2)) AS t
WHERE tool_instances.id = t.id AND tool_instances.user_id = ?1 AND tool_instances.updated_at = t.was;

-- name: import_modules
-- Module rows of reader ?1 from ?2, a JSON array of [part, module, first_completed_at or
-- null, last_modified_at or null], decided here, after the batch's answers (spec §4.2, like
-- workbook.sql `complete_module`): a row is written only when the module has an answer and
-- every required exercise of it has one now. A new row starts at the file's first completion,
-- else at the module's latest answer; an existing row keeps the earliest first completion and
-- the latest modification.
INSERT INTO user_modules (user_id, module_id, first_completed_at, last_modified_at)
SELECT ?1, m.part_id || '.' || m.module_id, coalesce(m.first_at, m.latest),
       max(coalesce(m.last_at, m.latest, m.first_at), coalesce(m.first_at, m.latest))
FROM (SELECT j.part_id, j.module_id, j.first_at, j.last_at,
             (SELECT max(er.responded_at) FROM exercise_responses er
               WHERE er.user_id = ?1 AND er.part_id = j.part_id AND er.module_id = j.module_id) AS latest
      FROM (SELECT json_extract(value, '$[0]') AS part_id, json_extract(value, '$[1]') AS module_id,
                   json_extract(value, '$[2]') AS first_at, json_extract(value, '$[3]') AS last_at
            FROM json_each(?2)) AS j) AS m
WHERE m.latest IS NOT NULL
  AND EXISTS (SELECT 1 FROM exercise_sequence es WHERE es.part_id = m.part_id AND es.module_id = m.module_id)
  AND NOT EXISTS (
    SELECT 1
    FROM exercise_sequence es
    WHERE es.part_id = m.part_id AND es.module_id = m.module_id AND es.is_required = 1
      -- an answer at the current version (one index seek) is an answer at the place
      AND NOT EXISTS (SELECT 1 FROM exercise_responses er
                      WHERE er.user_id = ?1 AND er.full_exercise_id = es.full_exercise_id)
      AND NOT EXISTS (
        SELECT 1 FROM exercise_responses er
        WHERE er.user_id = ?1 AND er.part_id = es.part_id AND er.module_id = es.module_id
          AND er.exercise_id = es.exercise_id))
ON CONFLICT (user_id, module_id) DO UPDATE
SET first_completed_at = min(first_completed_at, excluded.first_completed_at),
    last_modified_at = max(last_modified_at, excluded.last_modified_at)
WHERE excluded.first_completed_at < first_completed_at OR excluded.last_modified_at > last_modified_at;

-- name: tool_limit_holds
-- No tool that received entries holds more than ?3 of reader ?1's entries (?2: those tools).
SELECT NOT EXISTS (
  SELECT 1 FROM tool_instances
  WHERE user_id = ?1 AND tool_type IN (SELECT value FROM json_each(?2))
  GROUP BY tool_type
  HAVING count(*) > ?3);

-- name: custom_skill_limit_holds
SELECT (SELECT count(*) FROM skills WHERE is_custom = 1 AND created_by = ?1) <= ?2;
