"""``python -m gan_lib.trainer``: see ``gan_lib.trainer.command``."""
import sys

from gan_lib.trainer.command import main

sys.exit(main())
