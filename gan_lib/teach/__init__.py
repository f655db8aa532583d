"""For instructors and TAs: run lessons headless, student versions, clean notebooks (``lessons``:
``python -m gan_lib.teach.lessons``), and the auto-checks students run on their answers (``checks``)."""
