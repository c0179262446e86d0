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

"""The /_sim control endpoint: inspect the cloud and inject faults."""

import ipaddress
import json
import re
import time
import uuid

from osc_snapphase.simulator import cinder
from osc_snapphase.simulator import drivers
from osc_snapphase.simulator import faults
from osc_snapphase.simulator import glance
from osc_snapphase.simulator import rest
from osc_snapphase.simulator import tasks
from osc_snapphase.simulator import views

CONFIG_FLAGS = ('hide_ext_sts', 'old_nova_actions')
ADMIN_CTX = {'is_admin': True, 'project_id': None, 'user_id': None}


def new_request_id():
    return str(uuid.uuid4())


class Invalid(Exception):
    """A control request that makes no sense."""


def _server_view(cloud, server):
    body = views.server(cloud, server, views.MAX_VERSION, ADMIN_CTX)
    body.update({
        'OS-EXT-STS:task_state': server['task_state'],
        'OS-EXT-STS:vm_state': server['vm_state'],
        'OS-EXT-STS:power_state': server['power_state'],
        'volume_backed': server['volume_backed'],
        'driver': server.get('driver') or cloud.config['driver'],
        'internal_fault': server['fault'],
        'instance_faults': list(cloud.instance_faults.get(server['id'], [])),
    })
    return body


def _image_view(image):
    body = glance.render(image)
    body['properties'] = dict(image['properties'])
    return body


def state(server, req):
    cloud = server.cloud
    cinder.detach_gone(cloud)
    return {
        'auth_url': cloud.base_url + '/identity',
        'control_url': cloud.base_url + '/_sim',
        'cloud_name': cloud.cloud_name,
        'config': dict(cloud.config), 'durations': dict(cloud.durations),
        'servers': [_server_view(cloud, s) for s in cloud.servers.values()],
        'images': [_image_view(i) for i in cloud.images.values()],
        'deleted_images': [_image_view(i)
                           for i in cloud.deleted_images.values()],
        'operations': [{'server_id': op.server_id, 'image_id': op.image_id,
                        'kind': op.kind, 'phase': op.phase,
                        'driver': op.driver.name,
                        'task_state': op.step.task_state}
                       for op in cloud.ops.values() if not op.done],
        'operation_faults': cloud.op_faults,
        'held': cloud.held_view(),
        'holds': [{'step': r['step'], 'server': r['server']}
                  for r in cloud.hold_rules],
        'http_faults': cloud.http_faults,
        'refusing': time.monotonic() < server.refuse_until,
        'projects': cloud.projects,
        'users': {n: {'id': u['id'], 'project': u['project'],
                      'roles': u['roles']} for n, u in cloud.users.items()},
        'timers_pending': cloud.timers.pending(),
        'volumes': [cinder.volume_view(cloud, v, cinder.MAX_VERSION,
                                       ADMIN_CTX)
                    for v in cinder.volumes(cloud).values()],
        'volume_snapshots': [cinder.snapshot_view(cloud, s,
                                                  cinder.MAX_VERSION)
                             for s in cinder.snapshots(cloud).values()],
    }


def create_servers(server, req):
    """Create servers at once: one, or ``count`` named prefix1, prefix2...

    They are ACTIVE at once (no build) unless ``build`` is true; vm_state,
    task_state and power_state may be given. Thousands cost a fraction of
    a second: no timer or thread per server.
    """
    cloud = server.cloud
    data = req.json() or {}
    count = int(data.get('count', 1))
    prefix = data.get('prefix') or data.get('name') or 'sim'
    owner = data.get('project', 'demo')
    if owner not in cloud.users:
        raise Invalid('unknown project %s' % owner)
    user = cloud.users[owner]
    project = cloud.projects[user['project']]
    image = next((i for i in cloud.images.values()
                  if i['name'] == data.get('image', 'cirros')), None)
    if data.get('flavor', '1') not in cloud.flavors:
        raise Invalid('unknown flavor %s' % data.get('flavor'))
    driver = data.get('driver') and drivers.check(data['driver'])
    created = []
    for index in range(count):
        name = data.get('name', prefix) if count == 1 else '%s%d' % (
            prefix, index + 1)
        srv = tasks.new_server(cloud, project, user, name,
                               data.get('flavor', '1'),
                               image and image['id'],
                               data.get('volume_backed', False))
        if driver:
            srv['driver'] = driver
        if srv['volume_backed']:
            cinder.boot_volume(cloud, srv, image,
                               cloud.flavors[srv['flavor_id']]['disk'])
        ctx = {'user_id': user['id'], 'project_id': project['id']}
        tasks.record_action(cloud, srv, 'create', ctx)
        if data.get('build'):
            tasks.build(cloud, srv)
        else:
            cloud.update_server(
                srv, vm_state=data.get('vm_state', 'active'),
                task_state=data.get('task_state'),
                power_state=data.get('power_state', 1),
                launched_at=time.time())
        created.append(_server_view(cloud, srv))
    if 'count' in data:
        return {'servers': created}
    return {'server': created[0]}


