"""How long the FID Inception takes for N real 64 px faces on this machine, and which CPU settings help.

    python benchmarks/evaluation_speed.py                  # 1,000 faces, the evaluator's settings
    python benchmarks/evaluation_speed.py --n 100 --compare  # also channels-last batches, and batch 25

Prints wall-clock and process CPU seconds (on a shared machine the wall clock includes waiting for other
processes; CPU seconds / threads is what an idle machine would take), images per second, the arithmetic the network
does per image (counted by ``torch.utils.flop_counter``) and the rate the machine reached, then, with --evaluate,
the evaluator's numbers for these faces against the rest of the reference (``gan_lib.eval.evaluate``).

The count sets a floor: N images need N x GFLOP/image of arithmetic, so no implementation of the same network at
the same 299 px input can beat N x GFLOP/image / (the CPU's peak GFLOP/s). The benchmark measures that peak as
the rate of a large fp32 matrix product (what the CPU's BLAS reaches; convolutions rarely do better) and prints
the floor it implies.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gan_lib.data import to_unit_range
from gan_lib.eval.evaluate import describe, evaluate, reference, report
from gan_lib.eval.image_metrics import InceptionFeatures, extract_features, inception
from gan_lib.io.image_files import FaceFolder

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces-64"


def gflop_per_image(net) -> float:
    """Multiply-adds x 2 of one forward pass per image, in GFLOP, counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net(torch.zeros(2, 3, 64, 64))
    return counter.get_total_flops() / 2 / 1e9


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The rate of a size x size fp32 matrix product on this machine, in GFLOP/s (the best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 / best / 1e9


def timed(label: str, net, images: torch.Tensor, batch_size: int, gflop: float) -> torch.Tensor:
    wall, cpu = time.perf_counter(), time.process_time()
    features = extract_features(net, images, batch_size, progress=True)           # (N, 2048)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<44} {len(images):>5} images  wall {wall:7.1f} s  cpu {cpu:7.1f} s  "
          f"{len(images) / wall:6.1f} img/s  {len(images) * gflop / wall:6.1f} GFLOP/s  "
          f"(threads {torch.get_num_threads()})", flush=True)
    return features


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--compare", action="store_true", help="also time channels-last batches and batch 25")
    parser.add_argument("--evaluate", action="store_true", help="then evaluate these faces against the rest")
    args = parser.parse_args()
    images = to_unit_range(FaceFolder(FACES, limit=args.n).images_uint8)          # (n, 3, 64, 64)
    start = time.perf_counter()
    net = inception()
    print(f"load the TorchScript: {time.perf_counter() - start:.1f} s")
    gflop = gflop_per_image(net)
    print(f"the network: {gflop:.2f} GFLOP per image at 299 px, so {args.n:,} images are "
          f"{args.n * gflop / 1e3:.1f} TFLOP of arithmetic")
    peak = matmul_gflops()
    print(f"a 2048 x 2048 fp32 matrix product runs at {peak:.0f} GFLOP/s here ({torch.get_num_threads()} threads): "
          f"at that rate the arithmetic alone takes {args.n * gflop / peak:.0f} s")
    ours = timed(f"evaluator (TorchScript, NCHW, batch {args.batch_size})", net, images, args.batch_size, gflop)
    if args.compare:
        timed("channels-last batches", InceptionFeatures(net.net, "fid-helper", channels_last=True), images,
              args.batch_size, gflop)
        timed("batch 25", net, images, 25, gflop)
    if args.evaluate:
        ref = reference(FACES, net=net)
        print(report(evaluate(describe(images, net), ref)))
    print(f"feature norm check: {float(ours.norm(dim=1).mean()):.2f}")


if __name__ == "__main__":
    main()
