"""Factories for rewards tests: rules are made through the service, like the console does."""
from __future__ import annotations

from typing import Any

from core.models import Tenant
from rewards.models import RewardRule
from rewards.services import reward_rule_save
from tests.factories import TEST_ACTOR


def make_rule(tenant: Tenant, trigger: str, **fields: Any) -> RewardRule:
    fields.setdefault("name", f"{trigger} rule")
    return reward_rule_save(rule=RewardRule(tenant=tenant, trigger=trigger, **fields), actor=TEST_ACTOR)
