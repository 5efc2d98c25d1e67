"""The installed wheel's Django helper, as users run it.

Run by packaging/python/check with the Python of a fresh virtualenv into
which only the wheel was installed (Django and gunicorn are Debian's,
visible through --system-site-packages):

    VENV/bin/python -m unittest -v tests/test_django.py

It needs ec2-metadata-mock (PATH or GOPATH/bin). Nothing here sends a
packet beyond loopback: every process gets an environment built from
scratch, whose metadata endpoints are the mock or a loopback listener
that records connections, and whose detection reads an empty /sys.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from unittest import mock

import hostguard
import hostguard.django
from django.core.exceptions import ImproperlyConfigured

INSTANCE_IP = "10.0.1.23"  # the mock's local-ipv4: a test value, never contacted
INSTANCE_IPV6 = "2001:db8:8:4::2"  # the mock's interface IPv6 (its default)
# What the helper must return on the mocked EC2 instance, in the binary's order.
ON_EC2 = ["lhy.kr", INSTANCE_IP, "127.0.0.1", "[::1]", "[%s]" % INSTANCE_IPV6]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, what, proc=None, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("%s does not listen on 127.0.0.1:%d" % (what, port))


class BlackHole:
    """A loopback listener that accepts, records and never answers: a
    metadata endpoint that proves nothing was asked."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def find_mock():
    p = shutil.which("ec2-metadata-mock")
    if p:
        return p
    gopath = os.environ.get("GOPATH") or os.path.expanduser("~/go")
    p = os.path.join(gopath, "bin", "ec2-metadata-mock")
    if os.access(p, os.X_OK):
        return p
    raise unittest.SkipTest("ec2-metadata-mock is not installed")


SETTINGS = """
import hostguard.django

ALLOWED_HOSTS = hostguard.django.allowed_hosts(["lhy.kr"])

SECRET_KEY = "test-only"
DEBUG = False
ROOT_URLCONF = "hgsite.urls"
INSTALLED_APPS = []
# CommonMiddleware calls request.get_host(), which validates the Host.
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {}
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "loggers": {"django.security.DisallowedHost": {"level": "CRITICAL"}}}
"""

URLS = """
import json
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

urlpatterns = [
    path("health/", lambda r: HttpResponse("ok\\n")),
    path("hosts/", lambda r: HttpResponse(json.dumps(settings.ALLOWED_HOSTS))),
]
"""

WSGI = """
import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hgsite.settings")
application = get_wsgi_application()
"""

MANAGE = """#!/usr/bin/env python3
import os, sys
if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hgsite.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"""

