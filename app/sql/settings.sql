-- A reader's settings (spec §2.5). The row is read with `settings_of_user` (portability.sql):
-- one shape for settings, export and import.

-- name: personality_type_known
SELECT EXISTS (SELECT 1 FROM personality_types WHERE code = ?);

-- name: insert_missing_settings
-- The default row for reader ?1 when theirs is missing (every account gets one at creation;
-- this only repairs a lost one).
INSERT INTO user_settings (user_id, created_at, updated_at)
SELECT ?1, ?2, ?2
WHERE NOT EXISTS (SELECT 1 FROM user_settings WHERE user_id = ?1);

-- name: update_given_settings
-- A partial change of reader ?8's settings: only the fields given change, so two changes of
-- different fields at once both stay. ?1 background, ?2 text colour, ?3 font (NULL: not
-- given; none of them may be NULL in the row); ?4 whether the personality type is given and
-- ?5 its value (NULL clears it). updated_at moves only when a value really changes (import's
-- merge reads created_at != updated_at as "changed by the reader"): to ?6, or to ?7 (a
-- millisecond later) when ?6 is the row's created_at.
UPDATE user_settings
SET background_color = coalesce(?1, background_color),
    text_color = coalesce(?2, text_color),
    font = coalesce(?3, font),
    personality_type = iif(?4, ?5, personality_type),
    updated_at = iif(created_at = ?6, ?7, ?6)
WHERE user_id = ?8
  AND (background_color IS NOT coalesce(?1, background_color)
       OR text_color IS NOT coalesce(?2, text_color)
       OR font IS NOT coalesce(?3, font)
       OR personality_type IS NOT iif(?4, ?5, personality_type));
