"""The TCP rendezvous of a process group and the message channel between rank 0 and every other rank.

Note [Rendezvous]: rank 0 listens on MASTER_ADDR:MASTER_PORT; every other rank connects (retrying until the timeout,
since rank 0 may start later) and sends a hello: magic, protocol version, its rank, the world size and the backend
name. Rank 0 checks each hello (same world size and backend, rank in range, no rank twice) and, once every rank is
there, answers each with "ok" and the backend's payload (NCCL: the unique id of the communicator, 128 bytes); a bad
hello is answered with the reason, and both sides raise it. After the rendezvous the connections stay open: they
carry the CPU backend's collectives (a star through rank 0) and the barrier of every backend.

Messages are length-prefixed: an 8-byte little-endian length, then the bytes. Every receive has the group's timeout,
so a rank that died or hangs turns into a clear error on the others instead of a hang.
"""
from __future__ import annotations

import json
import socket
import struct
import time

MAGIC = "vibetensor.distributed"
PROTOCOL = 1


class DistError(RuntimeError):
    """A process group failed: rendezvous, a peer that vanished or timed out, or a backend error."""


def _send(sock: socket.socket, payload: bytes | memoryview) -> None:
    sock.sendall(struct.pack("<Q", len(payload)))
    sock.sendall(payload)


def _recv_exact(sock: socket.socket, n: int, into: memoryview | None = None) -> memoryview:
    buf = into if into is not None else memoryview(bytearray(n))
    got = 0
    while got < n:
        k = sock.recv_into(buf[got:], n - got)
        if k == 0:
            raise DistError("vibetensor.distributed: a peer closed its connection (did another rank fail?)")
        got += k
    return buf


def _recv(sock: socket.socket, into: memoryview | None = None) -> memoryview:
    (n,) = struct.unpack("<Q", bytes(_recv_exact(sock, 8)))
    if into is not None and n != into.nbytes:
        raise DistError(f"vibetensor.distributed: expected a message of {into.nbytes} bytes from a peer, got {n} "
                        "(do all ranks call the same collectives on tensors of the same shape and dtype?)")
    return _recv_exact(sock, n, into)


class Channel:
    """The open connections of one rank: rank 0 holds one per other rank, every other rank one to rank 0."""

    def __init__(self, rank: int, world_size: int, peers: dict[int, socket.socket], timeout_s: float, payload: bytes):
        self.rank, self.world_size, self.peers = rank, world_size, peers
        self.timeout_s, self.payload = timeout_s, payload

    def _guard(self, what: str, fn, *args):
        try:
            return fn(*args)
        except socket.timeout as exc:
            raise DistError(f"vibetensor.distributed: rank {self.rank} timed out after {self.timeout_s:g} s in "
                            f"{what} (a rank is stuck or did not call it)") from exc
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, DistError):
                raise
            raise DistError(f"vibetensor.distributed: rank {self.rank} lost a peer in {what}: {exc}") from exc

    def send(self, peer: int, payload, what: str) -> None:
        self._guard(what, _send, self.peers[peer], payload)

    def recv(self, peer: int, what: str, into: memoryview | None = None) -> memoryview:
        return self._guard(what, _recv, self.peers[peer], into)

    def barrier(self) -> None:
        if self.rank == 0:
            for peer in sorted(self.peers):
                self.recv(peer, "barrier")
            for peer in sorted(self.peers):
                self.send(peer, b"b", "barrier")
        elif self.world_size > 1:
            self.send(0, b"b", "barrier")
            self.recv(0, "barrier")

    def close(self) -> None:
        for sock in self.peers.values():
            try:
                sock.close()
            except OSError:
                pass
        self.peers = {}


def rendezvous(addr: str, port: int, rank: int, world_size: int, backend: str, timeout_s: float,
               make_payload) -> Channel:
    """Connect the ranks; ``make_payload()`` runs on rank 0 once every rank is there (its bytes reach all ranks)."""
    if world_size == 1:
        return Channel(rank, world_size, {}, timeout_s, make_payload())
    deadline = time.monotonic() + timeout_s
    if rank == 0:
        return _serve(addr, port, world_size, backend, timeout_s, deadline, make_payload)
    return _join(addr, port, rank, world_size, backend, timeout_s, deadline)