# A plain script (not a management command): Django's test client, which
# runs the request through validate_host as a server does.
CLIENT = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hgsite.settings")
import django
django.setup()
from django.conf import settings
from django.test import Client
c = Client()
codes = {h: c.get("/health/", HTTP_HOST=h).status_code for h in sys.argv[1:]}
print(json.dumps({"allowed": settings.ALLOWED_HOSTS, "codes": codes}))
"""


class Env:
    """The site, the mock and the environments the processes get."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hostguard-django-")
        site = os.path.join(self.dir, "hgsite")
        os.mkdir(site)
        for name, text in [("__init__.py", ""), ("settings.py", SETTINGS), ("urls.py", URLS), ("wsgi.py", WSGI)]:
            with open(os.path.join(site, name), "w") as f:
                f.write(textwrap.dedent(text))
        for name, text in [("manage.py", MANAGE), ("client.py", CLIENT)]:
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.empty_sys = os.path.join(self.dir, "sys")
        os.mkdir(self.empty_sys)
        self.hole = BlackHole()
        self.procs = []
        self.files = []
        # The real EC2 metadata mock, IMDSv2 only, answering for INSTANCE_IP.
        cfg = os.path.join(self.dir, "aemm.json")
        with open(cfg, "w") as f:
            json.dump({"metadata": {"values": {"local-ipv4": INSTANCE_IP, "mac-local-ipv4s": INSTANCE_IP}}}, f)
        port = free_port()
        log = open(os.path.join(self.dir, "aemm.log"), "wb")
        self.files.append(log)
        p = subprocess.Popen([find_mock(), "-n", "127.0.0.1", "-p", str(port), "-c", cfg, "-I"],
                             cwd=self.dir, env={"PATH": "/usr/bin:/bin", "HOME": self.dir},
                             stdout=log, stderr=log)
        self.procs.append(p)
        wait_listening(port, "ec2-metadata-mock", p)
        self.mock_url = "http://127.0.0.1:%d" % port

    def env(self, **extra):
        """An environment from scratch: this venv's bin first, no cloud
        variables, detection reading an empty /sys, every metadata
        endpoint the black hole unless extra says otherwise."""
        e = {
            "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
            "HOME": self.dir,
            "LANG": "C.UTF-8",
            "PYTHONPATH": self.dir,
            "DJANGO_SETTINGS_MODULE": "hgsite.settings",
            "HOSTGUARD_SYSFS": self.empty_sys,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.hole.url,
            "GCE_METADATA_HOST": self.hole.url[len("http://"):],
            "HOSTGUARD_AZURE_ENDPOINT": self.hole.url,
        }
        e.update(extra)
        return {k: v for k, v in e.items() if v is not None}

    def on_ec2(self, **extra):
        return self.env(HOSTGUARD_PLATFORM="ec2", AWS_EC2_METADATA_SERVICE_ENDPOINT=self.mock_url, **extra)

    def run(self, argv, env, timeout=60):
        return subprocess.run(argv, cwd=self.dir, env=env, capture_output=True, text=True, timeout=timeout)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.hole.close()
        for f in self.files:
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


E = None


def setUpModule():
    global E
    E = Env()


def tearDownModule():
    if E is not None:
        E.close()


def request(port, host, path="/health/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.putrequest("GET", path, skip_host=True)
    c.putheader("Host", host)
    c.endheaders()
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


class GunicornOnEC2(unittest.TestCase):
    """gunicorn, two workers, each importing the settings, against the EC2
    metadata mock: the load balancer's health check (Host = the private
    IP, with or without port) gets 200, unknown Hosts 400."""

    def test_health_check_host(self):
        port = free_port()
        log = open(os.path.join(E.dir, "gunicorn.log"), "wb")
        E.files.append(log)
        p = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:%d" % port,
                              "--workers", "2", "hgsite.wsgi"],
                             cwd=E.dir, env=E.on_ec2(), stdout=log, stderr=log)
        E.procs.append(p)
        try:
            wait_listening(port, "gunicorn", p, seconds=30)
        except AssertionError:
            with open(os.path.join(E.dir, "gunicorn.log")) as f:
                raise AssertionError(f.read())
        status, body = request(port, "lhy.kr", "/hosts/")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), ON_EC2)
        for host, want in [(INSTANCE_IP, 200), (INSTANCE_IP + ":80", 200), ("lhy.kr", 200), ("LHY.KR:443", 200),
                           ("127.0.0.1:8000", 200), ("[::1]", 200), ("[%s]:80" % INSTANCE_IPV6, 200), ("evil.example", 400),
                           ("172.16.34.43", 400), ("10.0.1.24", 400), ("www.lhy.kr", 400)]:
            for _ in range(2):  # both workers, most likely
                status, _ = request(port, host)
                self.assertEqual(status, want, "Host: %s" % host)
        self.assertEqual(E.hole.conns, [], "something asked the black hole")


class ClientOnEC2(unittest.TestCase):
    def test_validate_host(self):
        r = E.run([sys.executable, "client.py", INSTANCE_IP, "lhy.kr", "evil.example", "[::1]:8000"], E.on_ec2())
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        self.assertEqual(got["allowed"], ON_EC2)
        self.assertEqual(got["codes"], {INSTANCE_IP: 200, "lhy.kr": 200, "evil.example": 400, "[::1]:8000": 200})


