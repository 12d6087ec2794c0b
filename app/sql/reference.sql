-- Reference data (spec §5, §6): the same for every reader, changed only by seeding.

-- name: list_personality_types
SELECT code, name, summary
FROM personality_types
ORDER BY code;

-- name: list_competencies
-- The spec's category order (delivery, interpersonal, strategic), then the editor's order.
SELECT id, name, definition, category, sort_order
FROM competencies
ORDER BY CASE category WHEN 'delivery' THEN 1 WHEN 'interpersonal' THEN 2 WHEN 'strategic' THEN 3 ELSE 4 END,
         sort_order, id;

-- name: list_competency_levels
SELECT competency_id, level, description, job_context
FROM competency_levels
ORDER BY competency_id, level;

-- name: list_references
-- The credits page: by author surname, then by citation number among the same surname.
SELECT id, citation_number, author_surname, full_citation, short_citation, category, metadata
FROM "references"
ORDER BY author_surname, citation_number;

-- name: list_reference_usage
-- Where each reference is used, in the workbook's order (exercises no longer in the sequence last).
SELECT cs.reference_id, cs.exercise_id, cs.usage_type
FROM content_sources cs
LEFT JOIN exercise_sequence es ON es.full_exercise_id = cs.exercise_id
ORDER BY cs.reference_id, es.sequence_order IS NULL, es.sequence_order, cs.exercise_id, cs.usage_type;
