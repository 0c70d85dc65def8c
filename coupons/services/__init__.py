"""The coupons app's writers: every state change of a policy, inventory, batch or coupon is one function here.

One module per aggregate — ``policy``, ``inventory``, ``batch`` (+ ``generation`` of its codes), ``issue`` (claims),
``grant``, ``lifecycle`` (lock, release, redeem, refund, revoke, expire), ``revocation`` (by member list) — each
writer named ``<entity>_<verb>``, one transaction, its audit row inside it. ``counters`` and ``webhook_events`` are
the write helpers they share. Callers use ``from coupons import services`` and ``services.<writer>(…)``.
"""
from coupons.services.batch import batch_create, batch_validate_parameters
from coupons.services.generation import (batch_generate, batch_generation_failed, batch_generation_progress,
                                         batch_generation_running, batch_start_generation)
from coupons.services.grant import grant_create, grant_process
from coupons.services.inventory import inventory_create, inventory_save
from coupons.services.issue import (RequestContext, coupon_claim, issue_from_pool, issue_specific_code,
                                    issue_this_code)
from coupons.services.lifecycle import (coupon_lock, coupon_redeem, coupon_refund, coupon_release, coupon_revoke,
                                        coupons_expire, locks_release_stale)
from coupons.services.policy import (APPROVE_PERMISSION, policy_approve, policy_clone, policy_reject,
                                     policy_rule_errors, policy_save_draft, policy_submit)
from coupons.services.revocation import coupons_revoke_for_members

__all__ = [
    "APPROVE_PERMISSION", "RequestContext", "batch_create", "batch_generate", "batch_generation_failed",
    "batch_generation_progress", "batch_generation_running", "batch_start_generation", "batch_validate_parameters",
    "coupon_claim", "coupon_lock", "coupon_redeem", "coupon_refund", "coupon_release", "coupon_revoke",
    "coupons_expire", "coupons_revoke_for_members", "grant_create", "grant_process", "inventory_create",
    "inventory_save", "issue_from_pool", "issue_specific_code", "issue_this_code", "locks_release_stale",
    "policy_approve", "policy_clone", "policy_reject", "policy_rule_errors", "policy_save_draft", "policy_submit",
]
