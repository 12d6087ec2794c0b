-- Seeding (app/domain/seeding): the rows a seed compares against, and the statements around
-- its bulk upserts (app/db/upsert.py builds those from each table's spec).
--
-- Every write statement here decides inside SQL and is safe to run again: the same text goes
-- into the write batch (each followed by a guard on the number of rows it changed) and, with
-- its values written in, into `dreamtree seed --emit-sql` for `wrangler d1 execute --file`.
-- Lists travel as JSON arrays (json_each): [["id", n], ...] pairs or ["id", ...] keys.

-- name: seed_rows_personality_types
SELECT * FROM personality_types;

-- name: seed_rows_competencies
SELECT * FROM competencies;

-- name: seed_rows_competency_levels
SELECT * FROM competency_levels;

-- name: seed_rows_skills
-- The master list only: readers' custom skills are theirs, never the seed's.
SELECT * FROM skills WHERE is_custom = 0;

-- name: seed_rows_tool_types
SELECT * FROM tool_types;

-- name: seed_rows_references
SELECT * FROM "references";

-- name: seed_rows_exercise_content
SELECT * FROM exercise_content;

-- name: seed_rows_exercise_sequence
SELECT * FROM exercise_sequence;

-- name: seed_rows_content_sources
SELECT * FROM content_sources;

-- name: is_unseeded
-- A database with no workbook yet: no place in the sequence and no tool.
SELECT NOT EXISTS (SELECT 1 FROM exercise_sequence) AND NOT EXISTS (SELECT 1 FROM tool_types);

-- name: park_references
-- citation_number is UNIQUE. Before the upsert, numbers that change (?1: [id, number] pairs of
-- the files) go out of the way (negative), and so do the numbers of references no longer in
-- the files that the new numbering 1..?2 needs. Numbers that stay are not touched.
UPDATE "references"
SET citation_number = -citation_number
WHERE citation_number > 0
  AND NOT EXISTS (SELECT 1 FROM json_each(?1) AS w
                  WHERE w.value ->> 0 = "references".id AND w.value ->> 1 = "references".citation_number)
  AND (citation_number <= ?2 OR id IN (SELECT w.value ->> 0 FROM json_each(?1) AS w));

-- name: number_kept_references
-- References dropped from the files keep their rows (old content may cite them); after the
-- upsert, the ones still parked get numbers after every number in use.
UPDATE "references"
SET citation_number = (SELECT max(abs(citation_number)) FROM "references") - citation_number
WHERE citation_number < 0;

-- name: deactivate_tool_types
-- Tools no longer in the files (?2: the ids in the files) are deactivated, never deleted.
UPDATE tool_types
SET is_active = 0, updated_at = ?1
WHERE is_active = 1 AND id NOT IN (SELECT value FROM json_each(?2));

-- name: deactivate_exercise_content
-- Content no longer in the files (an old version, a removed exercise) is deactivated, never
-- deleted: readers' answers keep pointing at the version they answered (spec §14.2).
UPDATE exercise_content
SET is_active = 0, updated_at = ?1
WHERE is_active = 1 AND id NOT IN (SELECT value FROM json_each(?2));

-- name: park_sequence
-- sequence_order is UNIQUE: places that move or leave (?1: [full id, order] pairs of the
-- files) go out of the way (negative) before the upsert; places that stay are not touched.
UPDATE exercise_sequence
SET sequence_order = -sequence_order
WHERE sequence_order > 0
  AND NOT EXISTS (SELECT 1 FROM json_each(?1) AS w
                  WHERE w.value ->> 0 = exercise_sequence.full_exercise_id
                    AND w.value ->> 1 = exercise_sequence.sequence_order);

-- name: delete_stale_sequence
-- Places no longer in the files (?1), and places now held by a newer version of their exercise.
DELETE FROM exercise_sequence
WHERE full_exercise_id NOT IN (SELECT value FROM json_each(?1));

-- name: delete_stale_sources
-- Sources of exercises in the sequence (?1) that the files no longer list (?2); the sources of
-- old versions stay with them.
DELETE FROM content_sources
WHERE exercise_id IN (SELECT value FROM json_each(?1))
  AND id NOT IN (SELECT value FROM json_each(?2));
