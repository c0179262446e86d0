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

"""Reading a started ``openstack`` to its end, timing its answer.

Both functional suites use it to tell when a command had answered (its
JSON output complete) apart from when its interpreter exited.
"""

import collections
import json
import os
import select
import threading
import time

Output = collections.namedtuple(
    'Output', ['stdout', 'stderr', 'first_at', 'answered_at'])


def read(proc, timeout=None, clock=time.time, on_first=None):
    """Read a Popen's stdout and stderr until both are closed.

    :returns: an :class:`Output`: the text of both streams, when stdout
        got its first byte, and when the command had answered: stdout
        first held a complete JSON document, else its last byte came
        (None: it printed nothing); times from ``clock``
    :raises TimeoutError: when the streams are still open after
        ``timeout`` seconds
    """
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    data = {out_fd: b'', err_fd: b''}
    open_fds = [out_fd, err_fd]
    first_at = last_at = json_at = None
    deadline = None if timeout is None else time.monotonic() + timeout
    while open_fds:
        left = None if deadline is None else deadline - time.monotonic()
        ready = select.select(open_fds, [], [],
                              None if left is None else max(0, left))[0]
        if not ready and left is not None and left <= 0:
            raise TimeoutError('openstack %s still running after %ss'
                               % (' '.join(proc.args[1:]), timeout))
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
                continue
            data[fd] += chunk
            if fd != out_fd:
                continue
            last_at = clock()
            if first_at is None:
                first_at = last_at
                if on_first is not None:
                    on_first(first_at)
            if json_at is None:
                try:
                    json.loads(data[fd].decode())
                    json_at = last_at
                except ValueError:
                    pass
    return Output(data[out_fd].decode(), data[err_fd].decode(), first_at,
                  json_at or last_at)


class AnswerClock(object):
    """Reads a background ``openstack`` to its end in a thread.

    ``first_output_at``: when stdout got its first byte; ``answered_at``
    (also ``output_at``): when it had answered (see :func:`read`), else
    its exit; ``ended_at``: its exit; all ``time.time()``.
    """

    def __init__(self, proc):
        self.proc = proc
        self.stdout = self.stderr = ''
        self.first_output_at = self.answered_at = self.ended_at = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def output_at(self):
        return self.answered_at

    def _first(self, at):
        self.first_output_at = at

    def _run(self):
        try:
            output = read(self.proc, on_first=self._first)
            self.proc.wait()
            self.stdout, self.stderr = output.stdout, output.stderr
            self.answered_at = output.answered_at
        finally:
            self.ended_at = time.time()
            if self.answered_at is None:
                self.answered_at = self.ended_at
            self.done.set()

    def wait(self, timeout):
        return self.done.wait(timeout)


def table(text):
    """(header, rows) of a table as cliff and the live table write it.

    ``text``: the rule, the header, the rule, the rows and the closing
    rule, nothing else. A header or a row may take several lines (cells
    wrapped within their columns): a row starts on a line whose first
    cell is not empty; its cells are the pieces joined by a space.
    """
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith('+')]
    if len(rules) != 3 or rules[0] != 0 or rules[-1] != len(lines) - 1:
        raise ValueError('not one table: %r' % text)

    def cells(line):
        return [c.strip() for c in line.strip('|').split('|')]
    header = [' '.join(filter(None, column)) for column in zip(
        *[cells(line) for line in lines[1:rules[1]]])]
    rows = []
    for line in lines[rules[1] + 1:rules[2]]:
        if cells(line)[0] or not rows:
            rows.append(cells(line))
        else:
            rows[-1] = [(a + ' ' + b).strip()
                        for a, b in zip(rows[-1], cells(line))]
    return header, rows
