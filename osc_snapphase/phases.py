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

"""The task-state phase model of image-producing server operations, and
the capture model that decides when guest disk writes are safe again.

Pure data and functions: no I/O, and nothing from OpenStackClient, cliff or
openstacksdk. Facts: Nova sets ``OS-EXT-STS:task_state`` through these
sequences (the image_* ones since Grizzly)::

    createImage:  image_snapshot_pending -> image_snapshot
                  -> image_pending_upload -> image_uploading -> null
    createBackup: image_backup -> image_pending_upload -> image_uploading
                  -> null
    shelve:       shelving -> shelving_image_pending_upload
                  -> shelving_image_uploading -> shelving_offloading -> null

Where in that sequence the guest disk is really copied depends on the virt
driver and its storage (nova 34): libvirt copies file-backed disks during a
second ``image_pending_upload`` (after a millisecond bounce through
``image_uploading``), takes an RBD snapshot after ``image_uploading`` is
set, VMware and z/VM copy in ``image_pending_upload``; only the removed
XenServer and Hyper-V drivers copied in ``image_snapshot``. A task state
therefore never proves that the copy is over. What does, on every in-tree
upload path, is the snapshot image's status in the Image service: no driver
sends image data before its copy is complete, so the copy is over once the
image is ``saving``, ``importing`` or ``active``. A volume-backed server gets
no task state at all: its copies are the Cinder snapshots named in the
image's ``block_device_mapping``, over once none is ``creating``.
:func:`judge_capture` is the one place that applies these rules.

Any non-null task state makes Nova refuse a new image-create (HTTP 409).
"""

import collections

IDLE = 'idle'
SNAPSHOT_PHASE = 'snapshot'
PENDING_UPLOAD = 'pending-upload'
UPLOAD = 'upload'
OFFLOAD = 'offload'
OTHER = 'other'

# Phases of an image-producing operation, in the order they happen. They
# are named after Nova's task states and say nothing of where the disk is
# copied: see judge_capture.
PHASE_ORDER = (SNAPSHOT_PHASE, PENDING_UPLOAD, UPLOAD, OFFLOAD)
PHASES = (IDLE,) + PHASE_ORDER + (OTHER,)

# The names a past release gave the first two phases (output only; they
# claimed to say where the disk is copied, which no task state does).
# Accepted as input, with a deprecation warning, for one release.
OLD_PHASE_NAMES = {
    'disk-capture': SNAPSHOT_PHASE,
    'packaging': PENDING_UPLOAD,
}

SNAPSHOT = 'snapshot'
BACKUP = 'backup'
SHELVE = 'shelve'

# vm_states in which Nova accepts createImage and createBackup
# (nova.compute.api.API.snapshot / backup: check_instance_state).
IMAGE_CREATE_VM_STATES = frozenset(
    ('active', 'stopped', 'paused', 'suspended'))

TaskState = collections.namedtuple(
    'TaskState',
    ['name', 'phase', 'operation', 'step', 'description'])

# The sequence of each image-producing operation, as in the module
# docstring: a state's place in it is its step, and the step gives its
# phase. createBackup starts at step 1 and goes on through createImage's
# image_pending_upload and image_uploading; shelve starts at step 1 too.
_SEQUENCES = (
    (SNAPSHOT, 0, ('image_snapshot_pending', 'image_snapshot',
                   'image_pending_upload', 'image_uploading')),
    (BACKUP, 1, ('image_backup',)),
    (SHELVE, 1, ('shelving', 'shelving_image_pending_upload',
                 'shelving_image_uploading', 'shelving_offloading')),
)
_STEP_PHASES = (SNAPSHOT_PHASE, SNAPSHOT_PHASE, PENDING_UPLOAD, UPLOAD,
                OFFLOAD)

_DESCRIPTIONS = {
    'image_snapshot_pending':
        'Snapshot requested; the compute service has not started it',
    'image_snapshot':
        'The compute service is preparing the snapshot (libvirt suspends '
        'a guest here for a cold snapshot; the removed XenServer driver '
        'copied the disk here)',
    'image_backup': 'The compute service is preparing the backup snapshot',
    'image_pending_upload':
        'The disk is being copied or prepared for upload (libvirt with '
        'file-backed disks, VMware and z/VM copy it here)',
    'image_uploading':
        'The image is being uploaded (libvirt with RBD takes its snapshot '
        'at the start of this state)',
    'shelving': 'Shelving: the guest is being powered off',
    'shelving_image_pending_upload':
        'Shelving: the disk of the stopped guest is being copied or '
        'prepared for upload',
    'shelving_image_uploading': 'Shelving: the disk image is being uploaded',
    'shelving_offloading':
        'Shelving: the image is stored; the server is being removed from '
        'its host',
}

