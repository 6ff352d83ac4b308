"""SafeTensors checkpoints of the training workloads (generated_runtime/examples, Note [SafeTensors checkpoints]
in common.py): written through vibetensor.safetensors whatever the framework, readable by the safetensors package,
loadable into either framework with the same forward results, and clear errors for files that do not fit."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
sys.path.insert(0, str(EXAMPLES))

import common  # noqa: E402
import minigpt  # noqa: E402
import reversal  # noqa: E402

torch = pytest.importorskip("torch")
st_numpy = pytest.importorskip("safetensors.numpy")
import vibetensor.torch as vt  # noqa: E402


def _state(model) -> dict[str, np.ndarray]:
    return {name: common.to_numpy(t) for name, t in model.state_dict().items()}


def test_trained_weights_round_trip_between_frameworks(tmp_path: Path):
    job = reversal.prepare(vt, "ci", seed=3)
    common.train(vt, job, 2, lambda record: None)  # weights move away from the initial ones
    path = tmp_path / "rev.safetensors"
    common.save_checkpoint(path, job.model, "reversal", job.config)

    # the safetensors package reads the same names, values and metadata
    theirs = st_numpy.load_file(str(path))
    ours = _state(job.model)
    assert sorted(theirs) == sorted(ours)
    for name, values in ours.items():
        np.testing.assert_array_equal(theirs[name], values)
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    assert meta["format"] == common.CHECKPOINT_FORMAT and meta["workload"] == "reversal"

    # loaded into a torch model, the same batch gives the same loss
    weights, config, _ = common.read_checkpoint(path, "reversal")
    assert config == common.config_json(job.config)
    tjob = reversal.prepare(torch, "ci", seed=3)  # same batches; its weights are the untrained ones until loaded
    vt_loss = float(job.loss(job.batch(7)).item())
    untrained = float(tjob.loss(tjob.batch(7)).item())
    assert abs(vt_loss - untrained) > 1e-3  # so the comparison below shows that the trained weights arrived
    common.load_weights(torch, tjob.model, weights)
    torch_loss = float(tjob.loss(tjob.batch(7)).item())
    assert abs(vt_loss - torch_loss) < 1e-4 * max(1.0, abs(vt_loss))


def test_minigpt_checkpoint_samples_with_either_framework(tmp_path: Path):
    job = minigpt.prepare(torch, "ci", seed=1)
    path = tmp_path / "gpt.safetensors"
    minigpt.save_checkpoint(path, job.model, job.config, job.meta["vocab"])
    logits = {}
    for T in (torch, vt):
        model, cfg, vocab = minigpt.load_checkpoint(T, path)
        assert cfg == job.config and vocab == job.meta["vocab"]
        x = common.to_device(T, np.arange(cfg.context, dtype=np.int64)[None] % cfg.vocab, "cpu")
        with T.no_grad():
            logits[T.__name__] = common.to_numpy(model(x))
    np.testing.assert_allclose(logits["vibetensor.torch"], logits["torch"], rtol=1e-4, atol=1e-5)
    text = minigpt.sample_text(vt, path, 30, prompt="ROMEO:")
    assert len(text) == 30 and set(text) <= set(job.meta["vocab"])


@pytest.mark.parametrize("case", ["garbage", "other_workload", "old_npz", "other_format"])
def test_files_that_are_not_a_checkpoint_of_this_workload_are_refused(tmp_path: Path, case: str):
    path = tmp_path / "bad.safetensors"
    job = reversal.prepare(vt, "ci", seed=0)
    if case == "garbage":
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
        expect = "not a readable SafeTensors checkpoint"
    elif case == "other_workload":
        common.save_checkpoint(path, job.model, "vit", job.config)
        expect = "a checkpoint of 'vit', not of 'reversal'"
    elif case == "old_npz":
        with open(path, "wb") as f:
            np.savez(f, header=np.array("{}"), w=np.zeros(3, np.float32))
        expect = "not a readable SafeTensors checkpoint"
    else:
        st_numpy.save_file({"w": np.zeros(3, np.float32)}, str(path), metadata={"format": "x"})
        expect = "checkpoint format 'x'"
    with pytest.raises(ValueError, match=expect) as info:
        common.read_checkpoint(path, "reversal")
    assert str(path) in str(info.value)


def test_cli_save_then_load_and_profile_mismatch(tmp_path: Path):
    path = tmp_path / "r.safetensors"
    script = str(EXAMPLES / "reversal.py")

    def run(*args):
        return subprocess.run([sys.executable, script, "--framework", "vibetensor", "--steps", "1", *args],
                              capture_output=True, text=True, timeout=300)

    r = run("--save", str(path))
    assert r.returncode == 0, r.stderr
    assert f"saved {path}" in r.stdout and path.stat().st_size > 0
    r = run("--load", str(path))
    assert r.returncode == 0, r.stderr
    assert f"loaded weights from {path}" in r.stdout
    r = run("--load", str(path), "--profile", "paper")
    assert r.returncode != 0 and "differs from profile 'paper'" in r.stderr
