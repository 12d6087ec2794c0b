-- Skills (spec §5.4): the master list, readers' custom skills and their review.
-- Which skills a reader sees is one rule, the same as `usable_skills` (skill_tags.sql) for
-- tagging: the master list, approved custom skills, and the reader's own custom skills.
-- The name match is a substring match, so no index can serve it and these scan `skills`
-- (docs/skills.md has the measurements). instr(), not LIKE: D1 caps LIKE patterns at 50
-- bytes, and instr takes the reader's text literally (no % or _ wildcards to escape).

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

-- name: visible_skills
-- Everything the reader sees, with `mine` marking their own custom skills (for the cap).
SELECT id, name, category, is_custom, review_status, coalesce(created_by = ?1, 0) AS mine
FROM skills
WHERE is_custom = 0 OR review_status = 'approved' OR created_by = ?1;

-- name: pending_custom_skills
-- The review queue, oldest first; idx_skills_review (partial: is_custom = 1) finds it.
SELECT id, name, category, created_at
FROM skills
WHERE is_custom = 1 AND review_status = 'pending'
ORDER BY created_at, id;

-- name: custom_skill_by_id
SELECT id, name, category, review_status, created_at
FROM skills
WHERE id = ? AND is_custom = 1;

-- name: shared_skills
-- The shared list: what every reader sees.
SELECT id, name
FROM skills
WHERE is_custom = 0 OR review_status = 'approved';

-- name: set_review_status
UPDATE skills SET review_status = ?2 WHERE id = ?1 AND is_custom = 1;
