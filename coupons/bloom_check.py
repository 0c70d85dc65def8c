"""The one call the validation paths make to the Bloom filter (R-CODE-3, R-RISK-4).

``might_exist`` is False only when the code certainly is not one of the tenant's; then no database query is needed.
"""
from __future__ import annotations

from coupons.bloom import bloom_might_contain


def might_exist(code: str, tenant_id: int) -> bool:
    """False when the code is certainly not *that tenant's*: asked of the tenant's own filter (issue #23), so another
    tenant's code is refused exactly as cheaply as an unknown one (issue #17, R-TEN-1)."""
    return bloom_might_contain(code, tenant_id)
