"""CallLog.organization loses its own index: httpclient_recent_idx starts with the column.

Only the index is dropped. A plain AlterField would rebuild the table on SQLite and re-check
the foreign key over every row on PostgreSQL, blocking calls while it runs; here PostgreSQL
drops the index CONCURRENTLY (hence atomic = False) and SQLite drops it in place.
"""

import django.db.models.deletion
from django.db import migrations, models


def _index_names(schema_editor, model):
    return schema_editor._constraint_names(model, ["organization_id"], index=True)


def drop_index(apps, schema_editor):
    model = apps.get_model("httpclient", "CallLog")
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name in _index_names(schema_editor, model):
        schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {schema_editor.quote_name(name)}")


def create_index(apps, schema_editor):
    model = apps.get_model("httpclient", "CallLog")
    if _index_names(schema_editor, model):
        return
    field = model._meta.get_field("organization")
    schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("httpclient", "0003_calllog_curl_calllog_details"),
        ("workspaces", "0002_api_rate_counter"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="calllog",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="call_logs",
                        to="workspaces.organization",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_index, create_index)],
        ),
    ]
