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

"""Nova server actions and the os-instance-actions API."""

import hashlib

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import rest
from osc_snapphase.simulator import tasks

SNAPSHOT_VM_STATES = ('active', 'stopped', 'paused', 'suspended')
VOLUME_SNAPSHOT_VM_STATES = SNAPSHOT_VM_STATES + ('shelved',
                                                  'shelved_offloaded')
# nova 34 vm_states.ALLOW_HARD_REBOOT and task_states.ALLOW_REBOOT.
REBOOT_HARD_VM_STATES = ('active', 'stopped', 'paused', 'suspended', 'error')
REBOOT_HARD_TASK_STATES = (None, 'rebooting', 'reboot_pending',
                           'reboot_started', 'resuming', 'rebooting_hard',
                           'unpausing', 'pausing', 'suspending')


def _conflict(action, server, attr):
    return rest.error(409, 'conflictingRequest',
                      "Cannot '%s' instance %s while it is in %s %s"
                      % (action, server['id'], attr, server[attr]))


def _check_state(action, server, vm_states, task_states=(None,)):
    if server['vm_state'] not in vm_states:
        return _conflict(action, server, 'vm_state')
    if server['task_state'] not in task_states:
        return _conflict(action, server, 'task_state')
    return None


def _bad(field, body, reason):
    return rest.error(400, 'badRequest',
                      'Invalid input for field/attribute %s. Value: %s. %s'
                      % (field, body, reason))


def _image_reply(cloud, req, image):
    if req.microversion >= (2, 45):
        return rest.Response(202, {'image_id': image['id']})
    return rest.Response(202, None, {
        'Location': '%s/image/v2/images/%s' % (cloud.base_url,
                                               image['id'])})


def create_image(cloud, req, server, body):
    if not isinstance(body, dict) or not body.get('name') or not (
            isinstance(body['name'], str)) or len(body['name']) > 255:
        return _bad('createImage', body, "'name' is a required property")
    metadata = body.get('metadata') or {}
    if not isinstance(metadata, dict):
        return _bad('createImage/metadata', metadata,
                    "%r is not of type 'object'" % metadata)
    states = VOLUME_SNAPSHOT_VM_STATES if server['volume_backed'] else (
        SNAPSHOT_VM_STATES)
    error = _check_state('createImage', server, states)
    if error:
        return error
    image, _action = tasks.start_snapshot(
        cloud, server, req.ctx, 'createImage', body['name'], metadata)
    return _image_reply(cloud, req, image)


def create_backup(cloud, req, server, body):
    if not isinstance(body, dict):
        return _bad('createBackup', body, "'name' is a required property")
    for field in ('name', 'backup_type', 'rotation'):
        if field not in body:
            return _bad('createBackup', body,
                        "'%s' is a required property" % field)
    try:
        rotation = int(body['rotation'])
        if rotation < 0:
            raise ValueError
    except (TypeError, ValueError):
        return _bad('createBackup/rotation', body['rotation'],
                    'rotation must be an integer >= 0')
    error = _check_state('createBackup', server, SNAPSHOT_VM_STATES)
    if error:
        return error
    if server['volume_backed']:
        return rest.error(400, 'badRequest', 'Backup is not supported for '
                          'volume-backed instances.')
    image, _action = tasks.start_snapshot(
        cloud, server, req.ctx, 'createBackup', body['name'],
        body.get('metadata'), (body['backup_type'], rotation))
    return _image_reply(cloud, req, image)


def _power(on):
    name = 'start' if on else 'stop'

    def handler(cloud, req, server, body):
        states = ('stopped',) if on else ('active', 'error')
        error = _check_state(name, server, states)
        if error:
            return error
        action = tasks.record_action(cloud, server, name, req.ctx)
        tasks.add_event(action, 'compute_%s_instance' % name)
        tasks.power(cloud, server, on)
        return rest.Response(202)
    return handler


