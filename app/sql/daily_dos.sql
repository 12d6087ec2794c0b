-- Daily Dos (spec §11): the reader's workbook flag, and the due reminders of unlocked tools.
--
-- The three reminder queries are the spec's, with two deliberate changes:
-- 1. The unlock check matches answers to places by (part_id, module_id, exercise_id), like
--    workbook.sql's tool_unlocked, so a new content version does not lock a tool again.
-- 2. The time conditions are half-open ranges of canonical UTC timestamps passed in as
--    parameters (?2, ?3) instead of DATE(...) over 'now'. The domain computes them from the
--    reader's local calendar (or UTC midnights, which is exactly what the spec's conditions
--    mean on canonical `YYYY-MM-DDTHH:MM:SS.sssZ` strings). DATE() can only express UTC
--    days; bounds express any reader's day, and the NOT EXISTS still finds the reader's
--    instances of the tool through idx_tool_instances_user_type (user_id, tool_type).
-- Order: by the reader's way through the workbook (the place of the exercise that unlocks the
-- tool), then by tool id, so the cards keep their order from day to day.

-- name: reader_workbook_complete
SELECT workbook_complete FROM users WHERE id = ?;

-- name: daily_reminders
-- ?1 user, ?2 start of today, ?3 start of tomorrow (the reader's local days, as UTC instants).
SELECT tt.id, tt.singular_name, tt.reminder_prompt
FROM tool_types tt
WHERE tt.has_reminder = 1
  AND tt.reminder_frequency = 'daily'
  AND tt.is_active = 1
  AND EXISTS (
    SELECT 1 FROM exercise_responses er
    JOIN exercise_sequence es
      ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id
    WHERE er.user_id = ?1
      AND es.unlocks_tool = tt.id
  )
  AND NOT EXISTS (
    SELECT 1 FROM tool_instances ti
    WHERE ti.user_id = ?1
      AND ti.tool_type = tt.id
      AND ti.created_at >= ?2 AND ti.created_at < ?3
  )
ORDER BY (SELECT MIN(u.sequence_order) FROM exercise_sequence u WHERE u.unlocks_tool = tt.id), tt.id;

-- name: weekly_reminders
-- ?1 user, ?2 start of the local day 7 days ago (spec: DATE('now', '-7 days')).
SELECT tt.id, tt.singular_name, tt.reminder_prompt
FROM tool_types tt
WHERE tt.has_reminder = 1
  AND tt.reminder_frequency = 'weekly'
  AND tt.is_active = 1
  AND EXISTS (
    SELECT 1 FROM exercise_responses er
    JOIN exercise_sequence es
      ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id
    WHERE er.user_id = ?1
      AND es.unlocks_tool = tt.id
  )
  AND NOT EXISTS (
    SELECT 1 FROM tool_instances ti
    WHERE ti.user_id = ?1
      AND ti.tool_type = tt.id
      AND ti.created_at >= ?2
  )
ORDER BY (SELECT MIN(u.sequence_order) FROM exercise_sequence u WHERE u.unlocks_tool = tt.id), tt.id;

-- name: monthly_reminders
-- ?1 user, ?2 start of the local day 30 days ago (spec: DATE('now', '-30 days')).
SELECT tt.id, tt.singular_name, tt.reminder_prompt
FROM tool_types tt
WHERE tt.has_reminder = 1
  AND tt.reminder_frequency = 'monthly'
  AND tt.is_active = 1
  AND EXISTS (
    SELECT 1 FROM exercise_responses er
    JOIN exercise_sequence es
      ON es.part_id = er.part_id AND es.module_id = er.module_id AND es.exercise_id = er.exercise_id
    WHERE er.user_id = ?1
      AND es.unlocks_tool = tt.id
  )
  AND NOT EXISTS (
    SELECT 1 FROM tool_instances ti
    WHERE ti.user_id = ?1
      AND ti.tool_type = tt.id
      AND ti.created_at >= ?2
  )
ORDER BY (SELECT MIN(u.sequence_order) FROM exercise_sequence u WHERE u.unlocks_tool = tt.id), tt.id;
