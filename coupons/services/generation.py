"""Code generation for a batch, at 10M-code scale: streamed, resumable, with progress (R-CODE-1/2/3/5, R-NFR-1).

Invariant: a chunk's codes, its completion record and its Bloom bits (published first) commit together.
Design: docs/design/codes.md#coupons-services-generation.
"""
from __future__ import annotations

import logging
import math
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core import jobs, partitioning
from core.audit import Actor, audit_record
from core.exceptions import BusinessRuleViolation, DomainError, InvalidState
from core.locks import advisory_acquire, advisory_release
from coupons.bloom import BloomWriter, bloom_writer
from coupons.models import CouponBatch, CouponBatchChunk, CouponCode
from coupons.services.batch import batch_validate_parameters

logger = logging.getLogger("coupons.services.generation")

BATCH_LOCK_CLASS = 0x4350  # high half of a batch's generation lock key (batch_lock_key): one run per batch
MAX_CHUNK_ATTEMPTS = 5
# A sparse code space has at least this many possible codes per code that exists or is requested: the pre-check alone
# decides, and chunks partition the key space.
SPARSE_FACTOR = 64
MAX_DRAW_ROUNDS = 200
MAX_DENSE_DRAW = 500_000


class GenerationRefused(DomainError):
    """Raised before a run starts; nothing has been written."""

    code = "generation_refused"
    status = 422


class CodeSpaceExhausted(GenerationRefused, BusinessRuleViolation):
    code = "code_space_exhausted"
    default_message = gettext_lazy("There are not enough free codes of this format for the batch.")


class BatchAlreadyGenerated(GenerationRefused, InvalidState):
    code = "batch_already_generated"
    status = 409
    default_message = gettext_lazy("This batch's codes have all been generated.")


class GenerationRunning(InvalidState):
    code = "generation_running"
    default_message = gettext_lazy("This batch is being generated right now.")


class GenerationStalled(BusinessRuleViolation):
    code = "generation_stalled"
    default_message = gettext_lazy("Generation could not find enough new codes; see the batch's last error.")


# --- the code format and its space ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeFormat:
    prefix: str
    length: int
    alphabet: str

    @classmethod
    def of(cls, batch: CouponBatch) -> CodeFormat:
        batch_validate_parameters(quantity=batch.quantity, code_length=batch.code_length, alphabet=batch.alphabet,
                                  prefix=batch.prefix)
        return cls(prefix=batch.prefix, length=batch.code_length, alphabet=batch.alphabet)

    @property
    def space(self) -> int:
        return int(len(self.alphabet) ** self.length)

    @property
    def width(self) -> int:
        return len(self.prefix) + self.length

    def describe(self) -> str:
        prefix = f"prefix {self.prefix!r} + " if self.prefix else ""
        return f"{prefix}{self.length} characters from {self.alphabet!r} ({self.space:,} possible codes)"

    def regex(self) -> str:
        # The alphabet and prefix hold only A-Z and 0-9 (batch_validate_parameters): safe inside a regex as they are.
        return f"^{self.prefix}[{self.alphabet}]{{{self.length}}}$"


@dataclass(frozen=True)
class Plan:
    fmt: CodeFormat
    remaining: int
    sparse: bool
    free: int | None  # exact number of free codes of the format, counted only for dense spaces


def _max_code_id() -> int:
    # Every row has an identity id, so max(id) bounds the number of codes — of every tenant, so of this one too (codes
    # are unique per tenant since issue #23: an over-estimate, on the safe side); one index probe, not count(*).
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM coupons_couponcode")
        return int(cursor.fetchone()[0])


