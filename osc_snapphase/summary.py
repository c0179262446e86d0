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

"""Text for people watching a fleet (``watch --all``).

A live summary line on a terminal's stderr, beside the rows ("200
servers: 3 snapshot, 1 upload, 195 idle, 1 failed"), and at the end the
timeline of each server that changed during the watch, not of every
server. Both cost what the busy servers cost, not the fleet's size.
"""

import collections

from osc_snapphase import phases
from osc_snapphase import report
from osc_snapphase.v1 import common

# Timelines printed at the end of a fleet watch, at most.
MAX_TIMELINES = 50
FAILED = 'failed'


def counts(watch):
    """``{phase or 'failed': number}`` of the servers a watch has now.

    The busy servers by the phase of their task state; the failed ones
    (fleet) apart, while they are present; every other server is idle.
    """
    failed = getattr(watch, 'failed_count', 0)   # of those present
    busy = watch.busy()    # a failed server is not busy: no longer followed
    found = collections.Counter(phases.phase_of(t.task_state) for t in busy)
    found[phases.IDLE] += max(0, len(watch) - len(busy) - failed)
    if failed:
        found[FAILED] = failed
    return found


def line(watch):
    """One line: how many servers are in each phase."""
    found = counts(watch)
    order = phases.PHASE_ORDER + (phases.OTHER, phases.IDLE, FAILED)
    parts = ['%d %s' % (found[name], name) for name in order
             if found.get(name)]
    total = len(watch)
    return '%d server%s: %s' % (total, '' if total == 1 else 's',
                                ', '.join(parts) or 'none')


class Summary:
    """The live summary line of a fleet watch, on a terminal's stderr.

    Cleared before each row is printed (rows and the line share the
    terminal), shown again after each poll; nothing when stderr is no
    terminal.
    """

    def __init__(self, stream):
        self._line = common.StatusLine(stream)
        self._shown = None

    def show(self, watch):
        text = line(watch)
        if text != self._shown:
            self._line.show(text)
            self._shown = text

    def clear(self):
        self._line.clear()
        self._shown = None


def changed(watch):
    """The tracks worth a timeline at the end of a watch.

    A fleet: the servers that changed during the watch, present or gone;
    named servers: each of them.
    """
    if not getattr(watch, 'fleet', False):
        return watch.tracks
    return list(watch.changed.values()) + list(watch.departed)


def timelines(watch, now=None):
    """The lines of the end-of-watch timelines (see :func:`changed`)."""
    tracks = changed(watch)
    lines = []
    for track in tracks[:MAX_TIMELINES]:
        lines.extend(report.timeline(track, now))
    if len(tracks) > MAX_TIMELINES:
        lines.append('(and %d more servers that changed)'
                     % (len(tracks) - MAX_TIMELINES))
    if not tracks and getattr(watch, 'fleet', False):
        lines.append('No server changed during the watch (%d watched)'
                     % len(watch))
    return lines
