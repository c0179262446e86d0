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

"""Conditions that end a watch: ``--until`` and ``--wait-phase``.

A condition is judged on a :class:`Track` (what the engine has seen of one
server), never on a single observation, so that a phase shorter than one
poll is not missed: "phase X is over" holds once the server is in a later
state of the same operation, or once the operation has ended with an active
image, whether or not X itself was ever seen.
"""

import difflib

from osc_snapphase import phases

UNTIL_CHOICES = ('idle', 'disk-safe', 'deleted', 'phase-over=<phase>',
                 'task-state=<value>', 'vm-state=<value>', 'status=<value>')
WAIT_PHASES = (phases.SNAPSHOT_PHASE, phases.PENDING_UPLOAD, phases.UPLOAD)

# What each --wait-phase needs besides a proven disk capture: the step
# (see phases.TaskState.step) the operation must be beyond; None: only the
# end of the operation counts.
_WAIT_PHASE_STEPS = {
    phases.SNAPSHOT_PHASE: 1,
    phases.PENDING_UPLOAD: 2,
    phases.UPLOAD: None,
}

_NULL_WORDS = ('none', 'null', '')
# task-state=+<state>: a task state of a newer Nova than this release
# knows, taken as given.
NEW_STATE_PREFIX = '+'


class ConditionError(ValueError):
    """A condition string that cannot be parsed."""


class Condition:
    """A named predicate over a Track.

    ``busy``: None, or a predicate telling that the server runs another
    task that keeps the condition from being met (Nova would refuse an
    image-create): the watch then ends with the busy exit status.
    """

    def __init__(self, text, predicate, accepts_deleted=False,
                 accepts_error=False, busy=None):
        self.text = text
        self._predicate = predicate
        self.accepts_deleted = accepts_deleted
        self.accepts_error = accepts_error
        self.busy = busy
        self.parts = (self,)

    def holds(self, track):
        return bool(self._predicate(track))

    def __repr__(self):
        return 'Condition(%r)' % self.text

    def __str__(self):
        return self.text


class AllOf(Condition):
    """Several --until conditions: met when all hold at the same poll."""

    def __init__(self, parts):
        super().__init__(
            ' and '.join(p.text for p in parts),
            lambda track: all(p.holds(track) for p in parts),
            accepts_deleted=all(p.accepts_deleted for p in parts),
            accepts_error=any(p.accepts_error for p in parts))
        busy = [p.busy for p in parts if p.busy is not None]
        if busy:
            self.busy = lambda track: any(b(track) for b in busy)
        self.parts = tuple(parts)


def all_of(parts):
    """One condition from several (--until repeated); None for none.

    All must hold for every server at the same poll. ``deleted`` (and
    ``status=DELETED``) cannot be combined: the others need the server.
    """
    parts = [p for p in parts or () if p is not None]
    if len(parts) < 2:
        return parts[0] if parts else None
    for part in parts:
        if part.accepts_deleted:
            raise ConditionError(
                '%s cannot be combined with other conditions: all must '
                'hold, and the others need the server to exist' % part)
    return AllOf(parts)


def _idle(track):
    return (track.exists and track.state.task_state is None
            and not track.op.active)


def _disk_safe(track):
    return track.exists and track.capture.safe


def _deleted(track):
    return not track.exists


def _task_state(value):
    if value in _NULL_WORDS:
        return _idle
    target = phases.TASK_STATES.get(value)

    def predicate(track):
        if not track.exists:
            return False
        if (track.state.task_state or '').lower() == value:
            return True
        if target is None:
            return False
        # Judged by phase order: a later state of the operation that went
        # through (or skipped) the target, or its successful end.
        return track.op.passed(target)
    return predicate


def _check_task_state(value):
    """The task state named by a task-state= value, lower-cased.

    :raises ConditionError: naming Nova's task states, when the value is
        none of them and not marked as a newer Nova's (``+<state>``)
    """
    value = value.lower()
    if value.startswith(NEW_STATE_PREFIX):
        value = value[len(NEW_STATE_PREFIX):].strip()
        if not value:
            raise ConditionError(
                'task-state=+ needs the name of a task state')
        return value
    if value in _NULL_WORDS or value in phases.NOVA_TASK_STATES:
        return value
    close = difflib.get_close_matches(value, phases.NOVA_TASK_STATES, 2,
                                      0.8)
    raise ConditionError(
        'unknown task state %r%s; the task states of Nova are: %s (or '
        'none for no task); for a task state of a newer Nova, write '
        'task-state=+<state>' % (
            value, '' if not close else ' (did you mean %s?)'
            % ' or '.join(close),
            ', '.join(sorted(phases.NOVA_TASK_STATES))))


