"""gan_lib: the small helper library behind the GAN course kit.

Each module holds one concern; lessons import what they need:

    runtime          smoke mode, device choice, seeding, where a lesson runs (Colab, Kaggle, local)
    data             MNIST scaled to [-1, 1], with an offline fallback
    images           folders of face images (flat or nested, bad files counted), where lesson 03 gets faces
    synthetic_faces  generated cartoon faces: the offline fallback
    downloads        downloads with checksums, safe archive extraction
    models           model factories: MLP GAN (lesson 02), DCGAN 64/96 px (lessons 03-04)
    stylegan         lesson 05: a StyleGAN2-style generator and a residual discriminator (minibatch stddev)
    losses           GAN losses behind one interface: non-saturating BCE, WGAN, WGAN-GP, hinge; Regularised
                     (lazy R1/R2, an augmentation applied to everything D sees)
    augment          DiffAugment: differentiable colour, translation, cutout with probability p
    fast             the fast path: batches cut on the GPU from decoded images, precision, cudnn settings
    train            the one training loop lessons 02+ share
    watch            divergence: NaN/inf, a discriminator that has won, a collapsed generator
    live             the live training view (curves and the latest grid, redrawn in place); TensorBoard logging
    checkpoints      atomic saves, safe loads, resume
    metrics          numbers: 1-D W1, the Fréchet distance
    digits           mode coverage of MNIST generators (a small digit classifier)
    image_metrics    AFD (anime-face detection rate), diversity, the FID Inception (offline), FID/KID
    evaluate         one evaluator: FID, KID, precision/recall, AFD, diversity, memorisation vs real-vs-real
    grade            grade a folder of HW6 submissions: CSV and HTML leaderboard
    submission       the NTU HW6 submission: write, pack, validate
    explore          seeded samples, top-k, slerp, the latent explorer, animations
    plots            the figures the lessons show
    lessons          run lessons headless (benchmarks, tests, demos), student versions, clean notebooks
    checks           auto-checks a student runs on their exercise answers
    distributed      several GPUs: DDP under torchrun (ranks, wrapping, SyncBatchNorm)
    recipes          the lessons' recipes by name (G, D, optimisers, loss, batch, steps)
    trainer          the command: python -m gan_lib.trainer --recipe dcgan64 --out DIR (torchrun too)
"""
from gan_lib.runtime import by_mode, pick_device, seed_everything, smoke_mode

__all__ = ["by_mode", "pick_device", "seed_everything", "smoke_mode"]
__version__ = "0.1.0"
