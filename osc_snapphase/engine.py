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

import datetime
import time

from osc_snapphase import operations
from osc_snapphase import phases
from osc_snapphase import records

MET = 'met'
FAILED = 'failed'
STALLED = 'stalled'
TIMED_OUT = 'timed-out'
INTERRUPTED = 'interrupted'
TERMINATED = 'terminated'
ERROR = 'error'
# Another task runs on the server: Nova would refuse an image-create (409).
BUSY = 'busy'

EXIT_CODES = {
    MET: 0,
    ERROR: 1,
    FAILED: 3,
    STALLED: 4,
    BUSY: 5,
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
    phases.SNAPSHOT_PHASE: (0.2, 0.5, 0.05),
    phases.PENDING_UPLOAD: (0.25, 1.0, 0.1),
    phases.UPLOAD: (0.25, 2.0, 0.1),
    phases.OFFLOAD: (0.5, 2.0, 0.1),
    phases.OTHER: (1.0, 2.0, 0.1),
    phases.IDLE: (2.0, 2.0, 0),
}
# While an operation is expected but not yet seen, or its image is settling.
PENDING_INTERVAL = 0.2
MAX_BACKOFF = 10.0
# Consecutive answers that are not even valid API responses before giving up.
MAX_MALFORMED = 5


def backoff(failures, retry_after=None):
    """Seconds to wait after the n-th consecutive transient failure.

    0.5 s after the first, doubling up to MAX_BACKOFF, and at least what
    the cloud asked for with Retry-After.
    """
    # The exponent is capped: a long outage must not overflow a float.
    delay = min(MAX_BACKOFF, 0.5 * 2 ** (min(max(failures, 1), 32) - 1))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


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


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _key(state, capture):
    return (state.status, state.vm_state, state.task_state,
            state.power_state, capture.state)


