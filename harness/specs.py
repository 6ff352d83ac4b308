"""Specs: one Markdown file per capability under specs/, with a YAML front matter.

Front matter fields (all validated by ``check_specs``; every mistake names the file, the field and the problem):
  id          str, required; must equal the file name without ``.md`` (``NN-name``)
  title       str, required
  depends_on  list of spec ids (default [])
  paths       list of globs (repository-relative) the agent may change (default ["generated_runtime/**"]); a glob
              starting with ``!`` excludes what it matches (the folders of other specs), whatever its position
  protected   list of globs the agent may not change: acceptance tests and fixtures (default []); ``!`` as above
  gates       list of gate names or {name: options} / {name:, options:} mappings, run in the order given
  budget      {max_attempts: int, max_tokens: int, max_cost_usd: float, max_wall_s: float}
The body (after the front matter) is the human guidance rendered into the prompt.
"""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import yaml

from harness.interfaces import Budget, GateConfig, Spec, SpecError

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n?(.*)\Z", re.S)
_ID = re.compile(r"^[0-9]{2}-[a-z0-9][a-z0-9-]*$")
_KNOWN_FIELDS = {"id", "title", "depends_on", "paths", "protected", "gates", "budget"}
_BUDGET_FIELDS = {"max_attempts": int, "max_tokens": int, "max_cost_usd": (int, float), "max_wall_s": (int, float)}


def _problem(path: Path, field: str, msg: str) -> str:
    return f"{path}: field '{field}': {msg}"


def _str_list(path: Path, data: dict, field: str, default: list[str], problems: list[str]) -> list[str]:
    value = data.get(field, default)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(_problem(path, field, "must be a list of non-empty strings"))
        return list(default)
    return value


def _parse_gates(path: Path, raw: Any, problems: list[str]) -> list[GateConfig]:
    from validators import GATE_ORDER

    known = list(GATE_ORDER)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(_problem(path, "gates", "must be a list"))
        return []
    gates: list[GateConfig] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            name, options = item, {}
        elif isinstance(item, dict) and "name" in item:
            name, options = item["name"], item.get("options") or {}
        elif isinstance(item, dict) and len(item) == 1:
            (name, options), = item.items()
            options = options or {}
        else:
            problems.append(_problem(path, f"gates[{i}]", "must be a gate name or a {name: options} mapping"))
            continue
        if not isinstance(name, str) or name not in known:
            problems.append(_problem(path, f"gates[{i}]", f"unknown gate {name!r} (known: {', '.join(known)})"))
            continue
        if not isinstance(options, dict):
            problems.append(_problem(path, f"gates[{i}].options", "must be a mapping"))
            continue
        gates.append(GateConfig(name, options))
    return gates


def _parse_budget(path: Path, raw: Any, problems: list[str]) -> Budget:
    if raw is None:
        return Budget()
    if not isinstance(raw, dict):
        problems.append(_problem(path, "budget", "must be a mapping"))
        return Budget()
    b = Budget()
    for key, value in raw.items():
        typ = _BUDGET_FIELDS.get(key)
        if typ is None:
            problems.append(_problem(path, f"budget.{key}", f"unknown field (known: {', '.join(_BUDGET_FIELDS)})"))
        elif isinstance(value, bool) or not isinstance(value, typ) or value <= 0:
            problems.append(_problem(path, f"budget.{key}", f"must be a positive number, got {value!r}"))
        else:
            setattr(b, key, value)
    return b


