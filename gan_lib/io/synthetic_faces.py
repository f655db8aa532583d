"""Simple cartoon faces drawn with PIL: a copyright-free, offline stand-in for the anime-face data sets.

They are not anime art, but they have what a DCGAN must learn on real faces (a face shape, hair with a
fringe, two large eyes with coloured irises and highlights, a mouth) and enough variety to show mode collapse.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

HAIR = [(250, 150, 200), (90, 140, 240), (245, 215, 110), (35, 30, 40), (120, 75, 45), (200, 60, 60),
        (150, 110, 220), (235, 235, 240), (80, 190, 170)]           # pink, blue, blonde, black, brown, ...
SKIN = [(255, 228, 210), (250, 215, 190), (240, 200, 170), (255, 236, 225)]
IRIS = [(60, 120, 220), (40, 160, 90), (170, 60, 170), (200, 90, 40), (220, 50, 60), (90, 60, 40)]


def _jitter(rng: np.random.Generator, colour, amount: int = 20) -> tuple:
    return tuple(int(c) for c in np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255))


def _draw_face(rng: np.random.Generator, s: int) -> Image.Image:
    """One face on an s x s canvas; every length is a fraction of s so that any size looks the same."""
    img = Image.new("RGB", (s, s), _jitter(rng, rng.integers(120, 256, 3), 0))
    d = ImageDraw.Draw(img)
    scale = rng.uniform(0.85, 1.1)
    cx, cy = s * (0.5 + rng.uniform(-0.06, 0.06)), s * (0.55 + rng.uniform(-0.05, 0.05))
    fw, fh = s * 0.30 * scale, s * 0.34 * scale                        # face half-width, half-height
    hair, skin = _jitter(rng, HAIR[rng.integers(len(HAIR))]), _jitter(rng, SKIN[rng.integers(len(SKIN))], 8)
    long_hair = rng.random() < 0.5
    d.ellipse([cx - fw * 1.3, cy - fh * 1.35, cx + fw * 1.3, cy + (fh * 1.4 if long_hair else fh * 0.5)],
              fill=hair)                                               # hair behind the head
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)        # face
    top = cy - fh * 1.3
    d.chord([cx - fw * 1.15, top, cx + fw * 1.15, cy + fh * 0.3], 180, 360, fill=hair)  # cap of the hair
    strands = int(rng.integers(3, 7))
    edges = np.linspace(cx - fw * 1.05, cx + fw * 1.05, strands + 1)
    fringe_y = cy - fh * rng.uniform(0.15, 0.4)
    for left, right in zip(edges[:-1], edges[1:]):                     # fringe: one spike per strand
        tip = (left + right) / 2 + rng.uniform(-0.3, 0.3) * (right - left)
        d.polygon([(left, cy - fh * 0.6), (right, cy - fh * 0.6), (tip, fringe_y + rng.uniform(0, 0.15) * fh)],
                  fill=hair)
    eye_dx, eye_y = fw * rng.uniform(0.38, 0.5), cy + fh * rng.uniform(0.02, 0.15)
    ew, eh = fw * rng.uniform(0.2, 0.28), fh * rng.uniform(0.22, 0.32)   # large eyes
    iris = _jitter(rng, IRIS[rng.integers(len(IRIS))])
    for ex in (cx - eye_dx, cx + eye_dx):
        d.ellipse([ex - ew, eye_y - eh, ex + ew, eye_y + eh], fill=(255, 255, 255), outline=(40, 30, 30),
                  width=max(1, s // 64))
        d.ellipse([ex - ew * 0.75, eye_y - eh * 0.7, ex + ew * 0.75, eye_y + eh * 0.95], fill=iris)
        d.ellipse([ex - ew * 0.35, eye_y - eh * 0.25, ex + ew * 0.35, eye_y + eh * 0.55], fill=(20, 15, 25))
        d.ellipse([ex - ew * 0.55, eye_y - eh * 0.55, ex - ew * 0.1, eye_y - eh * 0.1], fill=(255, 255, 255))
    if rng.random() < 0.5:                                             # blush
        for bx in (cx - eye_dx * 1.2, cx + eye_dx * 1.2):
            d.ellipse([bx - ew * 0.6, eye_y + eh * 1.3, bx + ew * 0.6, eye_y + eh * 1.7], fill=(250, 170, 170))
    mw, my = fw * rng.uniform(0.08, 0.2), cy + fh * rng.uniform(0.55, 0.7)
    d.arc([cx - mw, my - mw * 0.6, cx + mw, my + mw * 0.6], 20, 160, fill=(150, 50, 60), width=max(1, s // 48))
    return img


def cartoon_faces(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` cartoon faces as uint8 (n, 3, size, size); face i depends only on (seed, i), so it repeats.

    Each is drawn at twice the size and downsampled with Lanczos filtering (antialiased edges).
    """
    if n < 0 or size < 1:
        raise ValueError(f"n={n}, size={size}: ask for n >= 0 faces of size >= 1 pixel.")
    out = np.empty((n, size, size, 3), dtype=np.uint8)                  # (n, H, W, 3)
    for i in range(n):
        face = _draw_face(np.random.default_rng([seed, i]), 2 * size)
        out[i] = np.asarray(face.resize((size, size), Image.Resampling.LANCZOS))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()     # (n, 3, size, size)


def write_cartoon_faces(folder: str | Path, n: int, size: int = 64, seed: int = 0, ext: str = "png") -> list[Path]:
    """Write ``n`` cartoon faces as ``face_00000.png`` (or ``.jpg``) files into ``folder``; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, face in enumerate(cartoon_faces(n, size, seed).permute(0, 2, 3, 1).numpy()):  # (n, H, W, 3)
        paths.append(folder / f"face_{i:05d}.{ext.lstrip('.')}")
        Image.fromarray(face).save(paths[-1], quality=95)  # PNG ignores the JPEG quality
    return paths