def _serve(addr, port, world_size, backend, timeout_s, deadline, make_payload) -> Channel:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((addr, port))
    except OSError as exc:
        server.close()
        raise DistError(f"vibetensor.distributed: rank 0 cannot listen on {addr}:{port} ({exc}); "
                        "choose another MASTER_PORT") from exc
    server.listen(world_size)
    peers: dict[int, socket.socket] = {}
    try:
        while len(peers) < world_size - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(set(range(1, world_size)) - set(peers))
                raise DistError(f"vibetensor.distributed: rank 0 waited {timeout_s:g} s on {addr}:{port} for ranks "
                                f"{missing} to join (world_size={world_size}); did every rank start?")
            server.settimeout(left)
            try:
                sock, _ = server.accept()
            except socket.timeout:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout_s)
            try:
                hello = json.loads(bytes(_recv(sock)))
            except (ValueError, OSError, DistError):
                sock.close()  # not one of ours (a port scan, a stale client): ignore it
                continue
            problem = _check_hello(hello, world_size, backend, peers)
            if problem:
                _send(sock, json.dumps({"ok": False, "error": problem}).encode())
                sock.close()
                raise DistError(f"vibetensor.distributed: rank 0 refused a rank: {problem}")
            peers[int(hello["rank"])] = sock
        payload = make_payload()
        for sock in peers.values():
            _send(sock, json.dumps({"ok": True}).encode())
            _send(sock, payload)
    except BaseException:
        for sock in peers.values():
            sock.close()
        raise
    finally:
        server.close()
    return Channel(0, world_size, peers, timeout_s, payload)


def _check_hello(hello, world_size, backend, peers) -> str:
    if not isinstance(hello, dict) or hello.get("magic") != MAGIC or hello.get("protocol") != PROTOCOL:
        return f"a client spoke another protocol: {hello!r}"
    rank = hello.get("rank")
    if hello.get("world_size") != world_size:
        return f"rank {rank} has world_size={hello.get('world_size')}, rank 0 has world_size={world_size}"
    if hello.get("backend") != backend:
        return f"rank {rank} uses backend {hello.get('backend')!r}, rank 0 uses {backend!r}"
    if not isinstance(rank, int) or not 1 <= rank < world_size:
        return f"rank {rank!r} is out of range for world_size={world_size}"
    if rank in peers:
        return f"rank {rank} joined twice (two processes with the same RANK?)"
    return ""


def _join(addr, port, rank, world_size, backend, timeout_s, deadline) -> Channel:
    last_error: Exception | None = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DistError(f"vibetensor.distributed: rank {rank} could not reach rank 0 at {addr}:{port} within "
                            f"{timeout_s:g} s ({last_error}); is rank 0 running with the same MASTER_ADDR/PORT?")
        try:
            sock = socket.create_connection((addr, port), timeout=min(left, 5.0))
            break
        except OSError as exc:
            last_error = exc
            time.sleep(min(0.05, max(left, 0)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(max(deadline - time.monotonic(), 1.0))
    try:
        _send(sock, json.dumps({"magic": MAGIC, "protocol": PROTOCOL, "rank": rank, "world_size": world_size,
                                "backend": backend}).encode())
        answer = json.loads(bytes(_recv(sock)))
        if not answer.get("ok"):
            raise DistError(f"vibetensor.distributed: rank 0 refused rank {rank}: {answer.get('error')}")
        payload = bytes(_recv(sock))
    except socket.timeout as exc:
        sock.close()
        raise DistError(f"vibetensor.distributed: rank {rank} joined rank 0 at {addr}:{port} but the other ranks "
                        f"did not all arrive within {timeout_s:g} s") from exc
    except BaseException:
        sock.close()
        raise
    sock.settimeout(timeout_s)
    return Channel(rank, world_size, {0: sock}, timeout_s, payload)
