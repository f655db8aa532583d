"""The trainer command (python -m gan_lib.trainer) in one process, and the recipes it trains."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from PIL import Image
from torch import nn

from torchvision.utils import save_image

from conftest import SHARED_DATA
from gan_lib import recipes
from gan_lib.trainer import command as trainer
from gan_lib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from gan_lib.io.synthetic_faces import cartoon_faces
from gan_lib.train import Callback
from gan_lib.explore import sample


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


def _files(folder):
    """{path: bytes} of every file under ``folder``, to show that a refused command changed nothing."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _command(faces, out, steps, *more):
    return trainer.main(["--data", str(faces), "--limit", "32", "--out", str(out), "--steps", str(steps), "--batch",
                         "8", "--width", "4", "--device", "cpu", "--sample-every", "2", "--no-progress", *more])


def test_the_command_trains_writes_and_resumes_where_it_stopped(faces, tmp_path, capsys):
    out = tmp_path / "run"
    assert _command(faces, out, 2, "--recipe", "dcgan") == 0
    assert (out / "grid.png").is_file() and (out / "run.json").is_file()
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_000002.png"]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 2

    assert _command(faces, out, 3, "--recipe", "dcgan") == 2          # a second run may not overwrite the first
    assert "already holds a run (checkpoints/last.pt): add --resume" in capsys.readouterr().err

    assert _command(faces, out, 3, "--recipe", "dcgan", "--resume") == 0
    said = capsys.readouterr().out
    assert "from step 2 to 3" in said and "resumed at step 2" in said
    straight = tmp_path / "straight"
    assert _command(faces, straight, 3, "--recipe", "dcgan") == 0
    resumed, whole = (load_checkpoint(o / "checkpoints" / "last.pt") for o in (out, straight))
    assert resumed["step"] == whole["step"] == 3 and len(resumed["run"]["history"]["loss_d"]) == 3
    for part in ("G", "D"):                                            # 2 + 1 steps = 3 steps, exactly
        for key, value in whole[part].items():
            assert torch.equal(resumed[part][key], value), (part, key)
    for key, value in whole["run"]["callbacks"]["EMA"].items():       # the EMA of G too
        assert torch.equal(resumed["run"]["callbacks"]["EMA"][key], value), key

    G, D, run = trainer.load_run(out)
    assert tuple(G(torch.randn(2, 100)).shape) == (2, 3, 64, 64) and not G.training and not D.training
    assert run.step == 3 and len(run.history["loss_d"]) == 3
    assert [s for s, _ in run.callbacks["Grids"]["samples"]] == [2]   # the newest grid (all are in samples/)


@pytest.mark.parametrize("variant, d_steps, number", [(None, 5, "gradient penalty"),
                                                      ("WGAN (clip 0.01)", 5, "W estimate"),
                                                      ("WGAN (HW6: clip 1.0)", 2, "W estimate")])
def test_the_wgan_recipe_runs_its_variant_and_critic_steps(faces, tmp_path, variant, d_steps, number):
    more = () if variant is None else ("--variant", variant)
    assert _command(faces, tmp_path, 1, "--recipe", "wgan", *more) == 0
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    history = state["run"]["history"]
    assert len(history[number]) == 1 and len(history["W estimate"]) == 1
    data = state["data"]                                                # 32 images: 4 batches of 8 per pass
    assert data["epoch"] * 32 + data["position"] == d_steps * 8        # one real batch per critic step
    G, D, run = trainer.load_run(tmp_path)                            # built again as run.json says
    assert run.step == 1 and not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert json.loads((tmp_path / "run.json").read_text())["variant"] == (variant or "WGAN-GP")


def test_a_variant_is_only_for_the_wgan_recipe(faces, tmp_path, capsys):
    assert _command(faces, tmp_path / "run", 1, "--recipe", "dcgan", "--variant", "WGAN-GP") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --variant is a setting of --recipe wgan, not of --recipe dcgan") and \
        err.count("\n") == 1 and not (tmp_path / "run").exists()


def test_the_recipes_are_the_lessons():
    dcgan, wgan = recipes.build("dcgan", width=4), recipes.build("wgan", width=4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in dcgan.D.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in wgan.D.modules())     # a per-sample penalty: no batch norm
    assert (dcgan.batch, dcgan.steps, dcgan.opt_d.defaults["lr"], dcgan.opt_d.defaults["betas"]) == \
        (128, 6000, 2e-4, (0.5, 0.999)) and dcgan.ema is not None
    assert (wgan.batch, wgan.steps, wgan.options.d_steps, wgan.opt_d.defaults["betas"], wgan.ema) == \
        (64, 6000, 5, (0.0, 0.9), None)
    with pytest.raises(ValueError, match="unknown recipe 'dcgan64'"):
        recipes.build("dcgan64")
    modern = recipes.build("modern", style_width=4)                              # lesson 05's last row
    assert (modern.batch, modern.loss.r1, modern.loss.augment.p, modern.opt_d.defaults["betas"]) == \
        (64, 0.1, 0.2, (0.0, 0.99)) and modern.ema is not None


