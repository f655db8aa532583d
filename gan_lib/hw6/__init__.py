"""The NTU ML2022 HW6 homework: writing, packing and checking a submission (``submission``), grading a class
(``grade``: ``python -m gan_lib.hw6.grade``)."""
