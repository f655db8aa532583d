"""The CPU budget of lessons 03-05: full mode without a CUDA GPU picks the settings marked ``cpu=``, full mode on a
GPU keeps the GPU settings, and smoke mode is unchanged."""
import json
from pathlib import Path

import pytest
import torch

from gan_lib import runtime

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# the GPU settings as they were before the CPU budget existed (issue 21: keep them), and what the budget changes
GPU = {"03_anime_dcgan": dict(WIDTH=64, BATCH=128, STEPS=6000, FAIL_STEPS=1500, N_REF=3000, AUGMENT_P=0.0,
                             EVAL_EVERY=500, N_SCORE=500),
       "04_wgan_gp": dict(WIDTH=64, BATCH=64, STEPS=6000, STUDY_STEPS=300, N_EVAL=1000, N_REF=3000),
       "05_modern_gan": dict(DCGAN_WIDTH=64, STYLE_WIDTH=32, BUDGET_S=300, N_EVAL=1000, N_REF=3000, AUGMENT_P=0.2,
                             EMA_RAMPUP=None,
                             ROWS=["DCGAN", "+ EMA", "+ layer-norm D", "+ R1", "+ DiffAugment", "+ StyleGAN2 G",
                                   "+ residual D", "+ StyleGAN2's Adam"])}


def settings(notebook: str, monkeypatch, smoke: str, cuda: bool) -> dict:
    """The values of the notebook's settings cell (the one that sets SEED) in that mode."""
    monkeypatch.setenv(runtime.SMOKE_ENV, smoke)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "SEED = 0" in "".join(c["source"]))
    values = {"by_mode": runtime.by_mode, "storage_folder": runtime.storage_folder}
    exec(source, values)
    return values


@pytest.mark.parametrize("notebook", sorted(GPU))
def test_the_cpu_budget_changes_only_full_mode_without_a_gpu(notebook, monkeypatch):
    gpu = settings(notebook, monkeypatch, "0", cuda=True)
    cpu = settings(notebook, monkeypatch, "0", cuda=False)
    smoke_gpu, smoke_cpu = (settings(notebook, monkeypatch, "1", cuda=c) for c in (True, False))
    assert {key: gpu[key] for key in GPU[notebook]} == GPU[notebook]
    changed = {key for key in GPU[notebook] if cpu[key] != gpu[key]}
    assert changed and changed >= {key for key in GPU[notebook] if "WIDTH" in key}      # smaller networks on a CPU
    assert {k: v for k, v in smoke_gpu.items() if k.isupper()} == {k: v for k, v in smoke_cpu.items() if k.isupper()}
    shared = {k for k in gpu if k.isupper() and k not in changed and k not in GPU[notebook]}
    assert all(cpu[k] == gpu[k] for k in shared), "a setting without cpu= must not change on a CPU"
