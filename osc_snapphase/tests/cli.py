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

"""The one way to run the ``openstack`` executable, for tests and benches.

Both functional suites (the bundled simulator and the real Nova) and the
benchmarks run the unmodified ``openstack`` as a user's shell would: a
subprocess with no ``OS_*`` variable left over, choosing a cloud of a
``clouds.yaml`` file.  :func:`run` runs it to completion; :func:`start`
starts it in the background, :func:`read_line` reads its output as it
comes, :func:`finish` (or :func:`finish_timed`) collects it; on a
pseudo-terminal with :func:`start_on_pty` and :func:`read_pty`; in a shell
pipeline with :func:`run_shell`.
"""

import dataclasses
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time

from osc_snapphase.tests import output

#: Variables a user's shell does not have: PYTHONUNBUFFERED would hide a
#: missing flush of live output through a pipe.
DROPPED = ('PYTHONUNBUFFERED',)


class MissingExecutable(RuntimeError):
    """No ``openstack`` executable: a test failure, never a skip."""


def executable():
    """The ``openstack`` of the running interpreter's environment.

    :raises MissingExecutable: when neither next to ``sys.executable`` nor
        on ``PATH``
    """
    here = os.path.join(os.path.dirname(sys.executable), 'openstack')
    if os.path.exists(here):
        return here
    found = shutil.which('openstack')
    if not found:
        raise MissingExecutable(
            'no openstack executable next to %s or on PATH: install '
            'python-openstackclient and this plugin (pip install -e .)'
            % sys.executable)
    return found


def environ(clouds_yaml=None, cloud=None, extra=None, drop=DROPPED):
    """The environment of a user's shell that selects one cloud.

    No ``OS_*`` variable of ours is passed on, nor those in ``drop``;
    ``OS_CLIENT_CONFIG_FILE`` and ``OS_CLOUD`` choose ``cloud`` of the
    ``clouds_yaml`` file when given; ``extra`` is added last.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('OS_') and k not in drop}
    if clouds_yaml:
        env['OS_CLIENT_CONFIG_FILE'] = clouds_yaml
    if cloud:
        env['OS_CLOUD'] = cloud
    env.update(extra or {})
    return env


@dataclasses.dataclass(eq=False)
class Result:
    """What one ``openstack`` run gave.

    ``args`` (the arguments after ``openstack``), ``returncode``,
    ``stdout``, ``stderr``, ``started`` and ``ended`` (``time.time()``);
    :func:`finish_timed` adds ``output_at``.
    """

    args: tuple
    returncode: int
    stdout: str
    stderr: str
    started: float
    ended: float
    output_at: float = dataclasses.field(default=None, init=False)

    def __post_init__(self):
        self.args = tuple(self.args)

    @property
    def argv(self):
        return [str(a) for a in self.args]

    @property
    def seconds(self):
        return self.ended - self.started

    def json(self):
        return json.loads(self.stdout)

    def json_lines(self):
        return [json.loads(line) for line in self.stdout.splitlines()
                if line.strip()]

    def __repr__(self):
        return ('openstack %s -> rc=%s in %.2fs\nstdout:\n%s\nstderr:\n%s'
                % (' '.join(self.argv), self.returncode, self.seconds,
                   self.stdout[-3000:], self.stderr[-3000:]))


def run(args, env, timeout=120, stdin=subprocess.DEVNULL):
    """Run ``openstack args...`` to its end; return its :class:`Result`."""
    started = time.time()
    proc = subprocess.run(
        [executable()] + [str(a) for a in args], env=env,
        capture_output=True, text=True, timeout=timeout, stdin=stdin,
        preexec_fn=default_sigint)
    return Result(args, proc.returncode, proc.stdout, proc.stderr,
                  started, time.time())


def run_shell(command, env, timeout=120):
    """Run a bash command line (a pipeline with ``openstack``) to its end.

    In a session of its own: on a timeout the whole process group is
    killed (bash and the ``openstack`` it started, which a kill of bash
    alone would leave running) before ``subprocess.TimeoutExpired`` is
    raised again.
    Returns a ``subprocess.CompletedProcess`` with text output.
    """
    proc = subprocess.Popen(
        ['/bin/bash', '-c', command], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=default_sigint)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # bash is not collected yet: its group cannot be another's.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout,
                                       stderr)


def default_sigint():
    """In the child before exec: SIGINT as an interactive shell leaves it.

    A test run started as a background job of a non-interactive shell
    (``tox &`` in a script, some CI runners) has SIGINT ignored, and the
    CLI keeps an inherited ignore (the POSIX convention for background
    jobs): without this the tests that send SIGINT would test that
    convention instead. A test that wants the ignore passes its own
    ``preexec_fn``.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
          stdin=subprocess.DEVNULL, **kwargs):
    """Start ``openstack args...`` in the background; return the Popen.

    The Popen also has ``args_`` (the arguments after ``openstack``),
    ``argv`` (them as strings), ``started`` (``time.time()``) and
    ``started_monotonic``.
    """
    argv = [str(a) for a in args]
    kwargs.setdefault('preexec_fn', default_sigint)
    proc = subprocess.Popen(
        [executable()] + argv, env=env, stdout=stdout, stderr=stderr,
        stdin=stdin, text=True, **kwargs)
    proc.args_ = tuple(args)
    proc.argv = argv
    proc.started = time.time()
    proc.started_monotonic = time.monotonic()
    return proc


