"""Django's ALLOWED_HOSTS with this instance's own addresses.

In settings.py::

    import hostguard.django

    ALLOWED_HOSTS = hostguard.django.allowed_hosts(["lhy.kr"])

The list holds the names given, then the addresses under which the load
balancer reaches this instance (hostguard's ``@self``: on EC2 its private
IPs from the metadata service, on ECS the task's, and so on, plus
127.0.0.1 and [::1]), so that health checks whose Host is the private IP
are answered instead of refused with 400.

The bundled hostguard binary does the work, with exactly the rules of
``hostguard exec --env DJANGO_ALLOWED_HOSTS``: the same discovery (bounded
by its deadline, sending nothing where the platform is absent), the same
``HOSTGUARD_*`` and ``AWS_EC2_METADATA_*`` environment variables, and the
same conversion of entries to what Django can match, refusing those it
cannot (CIDR ranges, ``*.x``, ``host:port``) with a message that names
them. This module only asks it, once per process.

When it asks for discovery:

- In a management command (``manage.py migrate``, ``shell``, ``test``, ...;
  also ``django-admin`` and ``python -m django``) other than ``runserver``,
  nothing is discovered: the list is the names plus 127.0.0.1 and [::1],
  without any wait. Those commands serve no load balancer.
- Everywhere else (gunicorn, uWSGI, mod_wsgi, any other server, runserver)
  it is discovered. Off-cloud (a laptop, CI) the binary finds no cloud
  platform from local evidence, sends nothing, and lists the machine's
  private and loopback addresses; it does not wait.
- ``discover=True`` or ``discover=False`` decides it instead.
"""

import functools
import logging
import os
import re
import shutil
import subprocess
import sys

from . import binary as _bundled_binary

try:
    from django.core.exceptions import ImproperlyConfigured as _Base
except ImportError:  # used without Django: still a clear error
    _Base = RuntimeError

__all__ = ["allowed_hosts", "clear_cache", "HostguardError", "DISCOVERY_DEADLINE", "GRACE"]

DISCOVERY_DEADLINE = 2.0
"""Seconds discovery may take when neither ``timeout`` nor
HOSTGUARD_TIMEOUT says otherwise (the binary's own default)."""

GRACE = 3.0
"""Seconds allowed on top of the discovery deadline for starting the binary
and reading its answer; the binary is killed after deadline + GRACE."""

_VARIABLE = "DJANGO_ALLOWED_HOSTS"

# Variables of `hostguard exec` that this module sets by flag, or that
# would change what exec does or prints; they are not passed on.
_OWN_VARIABLES = (
    "HOSTGUARD_ALLOW",
    "HOSTGUARD_ENV",
    "HOSTGUARD_SEP",
    "HOSTGUARD_FORMAT",
    "HOSTGUARD_CHECK",
    "HOSTGUARD_ALLOW_MISSING",
)

# Management commands that serve requests, so that discovery is wanted.
_SERVING_COMMANDS = frozenset({"runserver", "runserver_plus"})

_LOOPBACK = "127.0.0.1,::1"

_PRINT = "import os, sys; sys.stdout.write(os.environ[%r])" % _VARIABLE

log = logging.getLogger("hostguard.django")


class HostguardError(_Base):
    """hostguard could not give the list. It is Django's
    ImproperlyConfigured (RuntimeError without Django), so that a server
    refuses to start instead of answering every health check with 400; the
    message is the binary's, naming the cause and the fix."""


def allowed_hosts(names, *, discover=None, timeout=None, allow_missing=False, binary=None):
    """Returns ``names`` followed by this instance's addresses, as a new list
    for Django's ALLOWED_HOSTS.

    names: the site's names, as Django writes them (``"lhy.kr"``,
    ``".lhy.kr"``); an iterable of strings, not one string.

    discover: None (the default) discovers except in management commands
    other than runserver (see the module's documentation); True or False
    decides.

    timeout: the discovery deadline in seconds (default: HOSTGUARD_TIMEOUT,
    else 2 s). The call never takes longer than timeout + GRACE: the binary
    is then stopped and HostguardError raised.

    allow_missing: when discovery fails, return the names (and the
    addresses pinned with HOSTGUARD_SELF) instead of raising.

    binary: the hostguard executable to ask (default: the bundled one).

    The answer is computed once per process for the same arguments; a
    failure is not remembered. Raises HostguardError when the binary
    refuses an entry or discovery fails, TypeError or ValueError for names
    that are not a list of names.
    """
    if isinstance(names, (str, bytes)):
        raise TypeError("allowed_hosts takes a list of names, such as [%r], not a string" % names)
    entries = []
    for n in names:
        if not isinstance(n, str):
            raise TypeError("allowed_hosts: %r is not a string" % (n,))
        n = n.strip()
        if not n or "," in n or any(c.isspace() for c in n):
            raise ValueError("allowed_hosts: %r is not a host name; give one name per entry" % (n,))
        entries.append(n)
    if discover is None:
        discover = _discovery_wanted(sys.argv)
    if timeout is not None:
        timeout = float(timeout)
        if not timeout > 0:
            raise ValueError("allowed_hosts: timeout=%r is not a positive number of seconds" % (timeout,))
    return list(_ask(tuple(entries), bool(discover), timeout, bool(allow_missing), binary))


