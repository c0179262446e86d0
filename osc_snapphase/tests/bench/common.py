#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""What the benchmark sections share: the CLI under measure, simulators.

The ``openstack`` executable is started by the tests' one runner
(:mod:`osc_snapphase.tests.cli`); :class:`Proc` adds what a benchmark
reads and a test does not: the receipt time of each output line and the
CPU time and peak memory of the process (``os.wait4``).
"""

import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from osc_snapphase.tests import cli
from osc_snapphase.tests import fixture

CLK_TCK = os.sysconf('SC_CLK_TCK')
TOKEN_KEY_RE = re.compile(r'^POST .*auth/tokens$')
# Also dropped from the CLI's environment: a PYTHONPATH of the caller (the
# start-up section sets its own).
DROPPED = cli.DROPPED + ('PYTHONPATH',)


def log(message):
    sys.stderr.write('[bench %s] %s\n' % (
        time.strftime('%H:%M:%S'), message))
    sys.stderr.flush()


def median(values):
    return statistics.median(values) if values else None


def percentile(values, share):
    """Linear-interpolated percentile (share in 0..1)."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = share * (len(data) - 1)
    low = int(math.floor(pos))
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def rnd(value, digits=3):
    return None if value is None else round(value, digits)


def verdict(value, target, lower_is_better=True):
    if value is None:
        return 'n/a'
    ok = value <= target if lower_is_better else value >= target
    return 'ok' if ok else 'MISS'


class Proc:
    """A started ``openstack``, reaped with os.wait4 (rusage).

    ``args`` are the arguments after ``openstack``. With ``pipe``, the
    output lines are kept with their receipt time in ``lines``.
    """

    def __init__(self, args, env, pipe=False):
        self.args = list(args)
        self.errors = tempfile.TemporaryFile()
        self.popen = cli.start(
            args, env, stdout=subprocess.PIPE if pipe else subprocess.DEVNULL,
            stderr=self.errors)
        self.started = self.popen.started
        self._t0 = time.perf_counter()
        self.pid = self.popen.pid
        self.ended = None
        self.wall = None
        self.returncode = None
        self.rusage = None
        self.lines = []          # (receipt time, text)
        self._reader = None
        self._waiter = None
        if pipe:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self):
        while True:
            try:
                line = cli.read_line(self.popen, timeout=24 * 3600)
            except (TimeoutError, OSError, ValueError):
                return
            if not line:
                return
            self.lines.append((time.time(), line))

    def stderr_tail(self):
        self.errors.seek(0)
        return self.errors.read()[-1500:].decode(errors='replace')

    def start_waiter(self):
        self._waiter = threading.Thread(target=self.wait, daemon=True)
        self._waiter.start()
        return self

    def wait(self, timeout=None):
        if self._waiter is not None and (
                threading.current_thread() is not self._waiter):
            self._waiter.join(timeout)
            return self.returncode
        _pid, status, rusage = os.wait4(self.pid, 0)
        self._reaped(status, rusage)
        return self.returncode

    def poll(self):
        """The exit status, or None while it runs.

        Never reaps it behind the waiter's back (Popen.poll would: the
        waiter's os.wait4 would then fail and the rusage be lost): with a
        waiter, its returncode says; without, a non-blocking wait4.
        """
        if self._waiter is None and self.returncode is None:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self._reaped(status, rusage)
        return self.returncode

    def _reaped(self, status, rusage):
        self.ended = time.time()
        self.wall = time.perf_counter() - self._t0
        self.rusage = rusage
        self.returncode = os.waitstatus_to_exitcode(status)
        self.popen.returncode = self.returncode
        if self._reader is not None:
            self._reader.join(5)

    def kill(self, signal=9):
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal)

    @property
    def cpu(self):
        return self.rusage.ru_utime + self.rusage.ru_stime

    @property
    def maxrss_kib(self):
        return self.rusage.ru_maxrss

    def proc_cpu(self):
        return proc_cpu(self.pid)


