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

"""Following the image operation of a watched server.

An image-producing task state starts an operation; its image is found in
Glance (by ``instance_uuid``) unless the caller knows it, looked at while
the task goes on, and judged when the task state clears. An image of a
volume-backed server (Nova sets no task state for it) is followed through
the Cinder snapshots that its ``block_device_mapping`` names. What was
seen goes into the Track; :func:`osc_snapphase.phases.judge_capture` alone
decides from it whether the disk capture is over. Each method returns
None, or a one-line message when the operation has failed. A lookup may
raise :class:`~osc_snapphase.engine.TransientError`: the engine retries it
at a later poll (see :attr:`ImageOperations.fault`).
"""

import datetime

from osc_snapphase import phases
from osc_snapphase import records

# How often the image of an operation in progress is looked at once its
# disk capture is proven over; until then, at every poll.
IMAGE_CHECK_INTERVAL = 10.0
# How long the task state may stay set once the image is gone.
IMAGE_GONE_GRACE = 1.0
# How long an image may stay queued/saving after the task state cleared.
SETTLE_GRACE = 20.0


def _stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%H:%M:%SZ')


class ImageOperations:
    """The image and volume-snapshot checks of the engine.

    :param images: object with ``get(image_id)`` (an ImageState or None
        when the image does not exist) and ``latest(server_id)`` (the newest
        image with ``instance_uuid=server_id`` or None); None: no checks,
        an operation succeeds when its task state clears
    :param snapshots: object with ``get(snapshot_id)`` (a SnapshotState or
        None when it does not exist) and ``creating(volume_ids)`` (the
        SnapshotStates of these volumes still creating); None: the volume
        snapshots of a volume-backed server cannot be followed
    :param stamp: ``stamp()`` the wall-clock time for the evidence text

    ``fault``: the transient fault of a lookup during this poll, or None.
    The engine sets it when a lookup raises; until :meth:`end_poll` every
    other lookup raises it again without a request, so a Glance or Cinder
    that does not answer costs one request a poll, not one per server.
    The operation stays as far as it got (the time of the check stamped):
    a later poll looks again.
    """

    def __init__(self, images, snapshots=None, stamp=_stamp):
        self._images = images
        self._snapshots = snapshots
        self._stamp = stamp
        self.fault = None
        self._answered = False

    def _ask(self, lookup, *args):
        """One image or snapshot lookup, unless this poll had a fault."""
        if self.fault is not None:
            # Its traceback dropped: raised again for each server, it
            # would grow with every raise.
            raise self.fault.with_traceback(None)
        answer = lookup(*args)
        self._answered = True
        return answer

    def end_poll(self):
        """``(fault, answered)`` of this poll's lookups; reset for the next.

        ``answered``: at least one lookup was answered.
        """
        result = self.fault, self._answered
        self.fault = None
        self._answered = False
        return result

    def follow(self, track, now, elapsed):
        """Update the operation of a track after an observation."""
        try:
            return self._follow(track, now, elapsed)
        finally:
            # Also after a lookup that failed: what was seen before it.
            track.judge()

    def _follow(self, track, now, elapsed):
        task = track.task_state
        if not track.exists:
            return None
        if isinstance(task, str) and task in phases.IMAGE_PRODUCING_STATES:
            entry = phases.TASK_STATES[task]
            if not track.op.active or track.op.succeeded:
                self._start(track, entry, now)
            if track.op.max_step is None or entry.step > track.op.max_step:
                track.op.max_step = entry.step
            return self.check(track, now)
        if task is None and track.op.active:
            if track.op.volume_backed:
                return self._follow_volumes(track, elapsed)
            return self._settle(track, now, elapsed)
        if task is None and track.volume_ids:
            self._look_for_volume_snapshots(track, now)
        return None

    def _start(self, track, entry, now):
        track.begin_operation(shelve=entry.operation == phases.SHELVE)
        # Before the image lookup, which may fail (a later poll looks).
        track.op.max_step = entry.step
        if self._images is not None:
            self._find_image(track, now)

    def _find_image(self, track, now):
        track.op.image_checked = now
        image = self._ask(self._images.latest, track.server_id)
        if image is not None and image.status in ('queued', 'saving',
                                                  'importing'):
            track.op.image_id = image.id
            self._saw(track, image)

    def _saw(self, track, image):
        """Note the status of the operation's image (None: gone)."""
        status = image.status if image is not None else None
        if status != track.op.image_status or track.op.image_since is None:
            track.op.image_since = self._stamp()
        track.op.image_status = status

    def check(self, track, now, force=False):
        """Look at the image of a running operation.

        Until the capture is proven over the image is read at every poll
        (its status is the proof); then every IMAGE_CHECK_INTERVAL, to
        catch an image that failed while the task state stays set. After
        a driver error Nova deletes the image and then clears the task
        state, milliseconds apart: a gone image is only reported as a
        stuck operation if the task state is still set IMAGE_GONE_GRACE
        later; otherwise the operation's end reports it. ``force`` looks
        at once and reports at once (before declaring a stall).
        """
        if self._images is None:
            return None
        interval = (IMAGE_CHECK_INTERVAL if track.capture.complete
                    else 0.0)
        if track.op.image_id is None:
            if force or track.op.image_checked is None or (
                    now - track.op.image_checked >= max(interval, 1.0)):
                self._find_image(track, now)
            return None
        if track.op.image_gone_at is None:
            if (not force and track.op.image_checked is not None
                    and now - track.op.image_checked < interval):
                return None
            track.op.image_checked = now
            image = self._ask(self._images.get, track.op.image_id)
            self._saw(track, image)
            if image is not None and image.status not in (
                    phases.FAILED_IMAGE_STATUSES):
                return None
            track.op.image_gone_at = now
        if not force and now - track.op.image_gone_at < IMAGE_GONE_GRACE:
            return None
        return (
            'Server %s is still in %s %s, but its image %s is %s: the '
            'operation has failed and Nova may not clear this task state '
            'by itself (an administrator can run "openstack server set '
            '--state active %s")') % (
                track.label, track.task_state, track.unchanged(now),
                track.op.image_id, track.op.image_status or 'gone (404)',
                track.server_id)

    def _settle(self, track, now, elapsed):
        """The task state cleared: did the operation produce its image?"""
        if self._images is None:
            track.op.succeed()
            return None
        if track.op.image_id is not None:
            image = self._ask(self._images.get, track.op.image_id)
            image_id = track.op.image_id
        else:
            image = self._ask(self._images.latest, track.server_id)
            image_id = image.id if image else None
        if image is None:
            what = ('image %s is gone (404)' % image_id if image_id
                    else 'no image of this server exists')
            return ('The image operation of server %s ended without an '
                    'active image after %s: %s') % (
                        track.label, records.format_duration(elapsed), what)
        track.op.image_id = image.id
        self._saw(track, image)
        if image.volume_backed:
            # Boot from volume: Nova sets no task state and the image is
            # active at once; the copies are its Cinder snapshots.
            track.op.volume_backed = True
            track.op.snapshot_ids = tuple(image.snapshot_ids)
            return self._follow_volumes(track, elapsed)
        if image.status == 'active':
            track.op.succeed()
            return None
        if image.status in phases.FAILED_IMAGE_STATUSES:
            return ('The image operation of server %s ended without an '
                    'active image after %s: image %s is %s') % (
                        track.label, records.format_duration(elapsed),
                        image.id, image.status)
        if track.op.settle_since is None:
            track.op.settle_since = now
        elif now - track.op.settle_since > SETTLE_GRACE:
            return ('The task state of server %s cleared %s ago but its '
                    'image %s is still %s') % (
                        track.label,
                        records.format_duration(now - track.op.settle_since),
                        image.id, image.status)
        return None

    # -- volume-backed servers ---------------------------------------------

    def _follow_volumes(self, track, elapsed):
        """Read the Cinder snapshots of the operation that still change."""
        if self._snapshots is None:
            return None
        for snapshot_id in track.op.snapshot_ids:
            known = track.op.snapshots.get(snapshot_id, ())
            if known is None or (known and known.status not in (
                    phases.SNAPSHOT_CREATING,)):
                continue
            track.op.snapshots[snapshot_id] = self._ask(
                self._snapshots.get, snapshot_id)
        capture = track.judge()
        if capture.state == phases.CAPTURE_FAILED:
            return ('The image-create of server %s failed after %s: %s; '
                    'image %s cannot be used (it may stay active in the '
                    'Image service)') % (
                        track.label, records.format_duration(elapsed),
                        capture.evidence, track.op.image_id or '(unknown)')
        op = track.op
        if all(op.snapshots[s].status == 'available'
               for s in op.snapshot_ids) and (
                   op.image_id is None or op.image_status == 'active'):
            op.succeed()
        return None

    def _look_for_volume_snapshots(self, track, now):
        """A volume-backed server watched by name: any copy running?

        Nova sets no task state for it, so its Cinder snapshots still
        creating are the only sign of an image-create; they are listed at
        the first poll and every IMAGE_CHECK_INTERVAL while none runs.
        """
        if self._snapshots is None or (
                track.op.image_checked is not None
                and now - track.op.image_checked < IMAGE_CHECK_INTERVAL):
            return
        track.op.image_checked = now
        creating = self._ask(self._snapshots.creating, track.volume_ids)
        if not creating:
            return
        track.op = records.Operation(
            volume_backed=True, snapshot_ids=tuple(s.id for s in creating),
            snapshots={s.id: s for s in creating}, image_checked=now)
