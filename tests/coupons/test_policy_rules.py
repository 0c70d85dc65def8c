"""R-POL-1/2/4: every rule a policy row can break is refused by the service with a message and by a constraint."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from core.exceptions import InvalidInput
from coupons.models import CouponPolicy
from tests import factories

BAD = [
    ("threshold_equal_to_amount", "threshold", {"amount": 3000, "threshold": 3000}, "threshold"),
    ("threshold_below_amount", "threshold", {"amount": 3000, "threshold": 1000}, "threshold"),
    ("percentage_without_cap", "percentage", {"rate": 10, "cap": None}, "cap"),
    ("percentage_rate_over_100", "percentage", {"rate": 101, "cap": 100}, "rate"),
    ("percentage_rate_zero", "percentage", {"rate": 0, "cap": 100}, "rate"),
    ("amount_zero", "amount", {"amount": 0}, "amount"),
    ("amount_negative", "amount", {"amount": -5}, "amount"),
    ("voucher_with_threshold", "amount", {"threshold": 10000}, "threshold"),
    ("sku_deduction_without_sku", "sku_deduction", {"sku_deduction_sku": ""}, "sku_deduction_sku"),
    ("fixed_validity_ending_before_start", "amount", {"valid_until": None}, "valid_until"),
    ("dynamic_without_hours", "amount", {"validity_type": "dynamic", "valid_from": None, "valid_until": None},
     "validity_hours"),
]


@pytest.mark.parametrize("label,kind,overrides,field", BAD, ids=[b[0] for b in BAD])
def test_service_refuses_an_invalid_policy_naming_the_field(tenant, operator_user, label, kind, overrides, field):
    policy = CouponPolicy(tenant=tenant, **factories.policy_fields(kind, **overrides))
    with pytest.raises(InvalidInput) as info:
        from coupons.services import policy_save_draft

        policy_save_draft(policy=policy, actor_user=operator_user)
    assert field in info.value.details.get("fields", {}) or field in info.value.message
    assert not CouponPolicy.objects.exists()


@pytest.mark.parametrize("label,kind,overrides,field", [b for b in BAD if b[0] != "amount_negative"],
                         ids=[b[0] for b in BAD if b[0] != "amount_negative"])
def test_database_refuses_the_same_invalid_policy(tenant, operator_user, label, kind, overrides, field):
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponPolicy.objects.create(tenant=tenant, created_by=operator_user, **factories.policy_fields(kind,
                                                                                                        **overrides))


def test_database_refuses_a_channel_outside_the_known_list(tenant, operator_user):
    with pytest.raises(IntegrityError, match="policy_channels_valid"), transaction.atomic():
        CouponPolicy.objects.create(tenant=tenant, created_by=operator_user,
                                    **factories.policy_fields("amount", channels=["ios", "fax"]))


@pytest.mark.parametrize("kind", ["amount", "threshold", "percentage", "shipping", "sku_deduction"])
def test_a_valid_policy_of_every_kind_is_saved_as_draft(tenant, operator_user, kind):
    policy = factories.make_draft_policy(tenant, author=operator_user, kind=kind)
    assert CouponPolicy.objects.get(pk=policy.pk).status == "DRAFT"
    assert len(policy.public_id) == 16
