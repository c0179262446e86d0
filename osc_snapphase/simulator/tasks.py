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

"""Timer-driven Nova task states: build, delete, power and snapshots."""

import time
import uuid

from osc_snapphase.simulator import cinder
from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import drivers
from osc_snapphase.simulator import glance

PHASE_NAMES = drivers.STEPS
FAULT_KINDS = ('driver_error', 'image_deleted', 'stuck', 'stuck_saving',
               'server_deleted', 'vm_error')
# A reboot's task states, soft (False) and hard (True), as nova 34.
REBOOT_STATES = {
    False: ('rebooting', 'reboot_pending', 'reboot_started'),
    True: ('rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard'),
}
TRACEBACK = ('Traceback (most recent call last):\n'
             '  File "/opt/stack/nova/nova/compute/manager.py", line %d, '
             'in %s\n'
             'nova.exception.%s: %s\n')


def new_server(cloud, project, user, name, flavor_id='1', image_id=None,
               volume_backed=False):
    """Create a server record in the building state and return it."""
    now = time.time()
    sid = cloud_mod.new_id()
    server = {
        'id': sid, 'name': name, 'project_id': project['id'],
        'user_id': user['id'], 'vm_state': 'building',
        'task_state': 'scheduling', 'power_state': 0, 'progress': 0,
        'created': now, 'updated': now, 'launched_at': None,
        'terminated_at': None, 'deleted_at': None,
        'image_id': None if volume_backed else image_id,
        'flavor_id': flavor_id, 'metadata': {},
        'volume_backed': bool(volume_backed),
        'volumes': [cloud_mod.new_id()] if volume_backed else [],
        'fault': None, 'locked': False, 'locked_reason': None, 'tags': [],
        'key_name': None, 'availability_zone': 'nova',
        'host': 'sim-compute-1', 'host_id': uuid.uuid4().hex * 2,
        'instance_name': 'instance-%08x' % (len(cloud.servers) + 1),
        'hostname': name.lower().replace('_', '-')[:63] or 'server',
        'reservation_id': 'r-' + uuid.uuid4().hex[:8],
        'description': None, 'addresses': {}, 'security_groups': [],
        'image_base': image_id,
    }
    server['host_id'] = server['host_id'][:56]
    cloud.servers[sid] = server
    cloud.actions[sid] = []
    for field in ('vm_state', 'task_state', 'power_state'):
        cloud.record('server', sid, field, None, server[field])
    cloud.record('server', sid, 'status', None, 'BUILD')
    return server


def record_action(cloud, server, action, ctx, request_id=None):
    now = time.time()
    entry = {
        'action': action, 'instance_uuid': server['id'],
        'request_id': request_id or 'req-' + cloud_mod.new_id(),
        'user_id': ctx['user_id'], 'project_id': ctx['project_id'],
        'start_time': now, 'updated_at': now, 'message': None,
        'events': [],
    }
    cloud.actions.setdefault(server['id'], []).append(entry)
    return entry


def add_event(action, name, finished=True, result='Success'):
    now = time.time()
    event = {'event': name, 'start_time': now,
             'finish_time': now + 0.004 if finished else None,
             'result': result if finished else None, 'traceback': None,
             'host': 'sim-compute-1', 'details': None}
    action['events'].append(event)
    action['updated_at'] = now
    return event


def finish_event(action, event, result='Success', traceback=None,
                 details=None):
    if event is None or event['finish_time'] is not None:
        return
    event.update(finish_time=time.time(), result=result,
                 traceback=traceback, details=details)
    action['updated_at'] = event['finish_time']
    if result == 'Error':
        action['message'] = 'Error'


def build(cloud, server):
    """Schedule BUILD/scheduling -> spawning -> ACTIVE."""
    half = cloud.duration('build') / 2

    def spawning():
        if server['vm_state'] == 'building':
            cloud.update_server(server, task_state='spawning')

    def active():
        if server['vm_state'] == 'building':
            cloud.update_server(server, vm_state='active', task_state=None,
                                power_state=1, launched_at=time.time())
    cloud.later(half, spawning)
    cloud.later(half * 2, active)


def delete(cloud, server):
    """Delete a server: task deleting, then DELETED, then purged.

    A snapshot running on it carries on: as in nova 34, its image is
    left as it is until the operation notices, at its next phase change
    (see _vanished).
    """
    cloud.update_server(server, task_state='deleting')

    def gone():
        now = time.time()
        cloud.update_server(server, vm_state='deleted', task_state=None,
                            power_state=0, terminated_at=now,
                            deleted_at=now)
        cloud.later('deleted_retention', purge)

    def purge():
        cloud.servers.pop(server['id'], None)
    cloud.later('delete', gone)


