"""DiffAugment: each op does what it says, gradients reach the input, p picks the fraction augmented."""
import pytest
import torch

from gan_lib.losses import DiffAugment, color, cutout, translation


def images(n=16, size=32):
    torch.manual_seed(0)
    return torch.rand(n, 3, size, size) * 2 - 1


def test_translation_moves_whole_pixels_and_fills_zeros():
    x = images()
    y = translation(x, ratio=0.125)
    for a, b in zip(x, y):                     # some integer shift (dy, dx) within 4 px reproduces b from a
        found = False
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                want = torch.zeros_like(a)
                src = a[:, max(0, -dy):32 - max(0, dy), max(0, -dx):32 - max(0, dx)]
                want[:, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
                found |= torch.equal(want, b)
        assert found


def test_cutout_zeros_a_quarter_of_each_image():
    x = images().abs() + 0.1                   # no zero pixels before
    y = cutout(x, ratio=0.5)
    assert torch.allclose((y == 0).float().mean(dim=(1, 2, 3)), torch.full((16,), 0.25))


def test_color_changes_each_image_differently_but_keeps_shape():
    x = images()
    y = color(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    assert (y - x).mean(dim=(1, 2, 3)).std() > 0.01           # a different brightness draw per image


def test_gradient_reaches_the_input_through_every_op():
    x = images().requires_grad_(True)
    DiffAugment("color,translation,cutout", p=1.0)(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_p_sets_the_fraction_of_augmented_images():
    torch.manual_seed(1)
    x = images(n=2000, size=8)
    changed = (DiffAugment("color", p=0.3)(x) != x).flatten(1).any(1).float().mean()
    assert 0.25 < changed < 0.35
    assert torch.equal(DiffAugment("color", p=0.0)(x), x)


@pytest.mark.parametrize("policy, p", [("colour", 0.5), ("color", 1.5)])
def test_bad_policy_or_probability_says_what_to_use(policy, p):
    with pytest.raises(ValueError, match="use ops from color, translation, cutout"):
        DiffAugment(policy, p)
