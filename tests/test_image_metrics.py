"""Image metrics: FID/KID through torchmetrics against independent formulas, AFD on real faces, diversity."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import SHARED_DATA
from gan_lib.data import to_unit_range
from gan_lib.eval.image_metrics import diversity, face_detection_rate, face_flags, fid_kid, load_face_cascade, to_uint8_hwc
from gan_lib.eval.metrics import frechet_distance

CASCADE = SHARED_DATA / "lbpcascade_animeface.xml"
FACES = SHARED_DATA / "anime-faces-64"


def feature_net(d: int = 16) -> nn.Module:
    """A fixed random conv + average pooling: images (B, 3, H, W) -> features (B, d)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, d, 5, stride=2), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


def images(n: int, seed: int, shift: float = 0.0, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, size, size, generator=g) * 1.6 - 0.8 + shift).clamp(-1, 1)   # (n, 3, size, size)


@pytest.fixture(scope="module")
def real_faces() -> torch.Tensor:
    if not FACES.is_dir():
        pytest.skip(f"the real anime faces are not in {FACES}")
    files = sorted(FACES.glob("*.jpg"))[:120]
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])           # (120, 64, 64, 3)
    return to_unit_range(torch.from_numpy(pixels)).permute(0, 3, 1, 2)                    # (120, 3, 64, 64)


@pytest.fixture(scope="module")
def cascade():
    if not CASCADE.is_file():
        pytest.skip(f"the face cascade is not in {SHARED_DATA}")
    return load_face_cascade(path=CASCADE)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # pytorch-fid passes scipy's deprecated `disp`
def test_fid_matches_independent_formulas():
    net, fake, real = feature_net(), images(300, 1, shift=0.15), images(200, 2)
    scores = fid_kid(fake, real, feature=net, batch_size=64)
    with torch.no_grad():
        f_fake, f_real = net(fake).double().numpy(), net(real).double().numpy()             # (N, 16)
    ours = frechet_distance(f_fake, f_real)
    assert scores["fid"] > 1e-4
    assert scores["fid"] == pytest.approx(ours, rel=1e-3)
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    theirs = fid_score.calculate_frechet_distance(f_fake.mean(0), np.cov(f_fake, rowvar=False),
                                                  f_real.mean(0), np.cov(f_real, rowvar=False))
    assert scores["fid"] == pytest.approx(theirs, rel=1e-3)


def test_fid_is_zero_for_identical_sets_and_grows_with_a_shift():
    net, real = feature_net(), images(200, 3)
    same = fid_kid(real, real, feature=net, kid_subsets=10)
    near, far = (fid_kid(images(200, 4, shift=s), real, feature=net, kid_subsets=10) for s in (0.0, 0.4))
    assert abs(same["fid"]) < 1e-6 and abs(same["kid_mean"]) < 1e-3 * far["kid_mean"]
    assert far["fid"] > 10 * near["fid"] > 0 and far["kid_mean"] > 10 * near["kid_mean"]


def test_kid_on_a_small_set_and_repeatable():
    net, fake, real = feature_net(), images(50, 5, shift=0.3), images(50, 6)
    first, again = fid_kid(fake, real, feature=net, kid_subsets=20), fid_kid(fake, real, feature=net, kid_subsets=20)
    assert first == again and first["kid_mean"] > 0 and np.isfinite(first["kid_std"])
    tiny = fid_kid(fake[:10], real[:7], feature=net, kid_subsets=5)          # subset size adapts to 7
    assert np.isfinite(tiny["kid_mean"])


def test_fid_kid_refuses_uint8_and_single_images():
    net = feature_net()
    with pytest.raises(TypeError, match="to_unit_range"):
        fid_kid(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), images(4, 0), feature=net)
    with pytest.raises(ValueError, match="at least 2"):
        fid_kid(images(1, 0), images(4, 0), feature=net)


def test_inception_without_torch_fidelity_or_weights_says_how(tmp_path):
    import importlib.util
    if importlib.util.find_spec("torch_fidelity") is None:
        with pytest.raises(ModuleNotFoundError, match="pip install torch-fidelity"):
            fid_kid(images(4, 0), images(4, 1))
    else:
        with pytest.raises(FileNotFoundError, match="weights_path"):
            fid_kid(images(4, 0), images(4, 1), weights_path=tmp_path / "missing.pth")


def test_face_flags_per_image_and_their_mean_is_the_rate(real_faces, cascade):
    mixed = torch.cat([real_faces[:6], torch.zeros(3, 3, 64, 64)])
    flags = face_flags(mixed, cascade)
    assert flags.dtype == torch.bool and flags.shape == (9,) and not flags[6:].any() and flags[:6].sum() >= 5
    assert face_detection_rate(mixed, cascade) == pytest.approx(float(flags.float().mean()))


def test_afd_high_on_real_faces_and_zero_on_noise_and_grey(real_faces, cascade):
    assert face_detection_rate(real_faces, cascade) >= 0.9
    assert face_detection_rate(images(50, 7, size=64), cascade) <= 0.05
    assert face_detection_rate(torch.zeros(5, 3, 64, 64), cascade) == 0.0


def test_cascade_from_the_cache_needs_no_network(cascade, tmp_path):
    (tmp_path / "lbpcascade_animeface.xml").write_bytes(CASCADE.read_bytes())   # a checked copy is reused as is
    assert not load_face_cascade(cache_dir=tmp_path).empty()


def test_cascade_loading_errors(tmp_path):
    bad = tmp_path / "broken.xml"
    bad.write_text("<opencv_storage><cascade>not a cascade</cascade></opencv_storage>")
    with pytest.raises(ValueError, match="cannot load"):
        load_face_cascade(path=bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_face_cascade(path=tmp_path / "absent.xml")


def test_diversity_sees_collapse_and_matches_pairwise_distances():
    varied = images(60, 8, size=64)
    scores = diversity(varied, reference=images(40, 9, size=64))
    assert diversity(varied[:1].repeat(60, 1, 1, 1)) == {"diversity": 0.0}
    assert set(scores) == {"diversity", "real_diversity"} and scores["diversity"] > 0.1
    small = torch.nn.functional.avg_pool2d(varied.double(), 4).flatten(1)                   # (60, 768)
    pairs = torch.pdist(small).pow(2).mean().div(small.shape[1]).sqrt()                   # RMS over distinct pairs
    assert scores["diversity"] == pytest.approx(float(pairs), rel=1e-9)


def test_real_faces_are_about_as_diverse_as_each_other(real_faces):
    scores = diversity(real_faces[:60], reference=real_faces[60:])
    assert scores["diversity"] > 0.3 and scores["diversity"] == pytest.approx(scores["real_diversity"], rel=0.2)


def test_to_uint8_hwc_round_trips_to_unit_range():
    pixels = torch.randint(0, 256, (2, 4, 5, 3), dtype=torch.uint8)
    assert np.array_equal(to_uint8_hwc(to_unit_range(pixels).permute(0, 3, 1, 2)), pixels.numpy())