def power(cloud, server, on):
    """powering-on/-off (held at 'power'), then ACTIVE or SHUTOFF (4)."""
    cloud.update_server(server, task_state='powering-on' if on
                        else 'powering-off')

    def done():
        if server['vm_state'] == 'deleted' or server['task_state'] not in (
                'powering-on', 'powering-off'):
            return
        cloud.update_server(server, vm_state='active' if on else 'stopped',
                            power_state=1 if on else 4, task_state=None)
    cloud.checkpoint(server, 'power', lambda: cloud.later('power', done))


def reboot(cloud, server, hard):
    """A reboot's task states as nova 34's compute manager writes them.

    rebooting (held at 'reboot') -> reboot_pending -> reboot_started ->
    none, ACTIVE and running (the _hard states for a hard reboot), in
    the 'power' duration. A hard reboot replaces a soft one.
    """
    states = REBOOT_STATES[hard]
    cloud.update_server(server, task_state=states[0])
    share = cloud.duration('power') / len(states)

    def step(index):
        if server['task_state'] != states[index - 1]:
            return      # deleted, or another reboot took over
        if index < len(states):
            cloud.update_server(server, task_state=states[index])
            cloud.later(share, step, index + 1)
        else:
            cloud.update_server(server, vm_state='active', power_state=1,
                                task_state=None)
    cloud.checkpoint(server, 'reboot', lambda: cloud.later(share, step, 1))


class Operation:
    """One running createImage or createBackup on one server."""

    def __init__(self, kind, server_id, image_id, action, backup=None,
                 driver='xenserver'):
        self.kind = kind
        self.driver = drivers.DRIVERS[driver]
        self.steps = drivers.order(driver, kind == 'createBackup')
        self.server_id = server_id
        self.image_id = image_id
        self.action = action
        self.backup = backup
        self.index = 0
        # The task state the operation wrote last (Nova expects it).
        self.task_state = self.step.task_state
        self.event = None
        self.done = False
        self.capture = None

    @property
    def step(self):
        return self.steps[self.index]

    @property
    def phase(self):
        return self.step.name


def snapshot_properties(cloud, server, ctx, kind, metadata, backup):
    base = cloud.images.get(server['image_base'] or '') or {}
    props = {k: v for k, v in base.get('properties', {}).items()
             if k.startswith(('hw_', 'os_')) and k != 'os_hidden'}
    props.update({
        'instance_uuid': server['id'],
        'image_type': 'backup' if kind == 'createBackup' else 'snapshot',
        'base_image_ref': server['image_base'] or '',
        'user_id': ctx['user_id'], 'owner_user_name': ctx['user_name'],
        'owner_project_name': ctx['project_name'],
        'image_location': 'snapshot', 'image_state': 'available',
        'boot_roles': ','.join(ctx['roles']),
    })
    if backup:
        props['backup_type'] = backup[0]
    props.update({k: str(v) for k, v in (metadata or {}).items()})
    return props


def start_snapshot(cloud, server, ctx, kind, name, metadata, backup=None):
    """Create the image and start the phases; return (image, action)."""
    props = snapshot_properties(cloud, server, ctx, kind, metadata, backup)
    flavor = cloud.flavors[server['flavor_id']]
    action = record_action(cloud, server, kind, ctx)
    if server['volume_backed']:
        # nova 34 snapshot_volume_backed: Cinder snapshots, no task state.
        add_event(action, 'api_snapshot_instance')
        return cinder.snapshot_server(cloud, server, ctx, name, props), action
    image = glance.new_image(cloud, server['project_id'], name,
                             properties=props, min_disk=flavor['disk'])
    op = Operation(kind, server['id'], image['id'], action, backup,
                   server.get('driver') or cloud.config['driver'])
    cloud.ops[server['id']] = op
    cloud.update_server(server, task_state=op.step.task_state)
    name = 'compute_backup_instance' if backup else (
        'compute_snapshot_instance')
    # nova 34 spawns snapshot_instance as a task of its own, so the
    # createImage event ends Success at once; backup_instance runs inside
    # the RPC handler, so its event stays open until the backup ends.
    if backup or cloud.config['old_nova_actions']:
        op.event = add_event(action, name, finished=False)
    else:
        add_event(action, name)
    _enter(cloud, op)
    return image, action


def _take_fault(cloud, op, server):
    def matches(rule):
        return (rule['phase'] in (op.phase, 'copy' if op.step.copy else '')
                and rule.get('operation', 'any') in ('any', op.kind)
                and rule.get('server') in (None, server['id'],
                                           server['name']))
    return cloud_mod.take_rule(cloud.op_faults, matches)


