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

"""A fake virt driver whose snapshot walks the libvirt task-state order.

``SnapshotPhaseDriver.snapshot()`` calls ``update_task_state`` exactly as
``nova.virt.libvirt.driver.LibvirtDriver.snapshot`` does:
``image_pending_upload`` first, then ``image_uploading`` with
``expected_state=image_pending_upload``, and at the end updates the image in
Glance with ``status: active``.  The compute manager has set
``image_snapshot`` (or ``image_backup``) before the driver is called and sets
``None`` after it returns, so the driver spends its "snapshot" phase before
the first ``update_task_state`` call.  The ``pending`` phase runs before the
compute manager's ``snapshot_instance`` / ``backup_instance`` (see
:func:`wrap_compute_method`), while the API's ``image_snapshot_pending``
(or ``image_backup``) is the task state.

What happens in each phase is decided by a :class:`SnapshotPlan` that the
test registers with :func:`set_plan` (per server name or uuid, or as the
default).  A plan can sleep in each phase, hold a phase until the test
releases it, raise a driver error, delete the image in Glance, or raise
``InstanceNotRunning`` (which Nova swallows without reverting the task
state).
"""

import functools
import io
import threading

from nova.compute import task_states
from nova import exception
from nova.image import glance
from nova.virt import fake

#: The driver phases, in order, with the task state Nova shows in each.
PHASES = ('pending', 'snapshot', 'pending_upload', 'upload')
PHASE_TASK_STATES = {
    'pending': (task_states.IMAGE_SNAPSHOT_PENDING, task_states.IMAGE_BACKUP),
    'snapshot': (task_states.IMAGE_SNAPSHOT, task_states.IMAGE_BACKUP),
    'pending_upload': (task_states.IMAGE_PENDING_UPLOAD,),
    'upload': (task_states.IMAGE_UPLOADING,),
}

#: Longest time a held phase waits for the test before it carries on.
HOLD_TIMEOUT = 300.0

_LOCK = threading.Lock()
_PLANS = {}
_ABORT = threading.Event()


class InjectedFailure(exception.NovaException):
    msg_fmt = 'Injected driver failure in snapshot phase %(phase)s'


class SnapshotPlan(object):
    """What the fake driver does in each phase of one snapshot.

    :param sleeps: ``{phase: seconds}`` spent in each phase.
    :param hold: phases in which the driver waits until :meth:`release`.
    :param fail_in: phase that ends with a driver error.
    :param delete_image_in: phase during which the image is deleted from
        Glance (as if a user deleted it), the driver carries on.
    :param not_running_in: phase that ends with ``InstanceNotRunning``.
    :param bounce: go ``uploading -> pending_upload -> uploading`` at the
        start of the upload phase, as libvirt does for file-backed disks.
    """

    def __init__(self, sleeps=None, hold=(), fail_in=None,
                 delete_image_in=None, not_running_in=None, bounce=False):
        for name in [fail_in, delete_image_in, not_running_in] + list(
                hold) + list(sleeps or {}):
            if name is not None and name not in PHASES:
                raise ValueError('unknown phase %r' % name)
        if 'pending' in (fail_in, delete_image_in, not_running_in):
            raise ValueError('the pending phase can only sleep or hold')
        self.sleeps = dict.fromkeys(PHASES, 0.0)
        self.sleeps.update(sleeps or {})
        self.fail_in = fail_in
        self.delete_image_in = delete_image_in
        self.not_running_in = not_running_in
        self.bounce = bounce
        self.gates = {phase: threading.Event() for phase in hold}
        self.entered = {phase: threading.Event() for phase in PHASES}
        self.done = threading.Event()
        self.outcome = None
        self.image_ids = []

    def release(self, phase=None):
        """Let a held phase (or all of them) go on."""
        for name, gate in self.gates.items():
            if phase is None or name == phase:
                gate.set()

    def wait_entered(self, phase, timeout=60.0):
        if not self.entered[phase].wait(timeout):
            raise AssertionError('snapshot never reached phase %s' % phase)

    def wait_done(self, timeout=60.0):
        if not self.done.wait(timeout):
            raise AssertionError('snapshot driver call did not end')
        return self.outcome


