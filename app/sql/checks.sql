-- `dreamtree check` and `restore` (app/db/checks.py): reads only, each one D1 answers too
-- (the full `PRAGMA integrity_check` is not among them: it runs on the SQLite file only).

-- name: quick_check
-- SQLite's quick integrity check (no index-content cross-check): "ok", or one row per problem.
PRAGMA quick_check;

-- name: foreign_key_check
-- One row per row whose parent is missing.
PRAGMA foreign_key_check;

-- name: schema_objects
-- Every object of the schema, in creation order: app/db/schema.py replays them to compare.
SELECT type, name, tbl_name, sql
FROM sqlite_schema
ORDER BY rowid;

-- name: applied_migrations
-- wrangler's ledger (app/db/migrations.py): the files applied, in order.
SELECT name FROM d1_migrations ORDER BY id;