def test_load_run_names_a_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass the --out folder"):
        trainer.load_run(tmp_path)


@pytest.mark.parametrize("option, value, least", [
    ("--steps", "0", 1), ("--steps", "-3", 1), ("--batch", "0", 1), ("--checkpoint-every", "0", 1),
    ("--checkpoint-every", "-1", 1), ("--limit", "0", 1), ("--limit", "-1", 1), ("--width", "0", 1),
    ("--seed", "-1", 0), ("--sample-every", "-1", 0)])
def test_a_bad_number_is_refused_before_anything_is_written(faces, tmp_path, capsys, option, value, least):
    out = tmp_path / "run"
    assert _command(faces, out, 2, "--recipe", "dcgan", option, value) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} must be >= {least} (got {value}): it is ") and err.count("\n") == 1
    assert not out.exists()


def test_resuming_a_run_already_past_steps_says_so_and_changes_nothing(faces, tmp_path, capsys):
    out = tmp_path / "run"
    assert _command(faces, out, 2, "--recipe", "dcgan") == 0
    before = _files(out)
    capsys.readouterr()
    assert _command(faces, out, 1, "--recipe", "dcgan", "--resume") == 0
    assert capsys.readouterr().out == (f"the run in {out} is already at step 2 >= --steps 1: nothing was trained "
                                       f"(pass a larger --steps to continue it).\n")
    assert _files(out) == before


@pytest.mark.parametrize("name", ["previous.pt", "best.pt"])
def test_a_fresh_run_does_not_overwrite_an_older_checkpoint(faces, tmp_path, capsys, name):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / name).write_bytes(b"an earlier run")
    assert _command(faces, out, 1, "--recipe", "dcgan") == 2
    assert capsys.readouterr().err == (f"error: {out} already holds a run (checkpoints/{name}): add --resume to "
                                       f"continue it, or pick another --out.\n")
    assert [p.name for p in out.rglob("*") if p.is_file()] == [name]
    assert (out / "checkpoints" / name).read_bytes() == b"an earlier run"


