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

"""The task-state phase model of image-producing server operations.

Pure data and functions: no I/O, and nothing from OpenStackClient, cliff or
openstacksdk. Facts: Nova sets ``OS-EXT-STS:task_state`` through these
sequences (the image_* ones since Grizzly)::

    createImage:  image_snapshot_pending -> image_snapshot
                  -> image_pending_upload -> image_uploading -> null
    createBackup: image_backup -> image_pending_upload -> image_uploading
                  -> null
    shelve:       shelving -> shelving_image_pending_upload
                  -> shelving_image_uploading -> shelving_offloading -> null

Only during the disk capture must the guest stop writing to its disk. Any
non-null task state makes Nova refuse a new image-create (HTTP 409).
"""

import collections

IDLE = 'idle'
DISK_CAPTURE = 'disk-capture'
PACKAGING = 'packaging'
UPLOAD = 'upload'
OFFLOAD = 'offload'
OTHER = 'other'

# Phases of an image-producing operation, in the order they happen.
PHASE_ORDER = (DISK_CAPTURE, PACKAGING, UPLOAD, OFFLOAD)

SNAPSHOT = 'snapshot'
BACKUP = 'backup'
SHELVE = 'shelve'

# vm_states in which Nova accepts createImage and createBackup
# (nova.compute.api.API.snapshot / backup: check_instance_state).
IMAGE_CREATE_VM_STATES = frozenset(
    ('active', 'stopped', 'paused', 'suspended'))

TaskState = collections.namedtuple(
    'TaskState',
    ['name', 'phase', 'operation', 'step', 'description',
     'disk_writes_safe'])

_TABLE = (
    TaskState('image_snapshot_pending', DISK_CAPTURE, SNAPSHOT, 0,
              'Snapshot requested; the disk capture is about to start',
              False),
    TaskState('image_snapshot', DISK_CAPTURE, SNAPSHOT, 1,
              'The hypervisor is capturing the guest disk',
              False),
    TaskState('image_backup', DISK_CAPTURE, BACKUP, 1,
              'The hypervisor is capturing the guest disk for a backup',
              False),
    TaskState('image_pending_upload', PACKAGING, SNAPSHOT, 2,
              'Disk captured; the image is being packaged for upload',
              True),
    TaskState('image_uploading', UPLOAD, SNAPSHOT, 3,
              'The image is being uploaded to the Image service',
              True),
    TaskState('shelving', DISK_CAPTURE, SHELVE, 1,
              'Shelving: the guest is stopped and its disk captured',
              False),
    TaskState('shelving_image_pending_upload', PACKAGING, SHELVE, 2,
              'Shelving: the disk image is being packaged for upload',
              True),
    TaskState('shelving_image_uploading', UPLOAD, SHELVE, 3,
              'Shelving: the disk image is being uploaded',
              True),
    TaskState('shelving_offloading', OFFLOAD, SHELVE, 4,
              'Shelving: the image is stored; the server is being '
              'removed from its host',
              True),
)

IDLE_STATE = TaskState(None, IDLE, None, None,
                       'No task in progress; an image can be created', True)

TASK_STATES = {ts.name: ts for ts in _TABLE}

# Task states during which the guest disk is being captured.
DISK_CAPTURE_STATES = frozenset(
    ts.name for ts in _TABLE if not ts.disk_writes_safe)
# Task states of createImage and createBackup (shelve is not an image-create
# from the user's point of view, although it produces an image).
IMAGE_CREATE_STATES = frozenset(
    ts.name for ts in _TABLE if ts.operation in (SNAPSHOT, BACKUP))
IMAGE_PRODUCING_STATES = frozenset(TASK_STATES)


def describe(task_state):
    """Return the TaskState entry for a task state; never raises.

    ``None`` (and the empty string) is idle. A task state that is not part
    of an image-producing operation (``rebooting``, ``migrating``, a state
    from a future Nova, ...) is shown as it is, in phase ``other``: busy,
    but with no disk capture in progress.
    """
    if not task_state:
        return IDLE_STATE
    try:
        return TASK_STATES[task_state]
    except (KeyError, TypeError):
        return TaskState(
            str(task_state), OTHER, None, None,
            'Server busy with task %s (not an image operation)'
            % task_state,
            True)


def phase_of(task_state):
    """Return the phase name of a task state."""
    return describe(task_state).phase


def disk_writes_safe(task_state):
    """Whether guest disk writes are safe: no disk capture in progress."""
    return describe(task_state).disk_writes_safe


def image_create_allowed(task_state, vm_state=None):
    """Whether Nova would accept a new createImage now.

    Any non-null task state is refused with HTTP 409; so is a vm_state that
    Nova does not snapshot (``error``, ``building``, ...). When the cloud
    does not show the vm_state (``None``), only the task state is judged.
    """
    if task_state:
        return False
    if vm_state is None:
        return True
    return vm_state in IMAGE_CREATE_VM_STATES


def step_of(task_state):
    """Position of a task state within its operation, or None."""
    return describe(task_state).step


def has_passed(task_state, target):
    """Whether ``task_state`` comes after ``target`` in the same operation.

    Both must be image-producing task states; ``image_snapshot`` and
    ``image_backup`` share a step, so a backup has passed
    ``image_snapshot_pending`` once it is in ``image_backup``.
    """
    # A malformed answer may hold a non-string (even unhashable) value.
    current = TASK_STATES.get(task_state) if isinstance(
        task_state, str) else None
    wanted = TASK_STATES.get(target) if isinstance(target, str) else None
    if current is None or wanted is None:
        return False
    same_family = ((current.operation == SHELVE)
                   == (wanted.operation == SHELVE))
    return same_family and current.step > wanted.step


def phase_index(phase):
    """Position of a phase in PHASE_ORDER, or None for idle and other."""
    try:
        return PHASE_ORDER.index(phase)
    except ValueError:
        return None
