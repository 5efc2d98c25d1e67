"""hostguard: strict Host-header allow lists that keep working behind a
cloud load balancer.

This package installs the ``hostguard`` command (a static binary, put on
the environment's PATH by pip) and offers two things to Python code:

- :func:`binary`: the path of that binary;
- :mod:`hostguard.django`: ``allowed_hosts(["lhy.kr"])`` for Django's
  ``ALLOWED_HOSTS``, with the instance's own addresses (``@self``) found
  by the binary.

``python -m hostguard ARGS`` runs the binary too, for environments whose
scripts directory is not on PATH.
"""

import os
import sysconfig

from ._version import release, version

__version__ = version
__all__ = ["binary", "release", "__version__"]

_NAME = "hostguard"


def binary():
    """Returns the absolute path of the hostguard binary that came with this
    package.

    It is looked up in the files pip recorded for this distribution (so a
    ``--user`` or ``--prefix`` install is found too), then in the scripts
    directory of the running interpreter. Raises FileNotFoundError, naming
    the places tried, when neither holds it.
    """
    tried = []
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        metadata = None
    if metadata is not None:
        try:
            dist = metadata.distribution(_NAME)
        except metadata.PackageNotFoundError:
            dist = None
        here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
        if dist is not None and os.path.realpath(str(dist.locate_file(_NAME))) == here:
            for f in dist.files or ():
                if f.name == _NAME and len(f.parts) > 1 and f.parts[-2] in ("bin", "Scripts"):
                    p = os.path.realpath(str(dist.locate_file(f)))
                    tried.append(p)
                    if os.path.isfile(p) and os.access(p, os.X_OK):
                        return p
    p = os.path.join(sysconfig.get_path("scripts"), _NAME)
    tried.append(p)
    if os.path.isfile(p) and os.access(p, os.X_OK):
        return p
    raise FileNotFoundError(
        "the hostguard binary of this package is missing (looked at %s); "
        "reinstall it: pip install --force-reinstall hostguard" % ", ".join(tried)
    )
