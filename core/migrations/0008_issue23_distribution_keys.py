"""The database keys of the tenant as distribution key (#23): primary keys (tenant_id, id), one-to-one and public-id
uniques per tenant, foreign keys between tenant tables (tenant_id, x_id). The reasoning is in core/keys.py.

The lists below are the schema as of this migration, written out (not computed from the models, which will change).
The migrations just before it (``*_issue23_tenant_keys``) added the tenant to the tables that had none, put it in
front of every unique constraint in the models and dropped Django's single-column foreign keys between tenant tables.

Locks: each primary-key swap rebuilds one index under ACCESS EXCLUSIVE; on the largest tables it runs in the same
maintenance window as the partitioning that follows (coupons 0012), which rewrites them anyway.
"""
from django.db import migrations

from core import keys

TABLES = ['core_auditlog', 'core_idempotencyrecord', 'coupons_audienceentry', 'coupons_couponbatch',
 'coupons_couponbatchchunk', 'coupons_couponcode', 'coupons_couponcodeexport', 'coupons_coupongrant',
 'coupons_coupongrantmember', 'coupons_couponinventory', 'coupons_couponissue', 'coupons_couponpolicy',
 'coupons_couponusage', 'coupons_inventorycounter', 'draws_draw', 'draws_drawwinner', 'draws_prizetier',
 'events_event', 'events_eventallowedmember', 'events_eventparticipant', 'events_eventstaffmember', 'exports_export',
 'partners_couponmapping', 'partners_distribution', 'partners_partner', 'partners_partnerupload',
 'partners_partneruploadfailure', 'rewards_exchangeoffer', 'rewards_memberbirthday', 'rewards_memberpoints',
 'rewards_pointsallocation', 'rewards_pointsentry', 'rewards_rewardgrant', 'rewards_rewardrule', 'risk_alarm',
 'risk_frequencylimit', 'risk_inventorybudget', 'risk_memberrisk', 'risk_webhookattempt', 'risk_webhookdelivery',
 'risk_webhookendpoint']
UNIQUES = [('coupons_coupongrant', 'coupons_coupongrant_public_id_key', 'public_id'),
 ('coupons_couponinventory', 'coupons_couponinventory_public_id_key', 'public_id'),
 ('coupons_couponissue', 'coupons_couponissue_coupon_id_key', 'coupon_id'),
 ('coupons_couponpolicy', 'coupons_couponpolicy_public_id_key', 'public_id'),
 ('draws_draw', 'draws_draw_public_id_key', 'public_id'),
 ('draws_draw', 'draws_draw_parent_id_key', 'parent_id'),
 ('events_event', 'events_event_public_id_key', 'public_id'),
 ('events_event', 'events_event_previous_id_key', 'previous_id'),
 ('exports_export', 'exports_export_public_id_key', 'public_id'),
 ('partners_couponmapping', 'partners_couponmapping_coupon_id_key', 'coupon_id'),
 ('partners_distribution', 'partners_distribution_public_id_key', 'public_id'),
 ('partners_partnerupload', 'partners_partnerupload_public_id_key', 'public_id'),
 ('rewards_exchangeoffer', 'rewards_exchangeoffer_inventory_id_key', 'inventory_id'),
 ('rewards_pointsentry', 'rewards_pointsentry_grant_id_key', 'grant_id'),
 ('rewards_pointsentry', 'rewards_pointsentry_expired_entry_id_key', 'expired_entry_id'),
 ('rewards_pointsentry', 'rewards_pointsentry_coupon_id_key', 'coupon_id'),
 ('rewards_pointsentry', 'rewards_pointsentry_refund_of_id_key', 'refund_of_id'),
 ('risk_inventorybudget', 'risk_inventorybudget_inventory_id_key', 'inventory_id')]
