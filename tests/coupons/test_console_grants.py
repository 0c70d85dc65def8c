"""R-ISS-2 in the console: grant an inventory to the members of an uploaded file."""
from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from coupons.models import CouponGrant, CouponIssue
from tests import factories


def upload(client, inventory, content: bytes):
    return client.post(reverse("admin:coupons_couponinventory_grant", args=[inventory.pk]),
                       {"members_file": SimpleUploadedFile("members.csv", content, "text/csv")})


def test_an_operator_grants_from_a_file_and_lands_on_the_job(client, tenant, operator_user,
                                                            django_capture_on_commit_callbacks):
    inventory, _ = factories.make_pool(tenant, size=5)
    client.force_login(operator_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, inventory, b"\xef\xbb\xbfmember_id\nm-1\nm-2\n\nm-1\n")
    grant = CouponGrant.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:coupons_coupongrant_change", args=[grant.pk])
    grant.refresh_from_db()
    assert (grant.status, grant.total, grant.issued, grant.operator) == ("COMPLETED", 2, 2, operator_user)
    assert sorted(CouponIssue.objects.values_list("member_id", flat=True)) == ["m-1", "m-2"]


def test_a_file_without_members_or_not_utf8_is_refused_with_a_reason(client, tenant, operator_user):
    inventory, _ = factories.make_pool(tenant, size=5)
    client.force_login(operator_user)
    empty = upload(client, inventory, b"member_id\n\n")
    assert "The file holds no member ids." in empty.content.decode()
    latin = upload(client, inventory, "m-1\nm\xe9mber\n".encode("latin-1"))
    assert "Line 2 is not UTF-8 text." in latin.content.decode()
    assert not CouponGrant.objects.exists()


def test_a_viewer_cannot_grant(client, tenant):
    inventory, _ = factories.make_pool(tenant, size=1)
    client.force_login(factories.make_viewer(tenant))
    assert upload(client, inventory, b"m-1\n").status_code == 403
    assert not CouponGrant.objects.exists()
