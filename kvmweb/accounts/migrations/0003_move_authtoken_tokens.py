"""Move the API tokens of DRF's ``authtoken`` app (kept in plain text) into ``ApiToken`` (kept as a SHA-256
digest), then delete the plain-text rows. A client keeps sending the same key: its digest is what is looked up.

``rest_framework.authtoken`` is no longer installed, so its table is read with SQL, and only when it exists (an
installation that never had the app has nothing to move). The table itself is left, empty, for the app's own
migration records; nothing reads or writes it any more."""
from __future__ import annotations

import datetime as dt
import hashlib

from django.db import migrations
from django.utils.dateparse import parse_datetime

TABLE = "authtoken_token"


def move_tokens(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q('key')}, {q('user_id')}, {q('created')} FROM {q(TABLE)}")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        digest = hashlib.sha256(str(key).encode("utf-8")).hexdigest()
        if ApiToken.objects.filter(digest=digest).exists():
            continue
        token = ApiToken.objects.create(user_id=user_id, name="API token (from before self-service tokens)",
                                        prefix=str(key)[:8], digest=digest)
        if isinstance(created, str):  # SQLite hands back text (UTC)
            created = parse_datetime(created)
        if created is not None:  # auto_now_add set the time of the move; keep the token's own
            if created.tzinfo is None:
                created = created.replace(tzinfo=dt.timezone.utc)
            ApiToken.objects.filter(pk=token.pk).update(created=created)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {q(TABLE)}")


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_api_tokens_ssh_keys"),
    ]

    operations = [
        migrations.RunPython(move_tokens, migrations.RunPython.noop, elidable=False),
    ]
