"""One Bloom filter per tenant over that tenant's coupon codes, shared by all processes (R-CODE-3, R-RISK-4, #23).

Invariant: a code's bits are published to its tenant's filter before the transaction that inserts it commits; bits
are only OR-ed in.
Design: docs/design/codes.md#coupons-bloom.
"""
from __future__ import annotations

import fcntl
import logging
import math
import mmap
import os
import secrets
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from core.locks import advisory_acquire, advisory_release, lock_key, session_lock
import redis
from core import redis as core_redis

logger = logging.getLogger("coupons.bloom")

MAX_CODE_BYTES = 48  # coupons_couponcode.code is varchar(48)
PIECE_BYTES = 8 << 20  # the filter is read and compared in pieces: bounded extra memory, no 69 MiB temporaries

_MASK = (1 << 64) - 1
_C1, _C2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53  # MurmurHash3 fmix64 constants
_S1, _S2 = 0x9E3779B97F4A7C15, 0xD1B54A32D192ED03


class BloomUnavailable(RuntimeError):
    """The shared filter is missing or was rebuilt under a running writer: its bits cannot be merged safely."""


# --- parameters and hashing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BloomParams:
    m: int  # bits
    k: int  # probes per code
    seed: int  # 64-bit hash seed of this build
    epoch: str  # id of this build; a writer's merge is refused if the filter was rebuilt since it read it
    capacity: int
    error_rate: float

    @classmethod
    def sized(cls, capacity: int, error_rate: float) -> BloomParams:
        m = math.ceil(-capacity * math.log(error_rate) / (math.log(2) ** 2))
        m = (m + 63) // 64 * 64
        if m >= 1 << 32:
            raise ValueError(f"a filter for {capacity} codes at {error_rate} needs {m / 8 / 2**20:.0f} MiB; "
                             "the most is 512 MiB (2^32 bits)")
        k = max(1, round(m / capacity * math.log(2)))
        return cls(m=m, k=k, seed=secrets.randbits(64), epoch=secrets.token_hex(8), capacity=capacity,
                   error_rate=error_rate)

    @property
    def nbytes(self) -> int:
        return self.m // 8

    def as_strings(self) -> dict[str, str]:
        return {"m": str(self.m), "k": str(self.k), "seed": str(self.seed), "epoch": self.epoch,
                "capacity": str(self.capacity), "error_rate": repr(self.error_rate)}

    @classmethod
    def from_strings(cls, data: dict[str, str]) -> BloomParams:
        return cls(m=int(data["m"]), k=int(data["k"]), seed=int(data["seed"]), epoch=data["epoch"],
                   capacity=int(data["capacity"]), error_rate=float(data["error_rate"]))


def _fmix_py(h: int) -> int:
    h ^= h >> 33
    h = (h * _C1) & _MASK
    h ^= h >> 33
    h = (h * _C2) & _MASK
    return h ^ (h >> 33)


