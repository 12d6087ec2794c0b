-- Skills (spec §5.4): the master list, readers' custom skills and their review.
-- Which skills a reader sees is one rule, the same as `usable_skills` (skill_tags.sql) for
-- tagging: the master list, approved custom skills, and the reader's own custom skills.
-- The name match is a substring match, so no index can serve it and these scan `skills`: the
-- service answers searches from an index in memory (app/domain/skill_index.py) and these two
-- are the rule it must match (tests/test_skill_index.py compares them; docs/skills.md).
-- instr(), not LIKE: D1 caps LIKE patterns at 50 bytes, and instr takes the reader's text
-- literally (no % or _ wildcards to escape).

-- name: search_skills
SELECT id, name, category, is_custom, review_status
FROM skills
WHERE (is_custom = 0 OR review_status = 'approved' OR created_by = ?1)
  AND instr(lower(name), lower(?2)) > 0
ORDER BY name COLLATE NOCASE, id
LIMIT ?3;

-- name: search_skills_in_category
SELECT id, name, category, is_custom, review_status
FROM skills
WHERE category = ?3
  AND (is_custom = 0 OR review_status = 'approved' OR created_by = ?1)
  AND instr(lower(name), lower(?2)) > 0
ORDER BY name COLLATE NOCASE, id
LIMIT ?4;

-- name: skills_marker
-- The state of `skills` the search index (app/domain/skill_index.py) was built from, read in
-- the same batch as every search: the newest rowid moves with every insert and every review
-- decision (`decide_pending_skills` moves a decided skill to a new, largest rowid), the row
-- count with every insert or delete. One B-tree descent and a walk of the smallest index's
-- pages (no row is read).
SELECT (SELECT count(*) FROM skills) AS row_count,
       (SELECT coalesce(max(rowid), 0) FROM skills) AS last_rowid;

-- name: skills_from_rowid
-- The rows from rowid ?1 on, oldest first, at most ?2: the row the index saw last (still
-- there when nothing was deleted or decided) and every row inserted or decided since. A search
-- by the rowid.
SELECT rowid AS row_number, id, name, category, is_custom, created_by, review_status
FROM skills
WHERE rowid >= ?1
ORDER BY rowid
LIMIT ?2;

-- name: skills_for_index
-- Every skill, for rebuilding the search index (one scan, only when the marker moved in a
-- way the fresh rows do not explain, and every few minutes).
SELECT rowid AS row_number, id, name, category, is_custom, created_by, review_status
FROM skills;

-- name: visible_skills
-- Everything the reader sees, with `mine` marking their own custom skills (for the cap).
SELECT id, name, category, is_custom, review_status, coalesce(created_by = ?1, 0) AS mine
FROM skills
WHERE is_custom = 0 OR review_status = 'approved' OR created_by = ?1;

-- name: insert_custom_skill_within_limit
-- Reader ?4's new custom skill, pending review: written only while they hold fewer than ?6
-- custom skills, so two adds at once can never pass the limit (the count finds their
-- skills through idx_skills_review, the custom ones).
INSERT INTO skills (id, name, category, is_custom, created_by, review_status, created_at)
SELECT ?1, ?2, ?3, 1, ?4, 'pending', ?5
WHERE (SELECT count(*) FROM skills WHERE is_custom = 1 AND created_by = ?4) < ?6;

-- name: sees_only_skills_seen
-- A guard's condition: reader ?1 sees no skill that is not among ?2 (a JSON array of the ids
-- they saw when deciding to add one) other than ?3 (the one being added).
SELECT NOT EXISTS (
  SELECT 1 FROM skills
  WHERE (is_custom = 0 OR review_status = 'approved' OR created_by = ?1)
    AND id NOT IN (SELECT value FROM json_each(?2))
    AND id <> ?3
);

-- name: pending_custom_skills
-- The review queue, oldest first; idx_skills_review (partial: is_custom = 1) finds it.
SELECT id, name, category, created_at
FROM skills
WHERE is_custom = 1 AND review_status = 'pending'
ORDER BY created_at, id;

-- name: custom_skills_among
-- The custom skills among the ids in ?1 (a JSON array), found by id.
SELECT id, name, category, review_status, created_at
FROM skills
WHERE id IN (SELECT value FROM json_each(?1)) AND is_custom = 1;

-- name: shared_skills
-- The shared list: what every reader sees.
SELECT id, name
FROM skills
WHERE is_custom = 0 OR review_status = 'approved';

-- name: shared_list_is
-- A guard's condition: the shared list holds no skill outside ?1 (a JSON array of the ids
-- the review read).
SELECT NOT EXISTS (
  SELECT 1 FROM skills
  WHERE (is_custom = 0 OR review_status = 'approved')
    AND id NOT IN (SELECT value FROM json_each(?1))
);

-- name: decide_pending_skills
-- Editors' decisions on the skills in ?1 (a JSON array of ids): approved when also in ?2,
-- rejected otherwise. Each applies only to a custom skill still pending (the batch checks
-- that all of them did). The unary + keeps the planner on the id index (a few ids) rather
-- than idx_skills_review (the whole queue).
-- A decided skill also takes a new rowid past the largest (its place in ?1 keeps them apart):
-- that moves the search index's marker (`skills_marker`), so every process sees the decision
-- on its next search without counting the review queue. Nothing refers to a skill by rowid.
UPDATE skills
SET review_status = iif(id IN (SELECT value FROM json_each(?2)), 'approved', 'rejected'),
    rowid = (SELECT max(rowid) FROM skills) + 1
            + (SELECT min(CAST(key AS INTEGER)) FROM json_each(?1) WHERE value = skills.id)
WHERE id IN (SELECT value FROM json_each(?1)) AND is_custom = 1 AND +review_status = 'pending';