IDLE_STATE = TaskState(None, IDLE, None, None,
                       'No task in progress; an image can be created')

TASK_STATES = {
    name: TaskState(name, _STEP_PHASES[step], operation, step,
                    _DESCRIPTIONS[name])
    for operation, first, sequence in _SEQUENCES
    for step, name in enumerate(sequence, first)}

# Task states of createImage and createBackup (shelve is not an image-create
# from the user's point of view, although it produces an image).
IMAGE_CREATE_STATES = frozenset(
    ts.name for ts in TASK_STATES.values()
    if ts.operation in (SNAPSHOT, BACKUP))
IMAGE_PRODUCING_STATES = frozenset(TASK_STATES)

# Every task state of Nova (nova.objects.fields.InstanceTaskState.ALL of
# nova 34.0.0): what --until task-state= accepts without the "+" of a state
# from a newer Nova.
NOVA_TASK_STATES = frozenset((
    'scheduling', 'block_device_mapping', 'networking', 'spawning',
    'image_snapshot', 'image_snapshot_pending', 'image_pending_upload',
    'image_uploading', 'image_backup', 'updating_password', 'resize_prep',
    'resize_migrating', 'resize_migrated', 'resize_finish',
    'resize_reverting', 'resize_confirming', 'rebooting', 'reboot_pending',
    'reboot_started', 'rebooting_hard', 'reboot_pending_hard',
    'reboot_started_hard', 'pausing', 'unpausing', 'suspending',
    'resuming', 'powering-off', 'powering-on', 'rescuing', 'unrescuing',
    'rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning',
    'migrating', 'deleting', 'soft-deleting', 'restoring', 'shelving',
    'shelving_image_pending_upload', 'shelving_image_uploading',
    'shelving_offloading', 'unshelving'))

# -- the capture model ------------------------------------------------------

# Capture states.
CAPTURE_NONE = 'none'
NOT_STARTED = 'not-started'
IN_PROGRESS = 'in-progress'
COMPLETE = 'complete'
UNKNOWN = 'unknown'
CAPTURE_FAILED = 'failed'
CAPTURE_STATES = (CAPTURE_NONE, NOT_STARTED, IN_PROGRESS, COMPLETE,
                  UNKNOWN, CAPTURE_FAILED)

# Capture models: which facts prove that the copy is over.
IMAGE_STATUS_MODEL = 'image-status'
XENSERVER_MODEL = 'xenserver'
CAPTURE_MODELS = (IMAGE_STATUS_MODEL, XENSERVER_MODEL)
DEFAULT_CAPTURE_MODEL = IMAGE_STATUS_MODEL

# Image statuses that prove an image-backed disk copy is complete.
CAPTURED_IMAGE_STATUSES = frozenset(('saving', 'importing', 'active'))
FAILED_IMAGE_STATUSES = frozenset(('killed', 'deleted', 'pending_delete'))
# Volume snapshot statuses: still copying, and failed.
SNAPSHOT_CREATING = 'creating'
FAILED_SNAPSHOT_STATUSES = frozenset(('error', 'deleted', 'error_deleting'))

CaptureFacts = collections.namedtuple(
    'CaptureFacts',
    ['task_state', 'op_active', 'op_max_step', 'op_succeeded', 'image_id',
     'image_status', 'image_since', 'volume_backed', 'snapshots'])
CaptureFacts.__new__.__defaults__ = (False, None, False, None, None, None,
                                     False, None)

# A Cinder snapshot as judged: any object with these attributes will do
# (records.SnapshotState is one); status None: it does not exist.
SnapshotFact = collections.namedtuple(
    'SnapshotFact', ['id', 'volume_id', 'status'])


class Capture(collections.namedtuple('Capture',
                                     ['state', 'evidence', 'model'])):
    """The judgement: a capture state, what shows it, and the model."""

    __slots__ = ()

    @property
    def safe(self):
        """Whether guest disk writes are safe: no copy can be running."""
        return self.state in (COMPLETE, CAPTURE_NONE)

    @property
    def complete(self):
        return self.state == COMPLETE


