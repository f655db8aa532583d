"""Numbers for generated images: anime-face detection rate (AFD), diversity, and FID/KID.

Images are float tensors (N, 3, H, W) in [-1, 1], the range of a tanh generator. No single number is
enough: a collapsed generator whose every sample is the same face scores a high AFD, so read AFD beside
``diversity`` and FID.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_lib.downloads import ANIME_CASCADE_SHA256, ANIME_CASCADE_URL, download
from gan_lib.runtime import pick_device

INCEPTION_WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                         "weights-inception-2015-12-05-6726825d.pth")


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """Float images (N, 3, H, W) in [-1, 1] -> uint8 array (N, H, W, 3) in [0, 255], ready for PIL and OpenCV."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images of shape {tuple(images.shape)}: pass RGB images (N, 3, H, W) in [-1, 1].")
    pixels = images.detach().float().cpu().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()                      # (N, H, W, 3)


# ---------------------------------------------------------------- anime-face detection rate (AFD)

def load_face_cascade(cache_dir: str | Path | None = None, path: str | Path | None = None) -> cv2.CascadeClassifier:
    """nagadomi's ``lbpcascade_animeface.xml`` as an OpenCV ``CascadeClassifier``.

    ``path`` loads a local copy; otherwise the course's shared copy is used when it sits beside the repository
    (``../shared/data``), else the file is downloaded once into ``cache_dir`` (default
    ``~/.cache/gan_lib``) and its sha256 is checked (``gan_lib.downloads.download``).
    """
    if path is None:
        cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "gan_lib"
        shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "lbpcascade_animeface.xml"
        if not (cache / "lbpcascade_animeface.xml").is_file() and shared.is_file():
            path = shared  # the course server's (and CI's) offline copy beside the repository
        else:
            path = download(ANIME_CASCADE_URL, cache / "lbpcascade_animeface.xml", sha256=ANIME_CASCADE_SHA256)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the face cascade {path} does not exist: pass the path of lbpcascade_animeface.xml "
                                f"or path=None to download it.")
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):  # a malformed XML makes OpenCV raise instead of returning an empty classifier
        cascade = None
    if cascade is None or cascade.empty():
        raise ValueError(f"OpenCV cannot load {path} as a cascade classifier: replace it with nagadomi's "
                         f"lbpcascade_animeface.xml ({ANIME_CASCADE_URL}).")
    return cascade


def face_detection_rate(images: torch.Tensor, cascade: cv2.CascadeClassifier) -> float:
    """The fraction of images in which the anime-face cascade finds at least one face (AFD).

    Protocol, per image: to uint8 RGB; upscale x2 (bilinear, so 64 px -> 128 px); pad 20% of the side on
    every edge with a replicated border; convert to grey; ``cv2.equalizeHist``; ``detectMultiScale(
    scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))``. The cascade misses half of the real 64 px crops as
    they are, because they are tight and small; upscaled and padded it finds about 99% of real faces (measured
    on 500 faces of the anime-face set) and none in noise or flat grey images.
    """
    pixels = to_uint8_hwc(images)                                               # (N, H, W, 3)
    if len(pixels) == 0:
        raise ValueError("no images were given: pass at least one image.")
    found = 0
    for rgb in pixels:
        big = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)  # (2H, 2W, 3)
        pad = round(0.2 * big.shape[0])
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        grey = cv2.equalizeHist(cv2.cvtColor(big, cv2.COLOR_RGB2GRAY))
        faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        found += len(faces) > 0
    return found / len(pixels)


# ---------------------------------------------------------------- diversity

def _diversity_of(images: torch.Tensor, size: int) -> float:
    if images.dim() != 4 or len(images) < 2:
        raise ValueError(f"images of shape {tuple(images.shape)}: pass at least 2 images (N, C, H, W).")
    small = F.adaptive_avg_pool2d(images.detach().double().cpu(), size).flatten(1)   # (N, C * size * size)
    return float(small.var(dim=0).mean().mul(2).sqrt())


def diversity(images: torch.Tensor, reference: torch.Tensor | None = None, size: int = 16) -> dict:
    """How different the images are from each other: ``{"diversity": d}``, plus ``"real_diversity"`` for
    ``reference`` (real images) when given, e.g. "diversity 0.31 (real 0.33)".

    d is the root-mean-square pixel difference between two distinct images of the set, after both are
    averaged down to ``size`` x ``size`` (so it measures layout and colour, not texture or JPEG noise), in
    the units of [-1, 1] pixels. It equals sqrt(2 x the per-pixel variance across the set, averaged over
    pixels), so it costs O(N), not O(N^2). A collapsed generator scores ~0; it cannot tell good faces from
    varied noise, which is AFD's and FID's job.
    """
    out = {"diversity": _diversity_of(images, size)}
    if reference is not None:
        out["real_diversity"] = _diversity_of(reference, size)
    return out


