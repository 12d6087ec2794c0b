-- Competency self-assessment (spec §3.3) and re-assessment (spec §13).
-- Writing a score uses portability.sql's upsert_score (UNIQUE(user_id, competency_id)), the
-- same statement an import uses, and known_competencies to refuse unknown ids.

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