def wait_phase(name, warn=None):
    """The phase a --wait-phase or phase-over= names.

    The names a past release gave the phases (disk-capture, packaging)
    are taken for one release, with ``warn(message)`` called.

    :raises ConditionError: for a name that is not a phase to wait for
    """
    phase = (name or '').strip().lower()
    new = phases.OLD_PHASE_NAMES.get(phase)
    if new is not None:
        if warn is not None:
            warn('the phase name %r is deprecated and will be refused in '
                 'the next release; use %r (the phases are named after '
                 'Nova\'s task states)' % (phase, new))
        phase = new
    if phase not in _WAIT_PHASE_STEPS:
        raise ConditionError(
            'unknown phase %r; use one of: %s'
            % (name, ', '.join(WAIT_PHASES)))
    return phase


def parse_until(text, warn=None):
    """Parse an ``--until`` string into a Condition.

    :param warn: ``warn(message)`` for a deprecated spelling
    :raises ConditionError: with a message naming the valid forms
    """
    if text is None:
        return None
    raw = text.strip()
    if raw == 'idle':
        return Condition(raw, _idle)
    if raw == 'disk-safe':
        return Condition(raw, _disk_safe)
    if raw == 'deleted':
        return Condition(raw, _deleted, accepts_deleted=True)
    key, sep, value = raw.partition('=')
    key = key.strip()
    value = value.strip()
    if sep and key == 'phase-over':
        if not value:
            raise ConditionError(
                'phase-over needs a phase: %s' % ', '.join(WAIT_PHASES))
        return phase_over(wait_phase(value, warn))
    if sep and key in ('task-state', 'vm-state', 'status'):
        if not value and key != 'task-state':
            raise ConditionError(
                '%s needs a value, for example %s' % (
                    key, 'vm-state=active' if key == 'vm-state'
                    else 'status=ACTIVE'))
        if not value:
            raise ConditionError(
                'task-state needs a value, for example '
                'task-state=image_uploading (use "idle" for no task)')
        if key == 'task-state':
            return Condition(raw, _task_state(_check_task_state(value)))
        if key == 'vm-state':
            wanted = value.lower()
            return Condition(
                raw,
                lambda t: t.exists and (t.state.vm_state or '').lower()
                == wanted,
                accepts_error=wanted == 'error')
        wanted = value.upper()
        return Condition(
            raw,
            lambda t: t.exists and (t.state.status or '').upper() == wanted,
            accepts_error=wanted == 'ERROR',
            accepts_deleted=wanted == 'DELETED')
    raise ConditionError(
        'unknown condition %r; use one of: %s'
        % (text, ', '.join(UNTIL_CHOICES)))


def _busy_otherwise(track):
    """Whether another task keeps the server from any image operation.

    It runs a task that is no image operation, and none of this watch's
    runs: Nova refuses an image-create until that task ends.
    """
    return (track.exists and not track.op.active and not track.op.succeeded
            and phases.phase_of(track.task_state) == phases.OTHER)


def phase_over(phase):
    """Condition: the given --wait-phase of the operation is over.

    ``snapshot``: the disk capture is proven over (see
    :func:`osc_snapphase.phases.judge_capture`); ``pending-upload``: that,
    and the server is past image_pending_upload; ``upload``: the operation
    ended with an active image (for a volume-backed server: every Cinder
    snapshot available).
    """
    step = _WAIT_PHASE_STEPS[wait_phase(phase)]

    def predicate(track):
        if not track.exists:
            return False
        if track.op.succeeded:
            return True
        if step is None or not track.op.active:
            return False
        if not track.capture.complete:
            return False
        if track.op.volume_backed or step < 2:
            return True
        entry = phases.TASK_STATES.get(track.task_state)
        return entry is None or entry.step > step
    return Condition('phase-over=%s' % phase, predicate,
                     busy=_busy_otherwise)
