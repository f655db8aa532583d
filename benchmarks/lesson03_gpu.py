"""Lesson 03's full-mode recipe on a GPU, on the fast path: DCGAN-64 (width 64), batch 128, Adam 2e-4 (0.5, 0.999),
BCE, STEPS generator updates on a folder of real faces; AFD and diversity every --eval-every steps and at the end.

This drives the same gan_lib calls as the notebook (a GPU machine without Jupyter can run it):

    python benchmarks/lesson03_gpu.py --faces ../shared/data/anime-faces-64 --cascade PATH --out runs/gpu [--steps 12000]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from gan_lib import seed_everything
from gan_lib.checkpoints import load_checkpoint
from gan_lib.explore import sample_seeded
from gan_lib.fast import ImageBatches, adam, configure_device
from gan_lib.image_metrics import diversity, face_detection_rate, load_face_cascade
from gan_lib.images import FaceFolder
from gan_lib.losses import NonSaturatingLoss
from gan_lib.models import dcgan, gaussian_noise
from gan_lib.train import train

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(ROOT.parent / "shared" / "data" / "anime-faces-64"))
    parser.add_argument("--cascade", default=None)
    parser.add_argument("--out", default="runs/lesson03_gpu")
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--eval-every", type=int, default=3000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--evaluate", default=None, help="only evaluate the G_step*.pt saved in this folder")
    args = parser.parse_args()
    if args.evaluate:
        evaluate(Path(args.evaluate), args.faces, args.n_eval)
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    faces = FaceFolder(args.faces, size=64)
    precision = configure_device(device, args.precision)
    batches = ImageBatches(faces.images_uint8, 128, device=device, flip=True, seed=0, channels_last=True)
    G, D = (m.to(device, memory_format=torch.channels_last) for m in dcgan(64))
    opt_g, opt_d = adam(G.parameters(), device), adam(D.parameters(), device)
    try:
        cascade = load_face_cascade(path=args.cascade)
    except Exception as err:  # noqa: BLE001 - e.g. OpenCV 5 on the GPU machine: evaluate later with --evaluate
        cascade = None
        print(f"AFD left for later ({type(err).__name__}: {err}); generators are saved for --evaluate")
    afd = (lambda images: face_detection_rate(images, cascade)) if cascade else (lambda images: None)
    real = torch.stack([faces[i] for i in torch.randperm(len(faces))[:args.n_eval].tolist()])
    rows = [{"step": 0, "afd": None, "afd_real": afd(real), **diversity(real)}]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, {precision}, {len(faces):,} faces; real AFD {rows[0]['afd_real']}, "
          f"real diversity {rows[0]['diversity']:.3f}")
    history, seconds = None, 0.0
    for done in range(args.eval_every, args.steps + args.eval_every, args.eval_every):
        steps = min(done, args.steps) - (history["step"] if history else 0)
        started = time.perf_counter()
        history = train(G, D, opt_g, opt_d, batches, NonSaturatingLoss(), lambda n: gaussian_noise(n, device=device),
                        steps, history=history, device=device, precision=precision, progress=False)
        torch.cuda.synchronize() if device.type == "cuda" else None
        seconds += time.perf_counter() - started
        fake = sample_seeded(G, args.n_eval, seed=1)
        row = {"step": history["step"], "seconds": round(seconds, 1), "images_per_s": round(
            history["step"] * 128 / seconds), "afd": afd(fake), **diversity(fake)}
        rows.append(row)
        print(json.dumps(row))
        torch.save({k: v.half() for k, v in G.state_dict().items()}, out / f"G_step{history['step']}.pt")
        save_image(fake[:64], out / f"samples_step{history['step']}.png", nrow=8, normalize=True,
                   value_range=(-1, 1))
    (out / "lesson03_gpu.json").write_text(json.dumps({"rows": rows, "warnings": history.get("warnings", []),
                                                        "loss_d_last100": sum(history["loss_d"][-100:]) / 100,
                                                        "loss_g_last100": sum(history["loss_g"][-100:]) / 100}))
    return 0


def evaluate(folder: Path, faces_dir: str, n_eval: int) -> None:
    """AFD and diversity of every ``G_step*.pt`` in ``folder`` (e.g. fetched from a GPU machine without OpenCV 4)."""
    cascade, faces = load_face_cascade(), FaceFolder(faces_dir, size=64)
    torch.manual_seed(0)
    real = torch.stack([faces[i] for i in torch.randperm(len(faces))[:n_eval].tolist()])
    print(f"real: AFD {face_detection_rate(real, cascade):.3f}, diversity {diversity(real)['diversity']:.3f}")
    for path in sorted(folder.glob("G_step*.pt"), key=lambda p: int(p.stem[6:])):
        G = dcgan(64)[0]
        G.load_state_dict({k: v.float() for k, v in load_checkpoint(path).items()})
        fake = sample_seeded(G, n_eval, seed=1)
        print(f"{path.stem}: AFD {face_detection_rate(fake, cascade):.3f}, "
              f"diversity {diversity(fake, reference=real)}")


if __name__ == "__main__":
    sys.exit(main())
