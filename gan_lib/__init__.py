"""gan_lib: the helper library behind the GAN course kit. These modules (the core) are what the lessons import;
read models, losses and train first.

    runtime      smoke mode, device, precision, seeding       models       MLP GAN, DCGAN 64/96 px
    data         MNIST, faces in memory, batches              stylegan     lesson 05's StyleGAN2-style G, residual D
    losses       GANLoss (BCE, WGAN, hinge, R1), DiffAugment  train        the loop: train(...) -> Run, Options
    checkpoints  the one resume, atomic saves, scores         callbacks    EMA, Grids, Evaluate, Budget, Watch, LiveView
    plots        the lessons' figures                         explore      seeded samples, slerp, latent explorer
    recipes      every lesson's recipe by name

Subpackages: eval (metrics), hw6 (submission, grader), teach (lessons, checks), trainer (the command, DDP), io (files).
"""
from gan_lib.runtime import by_mode, pick_device, seed_everything, smoke_mode

__all__ = ["by_mode", "pick_device", "seed_everything", "smoke_mode"]
__version__ = "0.2.0"
