"""Every training path on this machine's GPU: precision (fp32, bf16, fp16 + GradScaler) x loss (BCE, WGAN-GP) x
torch.compile, each trained a few dozen steps from the same start; prints whether the losses stayed finite, the
last losses and the time per step, so that a path that breaks on a PyTorch version shows here first.

    python benchmarks/gpu_paths.py [--faces DIR] [--steps 40] [--no-compile]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

from gan_lib.data import ImageBatches
from gan_lib.io.image_files import FaceFolder
from gan_lib.losses import NonSaturatingLoss, WassersteinGPLoss
from gan_lib.models import dcgan, gaussian_noise
from gan_lib.recipes import adam
from gan_lib.runtime import configure_device
from gan_lib.train import Options, train

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(ROOT.parent / "shared" / "data" / "anime-faces-64"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (a quick check)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configure_device(device)
    faces = FaceFolder(args.faces, size=64, limit=2048)
    print(f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, torch {torch.__version__}")
    print(f"{'loss':8s} {'precision':9s} {'compile':7s} {'finite':6s} {'loss_d':>8s} {'loss_g':>8s} {'ms/step':>8s}  notes")
    failures = 0
    for loss_name, make_loss, norm, d_steps in [("BCE", NonSaturatingLoss, "batch", 1),
                                                ("WGAN-GP", WassersteinGPLoss, "layer", 5)]:
        for precision in ("fp32", "bf16", "fp16"):
            for compiled in (False,) if args.no_compile else (False, True):
                torch.manual_seed(0)
                G, D = (m.to(device, memory_format=torch.channels_last)
                        for m in dcgan(64, g_width=32, d_width=32, d_norm=norm))
                opt_g, opt_d = adam(G.parameters(), device, 1e-4, (0.0, 0.9)), adam(D.parameters(), device, 1e-4, (0.0, 0.9))
                batches = ImageBatches(faces.images_uint8, 64, device=device, channels_last=True)
                options = Options(d_steps=d_steps, precision=precision, compile=compiled, progress=False)
                noise = lambda n: gaussian_noise(n, device=device)                   # noqa: E731
                with warnings.catch_warnings(record=True) as said:
                    warnings.simplefilter("always")
                    try:
                        run = train(G, D, opt_g, opt_d, batches, make_loss(), noise, 5,
                                    options=options)                                   # warm-up, compilation
                        torch.cuda.synchronize() if device.type == "cuda" else None
                        started = time.perf_counter()
                        run = train(G, D, opt_g, opt_d, batches, make_loss(), noise, 5 + args.steps,
                                    options=options, run=run)                          # until: the total
                        torch.cuda.synchronize() if device.type == "cuda" else None
                        ms = (time.perf_counter() - started) / args.steps * 1000
                        finite = all(torch.isfinite(p).all() for p in [*G.parameters(), *D.parameters()])
                        history = run.history
                        row = f"{str(finite):6s} {history['loss_d'][-1]:8.3f} {history['loss_g'][-1]:8.3f} {ms:8.1f}"
                    except Exception as err:  # noqa: BLE001 - a broken path is a row, not the end of the check
                        finite, row = False, f"{'ERROR':6s} {type(err).__name__}: {str(err).splitlines()[0][:80]}"
                failures += not finite
                notes = "; ".join(sorted({str(w.message)[:70] for w in said}))
                print(f"{loss_name:8s} {precision:9s} {str(compiled):7s} {row}  {notes}")
    print("all paths finite" if not failures else f"{failures} path(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
