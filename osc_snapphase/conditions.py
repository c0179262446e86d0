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

from osc_snapphase import phases

UNTIL_CHOICES = ('idle', 'disk-safe', 'deleted', 'task-state=<value>',
                 'vm-state=<value>', 'status=<value>')
WAIT_PHASES = ('snapshot', 'pending-upload', 'upload')

# What each --wait-phase needs besides a proven disk capture: the step
# (see phases.TaskState.step) the operation must be beyond; None: only the
# end of the operation counts.
_WAIT_PHASE_STEPS = {
    'snapshot': 1,
    'pending-upload': 2,
    'upload': None,
}

_NULL_WORDS = ('none', 'null', '')


class ConditionError(ValueError):
    """A condition string that cannot be parsed."""


class Condition:
    """A named predicate over a Track."""

    def __init__(self, text, predicate, accepts_deleted=False,
                 accepts_error=False):
        self.text = text
        self._predicate = predicate
        self.accepts_deleted = accepts_deleted
        self.accepts_error = accepts_error

    def holds(self, track):
        return bool(self._predicate(track))

    def __repr__(self):
        return 'Condition(%r)' % self.text

    def __str__(self):
        return self.text


def _idle(track):
    return (track.exists and track.state.task_state is None
            and not track.op_active)


def _disk_safe(track):
    return track.exists and track.capture.safe


def _deleted(track):
    return not track.exists


def _task_state(value):
    if value.lower() in _NULL_WORDS:
        return _idle
    target = phases.TASK_STATES.get(value)

    def predicate(track):
        if not track.exists:
            return False
        if track.state.task_state == value:
            return True
        if target is None:
            return False
        # Judged by phase order: a later state of the operation that went
        # through (or skipped) the target, or its successful end.
        return track.op_passed(target)
    return predicate


def parse_until(text):
    """Parse an ``--until`` string into a Condition.

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
            return Condition(raw, _task_state(value))
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


def phase_over(phase):
    """Condition: the given --wait-phase of the operation is over.

    ``snapshot``: the disk capture is proven over (see
    :func:`osc_snapphase.phases.judge_capture`); ``pending-upload``: that,
    and the server is past image_pending_upload; ``upload``: the operation
    ended with an active image (for a volume-backed server: every Cinder
    snapshot available).
    """
    if phase not in _WAIT_PHASE_STEPS:
        raise ConditionError(
            'unknown phase %r; use one of: %s'
            % (phase, ', '.join(WAIT_PHASES)))
    step = _WAIT_PHASE_STEPS[phase]

    def predicate(track):
        if not track.exists:
            return False
        if track.op_succeeded:
            return True
        if step is None or not track.op_active:
            return False
        if not track.capture.complete:
            return False
        if track.volume_backed or step < 2:
            return True
        entry = phases.TASK_STATES.get(track.task_state)
        return entry is None or entry.step > step
    return Condition('%s phase over' % phase, predicate)
