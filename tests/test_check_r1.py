"""gan_lib.teach.checks.check_r1 (lesson 05's R1 exercise): a right answer passes, an unwritten one prints one line, and
each broken answer gets one sentence (AssertionError) instead of PyTorch's RuntimeError or a TypeError."""
from pathlib import Path

import nbformat
import pytest
import torch

from gan_lib.teach.checks import check_r1

LESSON = Path(__file__).resolve().parents[1] / "notebooks" / "05_modern_gan.ipynb"


def my_r1(D, real):
    x = real.detach().requires_grad_(True)                             # (B, C, H, W)
    grad, = torch.autograd.grad(D(x).sum(), x, create_graph=True)      # (B, C, H, W)
    return grad.flatten(1).square().sum(1).mean()


def no_requires_grad(D, real):
    grad, = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


def no_detach(D, real):
    x = real.requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return grad.flatten(1).square().sum(1).mean()


def no_return(D, real):
    x = real.detach().requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    grad.flatten(1).square().sum(1).mean()


def norm_not_squared(D, real):
    x = real.detach().requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return grad.flatten(1).norm(dim=1).mean()


def no_create_graph(D, real):
    x = real.detach().requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x)
    return grad.flatten(1).square().sum(1).mean()


def not_written(D, real):
    raise NotImplementedError("Exercise: write your answer here (cell 4aa784db)")


def test_a_right_answer_passes(capsys):
    check_r1(my_r1)
    assert capsys.readouterr().out.startswith("✓ my_r1 matches gan_lib's R1")


@pytest.mark.parametrize("answer, sentence", [
    (no_requires_grad, "no_requires_grad differentiates with respect to an input that does not require a gradient "
                       "(One of the differentiated Tensors does not require grad): make it a leaf that does, "
                       "x = real.detach().requires_grad_(True), and differentiate D(x) with respect to x."),
    (no_detach, "The R1 penalty reaches whatever made the images (G, for generated ones): differentiate a detached "
                "copy, x = real.detach().requires_grad_(True), so that it trains D only."),
    (no_return, "The R1 penalty returned None: it computes its result but lacks `return` (add `return ...`)."),
    (norm_not_squared, "On a linear D the penalty is "),
    (no_create_graph, "The R1 penalty has no gradient path: pass create_graph=True to torch.autograd.grad so that "
                      "the penalty trains D, and return the tensor, not .item() or a detached copy."),
])
def test_a_broken_answer_gets_one_sentence(answer, sentence):
    with pytest.raises(AssertionError) as caught:
        check_r1(answer)
    message = str(caught.value)
    assert message.startswith(sentence) and "\n" not in message, message


def test_a_wrong_value_says_what_came_out_and_what_to_do():
    with pytest.raises(AssertionError, match=r"On a linear D the penalty is [\d.]+, expected [\d.]+: square the "
                                             r"gradient, sum it over each image's pixels, then average"):
        check_r1(norm_not_squared)


def test_an_unwritten_answer_prints_one_line(capsys):
    check_r1(not_written)
    out = capsys.readouterr().out
    assert out.startswith("… not_written is not written yet") and out.count("\n") == 1


def test_lesson05_uses_the_librarys_check():
    code = "\n".join(c.source for c in nbformat.read(LESSON, as_version=4).cells if c.cell_type == "code")
    assert "from gan_lib.teach.checks import check_r1" in code and "def check_r1" not in code
