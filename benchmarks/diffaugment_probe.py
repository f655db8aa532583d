"""Issue 21 probe: lesson 03's CPU recipe (width 32, batch 64, EMA half-life 10,000 images) for a wall-clock budget,
with ("aug": DiffAugment colour/translation/cutout at p 0.3 on everything D sees) or without ("base") augmentation;
scored by the averaged G's 1,000 faces against the first 2,000 shared faces (TF-FID Inception), as
benchmarks/quality_curve.py scores (its 10-minute rows are the "base" figures, for seeds 0-2).

    python benchmarks/diffaugment_probe.py aug 10        # variant, minutes of training (seed 0)

Output on the idle 2-core machine (torch 2.14.1), in benchmarks/diffaugment_probe.txt. One seed: a demonstration.
"""
import sys, time
from pathlib import Path
import torch
from gan_lib.callbacks import Budget
from gan_lib.eval.evaluate import evaluate, feature_network, reference
from gan_lib.explore import sample_seeded
from gan_lib.data import ImageBatches, load_faces
from gan_lib.losses import DiffAugment, NonSaturatingLoss, Regularised
from gan_lib.recipes import build
from gan_lib.runtime import seed_everything
from gan_lib.train import Options, train
FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces-64"
variant, minutes = sys.argv[1], float(sys.argv[2])
faces, _ = load_faces(FACES, allow_download=False)
net, _ = feature_network("inception")
ref = reference(FACES, limit=2000, net=net)
seed_everything(0)
r = build("dcgan", "cpu", width=32, batch=64)
loss = Regularised(NonSaturatingLoss(), augment=DiffAugment("color,translation,cutout", p=0.3)) if variant == "aug" else r.loss
batches = ImageBatches(faces.images_uint8, 64, device="cpu", flip=True, seed=0)
run = train(r.G, r.D, r.opt_g, r.opt_d, batches, loss, r.noise, None, options=Options(progress=False),
            callbacks=[*r.callbacks(), Budget(60 * minutes)])
res = evaluate(sample_seeded(r.sampler, 1000, seed=1000), ref, net=net)
dx = sum(run.history["D(x)"][-200:]) / 200; dg = sum(run.history["D(G(z)) before D step"][-200:]) / 200
print(f"{variant}: {run.step} steps in {run.seconds:.0f} s; fid {res['fid']:.1f} kid {res['kid_mean']:.3f} "
      f"precision {res['precision']:.3f} recall {res['recall']:.3f} afd {res.get('afd', float('nan')):.3f} "
      f"diversity {res['diversity']:.3f} (real {res.get('diversity_real', float('nan')):.3f}); D(x) {dx:.2f} D(G(z)) {dg:.2f}; "
      f"warnings {[w[1][:40] for w in run.warnings]}", flush=True)