def generation_plan(batch: CouponBatch) -> Plan:
    """What a run of ``batch`` would do. Raises ``CodeSpaceExhausted`` (writing nothing) if it cannot succeed."""
    if batch.status == CouponBatch.Status.COMPLETED:
        raise BatchAlreadyGenerated(_("Batch %(batch)s already has its %(quantity)s codes.")
                                    % {"batch": batch.batch_code, "quantity": f"{batch.quantity:,}"})
    fmt = CodeFormat.of(batch)
    remaining = batch.quantity - batch.generated_count
    upper = _max_code_id()
    if fmt.space >= SPARSE_FACTOR * (upper + remaining):
        return Plan(fmt=fmt, remaining=remaining, sparse=True, free=None)
    with connection.cursor() as cursor:
        # Codes are unique per tenant (issue #23): only this tenant's codes take space from the format.
        cursor.execute("SELECT count(*) FROM coupons_couponcode WHERE tenant_id = %s AND code LIKE %s "
                       "AND length(code) = %s AND code ~ %s", [batch.tenant_id, f"{fmt.prefix}%", fmt.width,
                                                              fmt.regex()])
        existing = int(cursor.fetchone()[0])
    free = fmt.space - existing
    if remaining > free:
        raise CodeSpaceExhausted(
            _("Batch %(batch)s needs %(remaining)s more codes, but codes of %(format)s have only %(free)s left "
              "(%(existing)s exist already). Use longer codes, a larger alphabet or another prefix.") % {
                "batch": batch.batch_code, "remaining": f"{remaining:,}", "format": fmt.describe(),
                "free": f"{free:,}", "existing": f"{existing:,}"},
            details={"needed": remaining, "free": free, "space": fmt.space, "existing": existing},
        )
    return Plan(fmt=fmt, remaining=remaining, sparse=False, free=free)


# --- random candidates ---------------------------------------------------------------------------------------------


