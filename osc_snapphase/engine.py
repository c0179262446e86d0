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

"""The one polling engine behind ``watch`` and ``--wait-phase``.

It knows nothing of cliff or of HTTP: it gets a ``fetch`` function that
returns the current state of the watched servers, an optional image lookup,
a clock and a sleep, and it yields a :class:`Change` for every observed
change until a condition holds, the operation fails, a task state stalls or
the timeout passes. The reason it stopped is then in ``Watch.outcome``.
"""

import collections
import datetime
import time

from osc_snapphase import phases

MET = 'met'
FAILED = 'failed'
STALLED = 'stalled'
TIMED_OUT = 'timed-out'
INTERRUPTED = 'interrupted'
TERMINATED = 'terminated'
ERROR = 'error'

EXIT_CODES = {
    MET: 0,
    ERROR: 1,
    FAILED: 3,
    STALLED: 4,
    TIMED_OUT: 124,
    INTERRUPTED: 130,
    TERMINATED: 143,
}

MIN_INTERVAL = 0.2
# Adaptive schedule: (lower bound, upper bound, share of the time already
# spent in the phase). A phase that has lasted t seconds is polled every
# share * t seconds within the bounds: fast at first, when short phases
# end, gentler as a long upload goes on.
SCHEDULE = {
    phases.DISK_CAPTURE: (0.2, 0.5, 0.05),
    phases.PACKAGING: (0.25, 1.0, 0.1),
    phases.UPLOAD: (0.25, 2.0, 0.1),
    phases.OFFLOAD: (0.5, 2.0, 0.1),
    phases.OTHER: (1.0, 2.0, 0.1),
    phases.IDLE: (2.0, 2.0, 0),
}
# While an operation is expected but not yet seen, or its image is settling.
PENDING_INTERVAL = 0.2
# How often the image of an operation in progress is looked at.
IMAGE_CHECK_INTERVAL = 10.0
# How long the task state may stay set once the image is gone.
IMAGE_GONE_GRACE = 1.0
# How long an image may stay queued/saving after the task state cleared.
SETTLE_GRACE = 20.0
MAX_BACKOFF = 10.0
# Consecutive answers that are not even valid API responses before giving up.
MAX_MALFORMED = 5

FAILED_IMAGE_STATUSES = ('killed', 'deleted', 'pending_delete')

ServerState = collections.namedtuple(
    'ServerState',
    ['id', 'name', 'status', 'vm_state', 'task_state', 'power_state',
     'fault'])
ServerState.__new__.__defaults__ = (None,)

ImageState = collections.namedtuple(
    'ImageState', ['id', 'name', 'status', 'volume_backed'])

Change = collections.namedtuple(
    'Change',
    ['time', 'server_id', 'server_name', 'status', 'vm_state', 'task_state',
     'power_state', 'phase', 'previous_duration'])

Segment = collections.namedtuple('Segment', ['task_state', 'phase', 'start',
                                             'end'])


class TransientError(Exception):
    """A failure worth retrying: connection error, 5xx, 429.

    :param retry_after: seconds the server asked us to wait, if it did
    :param malformed: the answer was not a valid API response
    """

    def __init__(self, message, retry_after=None, malformed=False):
        super().__init__(message)
        self.retry_after = retry_after
        self.malformed = malformed


class Outcome:
    """Why a watch ended."""

    def __init__(self, kind, message, server_id=None, elapsed=0.0):
        self.kind = kind
        self.message = message
        self.server_id = server_id
        self.elapsed = elapsed

    @property
    def exit_code(self):
        return EXIT_CODES[self.kind]

    def __repr__(self):
        return 'Outcome(%s, %r)' % (self.kind, self.message)


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _key(state):
    return (state.status, state.vm_state, state.task_state,
            state.power_state)


