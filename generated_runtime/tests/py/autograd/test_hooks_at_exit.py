"""Note [Hooks released at exit]: hooks on tensors that live until the interpreter exits (a model's parameters,
DDP's gradient hooks) do not keep the extension's objects alive at teardown (nanobind reports those as leaked
instances), hooks still run, and RemovableHandle.remove() lets the hook itself be collected."""
from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref

import vibetensor.torch as vt


def test_hooks_on_module_level_parameters_leave_nothing_at_exit():
    code = textwrap.dedent('''
        import vibetensor.torch as vt
        model = vt.nn.Linear(3, 3)
        calls = []
        for p in model.parameters():
            p.register_hook(lambda g: (calls.append(1), g * 2)[1])   # refers to module globals: a cycle via C++
        model(vt.ones(2, 3)).sum().backward()
        assert len(calls) == 2 and model.weight.grad.tolist()[0][0] == 4.0
        print("trained")
    ''')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "trained" in proc.stdout
    assert "leaked" not in proc.stderr, proc.stderr


def test_removed_hook_is_released_and_no_longer_runs():
    w = vt.ones(3, requires_grad=True)

    def doubling(g):
        return g * 2

    handle = w.register_hook(doubling)
    ref = weakref.ref(doubling)
    (w * 1).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    handle.remove()
    del doubling
    gc.collect()
    assert ref() is None  # the tensor (still alive) no longer holds the hook
    w.grad = None
    (w * 1).sum().backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0]
