"""Scoring generators (for lessons, benchmarks and the HW6 grader): 1-D W1 and the Fréchet distance (``metrics``),
FID/KID, precision/recall, AFD, diversity (``image_metrics``, ``evaluate``) and MNIST mode coverage (``digits``)."""