def _enter(cloud, op):
    """Start the current step: its task state, image status, holds."""
    server = cloud.servers[op.server_id]
    step = op.step
    if op.index > 0 and step.task_state:
        if _preempted(cloud, op, server):
            return
        cloud.update_server(server, task_state=step.task_state)
        op.task_state = step.task_state
    if _calls_glance(op, step) and _image_gone(cloud, op, server):
        return
    image = cloud.images.get(op.image_id)
    if step.image and image is not None:
        cloud.set_image_status(image, step.image)

    def run():
        _run(cloud, op)

    def copy():
        # Held at 'copy' once the copy has started.
        _copy_started(cloud, op, server, time.time())
        cloud.checkpoint(server, 'copy', run, key=id(op))
    if step.name == 'copy':
        copy()
    else:
        cloud.checkpoint(server, step.name, copy if step.copy else run,
                         key=id(op))


def _fix_capture(op, server, now):
    if op.capture['point_in_time'] is None:
        op.capture.update(point_in_time=now,
                          task_state=server['task_state'])


def _copy_started(cloud, op, server, now):
    """The disk copy starts (after a managedSave it already has)."""
    if op.done:
        return
    if op.capture is None:
        op.capture = cloud.record_capture(
            op.server_id, op.image_id, op.driver.name, now,
            task_state=server['task_state'])
    if op.driver.fixed == 'start':
        _fix_capture(op, server, now)


def _step_done(cloud, op, server):
    """The current step ends: a copy ends, a managedSave fixes one."""
    now = time.time()
    if op.step.copy and op.capture is not None:
        _fix_capture(op, server, now)
        op.capture['ended'] = now
    elif op.driver.fixed == 'suspend' and op.phase in ('snapshot',
                                                       'backup'):
        _copy_started(cloud, op, server, now)
        _fix_capture(op, server, now)


def _run(cloud, op):
    server = _live_server(cloud, op)   # deleted while held: noticed now
    if server is None:
        return
    delay = cloud.duration(op.step.duration)
    rule = _take_fault(cloud, op, server)
    if rule is not None:
        cloud.later(delay * float(rule.get('at', 0.5)), _fault, cloud, op,
                    rule)
    else:
        cloud.later(delay, _advance, cloud, op)


def _traceback(op, message, error):
    if op.kind == 'createBackup':
        return TRACEBACK % (4598, 'backup_instance', error, message)
    return TRACEBACK % (4511, 'snapshot_instance', error, message)


def _record_fault(cloud, op, server, message, error):
    """Record the instance faults nova 34 records for an error.

    wrap_instance_fault records one for snapshot_instance; a backup
    records two (backup_instance and the snapshot inside it). The API
    shows the latest, and only while vm_state is error or deleted.
    """
    faults = cloud.instance_faults.setdefault(server['id'], [])
    for _count in range(2 if op.kind == 'createBackup' else 1):
        fault = {'code': 500, 'message': message, 'created': time.time(),
                 'details': _traceback(op, message, error)}
        faults.append(fault)
    server['fault'] = fault


def _end(cloud, op, server, message=None, error='InstanceFaultRollback'):
    """End the operation; a message is a failure (error: its exception)."""
    op.done = True
    if op.capture is not None and op.capture['ended'] is None:
        # A failed copy: the guest is resumed, its disk writable again.
        op.capture['ended'] = time.time()
    if cloud.ops.get(op.server_id) is op:
        del cloud.ops[op.server_id]
    if message and server is not None:
        _record_fault(cloud, op, server, message, error)
    finish_event(op.action, op.event, 'Error' if message else 'Success',
                 _traceback(op, message, error) if message else None,
                 message)


def _returned(cloud, op, server):
    """_snapshot_instance returned: done, or an error it swallows.

    nova 34's backup_instance then rotates the backups, whatever became
    of this one (deleted image or server, instance not running).
    """
    if op.backup:
        _rotate(cloud, op.server_id, op.backup)
    _end(cloud, op, server)


def _gone(server):
    return server is None or server['vm_state'] == 'deleted' or (
        server['task_state'] == 'deleting')


def _vanished(cloud, op, server):
    """The server was deleted: drop the image unless it is active.

    Nova's _snapshot_instance swallows InstanceNotFound (and
    UnexpectedDeletingTaskStateError): no fault, the event ends Success
    (a backup still rotates).
    """
    image = cloud.images.get(op.image_id)
    if image is not None and image['status'] != 'active':
        cloud.delete_image(op.image_id)
    _returned(cloud, op, server)


def _calls_glance(op, step):
    """Whether the driver calls Glance about the image as step starts.

    As nova 34: libvirt's snapshot() first reads the image (so at the
    start of image_snapshot or image_backup), and every driver's upload
    writes it (a step that turns the image saving; vmware reads it
    first). Nothing else between asks Glance, so an image deleted
    meanwhile is noticed only there, or at the end (_advance).
    """
    return bool(step.image) or (op.driver.name.startswith('libvirt') and
                                step.name in ('snapshot', 'backup'))