def format_duration(seconds):
    """Human form of a duration: 0.4s, 12.3s, 4m05s, 1h02m."""
    if seconds < 60:
        return '%.1fs' % seconds
    seconds = int(round(seconds))
    if seconds < 3600:
        return '%dm%02ds' % divmod(seconds, 60)
    return '%dh%02dm' % (seconds // 3600, seconds % 3600 // 60)


class Track:
    """What the engine knows of one watched server."""

    def __init__(self, server_id, name=None, image_id=None):
        self.server_id = server_id
        self.name = name or server_id
        self.state = None
        self.exists = True
        self.since = None        # when the current state was first seen
        self.task_since = None   # when the current task state was first seen
        self.segments = []
        # The image-producing operation, if one is in progress or expected.
        self.image_id = image_id
        self.image_status = None
        self.op_active = image_id is not None
        self.op_max_step = None
        self.op_shelve = False
        self.op_succeeded = False
        self.volume_backed = False
        self.settle_since = None
        self.image_checked = None
        self.image_gone_at = None

    @property
    def label(self):
        if self.name and self.name != self.server_id:
            return '%s (%s)' % (self.name, self.server_id)
        return self.server_id

    @property
    def task_state(self):
        return self.state.task_state if self.state else None

    def op_passed(self, target):
        """Whether the operation went past the target TaskState."""
        if (target.operation == phases.SHELVE) != self.op_shelve:
            return False
        if self.op_succeeded:
            return True
        return (self.op_active and self.op_max_step is not None
                and self.op_max_step > target.step)

    def phase_durations(self, now=None):
        """Seconds spent in each phase, as observed (open segment: now)."""
        totals = collections.OrderedDict()
        for seg in self.segments:
            end = seg.end if seg.end is not None else (now or seg.start)
            totals[seg.phase] = totals.get(seg.phase, 0.0) + end - seg.start
        return totals


class Watch:
    """Poll servers until a condition holds; iterate to get the changes.

    :param fetch: ``fetch(server_ids)`` returns ``{id: ServerState}``; a
        server missing from the answer is gone (deleted). It raises
        :class:`TransientError` for faults worth retrying; anything else
        ends the watch and propagates.
    :param tracks: the :class:`Track` of each server, in display order
    :param condition: a :class:`~osc_snapphase.conditions.Condition` or None
        (watch until timeout or interrupted)
    :param images: object with ``get(image_id)`` (an ImageState or None
        when the image does not exist) and ``latest(server_id)`` (the newest
        image with ``instance_uuid=server_id`` or None); None disables the
        image checks
    :param timeout: seconds, or None
    :param stall_timeout: seconds a non-null task state may stay unchanged
    :param interval: fixed poll interval in seconds; None adapts it
    :param notify: ``notify(message)`` for transient problems, said once
    :param on_poll: ``on_poll(watch)`` after every successful poll
    """

    def __init__(self, fetch, tracks, condition=None, images=None,
                 timeout=None, stall_timeout=None, interval=None,
                 clock=time.monotonic, sleep=time.sleep, wall=_utcnow,
                 notify=None, on_poll=None):
        self._fetch = fetch
        self.tracks = list(tracks)
        self.condition = condition
        self._images = images
        self.timeout = timeout
        self.stall_timeout = stall_timeout
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._notify = notify or (lambda message: None)
        self._on_poll = on_poll or (lambda watch: None)
        self.outcome = None
        self.polls = 0
        self.started = None
        self._failures = 0
        self._malformed = 0
        self._fault_since = None

    # -- public ------------------------------------------------------------

    def __iter__(self):
        return self.changes()

    def elapsed(self):
        if self.started is None:
            return 0.0
        return self._clock() - self.started

    def time_left(self):
        """Seconds until the timeout, or None (no timeout, not started)."""
        if self.timeout is None or self.started is None:
            return None
        return max(0.0, self.started + self.timeout - self._clock())

    def changes(self):
        """Yield Change rows until the watch ends; sets ``outcome``."""
        self.started = self._clock()
        deadline = (self.started + self.timeout
                    if self.timeout is not None else None)
        while self.outcome is None:
            poll_start = self._clock()
            if deadline is not None and poll_start >= deadline:
                self._end(TIMED_OUT, self._timeout_message())
                break
            try:
                states = self._fetch([t.server_id for t in self.tracks])
            except TransientError as exc:
                delay = self._transient(exc)
                self._wait(poll_start + delay, deadline)
                continue
            self._recovered()
            self.polls += 1
            for track in self.tracks:
                change = self._observe(track, states.get(track.server_id))
                if change is not None:
                    yield change
            if self.outcome is None:
                self._judge()
            self._on_poll(self)
            if self.outcome is None:
                self._wait(poll_start + self._next_interval(), deadline)
        self._close_segments()

    def stop(self, kind, message):
        """End the watch from outside (signals): record the outcome."""
        if self.outcome is None:
            self._end(kind, message)
            self._close_segments()

    # -- one observation ---------------------------------------------------

    def _observe(self, track, state):
        now = self._clock()
        if state is None:
            if not track.exists:
                return None
            track.exists = False
            state = ServerState(track.server_id, track.name, 'DELETED',
                                'deleted', None, track.state.power_state
                                if track.state else None)
        elif (state.status or '').upper() == 'DELETED' or (
                state.vm_state == 'deleted'):
            track.exists = False
        previous = track.state
        if previous is not None and _key(previous) == _key(state):
            track.state = state
            self._follow_operation(track, now)
            return None
        duration = now - track.since if track.since is not None else None
        track.state = state
        track.since = now
        if previous is None or previous.task_state != state.task_state:
            track.task_since = now
            if track.segments:
                track.segments[-1] = track.segments[-1]._replace(end=now)
            track.segments.append(Segment(
                state.task_state, phases.phase_of(state.task_state), now,
                None))
        if state.name:
            track.name = state.name
        self._follow_operation(track, now)
        return Change(self._wall(), track.server_id, track.name,
                      state.status, state.vm_state, state.task_state,
                      state.power_state, phases.phase_of(state.task_state),
                      duration)

    def _follow_operation(self, track, now):
        """Update the image operation of a track; may end the watch."""
        task = track.task_state
        if not track.exists:
            return
        if isinstance(task, str) and task in phases.IMAGE_PRODUCING_STATES:
            entry = phases.TASK_STATES[task]
            if not track.op_active or track.op_succeeded:
                self._start_operation(track, entry, now)
            if track.op_max_step is None or entry.step > track.op_max_step:
                track.op_max_step = entry.step
            self._check_image_during(track, now)
        elif task is None and track.op_active:
            self._settle(track, now)

    def _start_operation(self, track, entry, now):
        track.op_active = True
        track.op_succeeded = False
        track.op_shelve = entry.operation == phases.SHELVE
        track.op_max_step = None
        track.settle_since = None
        track.image_checked = None
        track.image_gone_at = None
        track.image_id = None
        track.image_status = None
        track.volume_backed = False
        if self._images is not None:
            image = self._images.latest(track.server_id)
            if image is not None and image.status in ('queued', 'saving'):
                track.image_id = image.id
                track.image_status = image.status
                track.image_checked = now

    def _check_image_during(self, track, now, force=False):
        """Catch an image that failed while the task state stays set.

        After a driver error Nova deletes the image and then clears the
        task state, milliseconds apart: a gone image is only reported as a
        stuck operation if the task state is still set IMAGE_GONE_GRACE
        later; otherwise the operation's end reports it.
        """
        if self._images is None or track.image_id is None:
            return
        if track.image_gone_at is None:
            if (not force and track.image_checked is not None
                    and now - track.image_checked < IMAGE_CHECK_INTERVAL):
                return
            track.image_checked = now
            image = self._images.get(track.image_id)
            track.image_status = image.status if image else None
            if image is not None and image.status not in (
                    FAILED_IMAGE_STATUSES):
                return
            track.image_gone_at = now
        if not force and now - track.image_gone_at < IMAGE_GONE_GRACE:
            return
        self._end(FAILED, (
            'Server %s is still in %s after %s, but its image %s is %s: '
            'the operation has failed and Nova may not clear this task '
            'state by itself (an administrator can run "openstack server '
            'set --state active %s")') % (
                track.label, track.task_state,
                format_duration(now - track.task_since), track.image_id,
                track.image_status or 'gone (404)', track.server_id),
            track.server_id)

    def _settle(self, track, now):
        """The task state cleared: did the operation produce its image?"""
        if self._images is None:
            track.op_active = False
            track.op_succeeded = True
            return
        if track.image_id is not None:
            image = self._images.get(track.image_id)
            image_id = track.image_id
        else:
            image = self._images.latest(track.server_id)
            image_id = image.id if image else None
        if image is None:
            what = ('image %s is gone (404)' % image_id if image_id
                    else 'no image of this server exists')
            self._end(FAILED, (
                'The image operation of server %s ended without an active '
                'image after %s: %s') % (
                    track.label, format_duration(self.elapsed()), what),
                track.server_id)
            return
        track.image_id = image.id
        track.image_status = image.status
        if image.status == 'active':
            track.op_active = False
            track.op_succeeded = True
            return
        if image.status in FAILED_IMAGE_STATUSES:
            self._end(FAILED, (
                'The image operation of server %s ended without an active '
                'image after %s: image %s is %s') % (
                    track.label, format_duration(self.elapsed()), image.id,
                    image.status), track.server_id)
            return
        if image.volume_backed:
            # Boot from volume: Nova snapshots the volumes before it
            # answers, never sets a task state, and the image turns active
            # by itself.
            track.volume_backed = True
            return
        if track.settle_since is None:
            track.settle_since = now
        elif now - track.settle_since > SETTLE_GRACE:
            self._end(FAILED, (
                'The task state of server %s cleared %s ago but its image %s '
                'is still %s') % (track.label,
                                  format_duration(now - track.settle_since),
                                  image.id, image.status), track.server_id)

    # -- judgement ---------------------------------------------------------

    def _judge(self):
        now = self._clock()
        condition = self.condition
        for track in self.tracks:
            if not track.exists and not (condition
                                         and condition.accepts_deleted):
                self._end(FAILED, 'Server %s was deleted after %s' % (
                    track.label, format_duration(self.elapsed())),
                    track.server_id)
                return
            state = track.state
            if (track.exists and state.vm_state == 'error'
                    and not (condition and condition.accepts_error)):
                fault = (': %s' % state.fault) if state.fault else ''
                self._end(FAILED, 'Server %s went to vm_state error after '
                          '%s%s' % (track.label,
                                    format_duration(self.elapsed()), fault),
                          track.server_id)
                return
        if condition is not None and all(
                condition.holds(t) for t in self.tracks):
            self._end(MET, 'Condition %s met after %s' % (
                condition, format_duration(self.elapsed())))
            return
        if self.stall_timeout is None:
            return
        for track in self.tracks:
            if (track.exists and track.task_state is not None
                    and now - track.task_since > self.stall_timeout):
                # A gone image says more than "stalled": look once more.
                if track.op_active:
                    self._check_image_during(track, now, force=True)
                    if self.outcome is not None:
                        return
                self._end(STALLED, (
                    'Server %s has been in task state %s for %s without '
                    'change; it looks stuck. Such a server is usually '
                    'cleared by an administrator with "openstack server set '
                    '--state active %s" once the cause is understood') % (
                        track.label, track.task_state,
                        format_duration(now - track.task_since),
                        track.server_id), track.server_id)
                return

    def _timeout_message(self):
        waiting = [t for t in self.tracks
                   if t.state is None or not (self.condition
                                              and self.condition.holds(t))]
        parts = []
        for track in waiting or self.tracks:
            if track.state is None:
                parts.append('%s: not seen yet' % track.label)
                continue
            parts.append('%s: task state %s (%s) for %s' % (
                track.label, track.task_state or 'none',
                phases.phase_of(track.task_state),
                format_duration(self._clock() - track.task_since)))
        return 'Timed out after %s; %s' % (
            format_duration(self.elapsed()), '; '.join(parts))

    def _end(self, kind, message, server_id=None):
        self.outcome = Outcome(kind, message, server_id, self.elapsed())

    def _close_segments(self):
        now = self._clock()
        for track in self.tracks:
            if track.segments and track.segments[-1].end is None:
                track.segments[-1] = track.segments[-1]._replace(end=now)

    # -- scheduling --------------------------------------------------------

    def _next_interval(self):
        if self.interval is not None:
            return self.interval
        now = self._clock()
        return min(self._interval_for(t, now) for t in self.tracks)

    @staticmethod
    def _interval_for(track, now):
        if track.state is None or (track.op_active
                                   and track.task_state is None):
            return PENDING_INTERVAL
        low, high, share = SCHEDULE[phases.phase_of(track.task_state)]
        return max(low, min(high, share * (now - track.task_since)))

    def _wait(self, until, deadline):
        if deadline is not None:
            until = min(until, deadline)
        delay = until - self._clock()
        if delay > 0:
            self._sleep(delay)

    def _transient(self, exc):
        self._failures += 1
        if exc.malformed:
            self._malformed += 1
            if self._malformed >= MAX_MALFORMED:
                raise TransientError(
                    '%s; giving up after %d invalid answers in a row' % (
                        exc, self._malformed), malformed=True) from exc
        if self._fault_since is None:
            self._fault_since = self._clock()
            self._notify('%s; retrying (the watch goes on)' % exc)
        backoff = min(MAX_BACKOFF, 0.5 * 2 ** (self._failures - 1))
        if exc.retry_after is not None:
            backoff = max(backoff, exc.retry_after)
        return max(backoff, self.interval or MIN_INTERVAL)

    def _recovered(self):
        if self._fault_since is not None:
            self._notify('Recovered after %d retries in %s' % (
                self._failures,
                format_duration(self._clock() - self._fault_since)))
        self._fault_since = None
        self._failures = 0
        self._malformed = 0
