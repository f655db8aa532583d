"""How long the FID Inception takes for N real 64 px faces on this machine, and which CPU settings help.

    python benchmarks/evaluation_speed.py                  # 1,000 faces, the evaluator's settings
    python benchmarks/evaluation_speed.py --n 100 --compare  # also channels-last batches, and batch 25

Prints wall-clock and process CPU seconds (on a shared machine the wall clock includes waiting for other
processes; CPU seconds / threads is what an idle machine would take), images per second, then the evaluator's
numbers for these faces against the rest of the reference (``gan_lib.evaluate``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from gan_lib.data import to_unit_range
from gan_lib.evaluate import describe, evaluate, reference, report
from gan_lib.image_metrics import InceptionFeatures, extract_features, inception
from gan_lib.images import FaceFolder

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces-64"


def timed(label: str, net, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    wall, cpu = time.perf_counter(), time.process_time()
    features = extract_features(net, images, batch_size, progress=True)           # (N, 2048)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<44} {len(images):>5} images  wall {wall:7.1f} s  cpu {cpu:7.1f} s  "
          f"{len(images) / wall:6.1f} img/s  (threads {torch.get_num_threads()})", flush=True)
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
    ours = timed(f"evaluator (TorchScript, NCHW, batch {args.batch_size})", net, images, args.batch_size)
    if args.compare:
        timed("channels-last batches", InceptionFeatures(net.net, "fid-helper", channels_last=True), images,
              args.batch_size)
        timed("batch 25", net, images, 25)
    if args.evaluate:
        ref = reference(FACES, net=net)
        print(report(evaluate(describe(images, net), ref)))
    print(f"feature norm check: {float(ours.norm(dim=1).mean()):.2f}")


if __name__ == "__main__":
    main()
