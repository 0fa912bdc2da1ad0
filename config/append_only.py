"""Database triggers that refuse UPDATE and DELETE on append-only tables (used by migrations).

On SQLite, Django alters a table by rebuilding it, which drops its triggers: a migration that
alters one of these tables must install the triggers again (the append-only tests catch it).
"""

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION refuse_change_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'append-only table: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


def install(schema_editor, tables):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)  # no placeholders: % is literal here
        for table in tables:
            schema_editor.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                                  f"FOR EACH ROW EXECUTE FUNCTION refuse_change_append_only();")
    elif vendor == "sqlite":
        for table in tables:
            for operation in ("UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'append-only table: {operation} on {table} refused'); END;")
    else:
        raise NotImplementedError(f"no append-only trigger for {vendor}")


def remove(schema_editor, tables):
    for table in tables:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        else:
            for operation in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation};")


def migration_operation(*tables):
    from django.db import migrations

    return migrations.RunPython(lambda apps, editor: install(editor, tables),
                                lambda apps, editor: remove(editor, tables))
