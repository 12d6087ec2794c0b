-- Competency self-assessment (spec §3.3) and re-assessment (spec §13).
-- Saving scores writes them all in one upsert over a JSON array (upsert_scores: the many-row
-- form of portability.sql's upsert_score, on UNIQUE(user_id, competency_id)), once
-- competencies_among has refused unknown ids.

-- name: competency_scores_of_user
-- The reader's scores with each competency's category, in the reference list's order.
SELECT s.competency_id, s.score, s.assessed_at, c.category
FROM user_competency_scores s
JOIN competencies c ON c.id = s.competency_id
WHERE s.user_id = ?
ORDER BY c.category, c.sort_order, c.id;

-- name: competency_reassessment
-- spec §13, with DATE('now', '-1 year') computed by the domain from its clock and passed as ?2
-- (midnight UTC of that date, canonical form: the same comparison on canonical timestamps).
SELECT
  MIN(assessed_at) AS oldest_assessment,
  CASE
    WHEN MIN(assessed_at) < ?2 THEN 1
    ELSE 0
  END AS reassessment_due
FROM user_competency_scores
WHERE user_id = ?1;

-- name: competencies_among
-- Which of the ids in ?1 (a JSON array) are competencies.
SELECT id FROM competencies WHERE id IN (SELECT value FROM json_each(?1));

-- name: competencies_all_known
-- A guard's condition: all ?2 ids in ?1 (a JSON array, no repeats) are still competencies.
SELECT count(*) = ?2 FROM competencies WHERE id IN (SELECT value FROM json_each(?1));

-- name: upsert_scores
-- Reader ?1's scores from ?2, a JSON array of [row id, competency id, score], all assessed at
-- ?3: one statement for the whole request. `WHERE true` tells SQLite's parser the ON CONFLICT belongs to the INSERT.
INSERT INTO user_competency_scores (id, user_id, competency_id, score, assessed_at)
SELECT json_extract(e.value, '$[0]'), ?1, json_extract(e.value, '$[1]'), json_extract(e.value, '$[2]'), ?3
FROM json_each(?2) AS e
WHERE true
ON CONFLICT (user_id, competency_id) DO UPDATE SET score = excluded.score, assessed_at = excluded.assessed_at;