class _Drawer:
    """Uniform random codes of a format from the OS CSPRNG, optionally with leading symbols in a given range."""

    def __init__(self, fmt: CodeFormat) -> None:
        self.fmt = fmt
        self.base = len(fmt.alphabet)
        # Symbols in byte order, so that a range of leading digits is a contiguous range of sorted codes.
        self.symbols = np.frombuffer(bytes(sorted(fmt.alphabet.encode("ascii"))), np.uint8)

    def _digits(self, total: int) -> np.ndarray:
        base = self.base
        if base & (base - 1) == 0:
            return np.frombuffer(secrets.token_bytes(total), np.uint8) & np.uint8(base - 1)
        limit = 256 - 256 % base  # rejection sampling: byte % base is uniform only below this
        out = np.empty(total, np.uint8)
        filled = 0
        while filled < total:
            need = total - filled
            raw = np.frombuffer(secrets.token_bytes(need * 256 // limit + 64), np.uint8)
            ok = raw[raw < limit][:need]
            out[filled:filled + len(ok)] = ok % base
            filled += len(ok)
        return out

    def _ints(self, n: int, lo: int, hi: int) -> np.ndarray:
        span = hi - lo
        limit = (1 << 32) - (1 << 32) % span
        out = np.empty(n, np.uint64)
        filled = 0
        while filled < n:
            need = n - filled
            raw = np.frombuffer(secrets.token_bytes(4 * (need + need // 8 + 16)), np.uint32)
            ok = raw[raw < limit][:need].astype(np.uint64)
            out[filled:filled + len(ok)] = ok % np.uint64(span) + np.uint64(lo)
            filled += len(ok)
        return out

    def draw(self, n: int, lead: tuple[int, int, int] | None) -> np.ndarray:
        """``n`` random code bodies (without the prefix) as ``S<length>``; ``lead`` = (digits, lo, hi)."""
        length = self.fmt.length
        digits = self._digits(n * length).reshape(n, length)
        if lead is not None:
            places, lo, hi = lead
            value = self._ints(n, lo, hi)
            for place in range(places - 1, -1, -1):
                digits[:, place] = (value % np.uint64(self.base)).astype(np.uint8)
                value //= np.uint64(self.base)
        bodies: np.ndarray = self.symbols[digits].view(f"S{length}").ravel()
        return bodies


def _sort_keys(bodies: np.ndarray) -> np.ndarray:
    """Keys whose order is the byte order of the code bodies (integers for up to 8 bytes: much faster sorts)."""
    width = bodies.dtype.itemsize
    if width > 8:
        return bodies
    raw = np.zeros((len(bodies), 8), np.uint8)
    raw[:, :width] = bodies.view(np.uint8).reshape(len(bodies), width)
    return raw.view(">u8").ravel().astype(np.uint64)


def _distinct_in_draw_order(bodies: np.ndarray) -> np.ndarray:
    keys = _sort_keys(bodies)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.ones(len(bodies), bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    distinct: np.ndarray = bodies[np.sort(order[first])]
    return distinct


# --- chunks --------------------------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    no: int
    size: int
    lead: tuple[int, int, int] | None
    codes: np.ndarray = field(default_factory=lambda: np.empty(0, "S1"))  # full codes, sorted
    bloom_generation: int = 0
    rejected: int = 0
    attempts: int = 0


class _Run:
    """One generation run of one batch (main thread: the batch lock and the Bloom writer; worker threads: below)."""

    def __init__(self, batch: CouponBatch, plan: Plan, bloom: BloomWriter, actor: Actor,
                 progress: Callable[[int], None] | None) -> None:
        self.batch = batch
        self.plan = plan
        self.fmt = plan.fmt
        self.bloom = bloom
        self.actor = actor
        self.progress = progress
        self.drawer = _Drawer(plan.fmt)
        self.prefix = np.frombuffer(plan.fmt.prefix.encode("ascii"), np.uint8)
        self.head = f"{batch.tenant_id}\t{batch.inventory_id}\t{batch.pk}\t".encode("ascii")
        self.tail = b"\t" + CouponCode.Status.AVAILABLE.value.encode("ascii") + b"\n"
        self.copy_sql = "COPY coupons_couponcode (tenant_id, inventory_id, batch_id, code, status) FROM STDIN"
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.clock_lock = threading.Lock()
        self.last_commit = time.monotonic()
        self.inflight_lock = threading.Lock()
        self.inflight: dict[int, np.ndarray] = {}  # dense spaces: codes admitted but not yet committed
        self.filter_missed_codes = False  # set when the unique index refused codes the filter called absent
        self.stats = {"chunks": 0, "codes": 0, "rejected": 0, "retried_chunks": 0, "replaced_after_conflict": 0}

    # chunk plan ----------------------------------------------------------------------------------------------------

    def chunks(self, first_no: int) -> list[_Chunk]:
        remaining = self.plan.remaining
        count = max(1, math.ceil(remaining / settings.GENERATION_CHUNK_SIZE))
        sizes = [remaining // count + (1 if j < remaining % count else 0) for j in range(count)]
        places = 0
        if self.plan.sparse and count > 1:
            base = len(self.fmt.alphabet)
            places = 1
            while base ** places < 16 * count and places < self.fmt.length:
                places += 1
        span = len(self.fmt.alphabet) ** places
        return [_Chunk(no=first_no + j, size=sizes[j],
                       lead=(places, j * span // count, (j + 1) * span // count) if places else None)
                for j in range(count)]

    # building ------------------------------------------------------------------------------------------------------

    def _full(self, bodies: np.ndarray) -> np.ndarray:
        if not len(self.prefix):
            return bodies
        n, length = len(bodies), self.fmt.length
        raw = np.empty((n, self.fmt.width), np.uint8)
        raw[:, :len(self.prefix)] = self.prefix
        raw[:, len(self.prefix):] = bodies.view(np.uint8).reshape(n, length)
        return raw.view(f"S{self.fmt.width}").ravel()

    def _exists(self, full: np.ndarray) -> np.ndarray:
        """Dense spaces only: which of these codes exist in the database or in a chunk not yet committed."""
        codes = [c.decode("ascii") for c in full.tolist()]
        with connection.cursor() as cursor:
            cursor.execute("SELECT code FROM coupons_couponcode WHERE tenant_id = %s AND code = ANY(%s)",
                           [self.batch.tenant_id, codes])
            found = {r[0].encode("ascii") for r in cursor.fetchall()}
        exists = np.array([c in found for c in full.tolist()], bool)
        with self.inflight_lock:
            pending = [a for a in self.inflight.values() if len(a)]
        if pending:
            exists |= np.isin(full, np.concatenate(pending).astype(full.dtype))
        return exists

    def draw_admitted(self, size: int, lead: tuple[int, int, int] | None, chunk_no: int) -> tuple[np.ndarray, int]:
        """``size`` new full codes (unsorted), admitted through the Bloom writer; and how many candidates it refused."""
        taken: list[np.ndarray] = []
        have = rejected = 0
        overdraw = 1.0
        verify = None if self.plan.sparse else self._exists
        for _round in range(MAX_DRAW_ROUNDS):
            want = size - have
            if want == 0:
                break
            if self.stop.is_set():
                raise InterruptedError("generation stopped")
            # Dense spaces overdraw (most candidates are taken), capped so a round's arrays stay small.
            n_draw = want if self.plan.sparse else min(int(want * overdraw) + 16, max(want, MAX_DENSE_DRAW))
            drawn = self.drawer.draw(n_draw, lead)
            bodies = _distinct_in_draw_order(drawn)
            full = self._full(bodies)
            admitted = self.bloom.admit(full, verify=verify, limit=want, verify_all=self.filter_missed_codes)
            considered = (int(admitted[-1]) + 1) if len(admitted) == want else len(bodies)
            rejected += (n_draw - len(bodies)) + (considered - len(admitted))
            if len(admitted):
                part = full[admitted]
                taken.append(part)
                have += len(part)
                if verify is not None:
                    with self.inflight_lock:
                        current = self.inflight.get(chunk_no)
                        self.inflight[chunk_no] = part if current is None else np.concatenate([current, part])
            overdraw = min(64.0, max(1.0, n_draw / max(1, len(admitted))) * 1.2)
        if have < size:
            raise GenerationStalled(
                _("Batch %(batch)s: after %(rounds)d rounds only %(have)s of %(size)s new codes were found for chunk "
                  "%(chunk)d (%(format)s). The code space is nearly full, or the Bloom filter is far over its capacity "
                  "(run `manage.py rebuild_bloom` with a larger capacity).") % {
                    "batch": self.batch.batch_code, "rounds": MAX_DRAW_ROUNDS, "have": f"{have:,}",
                    "size": f"{size:,}", "chunk": chunk_no, "format": self.fmt.describe()})
        return (np.concatenate(taken) if len(taken) > 1 else taken[0]), rejected

    def build(self, chunk: _Chunk) -> _Chunk:
        started = time.monotonic()
        codes, rejected = self.draw_admitted(chunk.size, chunk.lead, chunk.no)
        logger.debug("chunk %s built in %.2fs", chunk.no, time.monotonic() - started)
        chunk.codes = codes[np.argsort(_sort_keys(codes), kind="stable")]
        chunk.rejected += rejected
        chunk.bloom_generation = self.bloom.generation
        return chunk

    def payload(self, codes: np.ndarray) -> memoryview:
        """The COPY text of a chunk: fixed-width rows assembled with numpy, no Python string per code."""
        n, width = len(codes), codes.dtype.itemsize
        head, tail = np.frombuffer(self.head, np.uint8), np.frombuffer(self.tail, np.uint8)
        rows = np.empty((n, len(head) + width + len(tail)), np.uint8)
        rows[:, :len(head)] = head
        rows[:, len(head):len(head) + width] = codes.view(np.uint8).reshape(n, width)
        rows[:, len(head) + width:] = tail
        return memoryview(rows.reshape(-1))  # type: ignore[arg-type]  # ndarray is a buffer; its stubs omit it

    # writing -------------------------------------------------------------------------------------------------------

    def write(self, chunk: _Chunk) -> None:
        while True:
            chunk.attempts += 1
            started = time.monotonic()
            self.bloom.publish(chunk.bloom_generation)  # bits first: a committed code is never "certainly absent"
            published = time.monotonic()
            try:
                self._commit(chunk)
                logger.debug("chunk %s published in %.2fs, committed in %.2fs", chunk.no, published - started,
                             time.monotonic() - published)
                chunk.codes = chunk.codes[:0]  # written: let the memory go (the plan keeps the chunk object)
                return
            except (IntegrityError, psycopg.errors.UniqueViolation) as exc:
                # COPY errors come straight from psycopg (Django does not wrap cursor.copy); the rest wrapped.
                cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
                if not isinstance(cause, psycopg.errors.UniqueViolation) or \
                        partitioning.parent_name(cause.diag.table_name or "") != "coupons_couponcode" or \
                        chunk.attempts >= MAX_CHUNK_ATTEMPTS:
                    raise
                self._replace_existing(chunk)

    def _commit(self, chunk: _Chunk) -> None:
        codes = chunk.codes
        with transaction.atomic():
            with connection.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                copy.write(self.payload(codes))
            with self.clock_lock:
                now = time.monotonic()
                duration_ms = max(1, int((now - self.last_commit) * 1000))
                self.last_commit = now
            CouponBatchChunk.objects.create(
                tenant_id=self.batch.tenant_id, batch_id=self.batch.pk,
                chunk_no=chunk.no, size=len(codes), first_code=codes[0].decode("ascii"),
                last_code=codes[-1].decode("ascii"), attempts=chunk.attempts, candidates_rejected=chunk.rejected,
                duration_ms=duration_ms, committed_at=timezone.now(),
            )
            updated = CouponBatch.objects.filter(pk=self.batch.pk, status=CouponBatch.Status.RUNNING).update(
                generated_count=F("generated_count") + len(codes))
            if updated != 1:
                raise InvalidState(_("Batch %(batch)s stopped running during generation.")
                                   % {"batch": self.batch.batch_code})
            audit_record(tenant=self.batch.tenant, actor=self.actor, action="batch.chunk_generated", obj=self.batch,
                         after={"chunk_no": chunk.no, "codes": len(codes), "attempts": chunk.attempts,
                                "rejected_candidates": chunk.rejected})
        with self.inflight_lock:
            self.inflight.pop(chunk.no, None)
        with self.clock_lock:
            self.stats["chunks"] += 1
            self.stats["codes"] += len(codes)
            self.stats["rejected"] += chunk.rejected
            self.stats["retried_chunks"] += chunk.attempts > 1
        if self.progress:
            self.progress(len(codes))

    def _replace_existing(self, chunk: _Chunk) -> None:
        """The unique index refused the chunk: swap the codes that exist by now for new ones, then retry."""
        codes = [c.decode("ascii") for c in chunk.codes.tolist()]
        with connection.cursor() as cursor:
            cursor.execute("SELECT code FROM coupons_couponcode WHERE tenant_id = %s AND code = ANY(%s)",
                           [self.batch.tenant_id, codes])
            existing = np.array([r[0].encode("ascii") for r in cursor.fetchall()], dtype=chunk.codes.dtype)
        del codes
        logger.info("batch %s chunk %s: %s codes exist already (attempt %s); replacing them",
                    self.batch.batch_code, chunk.no, len(existing), chunk.attempts)
        if len(existing):
            # The filter said these were absent: codes were written without their bits (a lost Redis, a writer that
            # bypassed bloom_adding). In a dense space, from now on every candidate is checked in the database, so
            # the next attempt cannot hit another hidden code; a sparse space makes such hits vanishingly rare.
            self.filter_missed_codes = not self.plan.sparse
            self.bloom.sync()  # whoever wrote them published their bits: see those before drawing again
            keep = chunk.codes[~np.isin(chunk.codes, existing)]
            fresh, rejected = self.draw_admitted(len(existing), chunk.lead, chunk.no)
            merged = np.concatenate([keep, fresh.astype(keep.dtype)])
            chunk.codes = merged[np.argsort(_sort_keys(merged), kind="stable")]
            chunk.rejected += rejected + len(existing)
            chunk.bloom_generation = self.bloom.generation
            with self.clock_lock:
                self.stats["replaced_after_conflict"] += len(existing)

    # threads -------------------------------------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        with self.clock_lock:
            self.errors.append(exc)
        self.stop.set()

    def _produce(self, plan: list[_Chunk], ready: queue.Queue[_Chunk | None], writers: int) -> None:
        try:
            for chunk in plan:
                if self.stop.is_set():
                    break
                self.build(chunk)
                while not self.stop.is_set():
                    try:
                        ready.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            if not isinstance(exc, InterruptedError):
                self._fail(exc)
        finally:
            for _writer in range(writers):
                ready.put(None)
            if threading.current_thread() is not threading.main_thread():
                connection.close()

    def _consume(self, ready: queue.Queue[_Chunk | None], own_connection: bool) -> None:
        try:
            while True:
                chunk = ready.get()
                if chunk is None or self.stop.is_set():
                    return
                self.write(chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._fail(exc)
        finally:
            if own_connection:
                connection.close()

    def execute(self, first_no: int) -> None:
        plan = self.chunks(first_no)
        writers = max(1, min(settings.GENERATION_WRITERS, len(plan)))
        ready: queue.Queue[_Chunk | None] = queue.Queue(maxsize=writers)
        producer = threading.Thread(target=self._produce, args=(plan, ready, writers), name="gen-producer",
                                    daemon=True)
        producer.start()
        threads = [threading.Thread(target=self._consume, args=(ready, True), name=f"gen-writer-{i}", daemon=True)
                   for i in range(writers - 1)]
        for thread in threads:
            thread.start()
        self._consume(ready, own_connection=False)  # the main thread is a writer too
        for thread in threads:
            thread.join()
        self.stop.set()  # a writer failed: the producer stops at its next check
        while producer.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                pass
            producer.join(timeout=0.1)
        if self.errors:
            raise self.errors[0]


# --- services ------------------------------------------------------------------------------------------------------


def batch_lock_key(batch_id: int) -> int:
    """The advisory-lock key of a batch's generation run: BATCH_LOCK_CLASS in the high 32 bits, the id below."""
    return (BATCH_LOCK_CLASS << 32) | (batch_id % (1 << 31))


def _batch_lock(batch_id: int) -> bool:
    return advisory_acquire(batch_lock_key(batch_id), wait=False)


def _batch_unlock(batch_id: int) -> None:
    advisory_release(batch_lock_key(batch_id))


def batch_generation_running(batch_id: int) -> bool:
    """True while some process holds the batch's generation lock (a killed worker's lock dies with its connection)."""
    if not _batch_lock(batch_id):
        return True
    _batch_unlock(batch_id)
    return False


def _actor_dict(actor: Actor) -> dict[str, str]:
    return {"type": actor.type, "id": actor.id, "label": actor.label}


def batch_start_generation(*, batch: CouponBatch, actor: Actor) -> CouponBatch:
    """Check that ``batch`` can be generated and enqueue the job (on commit). Raises, writing nothing, if not."""
    batch = CouponBatch.objects.select_related("tenant").get(pk=batch.pk)
    if batch_generation_running(batch.pk):
        raise GenerationRunning(_("Batch %(batch)s is being generated right now (%(generated)s of %(quantity)s).")
                                % {"batch": batch.batch_code, "generated": f"{batch.generated_count:,}",
                                   "quantity": f"{batch.quantity:,}"})
    plan = generation_plan(batch)
    with transaction.atomic():
        locked = CouponBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status == CouponBatch.Status.COMPLETED:
            raise BatchAlreadyGenerated(_("Batch %(batch)s already has its %(quantity)s codes.")
                                        % {"batch": locked.batch_code, "quantity": f"{locked.quantity:,}"})
        audit_record(tenant=batch.tenant, actor=actor, action="batch.generation_requested", obj=locked,
                     after={"remaining": plan.remaining, "status": locked.status,
                            "generated_count": locked.generated_count})
        transaction.on_commit(lambda: jobs.enqueue("generation", "coupons.jobs.generate_batch_job", batch.pk,
                                                 _actor_dict(actor)))
    return locked


def _mark_running(batch: CouponBatch, actor: Actor) -> CouponBatch:
    with transaction.atomic():
        locked = CouponBatch.objects.select_for_update().get(pk=batch.pk)
        resumed = locked.generated_count > 0 or locked.status != CouponBatch.Status.PENDING
        before = {"status": locked.status, "generated_count": locked.generated_count}
        locked.status = CouponBatch.Status.RUNNING
        locked.started_at = locked.started_at or timezone.now()
        locked.finished_at = None
        locked.last_error = ""
        locked.save(update_fields=["status", "started_at", "finished_at", "last_error"])
        audit_record(tenant=locked.tenant, actor=actor,
                     action="batch.generation_resumed" if resumed else "batch.generation_started", obj=locked,
                     before=before, after={"status": locked.status, "quantity": locked.quantity})
    return locked


def _mark_completed(batch: CouponBatch, actor: Actor, stats: dict[str, Any]) -> CouponBatch:
    with transaction.atomic():
        updated = CouponBatch.objects.filter(pk=batch.pk, status=CouponBatch.Status.RUNNING,
                                             generated_count=F("quantity")).update(
            status=CouponBatch.Status.COMPLETED, finished_at=timezone.now())
        if updated != 1:
            current = CouponBatch.objects.get(pk=batch.pk)
            raise InvalidState(_("Batch %(batch)s cannot complete: %(status)s, %(generated)s of %(quantity)s codes.")
                               % {"batch": current.batch_code, "status": current.status,
                                  "generated": f"{current.generated_count:,}", "quantity": f"{current.quantity:,}"})
        completed = CouponBatch.objects.select_related("tenant").get(pk=batch.pk)
        audit_record(tenant=completed.tenant, actor=actor, action="batch.generation_completed", obj=completed,
                     after={"status": completed.status, "generated_count": completed.generated_count, **stats})
    return completed


def batch_generation_failed(*, batch_id: int, message: str, actor: Actor) -> None:
    """Record that generation of a batch failed (status FAILED, ``last_error``): the console shows it; a re-run resumes."""
    with transaction.atomic():
        locked = CouponBatch.objects.select_related("tenant").select_for_update(of=("self",)).get(pk=batch_id)
        if locked.status == CouponBatch.Status.COMPLETED:
            return
        before = {"status": locked.status}
        locked.status = CouponBatch.Status.FAILED
        locked.last_error = message[:4000]
        locked.save(update_fields=["status", "last_error"])
        audit_record(tenant=locked.tenant, actor=actor, action="batch.generation_failed", obj=locked, before=before,
                     after={"status": locked.status, "generated_count": locked.generated_count,
                            "error": message[:500]})


def batch_generate(*, batch_id: int, actor: Actor, progress: Callable[[int], None] | None = None) -> CouponBatch:
    """Generate the batch's missing codes (all of them, or the rest after a crash). The ``generation`` job.

    Raises ``GenerationRunning`` if another process is on it, ``GenerationRefused`` (writing nothing) if it cannot
    start; any later failure marks the batch FAILED, keeps the committed chunks, and is raised for a retry.
    """
    if not _batch_lock(batch_id):
        raise GenerationRunning()
    try:
        batch = CouponBatch.objects.select_related("tenant").get(pk=batch_id)
        if batch.status == CouponBatch.Status.COMPLETED:
            return batch
        plan = generation_plan(batch)
        batch = _mark_running(batch, actor)
        try:
            if plan.remaining > 0:
                with bloom_writer(batch.tenant_id, need=plan.remaining) as bloom:
                    run = _Run(batch, plan, bloom, actor, progress)
                    last = CouponBatchChunk.objects.filter(batch_id=batch_id).aggregate(n=Max("chunk_no"))["n"]
                    run.execute(first_no=0 if last is None else last + 1)
                    stats = {**run.stats, "bloom_merges": bloom.merges, "bloom_refreshes": bloom.refreshes}
            else:
                stats = {}
            completed = _mark_completed(batch, actor, stats)
        except BaseException as exc:
            message = exc.message if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
            logger.exception("generation of batch %s failed", batch.batch_code)
            try:
                batch_generation_failed(batch_id=batch_id, message=message, actor=actor)
            except Exception:
                logger.exception("could not record the failure of batch %s", batch.batch_code)
            raise
        if plan.remaining > 0:
            analyze_codes_of(batch)
        return completed
    finally:
        _batch_unlock(batch_id)


def analyze_codes_of(batch: CouponBatch) -> None:
    """``ANALYZE`` the table (on the partitioned layout: the partition) the batch's codes went to, once they are all
    in: a bulk load leaves the statistics of a table without them until autovacuum gets to it, and a claim's cached
    generic plan is made from the statistics it finds. A pool the statistics don't know looks empty, and that plan
    sorts the whole pool on every claim to find its first free code instead of reading the pool index
    (``tests/coupons/test_pool_pick_plan.py``) — at an event's opening, which is when a pool is new. Only the
    tenant's partition: its sample is a sixteenth of the table's. Through ``coupons_analyze_codes`` (migration
    coupons 0012), which runs as the tables' owner: the app role owns no table, and ANALYZE needs the owner. A
    failure is logged, not raised: the batch is complete, and autovacuum analyzes the table later anyway."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:  # a savepoint when a caller's transaction is open
            cursor.execute("SELECT coupons_analyze_codes(%s, %s)", [batch.tenant_id, batch.pk])
    except DatabaseError:
        logger.exception("could not analyze the codes of batch %s", batch.batch_code)


# --- progress (read) -----------------------------------------------------------------------------------------------


def generation_percent(batch: CouponBatch) -> float:
    """Codes committed so far, in percent; 100 only once the batch is COMPLETED, so the figure never says "done"
    while the status still says pending or running (issue #20: a bar at 100 % beside a status of 대기)."""
    if batch.status == CouponBatch.Status.COMPLETED:
        return 100.0
    if not batch.quantity:
        return 0.0
    return min(round(100 * batch.generated_count / batch.quantity, 1), 99.9)


def batch_generation_progress(batch: CouponBatch) -> dict[str, Any]:
    """Progress of a batch for the console and the command: counts, percent, rate (codes/s) and ETA."""
    recent = list(CouponBatchChunk.objects.filter(batch_id=batch.pk).order_by("-chunk_no")
                  .values("size", "duration_ms", "committed_at", "attempts")[:5])
    rate = None
    if recent:
        seconds = sum(c["duration_ms"] for c in recent) / 1000
        rate = round(sum(c["size"] for c in recent) / seconds) if seconds > 0 else None
    remaining = batch.quantity - batch.generated_count
    running = batch.status == CouponBatch.Status.RUNNING
    return {
        "batch": batch.batch_code,
        "status": batch.status,
        "generated_count": batch.generated_count,
        "quantity": batch.quantity,
        "percent": generation_percent(batch),
        "rate_per_second": rate,
        "eta_seconds": round(remaining / rate) if rate and running and remaining else None,
        "chunks": CouponBatchChunk.objects.filter(batch_id=batch.pk).count(),
        "last_chunk_at": recent[0]["committed_at"].isoformat() if recent else None,
        "last_error": batch.last_error,
        "started_at": batch.started_at.isoformat() if batch.started_at else None,
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
    }
