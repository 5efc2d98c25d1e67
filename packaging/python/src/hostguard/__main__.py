"""python -m hostguard ARGS: runs the bundled hostguard binary."""

import os
import sys

from . import binary

if __name__ == "__main__":
    try:
        path = binary()
    except FileNotFoundError as e:
        sys.exit("hostguard: %s" % e)
    os.execv(path, [path] + sys.argv[1:])
