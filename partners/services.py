"""Partner uploads: create, process (resumable, in chunks), reprocess failed rows (R-PART-1…3, R-PART-5).

Processing commits one chunk of ``CHUNK_ROWS`` rows per transaction: it locks the upload row and checks that
``processed_rows`` is where this worker expects it (compare-and-set — a second worker on the same upload stops),
takes that many AVAILABLE codes of the inventory with one ``FOR UPDATE SKIP LOCKED`` statement, sets them MAPPED,
inserts the mappings and failures, and advances ``processed_rows``/``mapped``/``failed`` together. A job killed at any
point resumes from ``processed_rows``; UNIQUE(tenant, partner_code), UNIQUE(coupon) and UNIQUE(upload, line) are the
last guard against a row landing twice, and a CHECK keeps ``processed_rows = mapped + failed``.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core import jobs
from core.audit import Actor, audit_record
from core.exceptions import InvalidInput
from core.models import Tenant
from core.tenancy import joined_in_tenant
from coupons.exceptions import InventoryNotFound
from coupons.codes import normalise_code
from coupons.pool import POOL_CONDITION, POOL_ORDER
from coupons.models import CouponInventory
from partners.exceptions import BadCorrection, PartnerNotFound, UploadBusy, UploadTooLarge
from partners.models import PARTNER_CODE_MAX, Partner, PartnerUpload, PartnerUploadFailure
from partners.reader import FileRejected, Row, check_file, detect_format, open_rows
from django.conf import settings
from core.locks import session_lock_held

logger = logging.getLogger("coupons.partners")

CHUNK_ROWS = 10000
MAX_FILE_BYTES = 100 * 1024 * 1024
VALUE_KEEP = 200
MAX_CORRECTIONS = 10_000
_FORMAT = re.compile(r"[A-Z0-9]+")
_NORMAL = re.compile(rf"[A-Z0-9]{{1,{PARTNER_CODE_MAX}}}")
Reason = PartnerUploadFailure.Reason
# Failures a plain retry cannot change: only a corrected value can.
_NEEDS_CORRECTION = {Reason.EXTRA_COLUMNS.value, Reason.LINE_TOO_LONG.value}

def _after_commit(fn: Callable[[], object]) -> None:
    """Start a job once the rows it reads are committed (tests run it at once: their transaction never commits). A job
    that cannot be queued (Redis not answering) does not turn the committed upload into an error: the stuck-work sweep
    starts it later (issue #18)."""
    transaction.on_commit(fn, robust=True)


# Called after every committed chunk with the number of chunks this run committed; tests use it to kill a job.
def _after_chunk(committed: int) -> None:
    pass


@dataclass
class Failure:
    line: int
    value: str
    reason: str
    message: str
    id: int | None = None


def _clean(value: str) -> str:
    return value.replace("\x00", "\ufffd")[:VALUE_KEEP]


def partner_code_check(value: str) -> tuple[str, str, str]:
    """(normalised code, reason, message); reason "" when the value is a valid partner code."""
    if _NORMAL.fullmatch(value):  # already normal (almost every row of a real file): nothing to strip
        return value, "", ""
    code = normalise_code(value)
    if not code:
        return "", Reason.EMPTY, _("The row holds no partner code.")
    if len(code) > PARTNER_CODE_MAX:
        return "", Reason.TOO_LONG, _("The code has %(length)s characters; at most %(max)s are allowed.") % {
            "length": len(code), "max": PARTNER_CODE_MAX}
    if not _FORMAT.fullmatch(code):
        return "", Reason.BAD_FORMAT, _("Only letters A–Z and digits 0–9 are allowed (spaces and '-' are ignored).")
    return code, "", ""


def partner_create(*, tenant: Tenant, name: str, code: str, actor: Actor) -> Partner:
    name, code = (name or "").strip(), (code or "").strip().upper()
    if not name or not code:
        raise InvalidInput(_("A partner needs a name and a code."))
    with transaction.atomic():
        partner = Partner.objects.create(tenant=tenant, name=name[:200], code=code[:32])
        audit_record(tenant=tenant, actor=actor, action="partner.create", obj=partner, after={"code": code})
    return partner


# --- create ---------------------------------------------------------------------------------------------------

def partner_upload_create(*, tenant: Tenant, partner_code: str, inventory_public_id: str, uploaded: Any,
                          actor: Actor, user: Any = None, client: Any = None) -> tuple[PartnerUpload, bool]:
    """Store the file and start processing; the same file for the same inventory again → (the earlier upload, False)."""

    partner = Partner.objects.filter(tenant=tenant, code=(partner_code or "").strip().upper()).first()
    if partner is None:
        raise PartnerNotFound()
    inventory = CouponInventory.objects.filter(tenant=tenant, public_id=(inventory_public_id or "").strip().upper()
                                               ).first()
    if inventory is None:
        raise InventoryNotFound()
    if uploaded is None:
        raise InvalidInput(_("Attach the file of partner codes."), details={"field": "file"})
    if uploaded.size > MAX_FILE_BYTES:
        raise UploadTooLarge(_("The file has %(size)s bytes; at most %(max)s are accepted.")
                             % {"size": f"{uploaded.size:,}", "max": f"{MAX_FILE_BYTES:,}"})
    digest = hashlib.sha256()
    for block in uploaded.chunks():
        digest.update(block)
    sha256 = digest.hexdigest()
    earlier = PartnerUpload.objects.filter(tenant=tenant, inventory=inventory, sha256=sha256).first()
    if earlier is not None:
        # The same file again: the earlier upload — started again if a lost worker left it stuck (issue #18).
        partner_upload_resume_if_stuck(upload=earlier)
        return earlier, False
    name = Path(getattr(uploaded, "name", "") or "upload").name[:255]
    upload = PartnerUpload(tenant=tenant, partner=partner, inventory=inventory, sha256=sha256, size=uploaded.size,
                           original_name=name, created_by=user if getattr(user, "pk", None) else None, client=client)
    suffix = ".xlsx" if name.lower().endswith(".xlsx") else ".csv"
    upload.file.save(f"{upload.public_id}{suffix}", uploaded, save=False)
    try:
        with transaction.atomic():
            upload.save()
            audit_record(tenant=tenant, actor=actor, action="partner_upload.create", obj=upload,
                         after={"partner": partner.code, "inventory": inventory.public_id, "file": name,
                                "sha256": sha256, "size": uploaded.size})
            _after_commit(lambda: jobs.enqueue("uploads", "partners.jobs.process_upload", upload.pk, upload.tenant_id,
                                               tenant_id=upload.tenant_id))
    except IntegrityError:
        upload.file.delete(save=False)  # the same file arrived concurrently: that one wins
        return PartnerUpload.objects.get(tenant=tenant, inventory=inventory, sha256=sha256), False
    return upload, True


# --- stuck uploads (issue #18) ---------------------------------------------------------------------------------

def upload_work_key(upload_id: int) -> str:
    """The session advisory lock a worker holds while it processes the upload (core.locks)."""
    return f"partner_upload:{upload_id}"


def partner_upload_is_stuck(*, upload: PartnerUpload) -> bool:
    """PENDING or RUNNING, and no worker holds the upload's work lock (a killed worker's lock died with it). A PENDING
    upload younger than ``SWEEP_PENDING_GRACE`` is just waiting in its queue."""
    if upload.status == PartnerUpload.Status.PENDING:
        grace = getattr(settings, "COUPON_SWEEP_PENDING_GRACE_SECONDS", 120)
        if upload.created_at and (timezone.now() - upload.created_at).total_seconds() < grace:
            return False
    elif upload.status != PartnerUpload.Status.RUNNING:
        return False
    return not session_lock_held(upload_work_key(upload.pk))


def partner_upload_resume_if_stuck(*, upload: PartnerUpload, job_id: str | None = None) -> bool:
    """Queue the job that resumes a stuck upload from its last committed chunk; True if one was queued."""

    if not partner_upload_is_stuck(upload=upload):
        return False
    # RUNNING with every row processed is a reprocess (or a finish) that was cut off: processing finishes it as DONE,
    # and its remaining failures can be reprocessed again.
    jobs.enqueue("uploads", "partners.jobs.process_upload", upload.pk, upload.tenant_id, job_id=job_id,
                 tenant_id=upload.tenant_id)
    logger.warning("partner upload %s was stuck %s at %s of %s rows; resumed", upload.pk, upload.status,
                   upload.processed_rows, upload.rows)
    return True


# --- processing -----------------------------------------------------------------------------------------------

# Every statement of processing names the upload's tenant (issue #23): with tables distributed by tenant each one
# goes to one node. The upload's partner is loaded with it (its code names the upload in the audit log).

def _uploads(tenant_id: int) -> QuerySet[PartnerUpload]:
    return PartnerUpload.objects.filter(tenant_id=tenant_id, **joined_in_tenant(tenant_id, "partner")).select_related(
        "tenant", "partner")


def _in_tenant(upload: PartnerUpload) -> QuerySet[PartnerUpload]:
    """The upload's row, by its tenant and id."""
    return PartnerUpload.objects.filter(tenant_id=upload.tenant_id, pk=upload.pk)


def _reload(upload: PartnerUpload) -> None:
    upload.refresh_from_db(from_queryset=_uploads(upload.tenant_id))


def _reloaded(upload: PartnerUpload) -> PartnerUpload:
    return _uploads(upload.tenant_id).get(pk=upload.pk)


def _fail(upload: PartnerUpload, message: str) -> None:
    with transaction.atomic():
        changed = _in_tenant(upload).filter(status=PartnerUpload.Status.PENDING).update(
            status=PartnerUpload.Status.FAILED, error=message[:2000], finished_at=timezone.now())
        if changed:
            audit_record(tenant=upload.tenant, actor=Actor.job("partner_upload"), action="partner_upload.failed",
                         obj=upload, after={"error": message[:500]})


def _classify(items: Iterable[tuple[int, str, str, str, int | None]]) -> tuple[list[tuple[int, str, int | None]],
                                                                             list[Failure]]:
    """Rows → (candidates (line, code, failure id), failures) by format and duplicates within the chunk."""
    candidates: list[tuple[int, str, int | None]] = []
    failures: list[Failure] = []
    seen: dict[str, int] = {}
    for line, value, problem, detail, failure_id in items:
        if problem:
            failures.append(Failure(line, _clean(value), problem, detail[:300], failure_id))
            continue
        code, reason, message = partner_code_check(value)
        if reason:
            failures.append(Failure(line, _clean(value), reason, message, failure_id))
        elif code in seen:
            failures.append(Failure(line, _clean(value), Reason.DUPLICATE_IN_FILE,
                                    _("The same code is on line %(line)s.") % {"line": seen[code]}, failure_id))
        else:
            seen[code] = line
            candidates.append((line, code, failure_id))
    return candidates, failures


_CHUNK_TABLE = """CREATE TEMP TABLE IF NOT EXISTS partner_chunk (line integer NOT NULL, code text NOT NULL)
                   ON COMMIT DELETE ROWS"""

# Codes of the chunk a mapping already holds. LATERAL … LIMIT 1 keeps it one index probe per row of the chunk: the
# temporary table has no statistics, and a hash join would read every mapping of the tenant for every chunk.
_EARLIER = """
SELECT c.line, m.upload_id, m.line
  FROM partner_chunk c
  JOIN LATERAL (SELECT upload_id, line FROM partners_couponmapping
                 WHERE tenant_id = %(tenant)s AND partner_code = c.code LIMIT 1) m ON true
"""

# The fresh rows (all but the lines listed) take as many AVAILABLE codes of the inventory — FOR UPDATE SKIP LOCKED,
# so claims and other workers on the same inventory are neither blocked nor given the same code — paired in line
# order with code id order, and become mappings; set-based, in one statement. ``id > after`` starts the scan past
# the codes this job already took (a plain ORDER BY id walked the primary key over every code mapped by earlier
# chunks: quadratic in the file; the pool condition and order of ``coupons.pool`` keep the scan on the pool index);
# ``id = ANY(ARRAY(…))`` keeps the update an index probe per code. Answers how many
# were mapped (the first that many fresh lines) and the highest code id taken.
_MAP_FRESH = """
WITH picked AS (
    UPDATE coupons_couponcode SET status = 'MAPPED'
     WHERE tenant_id = %(tenant)s AND id = ANY(ARRAY(SELECT id FROM coupons_couponcode
                           WHERE """ + POOL_CONDITION + """ AND id > %(after)s
                           """ + POOL_ORDER + """ LIMIT %(n)s FOR UPDATE SKIP LOCKED))
    RETURNING id
), fresh AS (
    SELECT line, code, row_number() OVER (ORDER BY line) AS rn
      FROM partner_chunk WHERE NOT (line = ANY(%(skip)s::int[]))
), inserted AS (
    INSERT INTO partners_couponmapping (tenant_id, partner_id, upload_id, line, partner_code, coupon_id, created_at)
    SELECT %(tenant)s, %(partner)s, %(upload)s, f.line, f.code, n.id, %(now)s
      FROM fresh f JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM picked) n ON n.rn = f.rn
    RETURNING coupon_id
)
SELECT count(*), max(coupon_id) FROM inserted
"""


@dataclass
class _Pool:
    """Where this job's scan of the inventory's AVAILABLE codes goes on from (see ``_MAP_FRESH``)."""
    after: int = 0


def _map(upload: PartnerUpload, candidates: list[tuple[int, str, int | None]], values: dict[int, str],
         now: Any, pool: _Pool) -> tuple[list[tuple[int, str, int | None]], list[Failure]]:
    """Inside the chunk's transaction: COPY the candidates (line order) into a temporary table, find the codes mapped
    before (``_EARLIER``), map the rest set-based (``_MAP_FRESH``); the rows that did not map come back as failures
    (already uploaded, a duplicate of an earlier chunk of this file, pool exhausted)."""
    if not candidates:
        return [], []
    params = {"tenant": upload.tenant_id, "partner": upload.partner_id, "upload": upload.pk,
              "inventory": upload.inventory_id, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(_CHUNK_TABLE)
        cursor.execute("DELETE FROM partner_chunk")  # empty in production (ON COMMIT); tests never commit
        # Candidates passed partner_code_check: [A-Z0-9]{1,64}, nothing to escape in COPY text format.
        with cursor.copy("COPY partner_chunk (line, code) FROM STDIN") as copy:
            copy.write("".join(f"{line}\t{code}\n" for line, code, _id in candidates))
        cursor.execute(_EARLIER, params)
        earlier = {line: (upload_id, first_line) for line, upload_id, first_line in cursor.fetchall()}
        fresh = [c for c in candidates if c[0] not in earlier]
        taken = 0
        while taken < len(fresh):
            skip = list(earlier) + [c[0] for c in fresh[:taken]]
            cursor.execute(_MAP_FRESH, {**params, "n": len(fresh) - taken, "skip": skip, "after": pool.after})
            count, highest = cursor.fetchone()
            taken += count
            if count:
                pool.after = max(pool.after, highest)
            elif pool.after == 0:
                break  # the pool is exhausted
            else:
                pool.after = 0  # codes behind the scan (skipped while locked, or released since): look once more
    failures = []
    for line, _code, failure_id in candidates:
        if line in earlier:
            upload_id, first_line = earlier[line]
            if upload_id == upload.pk:
                failures.append(Failure(line, _clean(values[line]), Reason.DUPLICATE_IN_FILE,
                                        _("The same code is on line %(line)s.") % {"line": first_line}, failure_id))
            else:
                failures.append(Failure(line, _clean(values[line]), Reason.ALREADY_UPLOADED,
                                        _("This partner code was mapped by an earlier upload."), failure_id))
    for line, _code, failure_id in fresh[taken:]:
        failures.append(Failure(line, _clean(values[line]), Reason.POOL_EXHAUSTED,
                                _("The inventory has no AVAILABLE code left to map."), failure_id))
    return fresh[:taken], failures


def _insert_failures(upload: PartnerUpload, failures: list[Failure]) -> None:
    if not failures:
        return
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO partners_partneruploadfailure (tenant_id, upload_id, line, value, reason, message, corrected)
            SELECT %s, %s, t.line, t.value, t.reason, t.message, false
              FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[]) AS t(line, value, reason, message)""",
                       [upload.tenant_id, upload.pk, [f.line for f in failures], [f.value for f in failures],
                        [str(f.reason) for f in failures], [f.message for f in failures]])


def _commit_chunk(upload: PartnerUpload, rows: list[Row], expected: int, pool: _Pool) -> bool:
    """One chunk, one transaction. False when the upload is no longer where this worker expects it."""
    values = {row.line: row.value for row in rows}
    for attempt in range(2):
        candidates, failures = _classify((r.line, r.value, r.problem, r.detail, None) for r in rows)
        try:
            with transaction.atomic():
                state = _in_tenant(upload).select_for_update().values_list("status", "processed_rows").first()
                if state != (PartnerUpload.Status.RUNNING, expected):
                    return False
                mapped, more = _map(upload, candidates, values, timezone.now(), pool)
                failures += more
                _insert_failures(upload, failures)
                _in_tenant(upload).update(
                    processed_rows=F("processed_rows") + len(rows), mapped=F("mapped") + len(mapped),
                    failed=F("failed") + len(failures), error="")
            return True
        except IntegrityError:
            # A concurrent upload mapped one of these codes between our check and insert: retry, it now shows.
            if attempt:
                raise
    return False


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        yield chunk


def _finish(upload: PartnerUpload, action: str) -> None:
    with transaction.atomic():
        done = _in_tenant(upload).filter(status=PartnerUpload.Status.RUNNING, processed_rows=F("rows")).update(
            status=PartnerUpload.Status.DONE, finished_at=timezone.now())
        if done:
            _reload(upload)
            audit_record(tenant=upload.tenant, actor=Actor.job("partner_upload"), action=action, obj=upload,
                         after={"rows": upload.rows, "mapped": upload.mapped, "failed": upload.failed})


class UploadFileMissing(RuntimeError):
    """The upload's file is not in the file storage this process sees (issue #23: docs/design/hosts.md)."""


@contextmanager
def _local_file(upload: PartnerUpload) -> Iterator[Path]:
    """The upload's file as a local path, read through the file storage: the worker host that processes an upload is
    rarely the web host that received it (issue #23). On a file system storage (``DJANGO_MEDIA_ROOT``, which every
    host mounts) that is the stored file itself; a storage without local paths (object storage) is copied to a
    temporary file for the run (so is one whose path() names no local file, as Django's in-memory storage)."""
    storage, name = upload.file.storage, upload.file.name
    if not name or not storage.exists(name):
        message = (f"The file {name!r} of upload {upload.public_id} is not in the file storage of this host: the web "
                   "hosts and the worker hosts must share it (DJANGO_MEDIA_ROOT on a shared mount, or one object "
                   "storage; docs/design/hosts.md).")
        _in_tenant(upload).update(error=message)
        logger.error(message)
        raise UploadFileMissing(message)
    try:
        local: Path | None = Path(storage.path(name))
    except NotImplementedError:  # Django's Storage.path(): a storage without local files (object storage) says so
        local = None
    if local is not None and local.is_file():
        yield local
        return
    with tempfile.NamedTemporaryFile(prefix=f"upload-{upload.public_id}-", suffix=Path(name).suffix) as copy:
        with storage.open(name, "rb") as source:
            shutil.copyfileobj(source, copy, 1 << 20)
        copy.flush()
        yield Path(copy.name)


def partner_upload_process(*, upload_id: int, tenant_id: int) -> PartnerUpload:
    """Check the file, then map it chunk by chunk from ``processed_rows`` (resumes after a kill)."""
    upload = _uploads(tenant_id).get(pk=upload_id)
    with _local_file(upload) as path:
        return _process(upload, path)


def _process(upload: PartnerUpload, path: Path) -> PartnerUpload:
    fmt = detect_format(path, upload.original_name)
    if upload.status == PartnerUpload.Status.PENDING:
        try:
            rows = check_file(path, fmt)
        except FileRejected as exc:
            _fail(upload, str(exc))
            return _reloaded(upload)
        if rows == 0:
            _fail(upload, _("The file holds no partner codes (it is empty or has only a header)."))
            return _reloaded(upload)
        _in_tenant(upload).filter(status=PartnerUpload.Status.PENDING).update(
            status=PartnerUpload.Status.RUNNING, rows=rows, started_at=timezone.now())
        _reload(upload)
    if upload.status != PartnerUpload.Status.RUNNING or upload.processed_rows >= upload.rows:
        _finish(upload, "partner_upload.done")
        return _reloaded(upload)
    expected = upload.processed_rows
    committed = 0
    pool = _Pool()
    try:
        rows_iter = itertools.islice(open_rows(path, fmt), expected, None)
        for chunk in _chunks(rows_iter, CHUNK_ROWS):
            if not _commit_chunk(upload, chunk, expected, pool):
                return _reloaded(upload)  # another worker has this upload
            expected += len(chunk)
            committed += 1
            _after_chunk(committed)
    except Exception as exc:
        _in_tenant(upload).update(error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _finish(upload, "partner_upload.done")
    return _reloaded(upload)


# --- reprocess ------------------------------------------------------------------------------------------------

def partner_upload_reprocess(*, upload: PartnerUpload, actor: Actor, corrections: list[dict[str, Any]] | None = None
                             ) -> PartnerUpload:
    """Retry the failed rows of a finished upload; a corrected value replaces the original of its line."""

    fixes: dict[int, str] = {}
    for item in corrections or []:
        line, value = item.get("line"), item.get("value")
        if not isinstance(line, int) or isinstance(line, bool) or line < 1 or not isinstance(value, str):
            raise InvalidInput(_("Each corrected row is {\"line\": positive integer, \"value\": string}."))
        fixes[line] = value
    if len(fixes) > MAX_CORRECTIONS:
        raise InvalidInput(_("At most %(max)s corrected rows per request.") % {"max": f"{MAX_CORRECTIONS:,}"})
    with transaction.atomic():
        # The rows it always locked (the upload's and its tenant's), not the partner loaded with them.
        locked = _uploads(upload.tenant_id).select_for_update(of=("self", "tenant")).get(pk=upload.pk)
        if locked.status != PartnerUpload.Status.DONE and partner_upload_resume_if_stuck(upload=locked):
            raise UploadBusy(_("The upload was interrupted and has been resumed; reprocess it once it is done."),
                             details={"resumed": True})
        if locked.status != PartnerUpload.Status.DONE:
            raise UploadBusy(_("The upload is %(status)s; only a finished upload can be reprocessed.")
                             % {"status": locked.get_status_display()})
        if fixes:
            # No ordering: the model's default one (by upload) would join the upload table for a set of lines.
            known = set(PartnerUploadFailure.objects.filter(tenant_id=locked.tenant_id, upload=locked,
                                                            line__in=list(fixes)).order_by().values_list("line",
                                                                                                         flat=True))
            missing = sorted(set(fixes) - known)
            if missing:
                raise BadCorrection(details={"lines": missing[:20]})
            for line, value in fixes.items():
                PartnerUploadFailure.objects.filter(tenant_id=locked.tenant_id, upload=locked, line=line).update(
                    value=_clean(value), corrected=True)
        if not locked.failed:
            return locked
        _in_tenant(locked).update(status=PartnerUpload.Status.RUNNING, finished_at=None)
        audit_record(tenant=locked.tenant, actor=actor, action="partner_upload.reprocess", obj=locked,
                     after={"failed": locked.failed, "corrections": len(fixes)})
        _after_commit(lambda: jobs.enqueue("uploads", "partners.jobs.reprocess_upload", locked.pk, locked.tenant_id,
                                           tenant_id=locked.tenant_id))
    _reload(locked)
    return locked


def _retry_chunk(upload: PartnerUpload, batch: Sequence[Mapping[str, Any]], pool: _Pool) -> None:
    retry = [f for f in batch if f["corrected"] or f["reason"] not in _NEEDS_CORRECTION]
    if not retry:
        return
    values = {f["line"]: f["value"] for f in retry}
    by_line = {f["line"]: f for f in retry}
    candidates, failures = _classify((f["line"], f["value"], "", "", f["id"]) for f in retry)
    with transaction.atomic():
        state = _in_tenant(upload).select_for_update().values_list("status", flat=True).first()
        if state != PartnerUpload.Status.RUNNING:
            return
        mapped, more = _map(upload, candidates, values, timezone.now(), pool)
        failures += more
        gone = [m[2] for m in mapped]
        with connection.cursor() as cursor:
            if gone:
                cursor.execute("DELETE FROM partners_partneruploadfailure"
                               " WHERE tenant_id = %s AND upload_id = %s AND id = ANY(%s)",
                               [upload.tenant_id, upload.pk, gone])
                if cursor.rowcount != len(gone):
                    raise IntegrityError("failure rows changed during reprocess")
            changed = [f for f in failures if (f.reason, f.message) != (by_line[f.line]["reason"],
                                                                       by_line[f.line]["message"])]
            if changed:
                cursor.execute("""
                    UPDATE partners_partneruploadfailure f SET reason = t.reason, message = t.message
                      FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS t(id, reason, message)
                     WHERE f.tenant_id = %s AND f.id = t.id AND f.upload_id = %s""",
                               [[f.id for f in changed], [str(f.reason) for f in changed],
                                [f.message for f in changed], upload.tenant_id, upload.pk])
        _in_tenant(upload).update(mapped=F("mapped") + len(mapped), failed=F("failed") - len(mapped))


def partner_upload_retry_failures(*, upload_id: int, tenant_id: int) -> PartnerUpload:
    """The job behind reprocess: failures in line order, one chunk per transaction; mapped ones leave the list."""
    upload = _uploads(tenant_id).get(pk=upload_id)
    if upload.status != PartnerUpload.Status.RUNNING or upload.processed_rows != upload.rows:
        return upload
    last_line = 0
    pool = _Pool()
    while True:
        batch = list(PartnerUploadFailure.objects.filter(tenant_id=upload.tenant_id, upload=upload, line__gt=last_line)
                     .order_by("line")
                     .values("id", "line", "value", "reason", "message", "corrected")[:CHUNK_ROWS])
        if not batch:
            break
        last_line = batch[-1]["line"]
        _retry_chunk(upload, batch, pool)
    _finish(upload, "partner_upload.reprocessed")
    return _reloaded(upload)


def csv_template() -> bytes:
    return b"partner_code\nPARTNER0001\nPARTNER0002\n"

