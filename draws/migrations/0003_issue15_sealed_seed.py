"""A draw's seed is sealed until its reveal (issue #15, R-DRAW-2): committed or running draws get their plain seed
encrypted with the settings' key (core.sealing) and the plain column emptied, before the new constraints apply."""

from django.conf import settings
from django.db import migrations, models


def seal_open_seeds(apps, schema_editor):
    from core.sealing import seal

    Draw = apps.get_model("draws", "Draw")
    for draw in Draw.objects.filter(status__in=["COMMITTED", "RUNNING"]).exclude(seed=""):
        Draw.objects.filter(pk=draw.pk).update(seed_sealed=seal(draw.seed), seed="")


def unseal_seeds(apps, schema_editor):
    from core.sealing import unseal

    Draw = apps.get_model("draws", "Draw")
    for draw in Draw.objects.filter(status__in=["COMMITTED", "RUNNING", "FAILED"]).exclude(seed_sealed=""):
        Draw.objects.filter(pk=draw.pk).update(seed=unseal(draw.seed_sealed))


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0004_alter_tenant_options_user_language_and_more'),
        ('draws', '0002_i18n_verbose_names'),
        ('events', '0004_issue15_registration_window'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='draw',
            name='draw_committed_has_seed',
        ),
        migrations.AddField(
            model_name='draw',
            name='seed_sealed',
            field=models.TextField(blank=True, editable=False, verbose_name='sealed seed'),
        ),
        migrations.RunPython(seal_open_seeds, unseal_seeds),
        migrations.AddConstraint(
            model_name='draw',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['SCHEDULED', 'FAILED']), ('seed_hash__regex', '^[0-9a-f]{64}$'), _connector='OR'), name='draw_committed_has_hash'),
        ),
        migrations.AddConstraint(
            model_name='draw',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status__in', ['COMMITTED', 'RUNNING']), _negated=True), models.Q(('seed', ''), models.Q(('seed_sealed', ''), _negated=True)), _connector='OR'), name='draw_seed_sealed_until_done'),
        ),
        migrations.AddConstraint(
            model_name='draw',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'DONE'), _negated=True), ('seed__regex', '^[0-9a-f]{64}$'), _connector='OR'), name='draw_done_reveals_seed'),
        ),
    ]
