"""The trainer command (python -m gan_lib.trainer) in one process, and the recipes it trains."""
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import SHARED_DATA
from gan_lib import recipes, trainer
from gan_lib.checkpoints import load_checkpoint
from gan_lib.synthetic_faces import cartoon_faces


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The shared real faces when present, else a folder of 32 generated ones (the command reads a folder)."""
    real = SHARED_DATA / "anime-faces-64"
    if real.is_dir():
        return real
    folder = tmp_path_factory.mktemp("faces")
    for i, face in enumerate(cartoon_faces(32, 64)):
        Image.fromarray(face.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    return folder


def _command(faces, out, steps, *more):
    return trainer.main(["--data", str(faces), "--limit", "32", "--out", str(out), "--steps", str(steps), "--batch",
                         "8", "--width", "4", "--device", "cpu", "--sample-every", "2", "--no-progress", *more])


def test_the_command_trains_writes_and_resumes_where_it_stopped(faces, tmp_path, capsys):
    out = tmp_path / "run"
    assert _command(faces, out, 2, "--recipe", "dcgan64") == 0
    assert (out / "grid.png").is_file() and (out / "run.json").is_file()
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_000002.png"]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 2

    assert _command(faces, out, 3, "--recipe", "dcgan64") == 1        # a second run may not overwrite the first
    assert "already holds a run: add --resume" in capsys.readouterr().err

    assert _command(faces, out, 3, "--recipe", "dcgan64", "--resume") == 0
    assert "from step 2 to 3" in capsys.readouterr().out
    straight = tmp_path / "straight"
    assert _command(faces, straight, 3, "--recipe", "dcgan64") == 0
    resumed, whole = (load_checkpoint(o / "checkpoints" / "last.pt") for o in (out, straight))
    assert resumed["step"] == whole["step"] == 3 and len(resumed["history"]["loss_d"]) == 3
    for key, value in whole["G"].items():                              # 2 + 1 steps = 3 steps, exactly
        assert torch.equal(resumed["G"][key], value), key

    G, D, history = trainer.load_run(out)
    assert tuple(G(torch.randn(2, 100)).shape) == (2, 3, 64, 64) and not G.training
    assert history["step"] == 3 and [s for s, _ in history["samples"]] == [2]


def test_the_wgan_gp_recipe_runs_its_critic_steps(faces, tmp_path):
    assert _command(faces, tmp_path, 1, "--recipe", "wgan-gp") == 0
    history = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["history"]
    assert len(history["gradient penalty"]) == 1 and len(history["W estimate"]) == 1


def test_the_recipes_are_the_lessons(capsys):
    dcgan, wgan = recipes.build("dcgan64", width=4), recipes.build("wgan-gp", width=4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in dcgan.D.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in wgan.D.modules())     # a per-sample penalty: no batch norm
    assert (dcgan.batch, dcgan.steps, dcgan.opt_d.defaults["lr"], dcgan.opt_d.defaults["betas"]) == \
        (128, 12000, 2e-4, (0.5, 0.999))
    assert (wgan.batch, wgan.steps, wgan.train_options, wgan.opt_d.defaults["betas"]) == \
        (64, 6000, {"d_steps": 5}, (0.0, 0.9))
    with pytest.raises(ValueError, match="unknown recipe 'dcgan'"):
        recipes.build("dcgan")
    modern = recipes.build("modern", width=4)                                    # lesson 05's last row
    assert (modern.batch, modern.loss.r1, modern.loss.augment.p, modern.opt_d.defaults["betas"]) == \
        (64, 0.1, 0.2, (0.0, 0.99)) and "ema" in modern.train_options


def test_load_run_names_a_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass the --out folder"):
        trainer.load_run(tmp_path)
