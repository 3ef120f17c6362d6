import os
import sys

from lgn.cli import main
from lgn.cli.train import LAUNCHED

code = main()
if code and os.environ.get(LAUNCHED) and int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # a rank of `lgn train --nproc` that stopped on an error, its message printed (or left to rank 0):
    # leave at once. An ordinary interpreter exit tore gloo's threads down while the other rank was
    # leaving too, and aborted ("terminate called without an active exception", SIGABRT) in about
    # one run of three, an extra line and the wrong exit code for the launcher to report
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
