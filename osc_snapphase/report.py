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

from osc_snapphase import engine
from osc_snapphase import records

BAR_WIDTH = 40


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
        lines.append('  %-*s  %-12s %8s  |%-*s|' % (
            width, seg.task_state or 'none', seg.phase,
            records.format_duration(duration), BAR_WIDTH, bar))
    return lines


def progress(track, elapsed, target=None):
    """One line: where the server is and for how long we have waited."""
    task = track.task_state or 'none'
    text = '%s: %s (%s), capture %s, %s elapsed' % (
        track.label, task,
        engine.phases.phase_of(track.task_state), track.capture.state,
        records.format_duration(elapsed))
    if target:
        text += ', waiting for the end of the %s phase' % target
    return text
