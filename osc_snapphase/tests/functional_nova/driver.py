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

A plan can also follow the ORDER of a real driver and storage backend
(``SnapshotPlan(order=...)``, see :data:`ORDERS`), with the disk copy as a
step of its own (``copy``) that can be held like a phase, and whose start,
point in time and end are recorded (``time.time()``) on the plan; so is
every ``update_task_state`` call, and, once :func:`record_image_statuses`
hooks the Glance test double, the moment the snapshot image first became
``saving`` or ``active``.  Facts: ``capture-points.md`` in the shared
reference (nova 34):

``xenserver`` (the removed xenapi driver, the seed article's model)
    ``image_snapshot``: prep (``snapshot``), then THE COPY (``VDI.snapshot``;
    its point in time is when it returns) -> ``image_pending_upload``
    (``pending_upload``) -> ``image_uploading``, image ``saving``
    (``upload``) -> image ``active``.
``libvirt-file`` (live snapshot of a file-backed qcow2/raw disk)
    ``image_snapshot`` (``snapshot``) -> ``image_pending_upload``
    (``pending_upload``, milliseconds in libvirt) -> ``image_uploading``
    (``bounce``: the refused RBD direct-snapshot attempt, image ``queued``)
    -> ``image_pending_upload`` again (``expected_state=image_uploading``)
    with THE COPY in it (the block-copy mirror; the point in time is the
    ``blockJobAbort`` that ends it) -> ``image_uploading``, image ``saving``
    as the data starts to flow (``upload``) -> image ``active``.
``libvirt-rbd`` (images_type=rbd, direct snapshot)
    ``image_snapshot`` (``snapshot``) -> ``image_pending_upload``
    (``pending_upload``) -> ``image_uploading`` with THE COPY in it while
    the image is still ``queued`` (``rbd snap create``, the point in time,
    at its start, then clone and flatten) -> (``upload``: the rest of
    ``direct_snapshot``, image still ``queued``) -> the image gets its
    ``location`` and ``status: active`` in one update, as the libvirt
    driver sends it; it is never ``saving``.
"""

import functools
import io
import threading
import time

from nova.compute import task_states
from nova import exception
from nova.image import glance
from nova.virt import fake

from osc_snapphase.tests.scenarios import base as scenario_base

#: Every wait for a driver event: the suite's generous wait.
WAIT = scenario_base.WAIT

#: The driver phases, in order, with the task state Nova shows in each.
PHASES = ('pending', 'snapshot', 'pending_upload', 'upload')
PHASE_TASK_STATES = {
    'pending': (task_states.IMAGE_SNAPSHOT_PENDING, task_states.IMAGE_BACKUP),
    'snapshot': (task_states.IMAGE_SNAPSHOT, task_states.IMAGE_BACKUP),
    'pending_upload': (task_states.IMAGE_PENDING_UPLOAD,),
    'upload': (task_states.IMAGE_UPLOADING,),
}

#: Driver orders a plan can follow (None: the default order above).
ORDERS = ('xenserver', 'libvirt-file', 'libvirt-rbd')
#: Steps of the orders besides the phases: ``bounce`` (libvirt-file: the
#: first image_uploading, image queued) and ``copy`` (the disk copy).
ORDER_STEPS = ('bounce', 'copy')
STEPS = PHASES + ORDER_STEPS
#: The task state Nova shows during the copy of each order.
COPY_TASK_STATES = {
    'xenserver': task_states.IMAGE_SNAPSHOT,
    'libvirt-file': task_states.IMAGE_PENDING_UPLOAD,
    'libvirt-rbd': task_states.IMAGE_UPLOADING,
}

#: Longest time a held phase waits for the test before it carries on.
HOLD_TIMEOUT = 300.0

#: The Ceph cluster of the libvirt-rbd order's image locations.
FSID = 'b8e9c2b2-4e1c-4c35-9b2a-1c0a5e7f0c11'

_LOCK = threading.Lock()
_PLANS = {}
_IMAGE_PLANS = {}
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
        start of the upload phase, as libvirt does for file-backed disks
        (default order only; ``libvirt-file`` always bounces).
    :param order: None (the default order), or one of :data:`ORDERS`; an
        order adds the steps ``copy`` (and ``bounce`` for libvirt-file),
        which can sleep, hold and fail like a phase.

    Records (``time.time()``): ``times`` (first ``copy_started``,
    ``point_in_time``, ``copy_ended``, and ``image_saving`` /
    ``image_active`` once :func:`record_image_statuses` hooks Glance),
    ``task_states`` (``(task_state, time)`` just before each
    ``update_task_state`` call of the driver) and ``copy_task_state``.
    """

    def __init__(self, sleeps=None, hold=(), fail_in=None,
                 delete_image_in=None, not_running_in=None, bounce=False,
                 order=None):
        if order is not None and order not in ORDERS:
            raise ValueError('unknown order %r' % order)
        steps = PHASES if order is None else STEPS
        for name in [fail_in, delete_image_in, not_running_in] + list(
                hold) + list(sleeps or {}):
            if name is not None and name not in steps:
                raise ValueError('unknown phase %r' % name)
        if 'pending' in (fail_in, delete_image_in, not_running_in):
            raise ValueError('the pending phase can only sleep or hold')
        if order is not None and order != 'libvirt-file' and 'bounce' in [
                fail_in, delete_image_in, not_running_in] + list(
                hold) + list(sleeps or {}):
            raise ValueError('order %s has no bounce' % order)
        self.order = order
        self.sleeps = dict.fromkeys(STEPS, 0.0)
        self.sleeps.update(sleeps or {})
        self.fail_in = fail_in
        self.delete_image_in = delete_image_in
        self.not_running_in = not_running_in
        self.bounce = bounce
        self.gates = {phase: threading.Event() for phase in hold}
        self.entered = {phase: threading.Event() for phase in STEPS}
        self.done = threading.Event()
        self.outcome = None
        self.image_ids = []
        self.times = {}
        self.task_states = []
        self.copy_task_state = COPY_TASK_STATES.get(order)
        self._marked = threading.Condition()

    def mark(self, name, when=None):
        """Record the first time of ``name`` (``time.time()``)."""
        with self._marked:
            self.times.setdefault(name, time.time() if when is None
                                  else when)
            self._marked.notify_all()

    def wait_marked(self, name, timeout=WAIT):
        """Wait until ``name`` is recorded; return its time."""
        with self._marked:
            if not self._marked.wait_for(lambda: name in self.times,
                                         timeout):
                raise AssertionError('%s was never recorded (have %s)'
                                     % (name, sorted(self.times)))
            return self.times[name]

    def task_state_time(self, task_state, nth=1):
        """When the driver wrote ``task_state`` for the nth time, or None."""
        seen = [t for state, t in list(self.task_states)
                if state == task_state]
        return seen[nth - 1] if len(seen) >= nth else None

    def describe(self, origin=None):
        """The records, as seconds after ``origin`` (default: the first)."""
        events = [(t, name) for name, t in self.times.items()]
        events += [(t, 'task_state=%s' % state)
                   for state, t in list(self.task_states)]
        events.sort()
        if origin is None:
            origin = events[0][0] if events else 0.0
        return '\n'.join('%+8.3f s  %s' % (t - origin, name)
                         for t, name in events)

    def release(self, phase=None):
        """Let a held phase (or all of them) go on."""
        for name, gate in self.gates.items():
            if phase is None or name == phase:
                gate.set()

    def wait_entered(self, phase, timeout=WAIT):
        if not self.entered[phase].wait(timeout):
            raise AssertionError('snapshot never reached phase %s' % phase)

    def wait_done(self, timeout=WAIT):
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
        _IMAGE_PLANS.clear()
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


def record_image_statuses(store):
    """Hook a Glance test double to record image statuses on the plans.

    ``store`` is the cloud's :class:`~.cloud.PhaseGlanceFixture` (``glance``
    of :class:`~.cloud.NovaCloud`); nova's ``glance.API`` reaches it through
    nova's stubbed image service, so an instance attribute is enough.  The
    first time an image of a snapshot driven by a plan is ``saving`` or
    ``active`` after an update, ``image_saving`` / ``image_active`` is
    marked on that plan, under the store's lock, so no HTTP read of the
    image can see the new status before the time is taken.  Returns the
    function that removes the hook.
    """
    real_update = store.update
    lock = store._lock

    def update(context, image_id, metadata, data=None, purge_props=False):
        with lock:
            result = real_update(context, image_id, metadata, data=data,
                                 purge_props=purge_props)
            status = (store.images.get(image_id) or {}).get('status')
            with _LOCK:
                plan = _IMAGE_PLANS.get(image_id)
            if plan is not None and status in ('saving', 'active'):
                plan.mark('image_%s' % status)
        return result

    store.update = update
    return lambda: vars(store).pop('update', None)


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
        with _LOCK:
            _IMAGE_PLANS[image_id] = plan

        def recorded_update(task_state, **kwargs):
            plan.task_states.append((task_state, time.time()))
            return update_task_state(task_state=task_state, **kwargs)
        try:
            if plan.order is None:
                self._snapshot(plan, context, instance, image_id,
                               recorded_update)
            else:
                self._ordered_snapshot(plan, context, instance, image_id,
                                       recorded_update)
        except BaseException as e:
            plan.outcome = e
            raise
        else:
            plan.outcome = 'ok'
        finally:
            plan.done.set()

    def _begin(self, context, instance, image_id):
        """Check the instance runs; return glance.API() and the image.

        Like libvirt: the image is read first (ImageNotFound if gone).
        """
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        image_api = glance.API()
        return image_api, image_api.get(context, image_id)

    def _snapshot(self, plan, context, instance, image_id,
                  update_task_state):
        image_api, snapshot = self._begin(context, instance, image_id)
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

        metadata = self._image_metadata(snapshot, instance)
        image_api.update(context, image_id, metadata,
                         data=io.BytesIO(b'\0' * 1024), purge_props=False)

    def _ordered_snapshot(self, plan, context, instance, image_id,
                          update_task_state):
        """The snapshot in the order of a real driver (see ORDERS)."""
        image_api, snapshot = self._begin(context, instance, image_id)
        order = plan.order
        args = (context, instance, image_id)

        self._phase(plan, 'snapshot', *args)
        if order == 'xenserver':
            # vm_utils: VDI.snapshot, then at once image_pending_upload.
            self._copy(plan, *args)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        self._phase(plan, 'pending_upload', *args)
        if order != 'xenserver':
            # libvirt: image_uploading at once, then direct_snapshot.
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD)
        if order == 'libvirt-rbd':
            location = self._copy(plan, *args)
            self._phase(plan, 'upload', *args)
            # The direct snapshot's image: Glance flips a queued image to
            # active when a location is added; libvirt sends status active
            # with it (_create_snapshot_metadata). Never saving.
            metadata = self._image_metadata(snapshot, instance)
            metadata['location'] = location
            image_api.update(context, image_id, metadata, purge_props=False)
            return
        if order == 'libvirt-file':
            # Rbd.direct_snapshot is tried (NotImplementedError for a file
            # disk): the bounce back to image_pending_upload.
            self._phase(plan, 'bounce', *args)
            update_task_state(
                task_state=task_states.IMAGE_PENDING_UPLOAD,
                expected_state=task_states.IMAGE_UPLOADING)
            self._copy(plan, *args)
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD)
        else:
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD)
        # Glance moves an image to 'saving' when its data starts to flow.
        image_api.update(context, image_id, {'status': 'saving'},
                         purge_props=False)
        self._phase(plan, 'upload', *args)
        image_api.update(context, image_id,
                         self._image_metadata(snapshot, instance),
                         data=io.BytesIO(b'\0' * 1024), purge_props=False)

    def _copy(self, plan, context, instance, image_id):
        """The disk copy of the plan's order; returns its RBD location.

        xenserver and libvirt-file: the point in time is the end of the
        held copy (``VDI.snapshot`` returning; the ``blockJobAbort`` that
        ends the mirror); libvirt-rbd: ``rbd snap create`` at its start,
        then the held clone and flatten.
        """
        plan.mark('copy_started')
        if plan.order == 'libvirt-rbd':
            plan.mark('point_in_time')
        self._phase(plan, 'copy', context, instance, image_id)
        plan.mark('point_in_time')
        plan.mark('copy_ended')
        return 'rbd://%s/images/%s/snap' % (FSID, image_id)

    @staticmethod
    def _image_metadata(snapshot, instance):
        return {
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
