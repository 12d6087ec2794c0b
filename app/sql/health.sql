-- name: schema_version
-- The number of the newest applied migration (app/db/migrations.py: files are NNNN_name.sql,
-- recorded in d1_migrations as D1's wrangler records them); 0 when none is.
SELECT coalesce(max(CAST(substr(name, 1, instr(name, '_') - 1) AS INTEGER)), 0) AS schema_version
FROM d1_migrations
WHERE name GLOB '[0-9]*_*.sql';
