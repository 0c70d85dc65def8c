"""Database guards for R-POL-5: an approved policy cannot change or disappear, and only an approved policy of the
same tenant can back an inventory. The service and the console refuse first; these triggers are the last guard."""
from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION coupons_policy_frozen_when_approved() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'APPROVED' THEN
        RAISE EXCEPTION 'coupon policy % is approved and cannot be changed (%)', OLD.id, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER coupons_policy_frozen
    BEFORE UPDATE OR DELETE ON coupons_couponpolicy
    FOR EACH ROW EXECUTE FUNCTION coupons_policy_frozen_when_approved();

CREATE OR REPLACE FUNCTION coupons_inventory_policy_approved() RETURNS trigger AS $$
DECLARE
    p_status text;
    p_tenant bigint;
    e_tenant bigint;
BEGIN
    SELECT status, tenant_id INTO p_status, p_tenant FROM coupons_couponpolicy WHERE id = NEW.policy_id;
    IF p_status IS DISTINCT FROM 'APPROVED' THEN
        RAISE EXCEPTION 'inventory needs an approved policy (policy % is %)', NEW.policy_id, p_status
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT tenant_id INTO e_tenant FROM events_event WHERE id = NEW.event_id;
    IF p_tenant <> NEW.tenant_id OR e_tenant <> NEW.tenant_id THEN
        RAISE EXCEPTION 'inventory, policy and event must belong to one tenant'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER coupons_inventory_policy_check
    BEFORE INSERT OR UPDATE OF policy_id, event_id, tenant_id ON coupons_couponinventory
    FOR EACH ROW EXECUTE FUNCTION coupons_inventory_policy_approved();
"""

REVERSE = """
DROP TRIGGER IF EXISTS coupons_inventory_policy_check ON coupons_couponinventory;
DROP FUNCTION IF EXISTS coupons_inventory_policy_approved();
DROP TRIGGER IF EXISTS coupons_policy_frozen ON coupons_couponpolicy;
DROP FUNCTION IF EXISTS coupons_policy_frozen_when_approved();
"""


class Migration(migrations.Migration):
    dependencies = [("coupons", "0001_initial"), ("events", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