def set_plan(plan, server=None):
    """Use ``plan`` for snapshots of ``server`` (name or uuid), or all."""
    with _LOCK:
        _PLANS[server] = plan
    return plan


def clear_plans():
    with _LOCK:
        plans = list(_PLANS.values())
        _PLANS.clear()
    for plan in plans:
        plan.release()


def abort_all():
    """Release every held phase and cut every sleep short (teardown)."""
    _ABORT.set()
    clear_plans()


def reset():
    _ABORT.clear()
    clear_plans()


def wrap_compute_method(method):
    """Run the ``pending`` phase of the plan before a manager method.

    Nova's API has set ``image_snapshot_pending`` (createImage) or
    ``image_backup`` (createBackup) when the RPC cast reaches the compute
    manager; holding here keeps the server in that state, as a busy compute
    service does.
    """
    @functools.wraps(method)
    def wrapper(self, context, *args, **kwargs):
        instance = kwargs.get('instance')
        if instance is not None:
            plan = _plan_for(instance)
            plan.entered['pending'].set()
            _wait(plan, 'pending')
        return method(self, context, *args, **kwargs)
    return wrapper


def _wait(plan, phase):
    gate = plan.gates.get(phase)
    if gate is not None:
        deadline = HOLD_TIMEOUT
        while not gate.wait(0.05) and not _ABORT.is_set():
            deadline -= 0.05
            if deadline <= 0:
                break
    if plan.sleeps[phase]:
        _ABORT.wait(plan.sleeps[phase])


def _plan_for(instance):
    with _LOCK:
        for key in (instance.uuid, instance.display_name, None):
            if key in _PLANS:
                return _PLANS[key]
    return SnapshotPlan()


class SnapshotPhaseDriver(fake.MediumFakeDriver):
    """MediumFakeDriver with a phase-by-phase, scriptable snapshot()."""

    def snapshot(self, context, instance, image_id, update_task_state):
        plan = _plan_for(instance)
        plan.image_ids.append(image_id)
        try:
            self._snapshot(plan, context, instance, image_id,
                           update_task_state)
        except BaseException as e:
            plan.outcome = e
            raise
        else:
            plan.outcome = 'ok'
        finally:
            plan.done.set()

    def _snapshot(self, plan, context, instance, image_id,
                  update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        image_api = glance.API()
        # Like libvirt: read the image first (ImageNotFound if gone).
        snapshot = image_api.get(context, image_id)

        self._phase(plan, 'snapshot', context, instance, image_id)

        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        self._phase(plan, 'pending_upload', context, instance, image_id)

        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        if plan.bounce:
            update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD,
                              expected_state=task_states.IMAGE_UPLOADING)
            update_task_state(task_state=task_states.IMAGE_UPLOADING,
                              expected_state=task_states.IMAGE_PENDING_UPLOAD)
        # Glance moves an image to 'saving' when its data starts to flow.
        image_api.update(context, image_id, {'status': 'saving'},
                         purge_props=False)
        self._phase(plan, 'upload', context, instance, image_id)

        metadata = {
            'status': 'active',
            'name': snapshot['name'],
            'disk_format': 'raw',
            'container_format': 'bare',
            'size': 1024,
            'properties': {
                'image_location': 'snapshot',
                'image_state': 'available',
                'owner_id': instance.project_id,
            },
        }
        image_api.update(context, image_id, metadata,
                         data=io.BytesIO(b'\0' * 1024), purge_props=False)

    def _phase(self, plan, phase, context, instance, image_id):
        plan.entered[phase].set()
        if plan.delete_image_in == phase:
            glance.API().delete(context, image_id)
        _wait(plan, phase)
        if instance.uuid not in self.instances:
            # The guest went away underneath (server deleted): libvirt
            # raises InstanceNotFound from VIR_ERR_NO_DOMAIN.
            raise exception.InstanceNotFound(instance_id=instance.uuid)
        if plan.fail_in == phase:
            raise InjectedFailure(phase=phase)
        if plan.not_running_in == phase:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