def check_model(model):
    """Return a capture model name, lower-cased; ValueError if unknown."""
    name = (model or DEFAULT_CAPTURE_MODEL).strip().lower()
    if name not in CAPTURE_MODELS:
        raise ValueError('unknown capture model %r; use one of: %s'
                         % (model, ', '.join(CAPTURE_MODELS)))
    return name


def _since(facts):
    return ' since %s' % facts.image_since if facts.image_since else ''


def _judge_volumes(facts, model):
    snapshots = facts.snapshots
    image = facts.image_id or 'of the operation'
    if snapshots is None:
        return Capture(UNKNOWN, 'volume-backed: the Cinder snapshots of '
                       'image %s were not read' % image, model)
    if not snapshots:
        return Capture(UNKNOWN, 'volume-backed: image %s names no Cinder '
                       'snapshot' % image, model)
    for snap in snapshots:
        if snap.status is None or snap.status in FAILED_SNAPSHOT_STATUSES:
            return Capture(CAPTURE_FAILED, 'volume snapshot %s%s is %s' % (
                snap.id, ' of volume %s' % snap.volume_id
                if snap.volume_id else '', snap.status or 'gone (404)'),
                model)
    creating = [s.id for s in snapshots if s.status == SNAPSHOT_CREATING]
    if creating:
        return Capture(IN_PROGRESS, '%d of %d volume snapshots creating '
                       '(%s)' % (len(creating), len(snapshots),
                                 ', '.join(creating)), model)
    return Capture(COMPLETE, 'all %d volume snapshots of image %s left '
                   'creating (%s)' % (
                       len(snapshots), image,
                       ', '.join('%s %s' % (s.id, s.status)
                                 for s in snapshots)), model)


def judge_capture(facts, model=DEFAULT_CAPTURE_MODEL):
    """Judge the disk capture of a server from what has been observed.

    :param facts: a :class:`CaptureFacts`: the task state, the operation
        seen so far (``op_active``, ``op_max_step``: the furthest step seen,
        ``op_succeeded``), the snapshot image's ID, status and since when
        that status was seen, and for a volume-backed operation the
        :class:`SnapshotFact` of each Cinder snapshot (None: not read)
    :param model: ``image-status`` (proof from the Image service, the
        default) or ``xenserver`` (the copy happens in image_snapshot: only
        for the removed XenServer and Hyper-V drivers)
    :returns: a :class:`Capture`
    """
    task = facts.task_state if isinstance(facts.task_state, str) else None
    entry = TASK_STATES.get(task) if task else None
    if facts.volume_backed and (facts.op_active or facts.op_succeeded):
        return _judge_volumes(facts, model)
    if entry is None and not facts.op_active:
        if facts.op_succeeded:
            return Capture(COMPLETE, 'the image-create ended; image %s is '
                           '%s' % (facts.image_id,
                                   facts.image_status or 'active'), model)
        if task:
            return Capture(CAPTURE_NONE, 'task %s is not an image operation'
                           % task, model)
        return Capture(CAPTURE_NONE, 'no image operation runs', model)
    status = facts.image_status
    image = facts.image_id
    if status in FAILED_IMAGE_STATUSES:
        return Capture(CAPTURE_FAILED, 'image %s is %s' % (image, status),
                       model)
    if model == XENSERVER_MODEL:
        step = max(s for s in (facts.op_max_step, entry and entry.step, 0)
                   if s is not None)
        if entry is not None and entry.step == 0 and step == 0:
            return Capture(NOT_STARTED, 'task state %s' % task, model)
        if step > 1 or entry is None:
            return Capture(COMPLETE, 'task state %s after image_snapshot '
                           '(xenserver model)' % (task or 'none'), model)
        return Capture(IN_PROGRESS, 'task state %s (xenserver model: the '
                       'copy happens here)' % task, model)
    if status in CAPTURED_IMAGE_STATUSES:
        return Capture(COMPLETE, 'image %s %s%s' % (image, status,
                                                    _since(facts)), model)
    if entry is not None and entry.step == 0:
        return Capture(NOT_STARTED, 'task state %s, the compute service '
                       'has not started' % task, model)
    if image is None or status is None:
        return Capture(UNKNOWN, 'task state %s; the snapshot image is not '
                       'visible, so the end of the copy cannot be proven'
                       % (task or 'none'), model)
    return Capture(IN_PROGRESS, 'task state %s, image %s %s%s: no proof '
                   'yet that the copy is over' % (task or 'none', image,
                                                  status, _since(facts)),
                   model)


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
            % task_state)


def phase_of(task_state):
    """Return the phase name of a task state."""
    return describe(task_state).phase


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