def reboot(cloud, req, server, body):
    """Reboot a server as nova 34 does.

    SOFT from ACTIVE with no task state; HARD also from SHUTOFF, PAUSED,
    SUSPENDED or ERROR, and over a reboot under way.
    """
    kind = body.get('type') if isinstance(body, dict) else None
    if not isinstance(kind, str) or kind.upper() not in ('SOFT', 'HARD') or (
            kind not in (kind.upper(), kind.lower(), kind.title())):
        return _bad('reboot/type', kind, "%r is not one of ['HARD', "
                    "'Hard', 'hard', 'SOFT', 'Soft', 'soft']" % kind)
    hard = kind.upper() == 'HARD'
    if hard:
        error = _check_state('reboot', server, REBOOT_HARD_VM_STATES,
                             REBOOT_HARD_TASK_STATES)
    else:
        error = _check_state('reboot', server, ('active',))
    if error:
        return error
    action = tasks.record_action(cloud, server, 'reboot', req.ctx)
    tasks.add_event(action, 'compute_reboot_instance')
    tasks.reboot(cloud, server, hard)
    return rest.Response(202)


def reset_state(cloud, req, server, body):
    if not req.ctx['is_admin']:
        return rest.error(403, 'forbidden', "Policy doesn't allow "
                          'os_compute_api:os-admin-actions:reset_state to '
                          'be performed.')
    state = (body or {}).get('state') if isinstance(body, dict) else None
    if state not in ('active', 'error'):
        return _bad('os-resetState/state', state,
                    "%r is not one of ['active', 'error']" % state)
    cloud.update_server(server, vm_state=state, task_state=None)
    return rest.Response(202)


ACTIONS = {
    'createImage': create_image,
    'createBackup': create_backup,
    'os-stop': _power(False),
    'os-start': _power(True),
    'reboot': reboot,
    'os-resetState': reset_state,
}


def action(cloud, req):
    data = req.json()
    if not isinstance(data, dict) or len(data) != 1:
        return rest.error(400, 'badRequest', 'Malformed request body')
    name, body = next(iter(data.items()))
    handler = ACTIONS.get(name)
    if handler is None:
        return rest.error(400, 'badRequest',
                          'There is no such action: %s' % name)
    with cloud.lock:
        server = cloud.visible_server(req.params['id'], req.ctx, False)
        if server is None:
            return _instance_not_found(req)
        return handler(cloud, req, server, body)


def _time(value):
    return value and cloud_mod.isotime(value, micro=True, zulu=False)


def _action_view(entry, mv):
    body = {k: entry[k] for k in ('action', 'instance_uuid', 'request_id',
                                  'user_id', 'project_id', 'message')}
    body['start_time'] = _time(entry['start_time'])
    if mv >= (2, 58):
        body['updated_at'] = _time(entry['updated_at'])
    return body


def _event_view(event, entry, mv, ctx):
    body = {'event': event['event'], 'result': event['result'],
            'start_time': _time(event['start_time']),
            'finish_time': _time(event['finish_time'])}
    if ctx['is_admin'] or mv < (2, 51):
        body['traceback'] = event['traceback']
    if mv >= (2, 62):
        body['hostId'] = hashlib.sha224(
            (entry['project_id'] + event['host']).encode()).hexdigest()
        if ctx['is_admin']:
            body['host'] = event['host']
    if mv >= (2, 84):
        body['details'] = event['details']
    return body


def _instance_not_found(req):
    return rest.error(404, 'itemNotFound', 'Instance %s could not be found.'
                      % req.params['id'])


def _actions_of(cloud, req):
    """The instance actions of the server, or None if it is not visible.

    From microversion 2.21 those of a deleted server are visible too.
    """
    server = cloud.visible_server(req.params['id'], req.ctx,
                                  req.microversion >= (2, 21))
    return None if server is None else cloud.actions.get(server['id'], [])


def list_actions(cloud, req):
    with cloud.lock:
        entries = _actions_of(cloud, req)
        if entries is None:
            return _instance_not_found(req)
        entries = sorted(entries, key=lambda e: e['start_time'], reverse=True)
        return rest.Response(200, {'instanceActions': [
            _action_view(e, req.microversion) for e in entries]})


def show_action(cloud, req):
    with cloud.lock:
        entries = _actions_of(cloud, req)
        if entries is None:
            return _instance_not_found(req)
        for entry in entries:
            if entry['request_id'] == req.params['req_id']:
                body = _action_view(entry, req.microversion)
                body['events'] = [
                    _event_view(e, entry, req.microversion, req.ctx)
                    for e in entry['events']]
                return rest.Response(200, {'instanceAction': body})
    return rest.error(404, 'itemNotFound', 'Action %s could not be found.'
                      % req.params['req_id'])
