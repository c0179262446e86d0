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

"""What the polling engine sees and reports: server and image states, the
rows of observed changes, and the Track of each watched server."""

import collections
import dataclasses

from osc_snapphase import phases

ServerState = collections.namedtuple(
    'ServerState',
    ['id', 'name', 'status', 'vm_state', 'task_state', 'power_state',
     'fault'])
ServerState.__new__.__defaults__ = (None,)


class ImageState(collections.namedtuple(
        'ImageState', ['id', 'name', 'status', 'snapshot_ids',
                       'instance_uuid'])):
    """An image as the engine sees it.

    ``snapshot_ids``: the Cinder snapshots named in the image's
    ``block_device_mapping`` (an image of a volume-backed server), else
    None. ``instance_uuid``: the server it was taken from, if it says.
    """

    __slots__ = ()

    @property
    def volume_backed(self):
        return self.snapshot_ids is not None


ImageState.__new__.__defaults__ = (None, None)

SnapshotState = collections.namedtuple(
    'SnapshotState', ['id', 'volume_id', 'status', 'created_at'])
SnapshotState.__new__.__defaults__ = (None,)

Change = collections.namedtuple(
    'Change',
    ['time', 'server_id', 'server_name', 'status', 'vm_state', 'task_state',
     'power_state', 'phase', 'previous_duration', 'capture',
     'capture_evidence'])
Change.__new__.__defaults__ = (None, None)

Segment = collections.namedtuple('Segment', ['task_state', 'phase', 'start',
                                             'end'])


def format_duration(seconds):
    """Human form of a duration: 0.4s, 12.3s, 4m05s, 1h02m."""
    if seconds < 60:
        return '%.1fs' % seconds
    seconds = int(round(seconds))
    if seconds < 3600:
        return '%dm%02ds' % divmod(seconds, 60)
    return '%dh%02dm' % (seconds // 3600, seconds % 3600 // 60)


def first_named(items, describe, limit):
    """``describe(item)`` of the first ``limit`` items, then how many more.

    How a message names servers: at most ``limit`` of them, and "and N
    more".
    """
    parts = [describe(item) for item in items[:limit]]
    if len(items) > limit:
        parts.append('and %d more' % (len(items) - limit))
    return parts


@dataclasses.dataclass
class Operation:
    """The image-producing operation of a server, as seen so far.

    ``active``: one is in progress or expected; ``image_id``: its image,
    when known, and ``image_status`` its last status, first seen at
    ``image_since`` (wall time); ``shelve``: it is a shelve; ``max_step``:
    the furthest :attr:`phases.TaskState.step` seen. ``snapshot_ids`` and
    ``snapshots`` ({id: SnapshotState}): the Cinder snapshots of a
    volume-backed server's operation. ``image_checked``,
    ``image_gone_at`` and ``settle_since``: monotonic times of the checks
    of :class:`~osc_snapphase.operations.ImageOperations`.
    """

    image_id: str = None
    active: bool = True
    shelve: bool = False
    max_step: int = None
    succeeded: bool = False
    image_status: str = None
    image_since: str = None
    volume_backed: bool = False
    snapshot_ids: tuple = None
    snapshots: dict = dataclasses.field(default_factory=dict)
    image_checked: float = None
    image_gone_at: float = None
    settle_since: float = None

    def succeed(self):
        """It produced its image: over, and no failure to look for."""
        self.active = False
        self.succeeded = True

    def passed(self, target):
        """Whether the operation went past the target TaskState."""
        if (target.operation == phases.SHELVE) != self.shelve:
            return False
        if self.succeeded:
            return True
        return (self.active and self.max_step is not None
                and self.max_step > target.step)


class Track:
    """What the engine knows of one watched server."""

    def __init__(self, server_id, name=None, image_id=None,
                 capture_model=phases.DEFAULT_CAPTURE_MODEL, volume_ids=()):
        self.server_id = server_id
        self.name = name or server_id
        self.state = None
        self.exists = True
        self.since = None        # when the current state was first seen
        self.task_since = None   # when the current task state was first seen
        # Whether the current state (task state) was seen to begin: not
        # the one found when the watch began, whose start is unknown.
        self.start_seen = False
        self.task_start_seen = False
        self.segments = []
        # The attached volumes of a volume-backed server (watched by name).
        self.volume_ids = tuple(volume_ids)
        self.begin_operation(image_id, active=image_id is not None)
        self.capture_model = capture_model
        self.capture = phases.judge_capture(self.capture_facts(),
                                            capture_model)

    def begin_operation(self, image_id=None, active=True, shelve=False):
        """Forget the last image-producing operation; follow a new one."""
        self.op = Operation(image_id, active, shelve)

    def capture_facts(self):
        """What the capture model judges, from what was seen so far."""
        op = self.op
        snapshots = None
        if op.snapshot_ids is not None and all(
                sid in op.snapshots for sid in op.snapshot_ids):
            # A snapshot read as gone (None) is judged without a status.
            snapshots = tuple(
                op.snapshots[sid] or phases.SnapshotFact(sid, None, None)
                for sid in op.snapshot_ids)
        status = op.image_status
        if status is None and op.image_id and (
                op.image_gone_at is not None or op.image_since):
            status = 'deleted'   # read, and gone (404)
        return phases.CaptureFacts(
            self.task_state, op.active, op.max_step, op.succeeded,
            op.image_id, status, op.image_since, op.volume_backed,
            snapshots)

    def judge(self):
        """Judge the capture again from what was seen; return it."""
        self.capture = phases.judge_capture(self.capture_facts(),
                                            self.capture_model)
        return self.capture

    @property
    def label(self):
        if self.name and self.name != self.server_id:
            return '%s (%s)' % (self.name, self.server_id)
        return self.server_id

    @property
    def task_state(self):
        return self.state.task_state if self.state else None

    def unchanged(self, now):
        """Since when the task state is unchanged, and how that is known.

        "for 3.0s" when its start was seen; "since the watch began 3.0s ago
        (already in it then)" for the task state the watch found, whose
        start is unknown.
        """
        since = self.task_since if self.task_since is not None else now
        age = format_duration(max(0.0, now - since))
        if self.task_start_seen:
            return 'for %s' % age
        return 'since the watch began %s ago (already in it then)' % age

    def phase_durations(self, now=None):
        """Seconds spent in each phase, as observed (open segment: now).

        Only phases observed over some time: a phase first seen at the
        last poll (no duration yet) has no entry.
        """
        totals = collections.OrderedDict()
        for seg in self.segments:
            end = seg.end if seg.end is not None else (now or seg.start)
            if end > seg.start:
                totals[seg.phase] = (totals.get(seg.phase, 0.0) + end
                                     - seg.start)
        return totals