def parse_spec(path: Path) -> tuple[Spec | None, list[str]]:
    """Parse one spec file; returns (spec or None, problems)."""
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot read: {exc}"]
    m = _FRONT.match(text)
    if not m:
        return None, [f"{path}: no YAML front matter (the file must start with '---', fields, '---')"]
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        return None, [f"{path}: front matter is not valid YAML: {exc}"]
    if not isinstance(data, dict):
        return None, [f"{path}: front matter must be a mapping of fields"]
    for key in data:
        if key not in _KNOWN_FIELDS:
            problems.append(_problem(path, str(key), f"unknown field (known: {', '.join(sorted(_KNOWN_FIELDS))})"))
    sid = data.get("id")
    if not isinstance(sid, str) or not _ID.match(sid):
        problems.append(_problem(path, "id", f"required, of the form NN-name, got {sid!r}"))
        sid = path.stem
    elif sid != path.stem:
        problems.append(_problem(path, "id", f"{sid!r} does not match the file name {path.stem!r}"))
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append(_problem(path, "title", "required, a non-empty string"))
        title = ""
    spec = Spec(
        id=sid,
        title=title,
        path=path,
        depends_on=_str_list(path, data, "depends_on", [], problems),
        paths=_str_list(path, data, "paths", ["generated_runtime/**"], problems),
        protected=_str_list(path, data, "protected", [], problems),
        gates=_parse_gates(path, data.get("gates"), problems),
        budget=_parse_budget(path, data.get("budget"), problems),
        body=m.group(2).strip(),
    )
    if not spec.gates and "gates" not in [p.split("'")[1] for p in problems if "'" in p]:
        problems.append(_problem(path, "gates", "at least one gate is required (a spec that gates nothing tests nothing)"))
    for field, globs in (("paths", spec.paths), ("protected", spec.protected)):
        if globs and all(g.startswith("!") for g in globs):
            problems.append(_problem(path, field, "only exclusions ('!glob'): add at least one glob that includes"))
    for g in spec.paths + spec.protected:
        g = g[1:] if g.startswith("!") else g
        if not g or g.startswith("/") or ".." in Path(g).parts:
            problems.append(_problem(path, "paths", f"glob {g!r} must be repository-relative without '..'"))
    return spec, problems


def load_specs(root: Path) -> list[Spec]:
    """All specs under root/specs in dependency order. Raises SpecError listing every problem."""
    specs, problems = check_specs(root)
    if problems:
        raise SpecError("invalid specs:\n  " + "\n  ".join(problems))
    return specs


def spec_files(spec_dir: Path) -> list[Path]:
    """The spec files of a specs/ folder: every *.md except README.md."""
    return [p for p in sorted(spec_dir.glob("*.md")) if p.name.lower() != "readme.md"]


def check_specs(root: Path) -> tuple[list[Spec], list[str]]:
    spec_dir = root / "specs"
    specs: list[Spec] = []
    problems: list[str] = []
    for path in spec_files(spec_dir):
        spec, probs = parse_spec(path)
        problems += probs
        if spec is not None:
            specs.append(spec)
    by_id = {s.id: s for s in specs}
    for s in specs:
        for dep in s.depends_on:
            if dep not in by_id:
                problems.append(_problem(s.path, "depends_on", f"unknown spec {dep!r}"))
    order, cycle = _topo(specs)
    if cycle:
        problems.append(f"{spec_dir}: dependency cycle among: {', '.join(cycle)}")
    return order, problems


def _topo(specs: list[Spec]) -> tuple[list[Spec], list[str]]:
    """Dependency order; among the specs that are ready, the smallest id first (stable, numeric)."""
    by_id = {s.id: s for s in specs}
    done: list[Spec] = []
    seen: set[str] = set()
    remaining = sorted(by_id)
    while remaining:
        ready = [i for i in remaining if all(d in seen or d not in by_id for d in by_id[i].depends_on)]
        if not ready:
            return done + [by_id[i] for i in remaining], remaining
        done.append(by_id[ready[0]])
        seen.add(ready[0])
        remaining.remove(ready[0])
    return done, []


def find_spec(root: Path, ident: str) -> Spec:
    """Resolve a spec by id, by file path, or by unique id prefix (e.g. "01")."""
    specs = load_specs(root)
    p = Path(ident)
    for s in specs:
        if s.id == ident or s.path.resolve() == (p if p.is_absolute() else Path.cwd() / p).resolve():
            return s
    matches = [s for s in specs if s.id.startswith(ident)]
    if len(matches) == 1:
        return matches[0]
    raise SpecError(f"no spec {ident!r}" + (f" (ambiguous: {', '.join(m.id for m in matches)})" if matches else "")
                    + f"; known: {', '.join(s.id for s in specs)}")


def path_matches(path: str, globs: list[str]) -> bool:
    """Glob match on repository-relative POSIX paths; '**' crosses folders, 'dir/**' matches everything under dir.
    A glob starting with '!' excludes: the path matches when some plain glob matches and no '!' glob does."""
    include = [g for g in globs if not g.startswith("!")]
    exclude = [g[1:] for g in globs if g.startswith("!")]
    return _any_glob(path, include) and not _any_glob(path, exclude)


def _any_glob(path: str, globs: list[str]) -> bool:
    for g in globs:
        if fnmatch.fnmatchcase(path, g) or (g.endswith("/**") and (path == g[:-3] or path.startswith(g[:-2]))):
            return True
        if g.startswith("**/") and _any_glob(path, [g[3:]]):  # '**/x' also matches 'x' at the top
            return True
    return False
