from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("console", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="consoletoken",
            name="view_only",
            field=models.BooleanField(default=False, help_text="the proxy passes no keyboard or mouse input"),
        ),
        migrations.AddField(
            model_name="consoletoken",
            name="api",
            field=models.BooleanField(
                default=False, help_text="issued to an API client: no session cookie needed to connect"),
        ),
        migrations.AddField(
            model_name="consolesession",
            name="view_only",
            field=models.BooleanField(default=False, help_text="the user could watch but not type or click"),
        ),
    ]
