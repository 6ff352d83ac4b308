"""vt.cuda's allocator statistics API (memory_allocated/reserved, peaks, memory_stats, memory_snapshot,
empty_cache, set_per_process_memory_fraction, OutOfMemoryError) through the host-backend testing hook. The
expected values come from the test's own bookkeeping of the blocks it holds and from the host backend's count of
raw bytes it really handed out, not from the allocator's statistics."""
import random

import pytest

import vibetensor.torch as vt

KiB, MiB = 1024, 1024 * 1024


def round_up(n, m):
    return (n + m - 1) // m * m


def check_snapshot(a, live):
    """The snapshot's segments are exactly the raw memory, its allocated blocks exactly what we hold."""
    segs = vt.cuda.memory_snapshot()
    assert sum(s["total_size"] for s in segs) == a.raw_bytes_in_use() == vt.cuda.memory_reserved()
    allocated = {}
    for s in segs:
        cursor = s["address"]
        for b in s["blocks"]:
            assert b["address"] == cursor  # blocks tile the segment
            cursor += b["size"]
            if b["state"] == "active_allocated":
                allocated[b["address"]] = b["size"]
        assert cursor == s["address"] + s["total_size"]
        assert s["allocated_size"] == sum(b["size"] for b in s["blocks"] if b["state"] == "active_allocated")
    assert allocated == live


def test_stats_follow_a_random_workload():
    rng = random.Random(7)
    with vt.cuda._testing.host_allocator(512 * MiB) as a:
        live, peak = {}, 0
        for step in range(400):
            if not live or rng.random() < 0.55:
                n = rng.choice([rng.randint(1, 64 * KiB), rng.randint(1, 4 * MiB)])
                p = a.allocate(n, stream=rng.randint(0, 1))
                size = a.block_size(p)
                assert size >= n and size % 512 == 0
                if n <= MiB:
                    assert size == round_up(n, 512)  # small blocks: exactly the 512-byte rounding
                live[p] = size
            else:
                p = rng.choice(sorted(live))
                a.free(p)
                del live[p]
            peak = max(peak, sum(live.values()))
            assert vt.cuda.memory_allocated() == sum(live.values())
            assert vt.cuda.max_memory_allocated() == peak
            assert vt.cuda.memory_reserved() == a.raw_bytes_in_use()
            if step % 50 == 0:
                check_snapshot(a, live)
        stats = vt.cuda.memory_stats()
        assert stats["allocated_bytes.all.current"] == sum(live.values())
        assert stats["allocation.all.current"] == len(live)
        assert stats["reserved_bytes.all.current"] == a.raw_bytes_in_use()
        assert stats["allocation.all.allocated"] - stats["allocation.all.freed"] == len(live)
        vt.cuda.reset_peak_memory_stats()
        assert vt.cuda.max_memory_allocated() == vt.cuda.memory_allocated()
        for p in list(live):
            a.free(p)
        assert vt.cuda.memory_allocated() == 0
        assert vt.cuda.memory_reserved() > 0  # cached, not returned
        vt.cuda.empty_cache()
        assert vt.cuda.memory_reserved() == 0 == a.raw_bytes_in_use()
        stats = vt.cuda.memory_stats()
        assert stats["segment.all.allocated"] == stats["segment.all.freed"] > 0
    assert vt.cuda.memory_allocated() == 0  # the hook is gone: back to "no device" answers


def test_fraction_cap_raises_a_clean_out_of_memory_error_and_stays_usable():
    with vt.cuda._testing.host_allocator(256 * MiB) as a:
        vt.cuda.set_per_process_memory_fraction(0.125)  # 32 MiB
        p = a.allocate(20 * MiB)
        with pytest.raises(vt.cuda.OutOfMemoryError) as info:
            a.allocate(20 * MiB)
        msg = str(info.value)
        assert "out of memory" in msg and str(20 * MiB) in msg and "limit 33554432" in msg
        assert '"num_ooms": 1' in msg  # the stats travel with the error
        assert vt.cuda.memory_stats()["num_ooms"] == 1
        assert vt.cuda.memory_allocated() == 20 * MiB
        a.free(p)
        q = a.allocate(30 * MiB)  # the staged GC frees the cached 20 MiB segment, then this fits
        assert vt.cuda.memory_reserved() <= 32 * MiB
        assert vt.cuda.memory_stats()["num_gc_segment_frees"] == 1
        a.free(q)


def test_record_stream_keeps_a_block_pending_until_its_stream_completes():
    with vt.cuda._testing.host_allocator(64 * MiB) as a:
        p = a.allocate(8 * KiB, stream=0)
        a.record_stream(p, 3)
        a.free(p)
        states = [b["state"] for s in vt.cuda.memory_snapshot() for b in s["blocks"] if b["address"] == p]
        assert states == ["active_pending_free"]
        assert vt.cuda.memory_allocated() == 0
        q = a.allocate(8 * KiB, stream=0)
        assert q != p  # stream 3 may still be using p
        assert a.complete_stream(3) == 1
        r = a.allocate(8 * KiB, stream=0)
        assert r == p
        for x in (q, r):
            a.free(x)
        vt.cuda.empty_cache()
        assert a.live_events() == 0 and a.raw_bytes_in_use() == 0


def test_poison_on_free_and_graph_pools():
    with vt.cuda._testing.host_allocator(64 * MiB) as a:
        a.set_poison_on_free(True)
        p = a.allocate(4 * KiB)
        a.write(p, 4 * KiB, 0x11)
        assert a.is_filled(p, 4 * KiB, 0x11)
        a.free(p)
        assert a.is_filled(p, 4 * KiB, 0xDB)  # a stale read after free sees poison, not the old data
        a.set_poison_on_free(False)
        a.begin_capture(graph=1, stream=5)
        g = a.allocate(4 * KiB, stream=5)
        a.end_capture(1)
        a.free(g)
        h = a.allocate(4 * KiB, stream=5)
        assert h != g  # the graph's pool is private to the graph
        pools = {s["segment_pool_id"] for s in vt.cuda.memory_snapshot()}
        assert (0, 1) in pools
        a.release_graph(1)
        assert (0, 1) not in {s["segment_pool_id"] for s in vt.cuda.memory_snapshot()}
        a.free(h)