def test_out_that_is_a_file_is_refused_in_one_sentence(faces, tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    assert _command(faces, out, 1, "--recipe", "dcgan") == 2
    assert capsys.readouterr().err == f"error: --out {out} is a file, not a folder: pass the folder the run " \
                                      f"should go into.\n"
    assert out.read_text() == "mine"


def test_a_second_trainer_on_the_same_out_is_refused(faces, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    lock, held = out / trainer.LOCK, f"{os.getpid()} {socket.gethostname()}\n"   # this test's live process
    lock.write_text(held)
    assert _command(faces, out, 1, "--recipe", "dcgan") == 2
    assert capsys.readouterr().err == (f"error: {out} is in use by another trainer (process {os.getpid()} on "
                                       f"{socket.gethostname()}, see {lock}): wait for it to finish or pass another "
                                       f"--out (delete the lock only if no trainer runs there).\n")
    assert sorted(p.name for p in out.iterdir()) == [trainer.LOCK] and lock.read_text() == held


def test_a_stale_lock_is_taken_over_and_the_run_holds_its_own(faces, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)                                              # a process that has exited (and been reaped)
    (out / trainer.LOCK).write_text(f"{dead} {socket.gethostname()}\n")
    seen, real_train = [], trainer.train
    monkeypatch.setattr(trainer, "train", lambda *a, **k: seen.append((out / trainer.LOCK).read_text()) or
                        real_train(*a, **k))
    assert _command(faces, out, 1, "--recipe", "dcgan") == 0
    assert f"note: took over {out / trainer.LOCK}, left by process {dead}, which no longer runs." in \
        capsys.readouterr().err
    assert seen == [f"{os.getpid()} {socket.gethostname()}\n"]           # held while training
    assert not (out / trainer.LOCK).exists()                             # and given back at the end


def _break(path, key, name):
    """Put a NaN into the weight ``name`` of G (``key`` "G") or of the EMA of G (``key`` "EMA") in the checkpoint at
    ``path``."""
    state = load_checkpoint(path)
    weights = state["G"] if key == "G" else state["run"]["callbacks"][key]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_checkpoint(path, state)


def test_load_run_refuses_a_nan_generator(faces, tmp_path):
    assert _command(faces, tmp_path, 1, "--recipe", "dcgan") == 0
    last = tmp_path / "checkpoints" / "last.pt"
    _break(last, "G", next(iter(load_checkpoint(last)["G"])))
    with pytest.raises(CheckpointError) as caught:
        trainer.load_run(tmp_path)
    assert str(caught.value) == (f"{last} holds NaN or infinite weights in G (the run diverged before this save): "
                                 f"load an earlier checkpoint, load_run(out, checkpoint='previous.pt') or "
                                 f"checkpoint='best.pt'.")


def test_load_run_refuses_a_checkpoint_of_another_format(faces, tmp_path):
    assert _command(faces, tmp_path, 1, "--recipe", "dcgan") == 0
    last = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(last, {**load_checkpoint(last), "format": 1})
    with pytest.raises(CheckpointError, match=r"last\.pt was written by another gan_lib version \(checkpoint format "
                                              r"1, this one reads 2\): train the run again"):
        trainer.load_run(tmp_path)


def test_the_modern_recipe_resumes_its_ema_and_draws_the_grid_from_it(faces, tmp_path, recwarn):
    out = tmp_path / "run"
    assert _command(faces, out, 1, "--recipe", "modern", "--batch", "2", "--limit", "4") == 0
    assert _command(faces, out, 2, "--recipe", "modern", "--batch", "2", "--limit", "4", "--resume") == 0
    assert not [str(w.message) for w in recwarn if "EMA" in str(w.message) or "callback" in str(w.message)]
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    saved = state["run"]["callbacks"]["EMA"]
    assert int(saved["n_averaged"]) == 2                                 # 1 + 1 updates, not a fresh average

    recipe = recipes.build("modern", batch=2, dcgan_width=4, style_width=2)
    recipe.ema.load_state_dict(saved)
    fixed_noise = state["run"]["callbacks"]["Grids"]["fixed_noise"]
    save_image(sample(recipe.ema.module, fixed_noise), tmp_path / "ema.png", nrow=8, normalize=True,
               value_range=(-1, 1))
    assert (tmp_path / "ema.png").read_bytes() == (out / "grid.png").read_bytes()
    G, _, _ = trainer.load_run(out)                                      # the EMA of G is the one to sample
    assert torch.equal(sample(G, fixed_noise), sample(recipe.ema.module, fixed_noise))

    _break(out / "checkpoints" / "last.pt", "EMA", "module." + next(iter(state["G"])))
    with pytest.raises(CheckpointError, match=r"last\.pt holds NaN or infinite weights in the EMA of G "):
        trainer.load_run(out)


@pytest.mark.parametrize("option, value, change", [("--batch", "4", "batch 8 -> 4"), ("--seed", "1", "seed 0 -> 1")])
def test_resume_refuses_other_settings(faces, tmp_path, capsys, option, value, change):
    out = tmp_path / "run"
    assert _command(faces, out, 1, "--recipe", "dcgan") == 0
    before = _files(out)
    capsys.readouterr()
    assert _command(faces, out, 2, "--recipe", "dcgan", "--resume", option, value) == 2
    said = capsys.readouterr().err.splitlines()[-1]                     # after the progress bar of the decoding
    assert said.startswith(f"error: {out / 'checkpoints' / 'last.pt'} was trained with other settings ({change}): ")
    assert "drop --resume and pass another --out" in said and "RESUME" not in said     # the command's way out
    assert _files(out) == before     # run.json too


class _CtrlCAt(Callback):
    """Ctrl-C after step ``step`` (before the checkpoint's own on_step: Checkpoints runs last)."""

    def __init__(self, step):
        self.step = step

    def on_step(self, loop):
        if loop.run.step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_saves_says_how_to_resume_and_exits_130(faces, tmp_path, capsys, monkeypatch):
    """A KeyboardInterrupt after step 2 of 4: the step-2 checkpoint is saved, one line says to rerun with --resume,
    the command returns 130 (the shell's code for Ctrl-C) without a traceback, and --resume goes on from step 2."""
    real_train = trainer.train

    def interrupted_at_step_2(*args, callbacks, **kwargs):
        return real_train(*args, callbacks=[*callbacks, _CtrlCAt(2)], **kwargs)

    monkeypatch.setattr(trainer, "train", interrupted_at_step_2)
    out = tmp_path / "run"
    assert _command(faces, out, 4, "--recipe", "dcgan") == 130
    said = capsys.readouterr()
    assert "Traceback" not in said.err + said.out and "--resume" in said.err + said.out
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 2
    assert not (out / trainer.LOCK).exists()                             # the lock is given back
    monkeypatch.setattr(trainer, "train", real_train)
    assert _command(faces, out, 4, "--recipe", "dcgan", "--resume") == 0
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4
