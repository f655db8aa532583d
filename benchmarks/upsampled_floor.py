"""Issue 21 probe: how good can a G that draws at a lower resolution get, once upsampled to HW6's 64 px?

Real faces (shared files 5,000-5,999, not in the reference) are shrunk to 32 or 48 px (area) and brought back to
64 px (bilinear), then scored like a generator's 1,000 faces against the first 2,000 shared faces (TF-FID
Inception), beside the untouched real faces. The result bounds a "train at 32 px, upsample" CPU recipe.

    python benchmarks/upsampled_floor.py

Output on the 2-core machine (torch 2.14.1): benchmarks/upsampled_floor.txt.
"""
from pathlib import Path

import torch.nn.functional as F

from gan_lib.eval.evaluate import evaluate, feature_network, reference
from gan_lib.data import load_faces

FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "anime-faces-64"
faces, _ = load_faces(FACES, allow_download=False)
net, _ = feature_network("inception")
ref = reference(FACES, limit=2000, net=net)
real = faces.images_uint8[5000:6000].float() / 127.5 - 1                       # (1000, 3, 64, 64) in [-1, 1]
shrunk = lambda size: F.interpolate(F.interpolate(real, size=size, mode="area"), size=64, mode="bilinear")  # noqa
for name, images in (("real", real), ("32 -> 64 px", shrunk(32)), ("48 -> 64 px", shrunk(48))):
    r = evaluate(images.clamp(-1, 1), ref, net=net)
    print(f"{name:12s} " + " ".join(f"{k} {r[k]:.3f}" for k in ("fid", "fid_real", "kid_mean", "precision", "recall",
                                                                "afd", "diversity", "diversity_real")), flush=True)
