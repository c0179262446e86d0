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
the task goes on, and judged when the task state clears. Each method
returns None, or a one-line message when the operation has failed.
"""

from osc_snapphase import phases
from osc_snapphase import records

# How often the image of an operation in progress is looked at.
IMAGE_CHECK_INTERVAL = 10.0
# How long the task state may stay set once the image is gone.
IMAGE_GONE_GRACE = 1.0
# How long an image may stay queued/saving after the task state cleared.
SETTLE_GRACE = 20.0

FAILED_IMAGE_STATUSES = ('killed', 'deleted', 'pending_delete')


class ImageOperations:
    """The image checks of the engine.

    :param images: object with ``get(image_id)`` (an ImageState or None
        when the image does not exist) and ``latest(server_id)`` (the newest
        image with ``instance_uuid=server_id`` or None); None: no checks,
        an operation succeeds when its task state clears
    """

    def __init__(self, images):
        self._images = images

    def follow(self, track, now, elapsed):
        """Update the operation of a track after an observation."""
        task = track.task_state
        if not track.exists:
            return None
        if isinstance(task, str) and task in phases.IMAGE_PRODUCING_STATES:
            entry = phases.TASK_STATES[task]
            if not track.op_active or track.op_succeeded:
                self._start(track, entry, now)
            if track.op_max_step is None or entry.step > track.op_max_step:
                track.op_max_step = entry.step
            return self.check(track, now)
        if task is None and track.op_active:
            return self._settle(track, now, elapsed)
        return None

    def _start(self, track, entry, now):
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

    def check(self, track, now, force=False):
        """Catch an image that failed while the task state stays set.

        After a driver error Nova deletes the image and then clears the
        task state, milliseconds apart: a gone image is only reported as a
        stuck operation if the task state is still set IMAGE_GONE_GRACE
        later; otherwise the operation's end reports it. ``force`` looks
        at once and reports at once (before declaring a stall).
        """
        if self._images is None or track.image_id is None:
            return None
        if track.image_gone_at is None:
            if (not force and track.image_checked is not None
                    and now - track.image_checked < IMAGE_CHECK_INTERVAL):
                return None
            track.image_checked = now
            image = self._images.get(track.image_id)
            track.image_status = image.status if image else None
            if image is not None and image.status not in (
                    FAILED_IMAGE_STATUSES):
                return None
            track.image_gone_at = now
        if not force and now - track.image_gone_at < IMAGE_GONE_GRACE:
            return None
        return (
            'Server %s is still in %s after %s, but its image %s is %s: '
            'the operation has failed and Nova may not clear this task '
            'state by itself (an administrator can run "openstack server '
            'set --state active %s")') % (
                track.label, track.task_state,
                records.format_duration(now - track.task_since),
                track.image_id, track.image_status or 'gone (404)',
                track.server_id)

    def _settle(self, track, now, elapsed):
        """The task state cleared: did the operation produce its image?"""
        if self._images is None:
            track.op_active = False
            track.op_succeeded = True
            return None
        if track.image_id is not None:
            image = self._images.get(track.image_id)
            image_id = track.image_id
        else:
            image = self._images.latest(track.server_id)
            image_id = image.id if image else None
        if image is None:
            what = ('image %s is gone (404)' % image_id if image_id
                    else 'no image of this server exists')
            return ('The image operation of server %s ended without an '
                    'active image after %s: %s') % (
                        track.label, records.format_duration(elapsed), what)
        track.image_id = image.id
        track.image_status = image.status
        if image.status == 'active':
            track.op_active = False
            track.op_succeeded = True
            return None
        if image.status in FAILED_IMAGE_STATUSES:
            return ('The image operation of server %s ended without an '
                    'active image after %s: image %s is %s') % (
                        track.label, records.format_duration(elapsed),
                        image.id, image.status)
        if image.volume_backed:
            # Boot from volume: Nova snapshots the volumes before it
            # answers, never sets a task state, and the image turns active
            # by itself.
            track.volume_backed = True
            return None
        if track.settle_since is None:
            track.settle_since = now
        elif now - track.settle_since > SETTLE_GRACE:
            return ('The task state of server %s cleared %s ago but its '
                    'image %s is still %s') % (
                        track.label,
                        records.format_duration(now - track.settle_since),
                        image.id, image.status)
        return None