def clear_cache():
    """Forgets the answers remembered by allowed_hosts (for tests)."""
    _ask.cache_clear()


def _discovery_wanted(argv):
    """False in a Django management command that serves nothing."""
    if not argv or not argv[0]:
        return True
    prog = os.path.basename(argv[0])
    managing = prog in ("manage.py", "django-admin", "django-admin.py") or argv[0].endswith(
        os.path.join("django", "__main__.py")
    )
    if not managing:
        return True
    command = next((a for a in argv[1:] if not a.startswith("-")), "help")
    if command in _SERVING_COMMANDS:
        return True
    log.debug("hostguard: management command %r: names and loopback only, no discovery", command)
    return False


@functools.lru_cache(maxsize=None)
def _ask(entries, discover, timeout, allow_missing, binary):
    try:
        exe = binary or _bundled_binary()
    except FileNotFoundError as e:
        raise HostguardError(str(e)) from None
    argv = [exe, "exec", "--allow", ",".join(entries + ("@self",)), "--env", _VARIABLE, "--sep", ","]
    if not discover:
        argv += ["--platform", "none", "--self", _LOOPBACK]
    if timeout is not None:
        argv += ["--timeout", "%gms" % round(timeout * 1000)]
    if allow_missing:
        argv.append("--allow-missing")
    argv += ["--"] + _printer()
    env = {k: v for k, v in os.environ.items() if k not in _OWN_VARIABLES}
    deadline = timeout if timeout is not None else _env_deadline(env.get("HOSTGUARD_TIMEOUT", ""))
    bound = deadline + GRACE
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            timeout=bound,
        )
    except subprocess.TimeoutExpired:
        raise HostguardError(
            "hostguard gave no list within %gs (discovery deadline %gs plus %gs); it was stopped. "
            "Run `hostguard discover --verbose` on this machine to see what it waits for."
            % (bound, deadline, GRACE)
        ) from None
    except OSError as e:
        raise HostguardError("cannot run hostguard (%s): %s" % (exe, e)) from None
    messages = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        raise HostguardError(
            "hostguard refused to build ALLOWED_HOSTS (exit status %d):\n%s%s"
            % (done.returncode, _pythonic(messages), "" if done.returncode != 1 or allow_missing else
               "\n(to start without this instance's addresses: allowed_hosts(..., allow_missing=True))")
        )
    for line in messages.splitlines():
        log.log(logging.WARNING if "warning" in line else logging.INFO, "%s", line)
    hosts = [h for h in done.stdout.decode("utf-8").strip().split(",") if h]
    if not hosts:
        raise HostguardError("hostguard gave an empty list:\n%s" % messages)
    return tuple(hosts)


def _pythonic(message):
    """The binary's advice, with the flags this module sets by argument."""
    return message.replace("--allow-missing", "--allow-missing (allow_missing=True)")


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _env_deadline(value):
    """Seconds of a Go duration (HOSTGUARD_TIMEOUT), or the default when it
    is empty or does not parse (the binary then names the bad value)."""
    value = value.strip()
    if not value:
        return DISCOVERY_DEADLINE
    parts = _DURATION.findall(value)
    if not parts or "".join(a + u for a, u in parts) != value:
        return DISCOVERY_DEADLINE
    return sum(float(a) * _UNIT[u] for a, u in parts)


def _printer():
    """The command exec runs to hand back the variable: printenv where the
    system has it (about 1 ms, where a Python interpreter takes 20-50 ms to
    start), else this Python, isolated and without site-packages."""
    for p in ("/usr/bin/printenv", "/bin/printenv"):
        if os.access(p, os.X_OK):
            return [p, _VARIABLE]
    return [_python(), "-I", "-S", "-c", _PRINT]


def _python():
    """An interpreter for the one line that prints the variable. Under
    uWSGI or mod_wsgi sys.executable is the server, not Python."""
    candidates = [sys.executable, getattr(sys, "_base_executable", None)]
    candidates += [os.path.join(sys.exec_prefix, "bin", n) for n in ("python3", "python")]
    candidates.append(shutil.which("python3"))
    for c in candidates:
        if c and os.path.basename(c).startswith("python") and os.access(c, os.X_OK):
            return c
    raise HostguardError(
        "no Python interpreter found to read hostguard's answer (sys.executable is %r)" % sys.executable
    )