def _image_gone(cloud, op, server):
    """End the operation if its image was deleted; whether it was.

    ImageNotFound is swallowed by nova's _snapshot_instance: the task
    state is cleared, no fault, the event ends Success (a backup still
    rotates).
    """
    if op.image_id in cloud.images:
        return False
    cloud.update_server(server, task_state=None)
    _returned(cloud, op, server)
    return True


def _preempted(cloud, op, server):
    """End the operation if its task state was changed; whether it was.

    Nova writes each task state of a snapshot expecting the one it
    wrote before; another (os-resetState, then perhaps a new snapshot)
    raises UnexpectedTaskStateError: the task state is left as it is
    (reverts_task_state), the image deleted (delete_image_on_error),
    the error recorded (wrap_instance_fault); a backup does not rotate.
    """
    if server['task_state'] == op.task_state:
        return False
    cloud.delete_image(op.image_id)
    _end(cloud, op, server,
         'Conflict updating instance %s. Expected: %s. Actual: %s' % (
             server['id'], {'task_state': [op.task_state]},
             {'task_state': server['task_state']}),
         'UnexpectedTaskStateError')
    return True


def _live_server(cloud, op):
    """The server of an operation that goes on; None when it is over.

    A server deleted meanwhile ends the operation here (see _vanished).
    """
    if op.done:
        return None
    server = cloud.servers.get(op.server_id)
    if _gone(server):
        _vanished(cloud, op, server)
        return None
    return server


def _advance(cloud, op):
    server = _live_server(cloud, op)
    if server is None:
        return
    _step_done(cloud, op, server)
    if op.index + 1 < len(op.steps):
        op.index += 1
        _enter(cloud, op)
        return
    # The upload's end (or rbd's new location) is written to Glance.
    if _image_gone(cloud, op, server):
        return
    image = cloud.images[op.image_id]
    if op.driver.disk_format:
        image['disk_format'] = op.driver.disk_format
    if op.driver.name == 'libvirt-rbd':
        # nova adds the location of the flattened clone; Glance turns
        # the image active without an upload, so never 'saving'.
        url = 'rbd://%s/images/%s/snap' % (cloud.ceph_fsid, image['id'])
        image['properties'].update(direct_url=url, locations=[
            {'url': url, 'metadata': {}}])
    glance.finish_upload(cloud, image)
    # The driver is done; the task state cleared, expecting its last.
    if _preempted(cloud, op, server):
        return
    cloud.update_server(server, task_state=None)
    _returned(cloud, op, server)


def _rotate(cloud, server_id, backup):
    backup_type, rotation = backup
    backups = sorted(
        (i for i in cloud.images.values()
         if i['properties'].get('instance_uuid') == server_id
         and i['properties'].get('image_type') == 'backup'
         and i['properties'].get('backup_type') == backup_type),
        key=lambda i: i['created_at'], reverse=True)
    for image in backups[rotation:]:
        cloud.delete_image(image['id'])


def _fault(cloud, op, rule):
    server = _live_server(cloud, op)
    if server is None:
        return
    kind = rule['kind']
    state = server['task_state']
    message = rule.get('message') or (
        'Simulated %s during %s' % (kind, state))
    if kind in ('server_deleted', 'image_deleted'):
        if kind == 'server_deleted':
            record_action(cloud, server, 'delete', {
                'user_id': server['user_id'],
                'project_id': server['project_id']})
            delete(cloud, server)
        else:
            cloud.delete_image(op.image_id)
        # The operation notices at the end of its phase (a server) or
        # when it next calls Glance (an image, see _calls_glance).
        left = 1.0 - float(rule.get('at', 0.5))
        cloud.later(cloud.duration(op.step.duration) * max(0.0, left),
                    _advance, cloud, op)
        return
    if kind == 'stuck_saving':
        image = cloud.images.get(op.image_id)
        if image is not None:
            cloud.set_image_status(image, 'saving')
        _end(cloud, op, server)
        return
    if kind in ('driver_error', 'vm_error') and rule.get(
            'image') == 'killed':
        image = cloud.images.get(op.image_id)
        if image is not None:
            cloud.set_image_status(image, 'killed')
    else:
        cloud.delete_image(op.image_id)
    if kind == 'stuck':
        # InstanceNotRunning is swallowed by nova's _snapshot_instance:
        # no fault, the event ends Success, the task state stays.
        _returned(cloud, op, server)
        return
    if kind == 'vm_error':
        cloud.update_server(server, vm_state='error', task_state=None)
    else:
        cloud.update_server(server, task_state=None)
    _end(cloud, op, server, message)
