from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("webapp", "0003_stream_ending"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="stream",
            options={"ordering": ["-started"],
                     "permissions": [("change_source_location",
                                      "Can change what a source reads (log path, feed URL, "
                                      "queue)")]},
        ),
    ]
