"""Issue #23 (stateless app tier): the worker reads a partner upload through the file storage, never through a path
on its own disk, so the web host that received the file and the worker host that maps it may be different machines
sharing one storage (docs/design/hosts.md). The three-host run is tests/scale/test_three_hosts.py."""
from __future__ import annotations

import pytest

from partners.models import Partner, PartnerUpload
from partners.services import UploadFileMissing, partner_upload_process
from tests import factories

pytestmark = pytest.mark.django_db

CSV = ("partner_code\n" + "".join(f"P-{i:04d}\n" for i in range(12))).encode()


@pytest.fixture
def pool(tenant):
    Partner.objects.create(tenant=tenant, name="GS Retail", code="GS25")
    return factories.make_pool(tenant, size=20)[0]


def test_an_upload_in_a_storage_without_local_paths_is_mapped(settings, tenant, pool, tmp_path):
    # Object storages (S3 and the like) keep nothing on the host's disk; Django's in-memory storage neither.
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}

    upload = factories.make_partner_upload(tenant, pool, CSV)

    assert not (tmp_path / upload.file.name).exists()  # nothing of it on this host's disk
    assert (upload.status, upload.mapped, upload.failed) == (PartnerUpload.Status.DONE, 12, 0)


def test_an_upload_whose_file_this_host_cannot_see_fails_loudly_naming_the_shared_storage(settings, tenant, pool,
                                                                                        tmp_path, monkeypatch):
    settings.MEDIA_ROOT = str(tmp_path / "web-host")
    monkeypatch.setattr("partners.services.jobs.enqueue", lambda *args, **kwargs: "queued")  # processed below
    upload = factories.make_partner_upload(tenant, pool, CSV)
    settings.MEDIA_ROOT = str(tmp_path / "worker-host")  # another disk: the web host's file is not there

    with pytest.raises(UploadFileMissing, match="DJANGO_MEDIA_ROOT"):
        partner_upload_process(upload_id=upload.pk, tenant_id=upload.tenant_id)
    upload.refresh_from_db()
    assert upload.status == PartnerUpload.Status.PENDING and "shared" in upload.error
    assert upload.mapped == 0