class ManagementCommands(unittest.TestCase):
    """manage.py, django-admin and python -m django: names and loopback,
    nothing asked, even with HOSTGUARD_PLATFORM=ec2."""

    PRINT = "from django.conf import settings; import json; print(json.dumps(settings.ALLOWED_HOSTS))"

    def check(self, argv):
        before = len(E.hole.conns)
        r = E.run(argv, E.env(HOSTGUARD_PLATFORM="ec2"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout.strip().splitlines()[-1]), ["lhy.kr", "127.0.0.1", "[::1]"], argv)
        self.assertEqual(len(E.hole.conns), before, "%s asked the metadata endpoint" % argv)

    def test_manage_py(self):
        self.check([sys.executable, "manage.py", "shell", "-c", self.PRINT])

    def test_python_m_django(self):
        self.check([sys.executable, "-m", "django", "shell", "-c", self.PRINT])

    def test_check_command(self):
        before = len(E.hole.conns)
        r = E.run([sys.executable, "manage.py", "check"], E.env(HOSTGUARD_PLATFORM="ec2"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(E.hole.conns), before)


class OffCloud(unittest.TestCase):
    """A server off-cloud: detection finds no platform in an empty /sys and
    no cloud variables, sends nothing, and lists local addresses."""

    def test_off_cloud(self):
        before = len(E.hole.conns)
        r = E.run([sys.executable, "client.py", "lhy.kr", "evil.example"], E.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        allowed = got["allowed"]
        self.assertEqual(allowed[0], "lhy.kr")
        self.assertIn("127.0.0.1", allowed)
        self.assertIn("[::1]", allowed)
        import ipaddress
        for a in allowed[1:]:
            ip = ipaddress.ip_address(a.strip("[]"))
            self.assertTrue(ip.is_private or ip.is_loopback, a)
        self.assertEqual(got["codes"], {"lhy.kr": 200, "evil.example": 400})
        self.assertEqual(len(E.hole.conns), before, "off-cloud discovery asked a metadata endpoint")


class InProcess(unittest.TestCase):
    """The helper's own behaviour, in this process."""

    def setUp(self):
        hostguard.django.clear_cache()
        self.saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(E.on_ec2())

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.saved)
        hostguard.django.clear_cache()

    def test_binary_is_the_wheels(self):
        want = os.path.join(os.path.dirname(sys.executable), "hostguard")
        self.assertEqual(hostguard.binary(), os.path.realpath(want))

    def test_once_per_process(self):
        first = hostguard.django.allowed_hosts(["lhy.kr"], discover=True)
        self.assertEqual(first, ON_EC2)
        first.append("mutated")  # a new list each time: the cache is not shared
        with mock.patch("subprocess.run", side_effect=AssertionError("asked twice")):
            self.assertEqual(hostguard.django.allowed_hosts(["lhy.kr"], discover=True),
                             ON_EC2)

    def test_own_variables_ignored(self):
        # exec's own variables in the environment do not change the answer.
        os.environ.update(HOSTGUARD_SEP=";", HOSTGUARD_ALLOW="other.example", HOSTGUARD_ENV="X", HOSTGUARD_CHECK="true")
        self.assertEqual(hostguard.django.allowed_hosts(["lhy.kr"], discover=True),
                         ON_EC2)

    def test_pinned_self(self):
        os.environ["HOSTGUARD_SELF"] = "192.0.2.7"
        got = hostguard.django.allowed_hosts(["lhy.kr"], discover=False)
        self.assertEqual(sorted(got), sorted(["lhy.kr", "192.0.2.7", "127.0.0.1", "[::1]"]))
        self.assertEqual(got[0], "lhy.kr")

    def test_names_checked(self):
        with self.assertRaises(TypeError):
            hostguard.django.allowed_hosts("lhy.kr")
        with self.assertRaises(ValueError):
            hostguard.django.allowed_hosts(["lhy.kr,evil.example"])
        with self.assertRaises(ValueError):
            hostguard.django.allowed_hosts(["lhy.kr", ""])

    def test_bad_entry_refused_by_the_binary(self):
        with self.assertRaises(ImproperlyConfigured) as cm:
            hostguard.django.allowed_hosts(["lhy.kr/admin"])
        self.assertIsInstance(cm.exception, hostguard.django.HostguardError)
        self.assertIn("lhy.kr/admin", str(cm.exception))
        self.assertNotIn("allow_missing", str(cm.exception))

    def test_django_conversion(self):
        # Issue 20 item 3: exec --env DJANGO_ALLOWED_HOSTS refuses entries
        # Django cannot match. The helper must give the binary's refusal.
        help = subprocess.run([hostguard.binary(), "exec", "-h"], capture_output=True, text=True)
        if "format" not in help.stdout + help.stderr:
            self.skipTest("this hostguard has no exec --format yet (issue 20 item 3)")
        for entry in ["10.0.0.0/8", "*.lhy.kr", "lhy.kr:8443"]:
            with self.subTest(entry=entry):
                with self.assertRaises(hostguard.django.HostguardError) as cm:
                    hostguard.django.allowed_hosts(["lhy.kr", entry], discover=False)
                self.assertIn(entry, str(cm.exception))

    def test_discovery_failure(self):
        closed = free_port()
        os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:%d" % closed
        with self.assertRaises(hostguard.django.HostguardError) as cm:
            hostguard.django.allowed_hosts(["lhy.kr"], discover=True)
        msg = str(cm.exception)
        self.assertIn("127.0.0.1:%d" % closed, msg)
        self.assertIn("allow_missing=True", msg)
        self.assertEqual(hostguard.django.allowed_hosts(["lhy.kr"], discover=True, allow_missing=True), ["lhy.kr"])

    def test_deadline(self):
        # A metadata service that never answers: the binary's deadline ends
        # the wait, and the error says what it waited for.
        os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = E.hole.url
        start = time.monotonic()
        with self.assertRaises(hostguard.django.HostguardError) as cm:
            hostguard.django.allowed_hosts(["lhy.kr"], discover=True, timeout=0.5)
        self.assertLess(time.monotonic() - start, 0.5 + hostguard.django.GRACE)
        self.assertIn("deadline", str(cm.exception))

    def test_binary_stopped(self):
        # A binary that hangs is stopped after the deadline plus GRACE.
        fake = os.path.join(E.dir, "hang")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\nexec sleep 60\n")
        os.chmod(fake, 0o755)
        with self.assertRaises(hostguard.django.HostguardError) as cm:
            hostguard.django.allowed_hosts(["lhy.kr"], timeout=0.1, binary=fake)
        self.assertIn("was stopped", str(cm.exception))

    def test_missing_binary(self):
        with self.assertRaises(hostguard.django.HostguardError) as cm:
            hostguard.django.allowed_hosts(["lhy.kr"], binary=os.path.join(E.dir, "no-such-hostguard"))
        self.assertIn("no-such-hostguard", str(cm.exception))

    def test_without_printenv(self):
        # Where the system has no printenv, a Python prints the answer.
        real = os.access
        no_printenv = lambda p, mode: False if p.endswith("/printenv") else real(p, mode)
        with mock.patch("os.access", side_effect=no_printenv):
            self.assertEqual(hostguard.django._printer()[0], hostguard.django._python())
            self.assertEqual(hostguard.django.allowed_hosts(["lhy.kr"], discover=True), ON_EC2)

    def test_management_detection(self):
        wanted = hostguard.django._discovery_wanted
        self.assertFalse(wanted(["manage.py", "migrate"]))
        self.assertFalse(wanted(["/srv/app/manage.py", "--settings=x", "collectstatic"]))
        self.assertFalse(wanted(["/usr/bin/django-admin", "shell"]))
        self.assertFalse(wanted(["/usr/lib/python3/dist-packages/django/__main__.py", "test"]))
        self.assertTrue(wanted(["manage.py", "runserver", "0.0.0.0:8000"]))
        self.assertTrue(wanted(["/venv/bin/gunicorn", "mysite.wsgi"]))
        self.assertTrue(wanted(["uwsgi"]))
        self.assertTrue(wanted(["mod_wsgi"]))
        self.assertTrue(wanted([]))


if __name__ == "__main__":
    unittest.main()
