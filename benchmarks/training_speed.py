"""Images per second of DCGAN-64 training: the kit's loop against a bare loop written like the PyTorch DCGAN
tutorial, and the data paths (folder + PIL per epoch against the kit's decoded uint8 images), in one run.

Contenders take turns (round-robin, every other round reversed, ``--rounds`` rounds of ``--steps`` timed steps each, after warm-up steps), so
a machine that slows down or speeds up part-way treats them alike; the median round is reported.

    python benchmarks/training_speed.py                       # CPU: width 32, batch 64 (the loop's overhead)
    python benchmarks/training_speed.py --device cuda --batch 128 --width 64 --epoch   # GPU: + 71,314-image epoch

Contenders (all train the same ``gan_lib.models.dcgan`` with Adam(2e-4, (0.5, 0.999)) and BCE on logits):
  reference/PIL     the tutorial's loop fed by DataLoader(folder + PIL decode + transforms, --workers workers)
  reference/memory  the tutorial's loop fed by the kit's ImageBatches (fp32, no extras): same data as kit/plain
  kit/plain         gan_lib.train.train with the same batches, fp32: against reference/memory = the loop's overhead
  kit/fast          train(precision="auto", channels_last, fused Adam, cudnn.benchmark, images on the device)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from gan_lib.io.image_files import FaceFolder
from gan_lib.losses import NonSaturatingLoss
from gan_lib.models import dcgan, gaussian_noise
from gan_lib.recipes import adam
from gan_lib.runtime import configure_device
from gan_lib.train import Options, train
from gan_lib.data import ImageBatches, infinite

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "anime-faces-64"
HW6_EPOCH = 71_314          # faces in the HW6 / Kaggle anime-face set


class PILFolder(Dataset):
    """What ``torchvision.datasets.ImageFolder`` does per item, for a flat folder: open, decode, transform."""

    def __init__(self, root: Path, size: int):
        self.paths = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        self.transform = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                                             transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(Image.open(self.paths[i]).convert("RGB")), 0


def reference_steps(G, D, opt_g, opt_d, batches, steps, device, nz=100):
    """The PyTorch DCGAN tutorial's training step, as written there (D's Sigmoid folded into BCEWithLogits)."""
    criterion = nn.BCEWithLogitsLoss()
    G_losses, D_losses = [], []
    for _ in range(steps):
        real = next(batches).to(device)
        b_size = real.size(0)
        label = torch.full((b_size,), 1.0, device=device)
        D.zero_grad()
        output = D(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()  # noqa: F841 - the tutorial logs these
        noise = torch.randn(b_size, nz, 1, 1, device=device)
        fake = G(noise)
        label.fill_(0.0)
        output = D(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()  # noqa: F841
        errD = errD_real + errD_fake
        opt_d.step()
        G.zero_grad()
        label.fill_(1.0)
        output = D(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()  # noqa: F841
        opt_g.step()
        G_losses.append(errG.item())
        D_losses.append(errD.item())


class Contender:
    """One way to train: its models, optimisers and batch source, and ``run(steps)``.

    ``kit=False`` is the tutorial's loop; for the kit, ``precision`` ("fp32", "bf16", "fp16", "auto"),
    ``channels_last``, ``fused`` (Adam) and ``autotune`` (cudnn.benchmark) switch the fast path's parts one by one.
    """

    def __init__(self, name, batches, args, device, kit=True, precision="fp32", channels_last=False, fused=False,
                 autotune=False, compile=False):
        self.name, self.batches, self.device, self.kit = name, batches, device, kit
        self.precision, self.autotune, self.compile = precision, autotune, compile
        torch.manual_seed(0)
        G, D = dcgan(64, g_width=args.width, d_width=args.width)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.G, self.D = (m.to(device, memory_format=memory_format) for m in (G, D))
        self.opt_g = adam(self.G.parameters(), device) if fused else torch.optim.Adam(self.G.parameters(), 2e-4, (0.5, 0.999))
        self.opt_d = adam(self.D.parameters(), device) if fused else torch.optim.Adam(self.D.parameters(), 2e-4, (0.5, 0.999))
        self.state, self.rates = None, []              # the kit's Run, continued by every call

    def run(self, steps: int) -> None:
        cuda = self.device.type == "cuda"
        torch.backends.cudnn.benchmark = self.autotune and cuda
        if self.kit:
            precision = configure_device(self.device, self.precision) if self.autotune else self.precision
            until = (self.state.step if self.state else 0) + steps          # until is the total: `steps` more
            self.state = train(self.G, self.D, self.opt_g, self.opt_d, self.batches, NonSaturatingLoss(),
                               lambda n: gaussian_noise(n, 100, device=self.device), until, run=self.state,
                               options=Options(precision=precision, compile=self.compile, progress=False))
        else:
            reference_steps(self.G, self.D, self.opt_g, self.opt_d, self.batches, steps, self.device)
        if cuda:
            torch.cuda.synchronize()

    def timed(self, steps: int, batch: int) -> float:
        started = time.perf_counter()
        self.run(steps)
        rate = steps * batch / (time.perf_counter() - started)
        self.rates.append(rate)
        return rate


def data_rate(batches, n_batches: int, batch: int, device) -> float:
    """Images/s of a batch source alone (each batch moved to the device, as training would)."""
    next(batches)
    started = time.perf_counter()
    for _ in range(n_batches):
        x = next(batches).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    del x
    return n_batches * batch / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--faces", default=str(FACES))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per contender per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (the tutorial uses 2)")
    parser.add_argument("--data-workers", type=int, nargs="*", default=[],
                        help="also time the PIL DataLoader alone with these numbers of workers")
    parser.add_argument("--only", nargs="*", default=None, help="contender names to run (default all)")
    parser.add_argument("--precision", default="auto", help="kit/fast's precision (default: runtime.choose_precision)")
    parser.add_argument("--ablation", action="store_true", help="also time each part of the fast path alone")
    parser.add_argument("--epoch", action="store_true", help="also time one 71,314-image epoch on the fast path")
    args = parser.parse_args()
    device = torch.device(args.device)
    faces_dir = Path(args.faces)
    if not faces_dir.is_dir():
        print(f"{faces_dir} is missing: this benchmark needs a folder of face images (--faces).")
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; DCGAN-64 width {args.width}, batch {args.batch}")

    started = time.perf_counter()
    cache = FaceFolder(faces_dir, size=64)                                     # decoded once: uint8 (N, 3, 64, 64)
    print(f"decoded {len(cache):,} faces into memory in {time.perf_counter() - started:.1f} s")
    pil_loader = DataLoader(PILFolder(faces_dir, 64), batch_size=args.batch, shuffle=True, drop_last=True,
                            num_workers=args.workers, persistent_workers=args.workers > 0)
    pil_batches = infinite(pil_loader)
    memory = lambda: ImageBatches(cache.images_uint8, args.batch, device=device, seed=0)
    fast_batches = ImageBatches(cache.images_uint8, args.batch, device=device, seed=0, flip=True,
                                channels_last=True)

    fast = dict(precision=args.precision, channels_last=True, fused=True, autotune=True)
    contenders = [Contender("reference/PIL", pil_batches, args, device, kit=False),
                  Contender("reference/memory", memory(), args, device, kit=False),
                  Contender("kit/plain", memory(), args, device),
                  Contender("kit/fast", fast_batches, args, device, **fast)]
    if args.ablation:   # the fast path with one part at a time (on top of plain), to see what each is worth
        contenders += [Contender("kit/+autotune", memory(), args, device, autotune=True),
                       Contender("kit/+fused", memory(), args, device, fused=True),
                       Contender("kit/+channels_last", memory(), args, device, channels_last=True, autotune=True),
                       Contender("kit/+bf16", memory(), args, device, precision="bf16", autotune=True),
                       Contender("kit/+fp16", memory(), args, device, precision="fp16", autotune=True),
                       Contender("kit/+compile", memory(), args, device, compile=True, autotune=True)]
    contenders = [c for c in contenders if args.only is None or c.name in args.only]
    for c in contenders:
        c.run(args.warmup)
    for r in range(args.rounds):    # every other round in reverse order, so that no contender always goes first
        for c in contenders if r % 2 == 0 else contenders[::-1]:
            c.timed(args.steps, args.batch)
        rates = [f"{c.name} {c.rates[-1]:,.0f}" for c in contenders]
        print(f"round {r + 1}: " + ", ".join(rates) + " images/s")

    data = {f"PIL DataLoader, {args.workers} workers": data_rate(pil_batches, 20, args.batch, device)}
    for workers in args.data_workers:
        loader = DataLoader(PILFolder(faces_dir, 64), batch_size=args.batch, shuffle=True, drop_last=True,
                            num_workers=workers)
        data[f"PIL DataLoader, {workers} workers"] = data_rate(infinite(loader), 40, args.batch, device)
    data["ImageBatches (uint8 cache on the device)"] = data_rate(fast_batches, 200, args.batch, device)

    print(f"\n{'contender':20s} {'images/s':>10s} {'71,314-img epoch':>17s}")
    median = {c.name: statistics.median(c.rates) for c in contenders}
    for c in contenders:
        print(f"{c.name:20s} {median[c.name]:10,.0f} {HW6_EPOCH / median[c.name]:15.1f} s")
    for a, b, what in [("kit/plain", "reference/memory", "loop overhead: kit/plain ÷ reference/memory"),
                       ("kit/fast", "reference/PIL", "kit/fast ÷ the tutorial with DataLoader + PIL"),
                       ("kit/fast", "kit/plain", "fast path ÷ plain kit loop")]:
        if a in median and b in median:
            per_round = [x / y for x, y in zip(next(c for c in contenders if c.name == a).rates,
                                               next(c for c in contenders if c.name == b).rates)]
            print(f"{what}: {median[a] / median[b]:.3f} (rounds: {', '.join(f'{v:.3f}' for v in per_round)})")
    print("\ndata path alone (images/s):")
    for what, rate in data.items():
        print(f"  {what:42s} {rate:12,.0f}")

    if args.epoch:   # the HW6 epoch: the cached faces repeated up to 71,314 images, on the fast path
        n = HW6_EPOCH
        images = cache.images_uint8.repeat(-(-n // len(cache)), 1, 1, 1)[:n]
        fast = next(c for c in contenders if c.name == "kit/fast")
        fast.batches = ImageBatches(images, args.batch, device=device, seed=1, flip=True, channels_last=True)
        steps = len(fast.batches)
        started = time.perf_counter()
        fast.run(steps)
        seconds = time.perf_counter() - started
        print(f"\none epoch of {n:,} images on kit/fast: {steps} steps of {args.batch} in {seconds:.1f} s "
              f"({steps * args.batch / seconds:,.0f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
