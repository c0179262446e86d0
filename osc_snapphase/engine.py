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
answers what changed among the watched servers (an :class:`Answer`; see
:mod:`osc_snapphase.listing`), an optional image lookup, a clock and a
sleep, and it yields a :class:`Change` for every observed change until a
condition holds, the operation fails, a task state stalls or the timeout
passes. The reason it stopped is then in ``Watch.outcome``. The work of a
poll grows with the changes, not with the number of servers watched; a
fleet watch (``new_track``) follows servers as they come and go.
"""

import collections
import dataclasses
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
# Task-state segments kept per track (the oldest go): flat memory over
# a long watch.
MAX_SEGMENTS = 100
# Fleet: tracks of servers that left the watch kept for the end report.
MAX_DEPARTED = 1000
# Servers named in a timeout message, at most.
MAX_NAMED = 10
# Fleet: failures kept with their message (the first ones) for
# ``problems`` and the end message; the others are only counted.
MAX_PROBLEMS = 100


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


@dataclasses.dataclass(eq=False)
class Outcome:
    """Why a watch ended."""

    kind: str
    message: str
    server_id: str = None
    elapsed: float = 0.0

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


def is_gone(state):
    return ((state.status or '').upper() == 'DELETED'
            or state.vm_state == 'deleted')


class Answer:
    """What a fetch read in one poll.

    :param states: ``{server_id: ServerState}``: at least every watched
        server whose state changed since the previous answer (a repeated,
        unchanged state is harmless: the engine compares); a server not in
        it is unchanged. A state with status DELETED is a deletion.
    :param deleted: IDs of servers gone without a state to show (404, or
        missing from a full listing)
    """

    __slots__ = ('states', 'deleted')

    def __init__(self, states=None, deleted=()):
        self.states = states if states is not None else {}
        self.deleted = deleted

    def __repr__(self):
        return 'Answer(%r, deleted=%r)' % (self.states, self.deleted)


def _answer(result, server_ids):
    """An Answer from what a fetch returned.

    A mapping ``{id: ServerState}`` is a complete answer over the IDs
    asked for: one of them missing from it is gone.
    """
    if isinstance(result, Answer):
        return result
    return Answer(result, [sid for sid in server_ids if sid not in result])


def _keep(tracks, track, wanted):
    """Add the track to, or remove it from, a dict of tracks by ID."""
    if wanted:
        tracks.setdefault(track.server_id, track)
    else:
        tracks.pop(track.server_id, None)


class Watch:
    """Poll servers until a condition holds; iterate to get the changes.

    The work of a poll grows with what changed, not with the number of
    watched servers: the fetch answers only the changes, the engine looks
    again at a track only when its server changed or while an image
    operation of it is in progress, and keeps the tracks that do not meet
    the condition yet, the busy ones and those to look at in small sets.

    :param fetch: ``fetch(server_ids)`` with a live view of the watched
        IDs; returns an :class:`Answer`, or ``{id: ServerState}`` (a
        complete answer: a server missing from it is gone). It raises
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
        servers (see :class:`~osc_snapphase.operations.ImageOperations`).
        A lookup of ``images`` or ``snapshots`` may raise
        :class:`TransientError` as the fetch does: the same notice, backoff
        and limit, and the operation is looked at again at a later poll.
    :param timeout: seconds, or None
    :param stall_timeout: seconds a non-null task state may stay unchanged
    :param interval: fixed poll interval in seconds; None adapts it
    :param notify: ``notify(message)`` for transient problems, said once,
        and (fleet) for each server that failed
    :param on_poll: ``on_poll(watch)`` after every successful poll
    :param new_track: fleet watch: ``new_track(state)`` makes the Track of
        a server that the fetch answers but is not watched yet; servers
        come and go (a gone one gets its DELETED row and leaves the watch,
        it is no failure), the first poll shows only the servers that are
        not idle, and a server that fails (its image operation, going to
        vm_state error, a stall) is recorded in ``problems`` (the first
        MAX_PROBLEMS; ``problem_count`` counts them all) while the watch
        goes on for the others. None: the tracks given, and the first
        failure ends the watch.
    """

    def __init__(self, fetch, tracks=(), condition=None, images=None,
                 timeout=None, stall_timeout=None, interval=None,
                 clock=time.monotonic, sleep=time.sleep, wall=utcnow,
                 notify=None, on_poll=None, snapshots=None, new_track=None):
        self._fetch = fetch
        self._tracks = {t.server_id: t for t in tracks}
        self._ids = self._tracks.keys()
        self._new_track = new_track
        self.fleet = new_track is not None
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
        # The server whose image lookup failed in this poll (see
        # _lookup_failed), and whether the last fault counted was a
        # lookup's (then only an answered lookup ends the run of faults).
        self._fault_track = None
        self._lookups_down = False
        # The small sets that a poll looks at (see _note): tracks not yet
        # meeting the condition, not plain idle, with an operation to
        # follow at every poll.
        self._unmet = dict(self._tracks)
        self._busy = dict(self._tracks)
        self._attention = {}
        # Fleet: the servers that changed during the watch, those that
        # left it (the newest MAX_DEPARTED), the failures so far (the
        # first MAX_PROBLEMS, their number and kinds) and the servers
        # present that failed.
        self.changed = {}
        self.departed = collections.deque(maxlen=MAX_DEPARTED)
        self.problems = []
        self.problem_count = 0
        self._problem_kinds = set()
        self._failed = set()

    # -- public ------------------------------------------------------------

    @property
    def tracks(self):
        """The watched tracks in display order (fleet: those present)."""
        return list(self._tracks.values())

    def __len__(self):
        """The number of servers watched now."""
        return len(self._tracks)

    @property
    def failed_count(self):
        """Fleet: how many of the servers watched now have failed."""
        return len(self._failed)

    def __bool__(self):
        # A watch is a watch, even of no server (yet).
        return True

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
                answer = _answer(self._fetch(self._ids), self._ids)
            except TransientError as exc:
                # Retry-After and the backoff count from the failed
                # answer, not from the start of the poll.
                self._lookups_down = False
                delay = self._transient(exc)
                self._wait(self._clock() + delay, deadline)
                continue
            self.polls += 1
            for change in self._apply(answer):
                yield change
            if self.outcome is None:
                self._judge()
            delay = self._after_poll()
            self._on_poll(self)
            if self.outcome is None:
                self._wait(max(poll_start + self._next_interval(),
                               self._clock() + delay), deadline)
        self._close_segments()

    def leave(self, server_id):
        """Fleet: a server that no longer matches the filters leaves.

        It was not deleted: no DELETED row and no failure, even if an
        image operation of it was followed.
        """
        track = self._tracks.get(server_id)
        if track is not None:
            self._remove(track)

    def stop(self, kind, message):
        """End the watch from outside (signals): record the outcome."""
        if self.outcome is None:
            self._end(kind, message)
            self._close_segments()

    def busy(self):
        """The tracks that are not plain idle (a task state, an operation)."""
        return list(self._busy.values())

    # -- one poll ----------------------------------------------------------

    def _apply(self, answer):
        """Observe what the answer says, and the operations in progress."""
        quiet = self.fleet and self.polls == 1
        seen = set()
        states = answer.states.items()
        if not self.fleet:
            # Named servers: their rows of one poll in the order given.
            states = [(sid, answer.states[sid]) for sid in self._tracks
                      if sid in answer.states]
        for server_id, state in states:
            track = self._tracks.get(server_id)
            if track is None:
                if self._new_track is None or is_gone(state):
                    continue
                track = self._new_track(state)
                self._tracks[server_id] = track
            seen.add(server_id)
            change = self._see(track, state, quiet)
            if change is not None:
                yield change
        for server_id in answer.deleted:
            track = self._tracks.get(server_id)
            if track is None or server_id in seen:
                continue
            seen.add(server_id)
            change = self._see(track, None)
            if change is not None:
                yield change
        for track in list(self._attention.values()):
            if track.server_id not in seen and track.state is not None:
                change = self._see(track, track.state)
                if change is not None:
                    yield change

    def _see(self, track, state, quiet=False):
        previous = track.state
        change = self._observe(track, state, quiet)
        self._check(track, previous)
        return change

    def _follow_operation(self, track, now):
        if track.server_id in self._failed:
            return
        try:
            failure = self._operations.follow(track, now, self.elapsed())
        except TransientError as exc:
            self._lookup_failed(exc, track)
            return
        if failure is not None:
            self._fail(FAILED, failure, track)

    def _observe(self, track, state, quiet=False):
        now = self._clock()
        if state is None:
            if not track.exists:
                return None
            track.exists = False
            state = records.ServerState(
                track.server_id, track.name, 'DELETED', 'deleted', None,
                track.state.power_state if track.state else None)
        elif is_gone(state):
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
            if len(track.segments) > MAX_SEGMENTS:
                del track.segments[0]
        if state.name:
            track.name = state.name
        self._follow_operation(track, now)
        if _key(state, track.capture) == previous_key:
            return None
        duration = now - track.since if track.start_seen else None
        track.since = now
        track.start_seen = previous is not None
        if previous is None:
            if quiet and state.task_state is None and not track.op.active:
                return None   # fleet: an idle server at the start
        elif track.exists:
            self.changed[track.server_id] = track
        return records.Change(
            self._wall(), track.server_id, track.name, state.status,
            state.vm_state, state.task_state, state.power_state,
            phases.phase_of(state.task_state), duration,
            track.capture.state, track.capture.evidence)

    # -- judgement ---------------------------------------------------------

    def _check(self, track, previous):
        """After an observation: failures of this server; the sets."""
        condition = self.condition
        if not track.exists:
            accepted = condition is not None and condition.accepts_deleted
            if self.fleet:
                if track.op.active and not accepted:
                    self._fail(FAILED, 'Server %s was deleted after %s '
                               'during its image operation' % (
                                   track.label, records.format_duration(
                                       self.elapsed())), track)
                self._remove(track)
                return
            if not accepted:
                self._fail(FAILED, 'Server %s was deleted after %s' % (
                    track.label, records.format_duration(self.elapsed())),
                    track)
        elif (track.state.vm_state == 'error'
              and not (condition and condition.accepts_error)
              and not (self.fleet and (previous is None
                                       or previous.vm_state == 'error'))):
            # A fleet has servers in error before the watch: only a server
            # that goes to error during it is a failure.
            fault = (': %s' % track.state.fault) if track.state.fault else ''
            self._fail(FAILED, 'Server %s went to vm_state error after '
                       '%s%s' % (track.label, records.format_duration(
                           self.elapsed()), fault), track)
        self._note(track)

    def _note(self, track):
        """Put the track in the sets that the next polls look at."""
        active = track.exists and track.server_id not in self._failed
        _keep(self._attention, track,
              active and bool(track.op.active or track.volume_ids))
        _keep(self._busy, track, track.state is None or (
            active and (track.task_state is not None or track.op.active)))
        if self.condition is not None:
            _keep(self._unmet, track, track.server_id not in self._failed
                  and (track.state is None
                       or not self.condition.holds(track)))

    def _remove(self, track):
        """Fleet: a server gone leaves the watch."""
        for tracks in (self._tracks, self._unmet, self._busy,
                       self._attention, self.changed):
            tracks.pop(track.server_id, None)
        self._failed.discard(track.server_id)
        if track.segments and track.segments[-1].end is None:
            track.segments[-1] = track.segments[-1]._replace(
                end=self._clock())
        self.departed.append(track)

    def _fail(self, kind, message, track):
        """A server failed: the end of the watch, or (fleet) a problem."""
        if not self.fleet:
            if self.outcome is None:
                self._end(kind, message, track.server_id)
            return
        if track.server_id in self._failed:
            return
        self._failed.add(track.server_id)
        self.problem_count += 1
        self._problem_kinds.add(kind)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Outcome(kind, message, track.server_id,
                                         self.elapsed()))
        self._notify(message)
        self._note(track)

    def _judge(self):
        if self._met() or self.stall_timeout is None:
            return
        now = self._clock()
        for track in list(self._busy.values()):
            if (track.exists and track.task_state is not None
                    and track.server_id not in self._failed
                    and now - track.task_since > self.stall_timeout):
                # A gone image says more than "stalled": look once more.
                failure = None
                if track.op.active:
                    try:
                        failure = self._operations.check(track, now,
                                                         force=True)
                    except TransientError as exc:
                        # Its image unknown: judged at a later poll.
                        self._lookup_failed(exc, track)
                        continue
                if failure is not None:
                    self._fail(FAILED, failure, track)
                else:
                    self._fail(STALLED, (
                        'Server %s has been in task state %s %s without '
                        'change; it looks stuck. Such a server is usually '
                        'cleared by an administrator with "openstack '
                        'server set --state active %s" once the cause is '
                        'understood') % (
                            track.label, track.task_state,
                            track.unchanged(now), track.server_id), track)
                if self.outcome is not None:
                    return
        self._met()

    def _met(self):
        if self.condition is None or self._unmet:
            return False
        others = ' for the other servers' if self.problem_count else ''
        self._end(MET, 'Condition %s met after %s%s' % (
            self.condition, records.format_duration(self.elapsed()),
            others))
        return True

    def _where(self, track):
        """Where a server is, for the timeout message."""
        if track.state is None:
            return '%s: not seen yet' % track.label
        capture = track.capture
        return '%s: task state %s (%s) %s%s' % (
            track.label, track.task_state or 'none',
            phases.phase_of(track.task_state),
            track.unchanged(self._clock()),
            '' if capture.state == phases.CAPTURE_NONE
            else ', capture %s' % capture.state)

    def _timeout_message(self):
        waiting = [t for t in self._tracks.values()
                   if t.server_id in self._unmet]
        if not waiting:
            waiting = self.busy() if self.fleet else self.tracks
        parts = records.first_named(waiting, self._where, MAX_NAMED)
        if not parts:
            parts.append('%d servers watched, none busy' % len(self))
        return 'Timed out after %s; %s' % (
            records.format_duration(self.elapsed()), '; '.join(parts))

    def _end(self, kind, message, server_id=None):
        if self.problem_count:
            # Fleet: the failures are named (the first MAX_PROBLEMS), the
            # most serious one decides the exit status (unless a signal
            # ended the watch).
            if kind not in (INTERRUPTED, TERMINATED, ERROR):
                kind = FAILED if FAILED in self._problem_kinds else STALLED
            lines = [p.message for p in self.problems]
            more = self.problem_count - len(lines)
            if more:
                lines.append('and %d more failed servers, each reported when '
                             'it happened' % more)
            message = '\n'.join(lines + [message])
            server_id = server_id or self.problems[0].server_id
        self.outcome = Outcome(kind, message, server_id, self.elapsed())

    def _close_segments(self):
        now = self._clock()
        for track in self._tracks.values():
            if track.segments and track.segments[-1].end is None:
                track.segments[-1] = track.segments[-1]._replace(end=now)

    # -- scheduling --------------------------------------------------------

    def _next_interval(self):
        if self.interval is not None:
            return self.interval
        now = self._clock()
        # An idle track is polled every SCHEDULE[IDLE], the longest.
        return min((self._interval_for(t, now)
                    for t in self._busy.values()),
                   default=SCHEDULE[phases.IDLE][1])

    @staticmethod
    def _interval_for(track, now):
        if track.state is None or (track.op.active
                                   and track.task_state is None):
            return PENDING_INTERVAL
        phase = phases.phase_of(track.task_state)
        if track.op.active and not track.capture.complete:
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

    def _transient(self, exc, track=None):
        """Count a failed answer; the seconds to wait before the next poll.

        :param track: the server whose image or snapshot lookup failed;
            None: the fetch failed
        """
        self._failures += 1
        if exc.malformed:
            self._malformed += 1
            if self._malformed >= MAX_MALFORMED:
                raise TransientError(
                    '%s; giving up after %d invalid answers in a row' % (
                        exc, self._malformed), malformed=True) from exc
        if self._fault_since is None:
            self._fault_since = self._clock()
            about = '' if track is None else (
                ' (following the image operation of server %s, task state '
                '%s)' % (track.label, track.task_state or 'none'))
            self._notify('%s%s; retrying (the watch goes on)' % (exc, about))
        return max(backoff(self._failures, exc.retry_after),
                   self.interval or MIN_INTERVAL)

    def _lookup_failed(self, exc, track):
        """An image or volume-snapshot lookup raised a transient fault.

        The first of a poll is counted when the poll ends (_after_poll);
        the other lookups of the poll raise it again without a request
        (see ImageOperations.fault). The operation stays followed as far
        as it got, and a later poll looks again.
        """
        if self._operations.fault is None:
            self._operations.fault = exc
            self._fault_track = track

    def _after_poll(self):
        """After the changes of a poll: seconds the next one waits at least.

        A poll with a lookup fault is a failed answer, as a failed fetch
        is (the same notice, backoff and limit of invalid answers in a
        row). A run of faults ends with a poll without one, once a lookup
        has answered if the last fault was a lookup's.
        """
        fault, answered = self._operations.end_poll()
        if fault is None:
            if answered or not self._lookups_down:
                self._recovered()
            return 0.0
        if self.outcome is not None:
            return 0.0
        self._lookups_down = True
        return self._transient(fault, self._fault_track)

    def _recovered(self):
        if self._fault_since is not None:
            self._notify('Recovered after %d retries in %s' % (
                self._failures,
                records.format_duration(self._clock() - self._fault_since)))
        self._fault_since = None
        self._failures = 0
        self._malformed = 0
        self._lookups_down = False