class Watch:
    """Poll servers until a condition holds; iterate to get the changes.

    :param fetch: ``fetch(server_ids)`` returns ``{id: ServerState}``; a
        server missing from the answer is gone (deleted). It raises
        :class:`TransientError` for faults worth retrying; anything else
        ends the watch and propagates.
    :param tracks: the :class:`~osc_snapphase.records.Track` of each
        server, in display order
    :param condition: a :class:`~osc_snapphase.conditions.Condition` or None
        (watch until timeout or interrupted)
    :param images: object with ``get(image_id)`` (an ImageState or None
        when the image does not exist) and ``latest(server_id)`` (the newest
        image with ``instance_uuid=server_id`` or None); None disables the
        image checks
    :param snapshots: object with ``get(snapshot_id)`` and
        ``creating(volume_ids)`` for the Cinder snapshots of volume-backed
        servers (see :class:`~osc_snapphase.operations.ImageOperations`)
    :param timeout: seconds, or None
    :param stall_timeout: seconds a non-null task state may stay unchanged
    :param interval: fixed poll interval in seconds; None adapts it
    :param notify: ``notify(message)`` for transient problems, said once
    :param on_poll: ``on_poll(watch)`` after every successful poll
    """

    def __init__(self, fetch, tracks, condition=None, images=None,
                 timeout=None, stall_timeout=None, interval=None,
                 clock=time.monotonic, sleep=time.sleep, wall=utcnow,
                 notify=None, on_poll=None, snapshots=None):
        self._fetch = fetch
        self.tracks = list(tracks)
        self.condition = condition
        self._operations = operations.ImageOperations(
            images, snapshots,
            stamp=lambda: self._wall().strftime('%H:%M:%SZ'))
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
                # Retry-After and the backoff count from the failed
                # answer, not from the start of the poll.
                delay = self._transient(exc)
                self._wait(self._clock() + delay, deadline)
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

    def _follow_operation(self, track, now):
        failure = self._operations.follow(track, now, self.elapsed())
        if failure is not None:
            self._end(FAILED, failure, track.server_id)

    def _observe(self, track, state):
        now = self._clock()
        if state is None:
            if not track.exists:
                return None
            track.exists = False
            state = records.ServerState(
                track.server_id, track.name, 'DELETED', 'deleted', None,
                track.state.power_state if track.state else None)
        elif (state.status or '').upper() == 'DELETED' or (
                state.vm_state == 'deleted'):
            track.exists = False
        previous = track.state
        previous_key = _key(previous, track.capture) if previous else None
        track.state = state
        if previous is None or previous.task_state != state.task_state:
            track.task_since = now
            # The state found when the watch began started at an unknown
            # time: it has no known duration.
            track.task_start_seen = previous is not None
            if track.segments:
                track.segments[-1] = track.segments[-1]._replace(end=now)
            track.segments.append(records.Segment(
                state.task_state, phases.phase_of(state.task_state), now,
                None))
        if state.name:
            track.name = state.name
        self._follow_operation(track, now)
        if _key(state, track.capture) == previous_key:
            return None
        duration = now - track.since if track.start_seen else None
        track.since = now
        track.start_seen = previous is not None
        return records.Change(
            self._wall(), track.server_id, track.name, state.status,
            state.vm_state, state.task_state, state.power_state,
            phases.phase_of(state.task_state), duration,
            track.capture.state, track.capture.evidence)

    # -- judgement ---------------------------------------------------------

    def _judge(self):
        now = self._clock()
        condition = self.condition
        for track in self.tracks:
            if not track.exists and not (condition
                                         and condition.accepts_deleted):
                self._end(FAILED, 'Server %s was deleted after %s' % (
                    track.label, records.format_duration(self.elapsed())),
                    track.server_id)
                return
            state = track.state
            if (track.exists and state.vm_state == 'error'
                    and not (condition and condition.accepts_error)):
                fault = (': %s' % state.fault) if state.fault else ''
                self._end(FAILED, 'Server %s went to vm_state error after '
                          '%s%s' % (track.label, records.format_duration(
                              self.elapsed()), fault), track.server_id)
                return
        if condition is not None and all(
                condition.holds(t) for t in self.tracks):
            self._end(MET, 'Condition %s met after %s' % (
                condition, records.format_duration(self.elapsed())))
            return
        if self.stall_timeout is None:
            return
        for track in self.tracks:
            if (track.exists and track.task_state is not None
                    and now - track.task_since > self.stall_timeout):
                # A gone image says more than "stalled": look once more.
                if track.op_active:
                    failure = self._operations.check(track, now, force=True)
                    if failure is not None:
                        self._end(FAILED, failure, track.server_id)
                        return
                self._end(STALLED, (
                    'Server %s has been in task state %s %s without '
                    'change; it looks stuck. Such a server is usually '
                    'cleared by an administrator with "openstack server '
                    'set --state active %s" once the cause is '
                    'understood') % (
                        track.label, track.task_state,
                        track.unchanged(now), track.server_id),
                    track.server_id)
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
            capture = track.capture
            parts.append('%s: task state %s (%s) %s%s' % (
                track.label, track.task_state or 'none',
                phases.phase_of(track.task_state),
                track.unchanged(self._clock()),
                '' if capture.state == phases.CAPTURE_NONE
                else ', capture %s' % capture.state))
        return 'Timed out after %s; %s' % (
            records.format_duration(self.elapsed()), '; '.join(parts))

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
        phase = phases.phase_of(track.task_state)
        if track.op_active and not track.capture.complete:
            # The proof that the copy is over can come at any poll.
            phase = phases.SNAPSHOT_PHASE
        low, high, share = SCHEDULE[phase]
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
        return max(backoff(self._failures, exc.retry_after),
                   self.interval or MIN_INTERVAL)

    def _recovered(self):
        if self._fault_since is not None:
            self._notify('Recovered after %d retries in %s' % (
                self._failures,
                records.format_duration(self._clock() - self._fault_since)))
        self._fault_since = None
        self._failures = 0
        self._malformed = 0
