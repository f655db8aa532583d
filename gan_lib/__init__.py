"""gan_lib: the helper library behind the GAN course kit. The core (these modules) is what the lessons import to
build and train; read models, losses and train first.

    runtime      smoke mode, device choice, seeding, where a lesson runs (Colab, Kaggle, local)
    data         MNIST scaled to [-1, 1] with an offline fallback; faces held in memory (FaceTensor)
    images       where the faces come from: your folder, a known folder, a download, or generated ones
    models       MLP GAN (lesson 02), DCGAN 64/96 px (lessons 03-04)
    stylegan     lesson 05: a StyleGAN2-style generator and a residual discriminator
    losses       GANLoss and its losses: non-saturating BCE, WGAN, WGAN-GP, hinge; Regularised (R1/R2, DiffAugment)
    augment      DiffAugment: differentiable colour, translation, cutout with probability p
    train        the one training loop: train(...) -> Run, its Options, the Callback protocol
    callbacks    EMA, fixed-noise Grids, Evaluate (keep-best), Budget (a wall-clock stop)
    watch        the Watch callback: NaN/inf, a discriminator that has won, a collapsed generator
    checkpoints  the Checkpoints callback: atomic saves, the one resume, remembered scores
    live         the LiveView and TensorBoard callbacks
    plots        the figures the lessons show
    explore      seeded samples, top-k, slerp, the latent explorer, animations
    recipes      every lesson's recipe by name (G, D, optimisers, loss, options, EMA, settings)
    fast         batches cut on the device from uint8 images, precision, cudnn settings, compile

Subpackages: ``eval`` (1-D W1, FID/KID, precision/recall, AFD, digit coverage), ``hw6`` (submission, grader),
``teach`` (headless lessons, student versions, checks), ``trainer`` (``python -m gan_lib.trainer``, DDP) and ``io``
(downloads, checkpoint files, image folders).
"""
from gan_lib.runtime import by_mode, pick_device, seed_everything, smoke_mode

__all__ = ["by_mode", "pick_device", "seed_everything", "smoke_mode"]
__version__ = "0.2.0"
