"""The db layer: connections, migrations, schema introspection and the named SQL queries."""
