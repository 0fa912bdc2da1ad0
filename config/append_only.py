"""Database triggers that refuse changes to append-only tables (used by migrations).

UPDATE and DELETE are refused row by row. PostgreSQL's TRUNCATE empties a table without firing
row triggers, so there a statement trigger refuses TRUNCATE too. SQLite has no TRUNCATE: its
DELETE without WHERE fires the row triggers.

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
    """Refuse UPDATE and DELETE of the tables' rows, and (PostgreSQL) TRUNCATE of the tables."""
    _install_row_triggers(schema_editor, tables)
    _install_truncate_triggers(schema_editor, tables)


def remove(schema_editor, tables):
    _remove_truncate_triggers(schema_editor, tables)
    _remove_row_triggers(schema_editor, tables)


def _install_row_triggers(schema_editor, tables):
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


def _remove_row_triggers(schema_editor, tables):
    for table in tables:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        else:
            for operation in ("update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation};")


def _install_truncate_triggers(schema_editor, tables):
    if schema_editor.connection.vendor != "postgresql":
        return  # no TRUNCATE elsewhere
    schema_editor.execute(POSTGRES_FUNCTION, params=None)
    for table in tables:
        schema_editor.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                              f"FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_append_only();")


def _remove_truncate_triggers(schema_editor, tables):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in tables:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};")


def migration_operation(*tables):
    """The operation of the migrations that made tables append-only: UPDATE and DELETE refused."""
    from django.db import migrations

    return migrations.RunPython(lambda apps, editor: _install_row_triggers(editor, tables),
                                lambda apps, editor: _remove_row_triggers(editor, tables))


def truncate_migration_operation(*tables):
    """The operation that makes tables already append-only refuse TRUNCATE too (PostgreSQL; elsewhere a no-op)."""
    from django.db import migrations

    return migrations.RunPython(lambda apps, editor: _install_truncate_triggers(editor, tables),
                                lambda apps, editor: _remove_truncate_triggers(editor, tables))