def finish(proc, timeout=120):
    """Wait for a :func:`start`\\ ed proc; return its :class:`Result`.

    Text already read by :func:`read_line` is included.
    """
    stdout, stderr = proc.communicate(timeout=timeout)
    return Result(proc.args_, proc.returncode,
                  getattr(proc, 'consumed', '') + (stdout or ''),
                  getattr(proc, 'consumed_stderr', '') + (stderr or ''),
                  proc.started, time.time())


def finish_timed(proc, timeout=120, clock=time.time):
    """Like :func:`finish`; the Result also gets ``output_at``.

    ``output_at`` (from ``clock``): when stdout first held a complete JSON
    document, else when its last byte came, else the exit: when the
    command had answered, without the interpreter's exit.

    :raises TimeoutError: when it is still running after ``timeout``
    """
    out = output.read(proc, timeout, clock=clock)
    proc.wait(timeout)
    result = Result(proc.args_, proc.returncode, out.stdout, out.stderr,
                    proc.started, time.time())
    result.output_at = out.answered_at or clock()
    return result


def read_line(proc, timeout=30, stream='stdout'):
    """Read one line of a :func:`start`\\ ed proc's output as it comes.

    Reads the file descriptor byte by byte (no buffering), so that
    :func:`finish` still gets the rest; the line is kept for it too.
    Returns the line, or '' at the end of the output.

    :raises TimeoutError: when no whole line came within ``timeout``
    """
    fd = getattr(proc, stream).fileno()
    deadline = time.monotonic() + timeout
    data = b''
    while not data.endswith(b'\n'):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('no line on %s within %ss (so far %r)'
                               % (stream, timeout, data))
        ready, _w, _x = select.select([fd], [], [], left)
        if not ready:
            continue
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    line = data.decode()
    kept = 'consumed' if stream == 'stdout' else 'consumed_stderr'
    setattr(proc, kept, getattr(proc, kept, '') + line)
    return line


def reap(proc):
    """Kill a proc that still runs and collect it (a test's cleanup)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()
    for fd in getattr(proc, 'pty_fds', ()):
        try:
            os.close(fd)
        except OSError:
            pass


def start_on_pty(args, env, columns=200, rows=50):
    """Start ``openstack`` with a pseudo-terminal as stdout and stderr.

    The terminal is ``columns`` wide; the Popen gets ``pty_master`` (read
    it with :func:`read_pty`), and :func:`reap` closes it.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ,
                struct.pack('HHHH', rows, columns, 0, 0))
    env = dict(env, COLUMNS=str(columns), LINES=str(rows))
    env.pop('TERM', None)
    env['TERM'] = 'xterm'
    try:
        proc = start(args, env, stdout=slave, stderr=slave)
    finally:
        os.close(slave)
    proc.pty_master = master
    proc.pty_fds = (master,)
    proc.pty_text = ''
    return proc


def read_pty(proc, until, timeout=120):
    """Read a :func:`start_on_pty`\\ ed proc's terminal until ``until``.

    ``until(text)`` is called with all text read so far; returns that text
    once it is true, or at the end of the output (the terminal closed).

    :raises TimeoutError: when ``until`` is still false after ``timeout``
    """
    deadline = time.monotonic() + timeout
    while not until(proc.pty_text):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('not on the terminal within %ss; so far:\n%s'
                               % (timeout, proc.pty_text))
        ready, _w, _x = select.select([proc.pty_master], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(proc.pty_master, 65536)
        except OSError:     # EIO: the other end is closed
            chunk = b''
        if not chunk:
            break
        proc.pty_text += chunk.decode('utf-8', 'replace')
    return proc.pty_text