# ---------------------------------------------------------------- FID and KID (torchmetrics)

class _InceptionOnUnitRange(nn.Module):
    """torchmetrics' Inception v3 (which wants uint8 in [0, 255]) fed with float images in [-1, 1]."""

    def __init__(self, inception: nn.Module, num_features: int):
        super().__init__()
        self.inception, self.num_features = inception, num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:                           # (B, 3, H, W) in [-1, 1]
        return self.inception(x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8))  # (B, d)


def _inception(feature: int, weights_path: str | Path | None) -> nn.Module:
    if importlib.util.find_spec("torch_fidelity") is None:
        raise ModuleNotFoundError("FID/KID with Inception needs the torch-fidelity package: run "
                                  "`pip install torch-fidelity`, or pass feature=<your nn.Module>.")
    from torchmetrics.image.fid import NoTrainInceptionV3
    if weights_path is not None and not Path(weights_path).is_file():
        raise FileNotFoundError(f"the Inception weights {weights_path} do not exist: download "
                                f"{INCEPTION_WEIGHTS_URL} and pass its path as weights_path.")
    try:
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(feature)],
                                 feature_extractor_weights_path=None if weights_path is None else str(weights_path))
    except OSError as err:  # urllib's URLError is an OSError: no network for torch.hub's download
        raise RuntimeError(f"the Inception weights could not be downloaded ({err}): download {INCEPTION_WEIGHTS_URL} "
                           f"on a machine with internet and pass its path as weights_path.") from err
    return _InceptionOnUnitRange(net, feature)


@torch.no_grad()
def _features(net: nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    if images.dtype == torch.uint8:
        raise TypeError("uint8 images were given: scale them to [-1, 1] first with gan_lib.data.to_unit_range.")
    chunks = [net(images[i:i + batch_size].to(device).float()).flatten(1).double().cpu()   # (B, d)
              for i in range(0, len(images), batch_size)]
    return torch.cat(chunks)                                                    # (N, d)


class _Precomputed(nn.Identity):
    """Lets torchmetrics' FID and KID take features that were extracted once, instead of images."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features


def fid_kid(fake: torch.Tensor, real: torch.Tensor, feature: int | nn.Module | None = None,
            weights_path: str | Path | None = None, device: str | torch.device | None = None,
            batch_size: int = 100, kid_subsets: int = 100, seed: int = 0) -> dict:
    """FID and KID between generated and real images (N, 3, H, W) in [-1, 1]: ``{"fid", "kid_mean", "kid_std"}``.

    Features come from ``feature``: ``None`` or an int (64, 192, 768, 2048) picks that layer of the standard
    FID Inception v3 (torchmetrics' ``NoTrainInceptionV3``; needs ``pip install torch-fidelity``), whose
    weights torch-fidelity downloads on first use. Offline, pass ``weights_path``: torch-fidelity's
    ``weights-inception-2015-12-05-6726825d.pth`` from ``INCEPTION_WEIGHTS_URL`` (torch.hub keeps it in
    ``~/.cache/torch/hub/checkpoints``) or pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (same
    layout). An ``nn.Module`` is moved to ``device`` and used as it is (put it in eval mode): it gets float
    batches (B, 3, H, W) in [-1, 1] and returns (B, d).

    Features are extracted once, in batches on ``device`` (default: ``pick_device()``); torchmetrics'
    ``FrechetInceptionDistance`` and ``KernelInceptionDistance`` then compute the numbers. KID's subset size
    is min(1000, n_fake, n_real), so 1,000 samples give the usual KID and tiny smoke runs still work (when
    every subset is the whole set, kid_std is 0); its random subsets are drawn under ``seed``, so the result
    repeats. Scores of 64 px images (upscaled for Inception) compare with each other, not with papers.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance
    if min(len(fake), len(real)) < 2:
        raise ValueError(f"{len(fake)} fake and {len(real)} real images: FID and KID need at least 2 of each.")
    device = pick_device(None if device is None else str(device))
    net = feature if isinstance(feature, nn.Module) else _inception(2048 if feature is None else feature, weights_path)
    net.to(device)
    f_fake, f_real = _features(net, fake, batch_size, device), _features(net, real, batch_size, device)  # (N, d)
    fid = FrechetInceptionDistance(feature=_Precomputed(f_fake.shape[1]), normalize=True)
    with warnings.catch_warnings():  # KID's note that it keeps every feature in memory: 1,000 x 2048 is 16 MB
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=_Precomputed(f_fake.shape[1]), normalize=True, subsets=kid_subsets,
                                      subset_size=min(1000, len(fake), len(real)))
    for metric in (fid, kid):
        metric.update(f_real, real=True)
        metric.update(f_fake, real=False)
    with torch.random.fork_rng(devices=[]):  # KID's subsets use the global RNG: seed it without touching ours
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}
