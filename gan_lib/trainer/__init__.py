"""The trainer command, ``python -m gan_lib.trainer --recipe dcgan --out DIR`` (``torchrun`` for several GPUs):
``command`` parses and runs it, ``distributed`` holds the DDP helpers (ranks, wrapping, SyncBatchNorm)."""