def get_server(server, req, server_id):
    srv = server.cloud.servers.get(server_id)
    if srv is None:
        raise Invalid('no server %s' % server_id)
    return {'server': _server_view(server.cloud, srv)}


def set_server_state(server, req, server_id):
    cloud = server.cloud
    srv = cloud.servers.get(server_id)
    if srv is None:
        raise Invalid('no server %s' % server_id)
    data = req.json() or {}
    changes = {k: data[k] for k in ('vm_state', 'task_state', 'power_state')
               if k in data}
    cloud.update_server(srv, **changes)
    if 'fault' in data:
        srv['fault'] = data['fault'] and dict(
            data['fault'], created=time.time())
    return {'server': _server_view(cloud, srv)}


def set_config(server, req):
    cloud = server.cloud
    data = req.json() or {}
    durations = data.get('durations') or {}
    for name, value in durations.items():
        if float(value) < 0:
            raise Invalid('duration %s must be >= 0' % name)
        cloud.durations[name] = float(value)
    if 'token_lifetime' in data:
        cloud.config['token_lifetime'] = float(data['token_lifetime'])
    for flag in CONFIG_FLAGS:
        if flag in data:
            cloud.config[flag] = bool(data[flag])
    if 'driver' in data:
        cloud.config['driver'] = drivers.check(data['driver'])
    return {'config': dict(cloud.config), 'durations': dict(cloud.durations)}


def check_op_fault(rule):
    rule = dict(rule)
    phases = tasks.PHASE_NAMES + ('volume_snapshot',)
    if rule.get('phase') not in phases:
        raise Invalid('phase must be one of %s' % (phases,))
    kinds = cinder.FAULT_KINDS if rule['phase'] == 'volume_snapshot' else (
        tasks.FAULT_KINDS)
    if rule.get('kind') not in kinds:
        raise Invalid('kind must be one of %s' % (kinds,))
    if rule.get('operation', 'any') not in ('any', 'createImage',
                                            'createBackup'):
        raise Invalid('operation must be any, createImage or createBackup')
    if rule.get('image', 'deleted') not in ('deleted', 'killed'):
        raise Invalid('image must be deleted or killed')
    rule.setdefault('count', 1)
    rule.setdefault('at', 0.5)
    return rule


def add_faults(server, req):
    cloud = server.cloud
    data = req.json() or {}
    op_rules = list(data.get('operation_faults') or [])
    http_rules = list(data.get('http_faults') or [])
    if 'phase' in data:
        op_rules.append(data)
    elif 'kind' in data:
        http_rules.append(data)
    cloud.op_faults.extend(check_op_fault(r) for r in op_rules)
    cloud.http_faults.extend(faults.check(r) for r in http_rules)
    return {'operation_faults': cloud.op_faults,
            'http_faults': cloud.http_faults}


def clear_faults(server, req):
    server.cloud.op_faults[:] = []
    server.cloud.http_faults[:] = []
    server.refuse_until = 0.0
    return {'operation_faults': [], 'http_faults': []}


def delete_server(server, req, server_id):
    cloud = server.cloud
    srv = cloud.servers.get(server_id)
    if srv is None:
        raise Invalid('no server %s' % server_id)
    if srv['task_state'] != 'deleting' and srv['vm_state'] != 'deleted':
        tasks.delete(cloud, srv)
    return {'server': _server_view(cloud, srv)}


