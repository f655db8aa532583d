"""Smoke-mode switch, device choice and seeding."""
import random

import numpy as np
import pytest
import torch

from gan_lib import runtime
from gan_lib.runtime import by_mode, pick_device, seed_everything, smoke_mode


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True),
                                             ("0", False), ("", False), ("off", False)])
def test_smoke_mode_reads_the_variable(monkeypatch, value, expected):
    monkeypatch.setenv("GAN_LIB_SMOKE", value)
    assert smoke_mode() is expected
    assert by_mode(full="full", smoke="smoke") == ("smoke" if expected else "full")


def test_smoke_mode_unset_means_full(monkeypatch):
    monkeypatch.delenv("GAN_LIB_SMOKE", raising=False)
    assert smoke_mode() is False


def test_smoke_mode_rejects_a_typo_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("GAN_LIB_SMOKE", "maybe")
    with pytest.raises(ValueError, match="GAN_LIB_SMOKE='maybe' is not understood"):
        smoke_mode()


def test_only_runtime_reads_the_environment():
    """Notebooks ask smoke_mode(); no notebook code cell and no other gan_lib module reads the environment, but
    for the DDP helpers, which read what torchrun sets (WORLD_SIZE, LOCAL_RANK)."""
    import json
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    reading = re.compile(r"os\.environ\.get|os\.environ\[|getenv\(")
    offenders = [p.name for p in (root / "gan_lib").rglob("*.py")
                 if p.name not in ("runtime.py", "distributed.py") and reading.search(p.read_text())]
    for nb_path in (root / "notebooks").glob("*.ipynb"):
        code = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"]
                         if c["cell_type"] == "code")
        if reading.search(code) or "environ" in code:
            offenders.append(nb_path.name)
    assert offenders == [], f"only runtime.py (and distributed.py) may read the environment; also in {offenders}"


def test_pick_device_order(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"
    assert pick_device("cpu").type == "cpu"


def _short_training_run(seed):
    seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ELU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        x = torch.rand(64, 1)
        loss = (model(x) - 4.0 + torch.randn(64, 1)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]), random.random(), np.random.rand()


def test_seed_everything_makes_a_cpu_run_repeat_exactly():
    w1, py1, np1 = _short_training_run(123)
    w2, py2, np2 = _short_training_run(123)
    w3, _, _ = _short_training_run(124)
    assert torch.equal(w1, w2) and py1 == py2 and np1 == np2
    assert not torch.equal(w1, w3)


def test_seed_everything_returns_a_seeded_generator():
    a = torch.rand(3, generator=seed_everything(7))
    b = torch.rand(3, generator=seed_everything(7))
    assert torch.equal(a, b)
    assert runtime.SMOKE_ENV == "GAN_LIB_SMOKE"


def test_runtime_line_names_the_place_and_warns_only_when_a_gpu_is_needed(monkeypatch):
    from gan_lib import runtime

    monkeypatch.setenv(runtime.SMOKE_ENV, "0")
    monkeypatch.setattr(runtime, "runtime_name", lambda: "Kaggle")
    line = runtime.describe_runtime("cpu")
    assert line.startswith("runtime: Kaggle | device: cpu | torch ") and "smoke mode: off" in line
    assert "\nCPU budget: no GPU" in line and "Settings > Accelerator > GPU" in line
    assert "CPU budget" not in runtime.describe_runtime("cpu", needs_gpu=False)
    monkeypatch.setenv(runtime.SMOKE_ENV, "1")
    assert "CPU budget" not in runtime.describe_runtime("cpu") and "smoke mode: on" in runtime.describe_runtime("cpu")


@pytest.mark.parametrize("smoke, cuda, expected", [("1", False, "smoke"), ("1", True, "smoke"),
                                                   ("0", False, "cpu"), ("0", True, "full")])
def test_by_mode_picks_the_cpu_budget_only_in_full_mode_without_a_gpu(monkeypatch, smoke, cuda, expected):
    monkeypatch.setenv(runtime.SMOKE_ENV, smoke)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert runtime.cpu_budget() is (expected == "cpu")
    assert by_mode(full="full", smoke="smoke", cpu="cpu") == expected
    assert by_mode(full="full", smoke="smoke") == ("smoke" if smoke == "1" else "full")   # no cpu=: full
    assert by_mode(full="full", smoke="smoke", cpu=None) == (None if expected == "cpu" else expected)


def test_storage_folder_by_place(monkeypatch):
    from gan_lib import runtime

    monkeypatch.setattr(runtime, "runtime_name", lambda: "local")
    assert runtime.storage_folder("03_dcgan", drive=True) == "runs/03_dcgan"       # no Drive outside Colab
    monkeypatch.setattr(runtime, "runtime_name", lambda: "Kaggle")
    assert runtime.storage_folder("03_dcgan") == "/kaggle/working/03_dcgan"