def _fmix_np(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h *= np.uint64(_C1)
    h ^= h >> np.uint64(33)
    h *= np.uint64(_C2)
    h ^= h >> np.uint64(33)
    return h


def hash_one(code: bytes, seed: int) -> tuple[int, int]:
    """The two 64-bit hashes of one code (pure Python; identical to ``hash_codes``)."""
    padded = code + b"\0" * (-len(code) % 8)
    h = seed
    for j in range(0, len(padded), 8):
        h = _fmix_py(h ^ _fmix_py(int.from_bytes(padded[j:j + 8], "little")))
    return _fmix_py(h ^ _S1), _fmix_py(h ^ _S2) | 1


def hash_codes(codes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The two 64-bit hashes of each code of a fixed-width bytes array (dtype ``S<n>``).

    Codes are hashed as little-endian 8-byte words of the code zero-padded to a multiple of 8; all-zero words (only
    padding can be: codes hold no NUL) are skipped, so a code hashes the same in an ``S8`` and an ``S48`` array.
    """
    n, width = len(codes), codes.dtype.itemsize
    words_per_code = -(-width // 8)
    raw = np.ascontiguousarray(codes).view(np.uint8).reshape(n, width)
    if width % 8:
        padded = np.zeros((n, words_per_code * 8), np.uint8)
        padded[:, :width] = raw
        raw = padded
    words = raw.view("<u8").reshape(n, words_per_code)
    h = np.full(n, seed, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words_per_code):
            w = np.ascontiguousarray(words[:, j])
            mixed = _fmix_np(h ^ _fmix_np(w))
            h = mixed if j == 0 else np.where(w != 0, mixed, h)
        h1 = _fmix_np(h ^ np.uint64(_S1))
        h2 = _fmix_np(h ^ np.uint64(_S2)) | np.uint64(1)
    return h1, h2


def _probe_np(h1: np.ndarray, h2: np.ndarray, i: int, m: int) -> np.ndarray:
    # Double hashing (Kirsch–Mitzenmacher); the top 32 bits of each probe are scaled onto [0, m) without a modulo.
    with np.errstate(over="ignore"):
        x = h1 + np.uint64(i) * h2
    return ((x >> np.uint64(32)) * np.uint64(m)) >> np.uint64(32)


def offsets_one(code: bytes, params: BloomParams) -> list[int]:
    h1, h2 = hash_one(code, params.seed)
    return [((((h1 + i * h2) & _MASK) >> 32) * params.m) >> 32 for i in range(params.k)]


def as_code_array(codes: Iterable[str]) -> np.ndarray:
    """Codes as a fixed-width bytes array, the form every bulk function here takes."""
    return np.array([c.encode("utf-8") for c in codes], dtype=f"S{MAX_CODE_BYTES}")


class BitArray:
    """The filter's bits in process memory, with bulk membership test and insert (numpy, no Python loop per code).

    Bit ``p`` is bit ``p & 7`` (least significant first) of byte ``p >> 3``. Redis's GETBIT counts from the most
    significant bit, so the backends store these bytes verbatim and single-code lookups read bytes (``_bit_is_set``),
    never GETBIT/SETBIT.
    """

    def __init__(self, params: BloomParams, bits: np.ndarray | None = None) -> None:
        self.params = params
        self.bits = np.zeros(params.nbytes, np.uint8) if bits is None else bits

    def absent(self, codes: np.ndarray) -> np.ndarray:
        """True where the code is certainly not in the filter. Stops probing a code at its first zero bit."""
        h1, h2 = hash_codes(codes, self.params.seed)
        alive = np.arange(len(codes))
        for i in range(self.params.k):
            if not len(alive):
                break
            p = _probe_np(h1[alive], h2[alive], i, self.params.m)
            hit = (self.bits[p >> np.uint64(3)] >> (p & np.uint64(7)).astype(np.uint8)) & np.uint8(1)
            alive = alive[hit.astype(bool)]
        result = np.ones(len(codes), bool)
        result[alive] = False
        return result

    def add(self, codes: np.ndarray) -> None:
        if not len(codes):
            return
        h1, h2 = hash_codes(codes, self.params.seed)
        for i in range(self.params.k):
            p = _probe_np(h1, h2, i, self.params.m)
            self._set(p >> np.uint64(3), np.left_shift(np.uint8(1), (p & np.uint64(7)).astype(np.uint8)))

    def _set(self, byte: np.ndarray, mask: np.ndarray) -> None:
        # Not ``bits[byte] |= mask``: with a repeated index that keeps only the last write and loses bits.
        np.bitwise_or.at(self.bits, byte, mask)


def _bit_is_set(data: bytes | memoryview, offset_in_data: int, bit: int) -> bool:
    return bool((data[offset_in_data] >> bit) & 1)


# --- backends ------------------------------------------------------------------------------------------------------


def redis_base_key(key: str) -> str:
    """The filter's key with a Redis Cluster hash tag: ``{<key>}`` unless ``key`` already holds one. Its bits, its
    parameters and the temporary keys of a merge or a build share the tag, so the scripts touching several of them
    run in one slot (issue #23; docs/design/redis-cluster.md). A filter made before the tag (``<key>:bits``) is not
    read any more: writers rebuild a missing filter, and ``rebuild_bloom`` removes the untagged keys."""
    start = key.find("{")
    if start >= 0 and key.find("}", start + 1) > start + 1:  # Redis's rule: the first {, then a non-empty tag
        return key
    return f"{{{key}}}"


class RedisBloomStore:
    """The bits in one Redis string ``<key>:bits``, the parameters and counters in a hash ``<key>:meta``.

    ``key`` is a tenant's (``store_location``): it carries the tenant's ``{t<id>}`` hash tag (``redis_base_key``
    adds one to a key without), so these two keys and the temporary ``<key>:merge:…`` / ``<key>:build:…`` keys the
    scripts touch share one cluster slot."""

    _MERGE = """
    local epoch = redis.call('HGET', KEYS[2], 'epoch')
    if (not epoch) or redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) return {-1, 0} end
    if epoch ~= ARGV[1] then redis.call('DEL', KEYS[3]) return {-2, 0} end
    redis.call('BITOP', 'OR', KEYS[1], KEYS[1], KEYS[3])
    redis.call('DEL', KEYS[3])
    redis.call('HINCRBY', KEYS[2], 'count', ARGV[2])
    local after = redis.call('HINCRBY', KEYS[2], 'version', 1)
    return {after - 1, after}
    """
    # Sets single bits (byte offset, bit mask pairs) for small additions; same refusal rules as _MERGE.
    _ADD = """
    local epoch = redis.call('HGET', KEYS[2], 'epoch')
    if (not epoch) or redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
    if epoch ~= ARGV[1] then return -2 end
    for i = 3, #ARGV, 2 do
        local off = tonumber(ARGV[i])
        local cur = redis.call('GETRANGE', KEYS[1], off, off)
        local b = string.byte(cur)
        local want = bit.bor(b, tonumber(ARGV[i + 1]))
        if want ~= b then redis.call('SETRANGE', KEYS[1], off, string.char(want)) end
    end
    redis.call('HINCRBY', KEYS[2], 'count', ARGV[2])
    return redis.call('HINCRBY', KEYS[2], 'version', 1)
    """
    # Swaps a finished build in: KEYS = build, bits, meta; ARGV = the parameters' field, value pairs. A script rather
    # than MULTI: a cluster client's pipelines refuse RENAME (redis-py), a script on one slot does not.
    _INSTALL = """
    redis.call('RENAME', KEYS[1], KEYS[2])
    redis.call('PERSIST', KEYS[2])
    redis.call('DEL', KEYS[3])
    redis.call('HSET', KEYS[3], unpack(ARGV))
    return 1
    """

    # One code's probe: KEYS = bits, meta; ARGV = the epoch, then Redis bit numbers (most significant bit first).
    # 1 = every bit set, 0 = one is not (stops at the first), -1 = another filter than the caller's parameters, or
    # the bits are gone (evicted, deleted) while the parameters stayed: the caller re-reads them and fails open (#21:
    # one command instead of a pipeline of one HGET and a GETRANGE per probe).
    _TEST = """
    if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
    for i = 2, #ARGV do
        if redis.call('GETBIT', KEYS[1], ARGV[i]) == 0 then return 0 end
    end
    return 1
    """

    def __init__(self, key: str, client: Any = None) -> None:
        self.key = redis_base_key(key)
        self.legacy_keys = [f"{key}:bits", f"{key}:meta"] if self.key != key else []  # before the hash tag
        self.bits_key, self.meta_key = f"{self.key}:bits", f"{self.key}:meta"
        self.redis = client if client is not None else _redis_client()
        self._merge = self.redis.register_script(self._MERGE)
        self._add = self.redis.register_script(self._ADD)
        self._install = self.redis.register_script(self._INSTALL)
        self._test = self.redis.register_script(self._TEST)
        self._redis_error = redis.RedisError

    def describe(self) -> str:
        return f"redis key {self.key}"

    def params(self) -> BloomParams | None:
        meta = {k.decode(): v.decode() for k, v in self.redis.hgetall(self.meta_key).items()}
        if "epoch" not in meta or not self.redis.exists(self.bits_key):
            return None
        return BloomParams.from_strings(meta)

    def stats(self) -> dict[str, Any]:
        meta = {k.decode(): v.decode() for k, v in self.redis.hgetall(self.meta_key).items()}
        return {"count": int(meta.get("count", 0)), "version": int(meta.get("version", 0))}

    def pieces(self, params: BloomParams) -> Iterator[tuple[int, bytes]]:
        for start in range(0, params.nbytes, PIECE_BYTES):
            end = min(start + PIECE_BYTES, params.nbytes)
            yield start, self.redis.getrange(self.bits_key, start, end - 1)
        self._check_epoch(params)

    def version(self, params: BloomParams) -> int:
        self._check_epoch(params)
        return int(self.redis.hget(self.meta_key, "version") or 0)

    def _check_epoch(self, params: BloomParams) -> None:
        if (self.redis.hget(self.meta_key, "epoch") or b"").decode() != params.epoch:
            raise BloomUnavailable(f"the Bloom filter ({self.describe()}) is missing or was rebuilt")

    def merge(self, params: BloomParams, bits: np.ndarray, added: int) -> tuple[int, int]:
        tmp = f"{self.key}:merge:{uuid.uuid4().hex}"
        self.redis.set(tmp, memoryview(bits), ex=600)
        before, after = self._merge(keys=[self.bits_key, self.meta_key, tmp], args=[params.epoch, added])
        if before < 0:
            raise BloomUnavailable(f"the Bloom filter ({self.describe()}) is missing or was rebuilt; "
                                   "run `manage.py rebuild_bloom` (or re-run the job: it rebuilds a missing filter)")
        return int(before), int(after)

    def add_bits(self, params: BloomParams, byte_masks: dict[int, int], added: int) -> None:
        args: list[Any] = [params.epoch, added]
        for off, mask in byte_masks.items():
            args += [off, mask]
        if self._add(keys=[self.bits_key, self.meta_key], args=args) < 0:
            raise BloomUnavailable(f"the Bloom filter ({self.describe()}) is missing or was rebuilt")

    def install(self, params: BloomParams, bits: np.ndarray, count: int) -> None:
        tmp = f"{self.key}:build:{uuid.uuid4().hex}"
        self.redis.set(tmp, memoryview(bits), ex=3600)
        meta = {**params.as_strings(), "count": str(count), "version": "1", "built_at": str(int(time.time()))}
        # PERSIST: RENAME keeps the build key's safety TTL.
        self._install(keys=[tmp, self.bits_key, self.meta_key], args=[v for pair in meta.items() for v in pair])
        for legacy in self.legacy_keys:  # one key per command: the untagged keys are in other slots
            self.redis.delete(legacy)

    def test(self, params: BloomParams, offsets: list[int]) -> bool | None:
        """True/False for one code's probe offsets; None when the filter is not the one ``params`` describe."""
        # Our bit b of a byte is its (1 << b) (_bit_is_set); Redis numbers a byte's bits from the most significant.
        answer = self._test(keys=[self.bits_key, self.meta_key],
                            args=[params.epoch, *((off & ~7) + 7 - (off & 7) for off in offsets)])
        return None if answer == -1 else answer == 1

    def drop(self) -> None:
        self.redis.delete(self.bits_key, self.meta_key)


class FileBloomStore:
    """The bits in a memory-mapped file: a 4 KiB header (parameters, counters, a superseded flag), then the bits."""

    HEADER = 4096
    MAGIC = b"CPNBLM01"
    # magic, m, k, seed, epoch(16 ascii), capacity, error_rate | count, version, superseded
    _FIXED = struct.Struct("<8sQQQ16sQd")
    _COUNTERS_AT = 128
    _COUNTERS = struct.Struct("<QQQ")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_suffix(path.suffix + ".lock")
        self._reader: tuple[mmap.mmap, BloomParams] | None = None
        self._reader_lock = threading.Lock()

    def describe(self) -> str:
        return f"file {self.path}"

    @classmethod
    def _read_header(cls, mm: mmap.mmap) -> tuple[BloomParams, int, int, int]:
        magic, m, k, seed, epoch, capacity, error_rate = cls._FIXED.unpack_from(mm, 0)
        if magic != cls.MAGIC:
            raise BloomUnavailable("not a Bloom filter file")
        count, version, superseded = cls._COUNTERS.unpack_from(mm, cls._COUNTERS_AT)
        return BloomParams(m=m, k=k, seed=seed, epoch=epoch.decode(), capacity=capacity,
                           error_rate=error_rate), count, version, superseded

    @contextmanager
    def _open(self, writable: bool = False) -> Iterator[mmap.mmap | None]:
        try:
            fd = os.open(self.path, os.O_RDWR if writable else os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            mm = mmap.mmap(fd, 0, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        finally:
            os.close(fd)
        try:
            yield mm
        finally:
            mm.close()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def params(self) -> BloomParams | None:
        with self._open() as mm:
            if mm is None:
                return None
            params, _, _, superseded = self._read_header(mm)
            return None if superseded else params

    def stats(self) -> dict[str, Any]:
        with self._open() as mm:
            if mm is None:
                return {"count": 0, "version": 0}
            _, count, version, _ = self._read_header(mm)
            return {"count": count, "version": version}

    def _checked(self, mm: mmap.mmap | None, params: BloomParams) -> tuple[int, int]:
        if mm is None:
            raise BloomUnavailable(f"the Bloom filter ({self.describe()}) is missing")
        current, count, version, superseded = self._read_header(mm)
        if superseded or current.epoch != params.epoch:
            raise BloomUnavailable(f"the Bloom filter ({self.describe()}) was rebuilt")
        return count, version

    def pieces(self, params: BloomParams) -> Iterator[tuple[int, bytes]]:
        with self._open() as mm:
            self._checked(mm, params)
            assert mm is not None
            for start in range(0, params.nbytes, PIECE_BYTES):
                end = min(start + PIECE_BYTES, params.nbytes)
                yield start, mm[self.HEADER + start:self.HEADER + end]

    def version(self, params: BloomParams) -> int:
        with self._open() as mm:
            return self._checked(mm, params)[1]

    def merge(self, params: BloomParams, bits: np.ndarray, added: int) -> tuple[int, int]:
        with self._locked(), self._open(writable=True) as mm:
            count, version = self._checked(mm, params)
            assert mm is not None
            shared = np.frombuffer(mm, np.uint8, count=params.nbytes, offset=self.HEADER)
            np.bitwise_or(shared, bits, out=shared)
            del shared
            self._COUNTERS.pack_into(mm, self._COUNTERS_AT, count + added, version + 1, 0)
            mm.flush()  # the bits must be durable before the codes they cover are committed
            return version, version + 1

    def add_bits(self, params: BloomParams, byte_masks: dict[int, int], added: int) -> None:
        with self._locked(), self._open(writable=True) as mm:
            count, version = self._checked(mm, params)
            assert mm is not None
            for off, mask in byte_masks.items():
                mm[self.HEADER + off] |= mask
            self._COUNTERS.pack_into(mm, self._COUNTERS_AT, count + added, version + 1, 0)
            mm.flush()

    def install(self, params: BloomParams, bits: np.ndarray, count: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.tmp")
        header = bytearray(self.HEADER)
        self._FIXED.pack_into(header, 0, self.MAGIC, params.m, params.k, params.seed, params.epoch.encode(),
                              params.capacity, params.error_rate)
        self._COUNTERS.pack_into(header, self._COUNTERS_AT, count, 1, 0)
        with open(tmp, "wb") as out:
            out.write(header)
            out.write(memoryview(bits))
            out.flush()
            os.fsync(out.fileno())
        with self._locked():
            with self._open(writable=True) as old:
                os.replace(tmp, self.path)
                if old is not None:  # processes still reading the old file see this and re-open
                    count_old, version_old, _ = self._COUNTERS.unpack_from(old, self._COUNTERS_AT)
                    self._COUNTERS.pack_into(old, self._COUNTERS_AT, count_old, version_old, 1)
                    old.flush()

    def test(self, params: BloomParams, offsets: list[int]) -> bool | None:
        with self._reader_lock:
            reader = self._reader
            if reader is None or reader[1].epoch != params.epoch or \
                    self._COUNTERS.unpack_from(reader[0], self._COUNTERS_AT)[2]:
                if reader is not None:
                    reader[0].close()
                self._reader = None
                try:
                    fd = os.open(self.path, os.O_RDONLY)
                except FileNotFoundError:
                    return None
                try:
                    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                finally:
                    os.close(fd)
                current, _, _, superseded = self._read_header(mm)
                if superseded or current.epoch != params.epoch:
                    mm.close()
                    return None
                self._reader = reader = (mm, current)
            mm = reader[0]
            return all(_bit_is_set(mm, self.HEADER + (off >> 3), off & 7) for off in offsets)

    def drop(self) -> None:
        with self._locked():
            with self._open(writable=True) as old:
                if old is not None:
                    count_old, version_old, _ = self._COUNTERS.unpack_from(old, self._COUNTERS_AT)
                    self._COUNTERS.pack_into(old, self._COUNTERS_AT, count_old, version_old, 1)
            self.path.unlink(missing_ok=True)


BloomStore = RedisBloomStore | FileBloomStore
_redis_clients: dict[str, Any] = {}
_stores: dict[tuple[str, str, str], BloomStore] = {}
_stores_lock = threading.Lock()


def _redis_client() -> Any:
    url = core_redis.url()
    client = _redis_clients.get(url)
    if client is None:
        # Whole-filter transfers (69 MiB) need a longer read timeout than a request's lookups (core.redis).
        client = _redis_clients[url] = core_redis.new_client(
            read_timeout=float(settings.COUPON_REDIS_BULK_TIMEOUT_SECONDS), health_check_interval=30)
    return client


def _redis_base() -> str:
    # Derived from the database name unless configured, so a test database never shares the real filters.
    return settings.BLOOM_REDIS_KEY or f"coupons:bloom:{connection.settings_dict['NAME']}"


def _file_base() -> Path:
    return Path(settings.BLOOM_FILE or Path(settings.BLOOM_DIR) / f"{connection.settings_dict['NAME']}.bloom")


def tenant_tag(tenant_id: int) -> str:
    """The Redis Cluster hash tag of a tenant's keys, ``{t<id>}``: every key of one filter (bits, parameters, the
    temporary merge and build keys its Lua scripts and pipelines touch) falls into the tenant's one hash slot."""
    return f"{{t{int(tenant_id)}}}"


def store_location(tenant_id: int) -> str:
    """Where a tenant's filter lives: the Redis key ``<COUPON_BLOOM_REDIS_KEY>:{t<id>}`` (``coupons:bloom:<database>``
    when unset), or the file ``<name>.t<id>.bloom`` beside ``COUPON_BLOOM_FILE`` (``var/bloom/<database>.bloom``)."""
    if settings.BLOOM_BACKEND == "redis":
        return f"{_redis_base()}:{tenant_tag(tenant_id)}"
    base = _file_base()
    return str(base.with_name(f"{base.stem}.t{int(tenant_id)}{base.suffix}"))


def get_store(tenant_id: int, *, lookup: bool = False) -> BloomStore:
    """The filter of one tenant of the database this process uses (issue #23: one filter per tenant)."""
    backend = settings.BLOOM_BACKEND
    location = store_location(tenant_id)
    if lookup and backend == "redis":
        # A request's lookup: the short timeouts of core.redis, so a frozen Redis costs at most one timeout. Kept per
        # (location, client): a new store registers its scripts (hashes them) — not work for every request (#21).
        lookup_client = core_redis.client()
        where = ("lookup", location, str(id(lookup_client)))
        store = _stores.get(where)
        if store is None or getattr(store, "redis", None) is not lookup_client:
            with _stores_lock:
                store = _stores[where] = RedisBloomStore(location, client=lookup_client)
        return store
    with _stores_lock:
        where = (backend, location, core_redis.url() if backend == "redis" else "")
        store = _stores.get(where)
        if store is None:
            store = RedisBloomStore(location) if backend == "redis" else FileBloomStore(Path(location))
            _stores[where] = store
    return store


def _tenant_ids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM core_tenant ORDER BY id")
        return [int(r[0]) for r in cursor.fetchall()]


# --- single-code lookup (validation paths) -------------------------------------------------------------------------

_params_cache: dict[str, BloomParams] = {}


def bloom_might_contain(code: str, tenant_id: int) -> bool:
    """False only if ``code`` (normalised, R-CODE-4) certainly is not a code of tenant ``tenant_id``: asked of that
    tenant's own filter, so another tenant's code costs exactly what an unknown one costs (issue #17, #23). No
    database query.

    Fails open: without a filter, or when the filter cannot be read, the answer is True and the caller asks the
    database, which stays the authority.
    """
    data = code.encode("utf-8")
    if not data or len(data) > MAX_CODE_BYTES or b"\0" in data:
        return False  # the column cannot hold it

    if settings.BLOOM_BACKEND == "redis" and core_redis.is_down():
        return True  # fail open at once while Redis is known not to answer (issue #18)
    try:
        store = get_store(tenant_id, lookup=True)
        for _attempt in range(2):
            params = _params_cache.get(store.describe())
            if params is None:
                params = store.params()
                if params is None:
                    return True
                _params_cache[store.describe()] = params
            answer = store.test(params, offsets_one(data, params))
            if answer is not None:
                return answer
            _params_cache.pop(store.describe(), None)  # rebuilt since we cached its parameters
        return True
    except Exception as exc:  # the filter is an optimisation; never let it fail a request
        if core_redis.is_outage(exc):
            core_redis.mark_down(exc)
        logger.warning("Bloom filter lookup failed; answering 'maybe'", exc_info=True)
        return True


# --- locks ---------------------------------------------------------------------------------------------------------


def bloom_lock_key(tenant_id: int) -> int:
    """pg_advisory_lock key of one tenant's filter: held shared by every writer of the tenant's codes, exclusive by
    its rebuild. Per tenant, so rebuilding one tenant's filter never waits for another tenant's generation."""
    return lock_key(f"coupons.bloom:t{int(tenant_id)}")


@contextmanager
def _advisory_lock(tenant_id: int, shared: bool) -> Iterator[None]:
    with session_lock(bloom_lock_key(tenant_id), wait=True, shared=shared):
        yield


# --- writers -------------------------------------------------------------------------------------------------------


class BloomWriter:
    """A process's working copy of one tenant's filter while it writes that tenant's codes (generation).

    ``admit`` tests candidates against the copy and adds the admitted ones to it, atomically with respect to other
    threads of the writer; ``publish`` makes everything added so far part of the shared filter (call it before the
    transaction inserting those codes commits). Thread-safe.
    """

    def __init__(self, store: BloomStore, params: BloomParams) -> None:
        self.store = store
        self.params = params
        self.local = BitArray(params)
        self.lock = threading.Lock()  # guards local bits (admit/add/refresh)
        self._publish_lock = threading.Lock()
        self._generation = 0  # bumped by every admit/add
        self._published = 0
        self._unpublished_codes = 0
        self._version = 0
        self.merges = 0
        self.refreshes = 0

    def load(self) -> None:
        self._version = self.store.version(self.params)
        with self.lock:
            self._or_shared_into_local()

    def _or_shared_into_local(self) -> None:
        bits = self.local.bits
        for start, piece in self.store.pieces(self.params):
            view = bits[start:start + len(piece)]
            np.bitwise_or(view, np.frombuffer(piece, np.uint8), out=view)

    @property
    def generation(self) -> int:
        return self._generation

    def admit(self, codes: np.ndarray, *, verify: Callable[[np.ndarray], np.ndarray] | None = None,
              limit: int | None = None, verify_all: bool = False) -> np.ndarray:
        """Indices (in ``codes`` order) of the candidates admitted: certainly not present, or — when ``verify`` is
        given — reported absent by ``verify`` for the ones the filter cannot rule out (for every candidate with
        ``verify_all``: once the filter has been caught missing codes, its "absent" is not trusted either). At most
        ``limit``, taken in order (so a random draw stays a uniform sample). Admitted codes are added to the working
        copy at once."""
        with self.lock:
            absent = self.local.absent(codes)
            if verify is not None and verify_all:
                absent = ~verify(codes)
            elif verify is not None and not absent.all():
                maybe = np.flatnonzero(~absent)
                exists = verify(codes[maybe])
                absent[maybe[~exists]] = True
            admitted = np.flatnonzero(absent)
            if limit is not None:
                admitted = admitted[:limit]
            self.local.add(codes[admitted])
            self._generation += 1
            self._unpublished_codes += len(admitted)
            return admitted

    def add(self, codes: np.ndarray) -> int:
        with self.lock:
            self.local.add(codes)
            self._generation += 1
            self._unpublished_codes += len(codes)
            return self._generation

    def sync(self) -> None:
        """Take every bit of the shared filter into the working copy now (e.g. after the unique index caught a code
        written by another process)."""
        version = self.store.version(self.params)
        with self.lock:
            self._or_shared_into_local()
        self._version = max(self._version, version)
        self.refreshes += 1

    def publish(self, generation: int | None = None) -> None:
        """Merge the working copy into the shared filter, unless a merge since ``generation`` already did."""
        target = self._generation if generation is None else generation
        with self._publish_lock:
            if self._published >= target:
                return
            with self.lock:
                covered, added = self._generation, self._unpublished_codes
                self._unpublished_codes = 0
            before, after = self.store.merge(self.params, self.local.bits, added)
            self.merges += 1
            self._published = covered
            if before != self._version:
                # Another writer merged since we last synchronised: take its bits too, so our pre-check sees them.
                with self.lock:
                    self._or_shared_into_local()
                self.refreshes += 1
            self._version = after




def _ensure_filter(store: BloomStore, tenant_id: int, need: int = 0) -> BloomParams:
    """Holding the tenant's shared lock: the parameters of its filter, building the filter from the database if it is
    missing — or, when ``need`` more codes would take it past its capacity, rebuilding it larger (at most once)."""
    grown = False
    while True:
        params = store.params()
        too_small = params is not None and need > 0 and not grown and \
            store.stats()["count"] + need > params.capacity and params.capacity < max_capacity(params.error_rate)
        if params is not None and not too_small:
            return params
        # Upgrade: drop the shared lock, build under the exclusive one (unless someone did meanwhile), re-take.
        advisory_release(bloom_lock_key(tenant_id), shared=True)
        try:
            current = store.params()
            if current is None:
                logger.warning("Bloom filter missing (%s): rebuilding it from the database", store.describe())
                bloom_rebuild(tenant_id=tenant_id)
            elif need > 0 and store.stats()["count"] + need > current.capacity:
                logger.info("Bloom filter %s: %s more codes would pass its capacity (%s); rebuilding it larger",
                            store.describe(), need, current.capacity)
                bloom_rebuild(tenant_id=tenant_id, capacity=auto_capacity(
                    store.stats()["count"] + need, current.error_rate), error_rate=current.error_rate)
            grown = True
        finally:
            advisory_acquire(bloom_lock_key(tenant_id), shared=True)


@contextmanager
def bloom_writer(tenant_id: int, *, need: int = 0) -> Iterator[BloomWriter]:
    """A working copy of the tenant's filter, with its writers' lock held shared for the whole block. ``need``: how
    many codes the block may add (the filter is grown first if they would not fit).

    Commit every code inserted under it before leaving the block (and ``publish`` before each commit).
    """
    store = get_store(tenant_id)
    with _advisory_lock(tenant_id, shared=True):
        params = _ensure_filter(store, tenant_id, need)
        writer = BloomWriter(store, params)
        writer.load()
        yield writer


@contextmanager
def bloom_adding(codes: Iterable[str], *, tenant_id: int) -> Iterator[None]:
    """For writers of a few codes outside batch generation (e.g. test factories, imports): adds the codes' bits to the
    tenant's filter, then runs the block: insert *and commit* the codes inside it."""
    array = as_code_array(codes)
    store = get_store(tenant_id)
    with _advisory_lock(tenant_id, shared=True):
        params = store.params()
        if params is not None and len(array):
            byte_masks: dict[int, int] = {}
            h1, h2 = hash_codes(array, params.seed)
            for i in range(params.k):
                p = _probe_np(h1, h2, i, params.m)
                for off, bit in zip((p >> np.uint64(3)).tolist(), (p & np.uint64(7)).tolist(), strict=True):
                    byte_masks[off] = byte_masks.get(off, 0) | (1 << bit)
            store.add_bits(params, byte_masks, len(array))
        # No filter: nothing to keep in step; the tenant's next writer builds it from the database, after our commit.
        yield


# --- rebuild and verification --------------------------------------------------------------------------------------


def _codes_from_text(n: int, codes_text: str) -> np.ndarray | None:
    raw = codes_text.encode("utf-8")
    if len(raw) != n * MAX_CODE_BYTES:  # a non-ASCII code: widths differ, the caller takes the slow path
        return None
    matrix = np.frombuffer(raw, np.uint8).reshape(n, MAX_CODE_BYTES).copy()
    matrix[matrix == 0x20] = 0  # rpad's spaces back to NUL padding (codes never hold spaces, R-CODE-4)
    codes: np.ndarray = matrix.view(f"S{MAX_CODE_BYTES}").ravel()
    return codes


def iter_code_blocks(*, where: str = "", params: list[Any] | None = None,
                     block: int = 500_000) -> Iterator[np.ndarray]:
    """The codes of coupons_couponcode in id order, ``block`` rows at a time, as ``S48`` numpy arrays.

    Each block comes as one space-padded string (``string_agg``), so no Python object is made per code; keyset
    pagination on ``id`` keeps every query short. ``where`` may use ``batch_id`` (the ``code_batch`` index serves it).
    """
    last_id = 0
    condition = f"AND ({where})" if where else ""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT count(*), max(id), string_agg(rpad(code, 48), '' ORDER BY id)
                      FROM (SELECT id, code FROM coupons_couponcode WHERE id > %s {condition}
                            ORDER BY id LIMIT %s) s""",
                [last_id, *(params or []), block],
            )
            n, max_id, codes_text = cursor.fetchone()
        if not n:
            return
        codes = _codes_from_text(n, codes_text)
        if codes is None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT code FROM coupons_couponcode WHERE id > %s AND id <= %s {condition} "
                               "ORDER BY id", [last_id, max_id, *(params or [])])
                codes = as_code_array(r[0] for r in cursor.fetchall())
        yield codes
        last_id = max_id


def iter_tenant_codes(tenant_id: int, *, block: int = 500_000) -> Iterator[np.ndarray]:
    """One tenant's codes in code order, ``block`` at a time (``S48`` arrays): keyset pagination on the
    ``(tenant_id, code)`` unique index, so the scan reads only this tenant's index range — an index-only scan once the
    table is vacuumed — however many codes the other tenants hold."""
    last = ""
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT count(*), max(code), string_agg(rpad(code, 48), '' ORDER BY code)
                     FROM (SELECT code FROM coupons_couponcode WHERE tenant_id = %s AND code > %s
                           ORDER BY code LIMIT %s) s""",
                [tenant_id, last, block],
            )
            n, max_code, codes_text = cursor.fetchone()
        if not n:
            return
        codes = _codes_from_text(n, codes_text)
        if codes is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT code FROM coupons_couponcode WHERE tenant_id = %s AND code > %s "
                               "AND code <= %s ORDER BY code", [tenant_id, last, max_code])
                codes = as_code_array(r[0] for r in cursor.fetchall())
        yield codes
        last = max_code


def max_capacity(error_rate: float) -> int:
    """The most codes a filter can be sized for at this rate (the filter is at most 2^32 bits, 512 MiB)."""
    return int(((1 << 32) - 128) * math.log(2) ** 2 / -math.log(error_rate))


def auto_capacity(codes: int, error_rate: float) -> int:
    """A tenant filter's size: ``COUPON_BLOOM_CAPACITY`` at least, twice the codes it must hold when that is more."""
    return min(max(settings.BLOOM_CAPACITY, 2 * codes), max_capacity(error_rate))


def _planned_codes(tenant_id: int) -> int:
    """The codes a tenant's batches hold or will hold (codes come only from batches): one small aggregate, not a
    count over the code table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(greatest(quantity, generated_count)), 0) FROM coupons_couponbatch "
                       "WHERE tenant_id = %s", [tenant_id])
        return int(cursor.fetchone()[0])


def _rebuild_tenant(tenant_id: int, *, capacity: int | None, error_rate: float,
                    progress: Callable[[int], None] | None) -> dict[str, Any]:
    store = get_store(tenant_id)
    started = time.monotonic()
    with _advisory_lock(tenant_id, shared=False):
        params = BloomParams.sized(capacity or auto_capacity(_planned_codes(tenant_id), error_rate), error_rate)
        bits = BitArray(params)
        count = 0
        for codes in iter_tenant_codes(tenant_id):
            bits.add(codes)
            count += len(codes)
            if progress:
                progress(len(codes))
        store.install(params, bits.bits, count)
    _params_cache.pop(store.describe(), None)
    return {"tenant": tenant_id, "backend": store.describe(), "codes": count, "capacity": params.capacity,
            "error_rate": params.error_rate, "bits": params.m, "mib": round(params.nbytes / 2**20, 1),
            "hashes": params.k, "seconds": round(time.monotonic() - started, 2)}


def _drop_legacy() -> bool:
    """Remove the single global filter of the releases before issue #23 (``coupons:bloom:<database>`` /
    ``var/bloom/<database>.bloom``); nothing reads it any more. True if there was one."""
    if settings.BLOOM_BACKEND == "redis":
        base = _redis_base()
        client = _redis_client()  # one key per command: on a Redis Cluster the two are in different slots
        return sum(client.delete(key) for key in (f"{base}:bits", f"{base}:meta")) > 0
    legacy = _file_base()
    if not legacy.exists():
        return False
    FileBloomStore(legacy).drop()
    return True


def bloom_rebuild(*, tenant_id: int | None = None, capacity: int | None = None, error_rate: float | None = None,
                  progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Build a tenant's filter from its codes in the database and swap it in (R-CODE-3); without ``tenant_id``, every
    tenant's, one after the other (each waits only for its own tenant's running writers), and the pre-#23 global
    filter is removed. Sized at ``capacity``, else ``auto_capacity`` of the codes the tenant's batches plan."""
    rate = error_rate or settings.BLOOM_ERROR_RATE
    if tenant_id is not None:
        result = _rebuild_tenant(tenant_id, capacity=capacity, error_rate=rate, progress=progress)
        logger.info("Bloom filter rebuilt: %s", result)
        return result
    started = time.monotonic()
    filters = [_rebuild_tenant(t, capacity=capacity, error_rate=rate, progress=progress) for t in _tenant_ids()]
    result = {"backend": settings.BLOOM_BACKEND, "tenants": len(filters), "codes": sum(f["codes"] for f in filters),
              "mib": round(sum(f["mib"] for f in filters), 1), "legacy_global_filter_dropped": _drop_legacy(),
              "seconds": round(time.monotonic() - started, 2), "filters": filters}
    logger.info("Bloom filters rebuilt: %s tenants, %s codes", result["tenants"], result["codes"])
    return result


def _sample_codes(tenant_id: int, sample: int) -> list[str]:
    """Codes of one tenant to probe: the newest of its newest batches (the ones a lost Redis write would lack), and
    runs from random points of its code range — every query a probe of a tenant-scoped index."""
    codes: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM coupons_couponbatch WHERE tenant_id = %s ORDER BY id DESC LIMIT 5",
                       [tenant_id])
        for (batch_id,) in cursor.fetchall():
            if len(codes) >= sample // 2:
                break
            cursor.execute("SELECT code FROM coupons_couponcode WHERE tenant_id = %s AND batch_id = %s "
                           "ORDER BY id DESC LIMIT %s", [tenant_id, batch_id, sample // 2 - len(codes)])
            codes += [r[0] for r in cursor.fetchall()]
        symbols = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for _ in range(10):
            start = "".join(secrets.choice(symbols) for _ in range(4))
            cursor.execute("SELECT code FROM coupons_couponcode WHERE tenant_id = %s AND code >= %s ORDER BY code "
                           "LIMIT %s", [tenant_id, start, max(1, sample // 20)])
            codes += [r[0] for r in cursor.fetchall()]
    return sorted(set(codes))


def _has_codes(tenant_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM coupons_couponcode WHERE tenant_id = %s)", [tenant_id])
        return bool(cursor.fetchone()[0])


def bloom_verify(*, tenant_id: int | None = None, sample: int = 2000) -> dict[str, Any]:
    """Probe the tenants' filters (one tenant's with ``tenant_id``) with samples of their existing codes.

    A code its tenant's filter calls absent means the filter lost bits (e.g. Redis restarted from an older snapshot);
    the cure is ``bloom_rebuild``. Returns the counts; ``missing > 0`` is the alarm. A tenant with codes but no filter
    is listed (``tenants_without_filter``): its lookups answer "maybe" and ask the database until a rebuild or its next
    generation builds the filter.
    """
    tenants = [tenant_id] if tenant_id is not None else _tenant_ids()
    per_tenant = sample if tenant_id is not None else max(50, sample // max(1, len(tenants)))
    result: dict[str, Any] = {"backend": settings.BLOOM_BACKEND, "exists": False, "tenants": 0, "checked": 0,
                              "missing": 0, "codes_added": 0, "mib": 0.0, "tenants_without_filter": [],
                              "over_capacity": []}
    for tid in tenants:
        store = get_store(tid)
        params = store.params()
        if params is None:
            if _has_codes(tid):
                result["tenants_without_filter"].append(tid)
            continue
        codes = _sample_codes(tid, per_tenant)
        missing = sum(1 for code in codes if store.test(params, offsets_one(code.encode("utf-8"), params)) is False)
        stats = store.stats()
        result["exists"] = True
        result["tenants"] += 1
        result["checked"] += len(codes)
        result["missing"] += missing
        result["codes_added"] += stats["count"]
        result["mib"] = round(result["mib"] + params.nbytes / 2**20, 1)
        if stats["count"] > params.capacity:
            result["over_capacity"].append(tid)
        if tenant_id is not None:
            result.update(capacity=params.capacity, error_rate=params.error_rate, hashes=params.k)
    return result


def _scan_filters() -> list[str]:
    """Every per-tenant filter of this database, found in Redis (SCAN) or on disk — also those of tenants no longer in
    core_tenant (e.g. a test's rolled-back tenants)."""
    if settings.BLOOM_BACKEND == "redis":
        base = _redis_base()
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in base) + ":{t*}:*"
        return sorted({key.decode() for key in _redis_client().scan_iter(match=pattern, count=1000)})
    base = _file_base()
    return sorted(str(p) for p in base.parent.glob(f"{base.stem}.t*{base.suffix}"))


def bloom_drop(*, tenant_id: int | None = None) -> None:
    """Remove a tenant's filter, or every filter of this database (tests, benchmarks). Not needed before a rebuild
    with other parameters: a rebuild swaps."""
    if tenant_id is not None:
        store = get_store(tenant_id)
        with _advisory_lock(tenant_id, shared=False):
            store.drop()
        _params_cache.pop(store.describe(), None)
        return
    for tid in _tenant_ids():
        bloom_drop(tenant_id=tid)
    found = _scan_filters()
    if settings.BLOOM_BACKEND == "redis":
        if found:
            _redis_client().delete(*found)
    else:
        for path in found:
            FileBloomStore(Path(path)).drop()
    _drop_legacy()
    _params_cache.clear()