def delete_image(server, req, image_id):
    if server.cloud.delete_image(image_id) is None:
        raise Invalid('no image %s' % image_id)
    return {'deleted': image_id}


def revoke_tokens(server, req):
    count = 0
    for record in server.cloud.tokens.values():
        if not record['revoked']:
            record['revoked'] = True
            count += 1
    return {'revoked': count}


def get_log(server, req):
    entries = server.cloud.log
    since = int(req.arg('since', 0))
    rid = req.arg('id')
    return {'log': [e for e in entries
                    if e['seq'] > since and (rid is None or e['id'] == rid)]}


def hold(server, req):
    data = req.json() or {}
    rule = server.cloud.hold(data.get('step'), data.get('server'))
    return {'hold': {'step': rule['step'], 'server': rule['server']}}


def release(server, req):
    data = req.json() or {}
    count = server.cloud.release(data.get('step'), data.get('server'))
    return {'released': count, 'held': server.cloud.held_view()}


def get_captures(server, req):
    sid = req.arg('server_id')
    return {'captures': [dict(c) for c in server.cloud.captures
                         if sid is None or c['server_id'] == sid]}


def get_requests(server, req):
    """Exact counts per route; the last REQUEST_LOG_SIZE requests."""
    cloud = server.cloud
    counts = dict(cloud.request_counts)
    return {'counts': counts, 'requests': list(cloud.requests),
            'dropped': sum(counts.values()) - len(cloud.requests)}


def reset_requests(server, req):
    server.cloud.reset_requests()
    return {'counts': {}, 'requests': [], 'dropped': 0}


def secrets(server, req):
    """Every password and token, for tests (--serve-secrets) only."""
    cloud = server.cloud
    if not cloud.serve_secrets:
        return rest.error(403, 'forbidden', 'GET /_sim/secrets is served '
                          'only by a simulator started with --serve-secrets '
                          '(for tests)')
    return {'passwords': [u['password'] for u in cloud.users.values()],
            'users': {n: u['password'] for n, u in cloud.users.items()},
            'tokens': list(cloud.issued_tokens)}


ROUTES = (
    ('GET', r'/_sim/state', state),
    ('GET', r'/_sim', state),
    ('POST', r'/_sim/servers', create_servers),
    ('GET', r'/_sim/servers/([^/]+)', get_server),
    ('POST', r'/_sim/servers/([^/]+)/delete', delete_server),
    ('POST', r'/_sim/servers/([^/]+)/state', set_server_state),
    ('POST', r'/_sim/images/([^/]+)/delete', delete_image),
    ('POST', r'/_sim/config', set_config),
    ('POST', r'/_sim/faults', add_faults),
    ('DELETE', r'/_sim/faults', clear_faults),
    ('POST', r'/_sim/tokens/revoke', revoke_tokens),
    ('GET', r'/_sim/log', get_log),
    ('POST', r'/_sim/hold', hold),
    ('POST', r'/_sim/release', release),
    ('GET', r'/_sim/captures', get_captures),
    ('GET', r'/_sim/requests', get_requests),
    ('POST', r'/_sim/requests/reset', reset_requests),
    ('GET', r'/_sim/secrets', secrets),
)


def handle(server, req, client_address):
    """Serve one control request; loopback callers only."""
    if not ipaddress.ip_address(client_address[0]).is_loopback:
        return rest.error(403, 'forbidden', 'control is loopback only')
    path = req.path.rstrip('/') or '/'
    for method, pattern, func in ROUTES:
        found = re.fullmatch(pattern, path)
        if found and method == req.method:
            try:
                with server.cloud.lock:
                    result = func(server, req, *found.groups())
                    if isinstance(result, rest.Response):
                        return result
                    return rest.Response(200, json.dumps(result).encode())
            except (Invalid, ValueError, TypeError, KeyError,
                    re.error, rest.BadJSON) as exc:
                return rest.error(400, 'badRequest', str(exc) or repr(exc))
    return rest.error(404, 'itemNotFound', 'no control route %s %s'
                      % (req.method, path))