FOREIGN_KEYS = [('coupons_audienceentry', 'inventory_id', 'coupons_couponinventory', 'coupons_audienceentry_inventory_id_tenant_fk'),
 ('coupons_couponbatch', 'inventory_id', 'coupons_couponinventory', 'coupons_couponbatch_inventory_id_tenant_fk'),
 ('coupons_couponbatchchunk', 'batch_id', 'coupons_couponbatch', 'coupons_couponbatchchunk_batch_id_tenant_fk'),
 ('coupons_couponcodeexport', 'batch_id', 'coupons_couponbatch', 'coupons_couponcodeexport_batch_id_tenant_fk'),
 ('coupons_coupongrant', 'inventory_id', 'coupons_couponinventory', 'coupons_coupongrant_inventory_id_tenant_fk'),
 ('coupons_coupongrantmember', 'grant_id', 'coupons_coupongrant', 'coupons_coupongrantmember_grant_id_tenant_fk'),
 ('coupons_coupongrantmember', 'coupon_id', 'coupons_couponcode', 'coupons_coupongrantmember_coupon_id_tenant_fk'),
 ('coupons_couponinventory', 'event_id', 'events_event', 'coupons_couponinventory_event_id_tenant_fk'),
 ('coupons_couponinventory', 'policy_id', 'coupons_couponpolicy', 'coupons_couponinventory_policy_id_tenant_fk'),
 ('coupons_couponissue', 'inventory_id', 'coupons_couponinventory', 'coupons_couponissue_inventory_id_tenant_fk'),
 ('coupons_couponissue', 'coupon_id', 'coupons_couponcode', 'coupons_couponissue_coupon_id_tenant_fk'),
 ('coupons_couponissue', 'grant_id', 'coupons_coupongrant', 'coupons_couponissue_grant_id_tenant_fk'),
 ('coupons_couponusage', 'inventory_id', 'coupons_couponinventory', 'coupons_couponusage_inventory_id_tenant_fk'),
 ('coupons_couponusage', 'coupon_id', 'coupons_couponcode', 'coupons_couponusage_coupon_id_tenant_fk'),
 ('coupons_inventorycounter',
  'inventory_id',
  'coupons_couponinventory',
  'coupons_inventorycounter_inventory_id_tenant_fk'),
 ('draws_draw', 'event_id', 'events_event', 'draws_draw_event_id_tenant_fk'),
 ('draws_draw', 'parent_id', 'draws_draw', 'draws_draw_parent_id_tenant_fk'),
 ('draws_drawwinner', 'draw_id', 'draws_draw', 'draws_drawwinner_draw_id_tenant_fk'),
 ('draws_drawwinner', 'tier_id', 'draws_prizetier', 'draws_drawwinner_tier_id_tenant_fk'),
 ('draws_drawwinner', 'coupon_id', 'coupons_couponcode', 'draws_drawwinner_coupon_id_tenant_fk'),
 ('draws_prizetier', 'draw_id', 'draws_draw', 'draws_prizetier_draw_id_tenant_fk'),
 ('draws_prizetier', 'inventory_id', 'coupons_couponinventory', 'draws_prizetier_inventory_id_tenant_fk'),
 ('events_event', 'previous_id', 'events_event', 'events_event_previous_id_tenant_fk'),
 ('events_eventallowedmember', 'event_id', 'events_event', 'events_eventallowedmember_event_id_tenant_fk'),
 ('events_eventparticipant', 'event_id', 'events_event', 'events_eventparticipant_event_id_tenant_fk'),
 ('exports_export', 'code_export_id', 'coupons_couponcodeexport', 'exports_export_code_export_id_tenant_fk'),
 ('partners_couponmapping', 'coupon_id', 'coupons_couponcode', 'partners_couponmapping_coupon_id_tenant_fk'),
 ('partners_distribution', 'partner_id', 'partners_partner', 'partners_distribution_partner_id_tenant_fk'),
 ('partners_distribution', 'inventory_id', 'coupons_couponinventory', 'partners_distribution_inventory_id_tenant_fk'),
 ('partners_distribution', 'batch_id', 'coupons_couponbatch', 'partners_distribution_batch_id_tenant_fk'),
 ('partners_partnerupload', 'partner_id', 'partners_partner', 'partners_partnerupload_partner_id_tenant_fk'),
 ('partners_partnerupload',
  'inventory_id',
  'coupons_couponinventory',
  'partners_partnerupload_inventory_id_tenant_fk'),
 ('partners_partneruploadfailure',
  'upload_id',
  'partners_partnerupload',
  'partners_partneruploadfailure_upload_id_tenant_fk'),
 ('rewards_exchangeoffer', 'inventory_id', 'coupons_couponinventory', 'rewards_exchangeoffer_inventory_id_tenant_fk'),
 ('rewards_pointsallocation', 'debit_id', 'rewards_pointsentry', 'rewards_pointsallocation_debit_id_tenant_fk'),
 ('rewards_pointsallocation', 'credit_id', 'rewards_pointsentry', 'rewards_pointsallocation_credit_id_tenant_fk'),
 ('rewards_pointsentry', 'grant_id', 'rewards_rewardgrant', 'rewards_pointsentry_grant_id_tenant_fk'),
 ('rewards_pointsentry', 'expired_entry_id', 'rewards_pointsentry', 'rewards_pointsentry_expired_entry_id_tenant_fk'),
 ('rewards_pointsentry', 'coupon_id', 'coupons_couponcode', 'rewards_pointsentry_coupon_id_tenant_fk'),
 ('rewards_pointsentry', 'refund_of_id', 'rewards_pointsallocation', 'rewards_pointsentry_refund_of_id_tenant_fk'),
 ('rewards_rewardgrant', 'rule_id', 'rewards_rewardrule', 'rewards_rewardgrant_rule_id_tenant_fk'),
 ('rewards_rewardgrant', 'coupon_id', 'coupons_couponcode', 'rewards_rewardgrant_coupon_id_tenant_fk'),
 ('rewards_rewardrule', 'inventory_id', 'coupons_couponinventory', 'rewards_rewardrule_inventory_id_tenant_fk'),
 ('risk_alarm', 'inventory_id', 'coupons_couponinventory', 'risk_alarm_inventory_id_tenant_fk'),
 ('risk_frequencylimit', 'inventory_id', 'coupons_couponinventory', 'risk_frequencylimit_inventory_id_tenant_fk'),
 ('risk_frequencylimit', 'policy_id', 'coupons_couponpolicy', 'risk_frequencylimit_policy_id_tenant_fk'),
 ('risk_inventorybudget', 'inventory_id', 'coupons_couponinventory', 'risk_inventorybudget_inventory_id_tenant_fk'),
 ('risk_webhookattempt', 'delivery_id', 'risk_webhookdelivery', 'risk_webhookattempt_delivery_id_tenant_fk'),
 ('risk_webhookdelivery', 'endpoint_id', 'risk_webhookendpoint', 'risk_webhookdelivery_endpoint_id_tenant_fk'),
 ('risk_webhookdelivery', 'alarm_id', 'risk_alarm', 'risk_webhookdelivery_alarm_id_tenant_fk')]


def forwards(apps, schema_editor):
    keys.run(schema_editor, keys.forward_sql(tables=TABLES, uniques=UNIQUES, foreign_keys=FOREIGN_KEYS))


def backwards(apps, schema_editor):
    keys.run(schema_editor, keys.reverse_sql(tables=TABLES, uniques=UNIQUES, foreign_keys=FOREIGN_KEYS))


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0007_issue23_tenant_keys'),
        ('coupons', '0011_issue23_tenant_keys'),
        ('draws', '0004_issue23_tenant_keys'),
        ('events', '0005_issue23_tenant_keys'),
        ('exports', '0003_issue23_tenant_keys'),
        ('partners', '0006_issue23_tenant_keys'),
        ('rewards', '0004_issue23_tenant_keys'),
        ('risk', '0004_issue23_tenant_keys'),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