def proc_cpu(pid):
    """utime+stime of a process so far, from /proc/<pid>/stat (ticks)."""
    with open('/proc/%d/stat' % pid) as stream:
        fields = stream.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run(args, env, timeout=120):
    """Run ``openstack args`` to the end; return the reaped Proc."""
    proc = Proc(args, env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
    return proc


def environ(extra=None):
    """What a user's shell gives the CLI (see cli.environ)."""
    return cli.environ(extra=extra, drop=DROPPED)


@contextlib.contextmanager
def simulator(durations=None):
    sim = fixture.SimulatorFixture(durations=durations or {})
    sim.setUp()
    try:
        yield sim
    finally:
        sim.cleanUp()


def cli_env(sim, extra=None):
    """The environment of a CLI that uses the simulator's member cloud."""
    return environ(dict(sim.cloud_env(), **(extra or {})))


def connect(clouds_yaml, cloud):
    """An openstacksdk Connection to a cloud of a clouds.yaml file."""
    import openstack.config
    import openstack.connection
    config = openstack.config.OpenStackConfig(config_files=[clouds_yaml])
    return openstack.connection.Connection(config=config.get_one(
        cloud=cloud))


def task_changes(control, server_id, since=0):
    return [e for e in control.log(since=since, resource_id=server_id)
            if e['field'] == 'task_state']


def last_seq(control):
    entries = control.log()
    return entries[-1]['seq'] if entries else 0


def wait_idle(control, server_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while control.server(server_id)['OS-EXT-STS:task_state'] is not None:
        if time.monotonic() > deadline:
            raise TimeoutError('%s not idle after %ss' % (server_id,
                                                          timeout))
        time.sleep(0.05)


def wait_line(proc, count=1, timeout=120.0):
    deadline = time.monotonic() + timeout
    while len(proc.lines) < count:
        if time.monotonic() > deadline or proc.poll() is not None:
            if len(proc.lines) >= count:
                break
            raise RuntimeError('no output from openstack %s (exit %s) after '
                               '%.0fs: %s' % (
                                   ' '.join(proc.args), proc.poll(),
                                   time.time() - proc.started,
                                   proc.stderr_tail()))
        time.sleep(0.01)
    return proc.lines[count - 1]


def tokens(requests):
    """Token requests among the simulator's request log entries."""
    return sum(1 for e in requests if TOKEN_KEY_RE.match(e['key']))


def status_rss_kib():
    with open('/proc/self/status') as stream:
        for line in stream:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return None


def child(mode, **args):
    """Run ``python -m osc_snapphase.tests.bench --child mode``.

    The child measures the Python API alone in its process (CPU, memory)
    and writes its figures as JSON on stdout.
    """
    cmd = [sys.executable, '-m', 'osc_snapphase.tests.bench', '--child',
           mode, '--child-args', json.dumps(args)]
    out = subprocess.run(cmd, env=environ(), capture_output=True, text=True,
                         timeout=3600)
    if out.returncode != 0:
        raise RuntimeError('%s child failed: %s' % (mode, out.stderr[-2000:]))
    return json.loads(out.stdout)


class LoadSampler:
    """The 1-minute load average every 15 s while a section runs."""

    def __init__(self, every=15.0):
        self.samples = []
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            if self._stop.wait(self._every):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def summary(self):
        return {'samples': self.samples, 'median': median(self.samples),
                'max': max(self.samples) if self.samples else None}


def machine():
    model = None
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as stream:
            for line in stream:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    return {'nproc': os.cpu_count(), 'cpu_model': model,
            'python': platform.python_version(),
            'platform': platform.platform(),
            'loadavg_at_start': [round(v, 2) for v in os.getloadavg()]}


def versions():
    import importlib.metadata as md
    out = {}
    for name in ('python-openstackclient', 'openstacksdk', 'osc-lib',
                 'cliff', 'keystoneauth1', 'stevedore', 'osc-snapphase'):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out
