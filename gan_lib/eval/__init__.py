"""Scoring generated images (for lessons, benchmarks and the HW6 grader): FID/KID, precision/recall, AFD, diversity
(``image_metrics``, ``evaluate``) and MNIST mode coverage (``digits``)."""
