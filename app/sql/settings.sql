-- A reader's settings (spec §2.5). The row itself is read and written with `settings_of_user`
-- and `update_settings_all` (portability.sql): one shape for settings, export and import.

-- name: personality_type_known
SELECT EXISTS (SELECT 1 FROM personality_types WHERE code = ?);
