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

"""Text for people: timelines of phases drawn as bars, progress lines."""

import os

from osc_snapphase import phases
from osc_snapphase import records

BAR_WIDTH = 40
PHASE_WIDTH = max(len(p) for p in phases.PHASES)


def timeline(track, now=None):
    """Lines describing one server's observed task states, with bars."""
    segments = list(track.segments)
    if not segments:
        return ['%s: no state observed' % track.label]
    end = now if now is not None else (segments[-1].end or segments[-1].start)
    total = max(end - segments[0].start, 1e-9)
    lines = ['%s, %s watched:' % (track.label,
                                  records.format_duration(total))]
    width = max(len(seg.task_state or 'none') for seg in segments)
    for seg in segments:
        seg_end = seg.end if seg.end is not None else end
        duration = max(0.0, seg_end - seg.start)
        offset = int(round((seg.start - segments[0].start) / total
                           * BAR_WIDTH))
        length = max(1, int(round(duration / total * BAR_WIDTH)))
        offset = min(offset, BAR_WIDTH - 1)
        length = min(length, BAR_WIDTH - offset)
        bar = ' ' * offset + '#' * length
        lines.append('  %-*s  %-*s %8s  |%-*s|' % (
            width, seg.task_state or 'none', PHASE_WIDTH, seg.phase,
            records.format_duration(duration), BAR_WIDTH, bar))
    return lines


def terminal_width(stream):
    """Columns of the terminal a stream writes to, or None.

    ``COLUMNS`` wins when set (as ``shutil.get_terminal_size``); a stream
    that is no terminal has no width.
    """
    columns = os.environ.get('COLUMNS', '')
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if not stream.isatty():
            return None
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, OSError, ValueError):
        return None


def fit(candidates, width):
    """The first text that fits in width, else the last one cut short.

    ``width`` None: the first. A line rewritten in place must stay below
    the width of the terminal, or it wraps: ``width`` is what it may use.
    """
    if width is None:
        return candidates[0]
    for text in candidates:
        if len(text) <= width:
            return text
    last = candidates[-1]
    return last[:max(1, width - 1)] + '~' if width > 1 else last[:width]


def progress(track, elapsed, target=None, width=None):
    """One line: where the server is and for how long we have waited.

    Shortened to fit ``width`` columns: the server's name without its ID,
    then fewer words.
    """
    task = track.task_state or 'none'
    phase = phases.phase_of(track.task_state)
    capture = track.capture.state
    took = records.format_duration(elapsed)
    name = track.name or track.server_id
    waiting = (', waiting for the end of the %s phase' % target
               if target else '')
    until = ' (until %s over)' % target if target else ''
    return fit([
        '%s: %s (%s), capture %s, %s elapsed%s' % (
            track.label, task, phase, capture, took, waiting),
        '%s: %s (%s), capture %s, %s elapsed%s' % (
            name, task, phase, capture, took, waiting),
        '%s: %s, capture %s, %s%s' % (name, task, capture, took, until),
        '%s: %s, capture %s, %s' % (name, task, capture, took),
        '%s %s %s' % (task, capture, took),
    ], width)
