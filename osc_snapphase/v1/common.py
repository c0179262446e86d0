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
import contextlib
import math
import os
import select
import signal
import sys
import time

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

MAX_SECONDS = 7 * 24 * 3600.0


def power_state_name(value):
    """Power state as OpenStackClient shows it (1 -> "Running")."""
    if value is None:
        return None
    return POWER_STATES.get(value, 'N/A')


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


def find_server(compute, name_or_id, notify=None, sleep=time.sleep):
    """Resolve a server by name or ID, retrying transient faults."""
    return cloud.find_server(compute, name_or_id, notify=notify,
                             sleep=sleep)


def current_state(server):
    """ServerState of a server; CommandError if task states are hidden."""
    try:
        return cloud.server_state(server)
    except cloud.NoTaskStates as exc:
        raise exceptions.CommandError(str(exc))


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives."""


@contextlib.contextmanager
def sigterm_raises():
    """Turn SIGTERM into a Terminated exception while the block runs."""
    def handler(signum, frame):
        raise Terminated()
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:   # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class DeferredSignals:
    """Hold SIGINT and SIGTERM while a request must not be cut short.

    The createImage request of ``--wait-phase``: interrupted midway, the
    cloud still creates the image but its ID would never be printed.
    ``received`` is the first signal held, or None.
    """

    def __init__(self, second=None):
        self.received = None
        self._previous = {}
        self._second = second

    def _hold(self, signum, frame):
        if self.received is None:
            self.received = signum
            return
        # A second signal: the request may hang; let it go through.
        if self._second:
            sys.stderr.write(self._second + '\n')
            sys.stderr.flush()
        self.stop()
        signal.raise_signal(signum)

    def start(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._hold)
            except ValueError:   # not the main thread
                pass

    def stop(self):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    @property
    def kind(self):
        if self.received is None:
            return None
        if self.received == signal.SIGTERM:
            return engine.TERMINATED
        return engine.INTERRUPTED


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
