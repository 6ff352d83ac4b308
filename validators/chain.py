"""Gate chain: run a spec's gates in order, fail fast, answer an unchanged tree from the verdict cache.

Cache policy: the cached verdict is used only when it is complete -- every gate up to the first cached "fail" (or
all of them) hits the cache. Otherwise the whole chain runs fresh, because later gates read what earlier ones left
behind (the build folder, the site folder) and those may now belong to another tree; the persistent build folder
and ccache keep that rerun fast. The tree hash is taken before any gate runs (the pytest gate rewrites protected
files in the candidate).
``ctx_factory(config) -> GateContext`` makes each gate's context (its own work_dir); ``on_result(result)`` is called
after each gate, cached or not. ``state`` flows from gate to gate (build -> pytest: site_dir).
"""
from __future__ import annotations

import functools
import hashlib

import time
import traceback
from pathlib import Path
from typing import Callable

from harness.interfaces import GateConfig, GateContext, GateResult, HarnessError
from validators import get_gate
from validators.pytest_gate import protected_digest, protected_globs
from validators.tree_hash import git_tree_hash
from validators.verdict_cache import VerdictCache, verdict_key


def run_gates(gates: list[GateConfig], ctx_factory: Callable[[GateConfig], GateContext],
              on_result: Callable[[GateResult], None] = lambda r: None, use_cache: bool = True) -> list[GateResult]:
    if not gates:
        return []
    first_ctx = ctx_factory(gates[0])
    instances = [get_gate(cfg.name) for cfg in gates]  # unknown or missing gates fail before anything runs
    cache = VerdictCache(first_ctx.cache_dir) if use_cache else None
    tree = git_tree_hash(Path(first_ctx.candidate_root) / "generated_runtime")
    keys = []
    for cfg, gate in zip(gates, instances):
        probe = GateContext(spec=first_ctx.spec, candidate_root=first_ctx.candidate_root,
                            trusted_root=first_ctx.trusted_root, work_dir=first_ctx.work_dir,
                            cache_dir=first_ctx.cache_dir, env={}, options=dict(cfg.options))
        digest = protected_digest(Path(first_ctx.trusted_root), protected_globs(probe))
        keys.append(verdict_key(tree, gate.name, f"{gate.version}+{validators_code_digest()}", cfg.options, digest))

    if cache is not None:
        cached = _complete_cached_verdict(cache, keys)
        if cached is not None:
            for result in cached:
                on_result(result)
            return cached

    results: list[GateResult] = []
    state: dict = {}
    for i, (cfg, gate, key) in enumerate(zip(gates, instances, keys)):
        ctx = first_ctx if i == 0 else ctx_factory(cfg)
        ctx.options = dict(cfg.options)
        ctx.state.update(state)
        result = _run_one(gate, ctx)
        state.update(ctx.state)
        results.append(result)
        if cache is not None:
            cache.put(key, result)
        on_result(result)
        if not result.passed:
            break
    return results


@functools.lru_cache(maxsize=1)
def validators_code_digest() -> str:
    """sha256 over the validators package's Python sources (path and bytes): a verdict is cached for the gate code
    that gave it, so a changed validator (a parity reference, a tolerance) judges the same tree again."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _complete_cached_verdict(cache: VerdictCache, keys: list[str]) -> list[GateResult] | None:
    found = []
    for key in keys:
        hit = cache.get(key)
        if hit is None:
            return None
        found.append(hit)
        if not hit.passed:
            break
    return found


def _run_one(gate, ctx: GateContext) -> GateResult:
    start = time.monotonic()
    try:
        return gate.run(ctx)
    except HarnessError as e:
        return GateResult(gate.name, "error", time.monotonic() - start, str(e)[:2000])
    except Exception as e:  # a bug in a gate must not end the run: report it as the gate's error
        log = Path(ctx.work_dir) / f"{gate.name}-crash.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(traceback.format_exc())
        return GateResult(gate.name, "error", time.monotonic() - start,
                          f"gate {gate.name} crashed: {type(e).__name__}: {e}"[:2000], log_path=str(log))
