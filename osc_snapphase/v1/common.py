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

"""Helpers shared by the snapphase commands and the image hook."""

import argparse
import atexit
import gc
import math
import os
import select
import signal
import sys

from cliff import columns
from osc_lib import exceptions

from osc_snapphase import cloud
from osc_snapphase import engine

POWER_STATES = {
    0: 'NOSTATE',
    1: 'Running',
    3: 'Paused',
    4: 'Shutdown',
    6: 'Crashed',
    7: 'Suspended',
}


class PowerStateColumn(columns.FormattableColumn):
    """A server's power state, as ``openstack server show`` prints it.

    "Running" for people (table, value); the number Nova gives in the
    machine formats (json, yaml), as core's PowerStateColumn.
    """

    def human_readable(self):
        return POWER_STATES.get(self._value, 'N/A')

    def machine_readable(self):
        return self._value


MAX_SECONDS = 7 * 24 * 3600.0


def seconds(minimum=0.0, maximum=MAX_SECONDS, inclusive=False):
    """argparse type: a finite number of seconds within bounds."""
    def parse(text):
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                'expected a number of seconds, got %r' % text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                'expected a finite number of seconds, got %r' % text)
        too_small = value < minimum if inclusive else value <= minimum
        if too_small:
            raise argparse.ArgumentTypeError(
                'must be %s %g seconds, got %s' % (
                    'at least' if inclusive else 'more than', minimum, text))
        if value > maximum:
            raise argparse.ArgumentTypeError(
                'must be at most %g seconds (%g days), got %s' % (
                    maximum, maximum / 86400, text))
        return value
    return parse


def server_reference(text):
    """argparse type: a non-empty server name or ID."""
    if not text or not text.strip():
        raise argparse.ArgumentTypeError('a server name or ID is required')
    return text


def usage_error(prog, message):
    """Report a usage error as argparse does: one line, exit status 2."""
    sys.stderr.write('%s: error: %s\n' % (prog, message))
    raise SystemExit(2)


def capture_model(app):
    """The capture model of this run; a usage error if unknown.

    From ``--os-snapphase-capture-model``, ``OS_SNAPPHASE_CAPTURE_MODEL`` or
    the cloud's ``snapphase_capture_model`` key in clouds.yaml.
    """
    config = getattr(getattr(app, 'cloud', None), 'config', None)
    try:
        return cloud.capture_model(config if isinstance(config, dict)
                                   else None)
    except ValueError as exc:
        usage_error('openstack', '--os-snapphase-capture-model: %s' % exc)


def block_storage(app):
    """The block-storage proxy, created only when first needed.

    Most watches never read a Cinder snapshot: creating the proxy up front
    would cost a version discovery, and fail on a cloud without Cinder.
    """
    return lambda: app.client_manager.volume


def current_state(server):
    """ServerState of a server; CommandError if task states are hidden."""
    try:
        return cloud.server_state(server)
    except cloud.NoTaskStates as exc:
        raise exceptions.CommandError(str(exc))


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives."""


class SignalTrap:
    """SIGINT and SIGTERM, caught where we decide.

    Raising: a signal raises KeyboardInterrupt (SIGINT) or Terminated
    (SIGTERM) and is remembered, and ``check()`` raises it again at a safe
    point: Python drops an exception raised inside a ``__del__`` or a
    callback ("Exception ignored in ..."), so one raise is not enough.

    Deferring (``defer=True``): the first signal is only remembered, until
    ``raising()``; a second one goes through at once, after ``second`` is
    written to stderr. ``--wait-phase`` defers while the createImage
    request runs: cut short, the cloud would still create the image but
    its ID would never be printed.

    An inherited "ignore" of SIGINT is kept: a shell starts background
    jobs (``cmd &`` in a non-interactive shell) with SIGINT ignored, so
    that a Ctrl-C meant for the foreground leaves them running (POSIX).
    SIGTERM is always caught.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, defer=False, second=None):
        self.received = None
        self.deferring = defer
        self._second = second
        self._previous = None

    def __enter__(self):
        self.install()
        return self

    def __exit__(self, *exc_info):
        self.uninstall()
        return False

    def install(self):
        if self._previous is not None:
            return
        self._previous = {}
        for signum in self.SIGNALS:
            if (signum == signal.SIGINT
                    and signal.getsignal(signum) == signal.SIG_IGN):
                continue
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:   # not the main thread
                pass

    def uninstall(self):
        for signum, previous in (self._previous or {}).items():
            signal.signal(signum, previous)
        self._previous = None

    def _handle(self, signum, frame):
        first = self.received is None
        if first:
            self.received = signum
        if self.deferring:
            if first:
                return
            self.deferring = False
            if self._second:
                sys.stderr.write(self._second + '\n')
                sys.stderr.flush()
        raise _exception(signum)

    def raising(self):
        """Stop deferring; raise now if a signal was held."""
        self.deferring = False
        self.check()

    def check(self):
        if self.received is not None and not self.deferring:
            raise _exception(self.received)


def _exception(signum):
    if signum == signal.SIGTERM:
        return Terminated()
    return KeyboardInterrupt()


# How a message names the end of a run by a signal.
STOPPED_BY = {
    engine.INTERRUPTED: 'Interrupted',
    engine.TERMINATED: 'Terminated',
}


def interruption(exc):
    """Outcome kind for KeyboardInterrupt / Terminated."""
    if isinstance(exc, Terminated):
        return engine.TERMINATED
    return engine.INTERRUPTED


def is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def quick_exit():
    """Make the interpreter's shutdown cheap once a wait has ended.

    At exit CPython collects the whole heap of openstacksdk, keystoneauth
    and cliff objects: 0.2 to 0.5 s on a busy machine, after the answer a
    script waits for is already known. Freezing the heap at exit skips it
    (measured by the benchmark suite, see the performance page).
    """
    atexit.register(gc.freeze)


def reader_gone(stream):
    """Whether stream is a pipe whose reading end was closed.

    Lets a watch that prints nothing for a while (an idle server) notice
    ``| head -n 1`` having exited, without writing anything.
    """
    try:
        poller = select.poll()
        poller.register(stream.fileno(), 0)
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):
        return False
    return any(mask & (select.POLLERR | select.POLLHUP)
               for _fd, mask in events)


def quiet_broken_pipe():
    """After EPIPE on stdout: silence further writes and the exit flush."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class StatusLine:
    """A line on a terminal's stderr, rewritten in place."""

    def __init__(self, stream):
        self._stream = stream
        self._live = is_terminal(stream)
        self._width = 0

    def show(self, text):
        if not self._live:
            return
        padding = ' ' * max(0, self._width - len(text))
        self._stream.write('\r' + text + padding)
        self._stream.flush()
        self._width = len(text)

    def clear(self):
        if self._live and self._width:
            self._stream.write('\r' + ' ' * self._width + '\r')
            self._stream.flush()
            self._width = 0
