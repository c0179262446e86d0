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

"""Nova v2.1: version discovery, microversions, servers and flavors."""

import re
import time
import urllib.parse

from osc_snapphase.simulator import actions
from osc_snapphase.simulator import cinder
from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import rest
from osc_snapphase.simulator import tasks
from osc_snapphase.simulator import views

PREFIX = '/compute/v2.1'
MAX_LIMIT = 1000
VARY = 'OpenStack-API-Version, X-OpenStack-Nova-API-Version'


def negotiate(req):
    """Set req.microversion from the headers; return an error or None."""
    value = None
    header = req.headers.get('OpenStack-API-Version')
    if header:
        for item in header.split(','):
            service, _sep, version = item.strip().partition(' ')
            if service.lower() == 'compute':
                value = version.strip()
    if value is None:
        value = req.headers.get('X-OpenStack-Nova-API-Version')
    if not value:
        req.microversion = views.MIN_VERSION
        return None
    if value.lower() == 'latest':
        req.microversion = views.MAX_VERSION
        return None
    found = re.match(r'^([1-9]\d*)\.([1-9]\d*|0)$', value)
    if not found:
        return rest.error(400, 'badRequest',
                          'Invalid format for API version %s' % value)
    version = (int(found.group(1)), int(found.group(2)))
    if not views.MIN_VERSION <= version <= views.MAX_VERSION:
        return rest.error(
            406, 'computeFault',
            'Version %d.%d is not supported by the API. Minimum is %d.%d '
            'and maximum is %d.%d.' % (version + views.MIN_VERSION
                                       + views.MAX_VERSION))
    req.microversion = version
    return None


def decorate(req, resp):
    if req.microversion is None:
        return
    text = '%d.%d' % req.microversion
    resp.headers['OpenStack-API-Version'] = 'compute ' + text
    resp.headers['X-OpenStack-Nova-API-Version'] = text
    resp.headers['Vary'] = VARY


def versions(cloud, req):
    return rest.Response(200, {'versions': [views.version_v2(cloud),
                                            views.version_doc(cloud)]})


def version(cloud, req):
    return rest.Response(200, {'version': views.version_doc(cloud)})


def not_found(server_id):
    return rest.error(404, 'itemNotFound',
                      'Instance %s could not be found.' % server_id)


def _filter(cloud, req, servers):
    ctx = req.ctx
    admin_all = ctx['is_admin'] and req.arg('all_tenants', 'False').lower(
        ) in ('', '1', 'true', 'yes')
    project = req.arg('project_id') or req.arg('tenant_id')
    since = req.arg('changes-since')
    want_deleted = ctx['is_admin'] and req.arg('deleted', 'false').lower(
        ) in ('1', 'true', 'yes')
    if since is not None:
        since = cloud_mod.parse_isotime(since)
    name = req.arg('name')
    name_re = re.compile(name) if name else None
    status = req.arg('status')
    result = []
    for srv in servers:
        if admin_all:
            if project and srv['project_id'] != project:
                continue
        elif srv['project_id'] != ctx['project_id']:
            continue
        if srv['vm_state'] == 'deleted' and since is None and (
                not want_deleted):
            continue
        if since is not None and srv['updated'] < since:
            continue
        if name_re and not name_re.search(srv['name']):
            continue
        if status and cloud_mod.server_status(srv) != status.upper():
            continue
        result.append(srv)
    return result


def _list(cloud, req, detail):
    try:
        limit = int(req.arg('limit', MAX_LIMIT))
        if limit < 0:
            raise ValueError
    except ValueError:
        return rest.error(400, 'badRequest', 'limit must be >= 0')
    limit = min(limit, MAX_LIMIT)
    with cloud.lock:
        try:
            servers = _filter(cloud, req, cloud.servers.values())
        except (ValueError, re.error) as exc:
            return rest.error(400, 'badRequest', 'Invalid filter: %s' % exc)
        servers.sort(key=lambda s: (s['created'], s['id']), reverse=True)
        marker = req.arg('marker')
        if marker:
            ids = [s['id'] for s in servers]
            if marker not in ids:
                return rest.error(400, 'badRequest',
                                  'marker [%s] not found' % marker)
            servers = servers[ids.index(marker) + 1:]
        page = servers[:limit]
        if detail:
            items = [views.server(cloud, s, req.microversion, req.ctx)
                     for s in page]
        else:
            items = [views.server_brief(cloud, s) for s in page]
    body = {'servers': items}
    if page and len(page) == limit and req.arg('limit') is not None:
        params = [(k, v) for k, vs in req.query.items() for v in vs
                  if k != 'marker']
        params.append(('marker', page[-1]['id']))
        body['servers_links'] = [{'rel': 'next', 'href': '%s%s?%s' % (
            cloud.base_url, req.path, urllib.parse.urlencode(params))}]
    return rest.Response(200, body)


def list_servers(cloud, req):
    return _list(cloud, req, False)


def list_servers_detail(cloud, req):
    return _list(cloud, req, True)


def show_server(cloud, req):
    with cloud.lock:
        srv = cloud.visible_server(req.params['id'], req.ctx)
        if srv is None:
            return not_found(req.params['id'])
        return rest.Response(200, {'server': views.server(
            cloud, srv, req.microversion, req.ctx)})


def update_server(cloud, req):
    data = (req.json() or {}).get('server') or {}
    with cloud.lock:
        srv = cloud.visible_server(req.params['id'], req.ctx, False)
        if srv is None:
            return not_found(req.params['id'])
        for key in ('name', 'description'):
            if key in data:
                srv[key] = data[key]
        cloud.update_server(srv)
        return rest.Response(200, {'server': views.server(
            cloud, srv, req.microversion, req.ctx)})


def _find_flavor(cloud, ref):
    ref = str(ref or '').rstrip('/').rsplit('/', 1)[-1]
    return cloud.flavors.get(ref)


def create_server(cloud, req):
    data = (req.json() or {}).get('server')
    if not isinstance(data, dict) or not data.get('name'):
        return rest.error(400, 'badRequest',
                          "Invalid input for field/attribute server.")
    with cloud.lock:
        flavor = _find_flavor(cloud, data.get('flavorRef'))
        if flavor is None:
            return rest.error(400, 'badRequest',
                              'Flavor %s could not be found.'
                              % data.get('flavorRef'))
        image_ref = str(data.get('imageRef') or '').rsplit('/', 1)[-1]
        plan, error = cinder.plan_boot(
            cloud, req.ctx, data.get('block_device_mapping_v2') or [],
            image_ref)
        if error is not None:
            return error
        volume_backed = not image_ref
        if not volume_backed:
            image = cloud.images.get(image_ref)
            if image is None or image['status'] != 'active':
                return rest.error(400, 'badRequest',
                                  'Image %s could not be found.' % image_ref)
        user = cloud.users[req.ctx['user_name']]
        project = cloud.projects[req.ctx['project_name']]
        srv = tasks.new_server(cloud, project, user, data['name'],
                               flavor['id'], image_ref or None,
                               volume_backed)
        cinder.attach_boot(cloud, srv, req.ctx, plan)
        srv['metadata'] = dict(data.get('metadata') or {})
        srv['key_name'] = data.get('key_name')
        srv['description'] = data.get('description')
        if data.get('networks') not in ('none', None):
            srv['security_groups'] = ['default']
        tasks.record_action(cloud, srv, 'create', req.ctx)
        tasks.build(cloud, srv)
        body = {'server': {
            'id': srv['id'], 'links': views.links(cloud, 'servers',
                                                  srv['id']),
            'OS-DCF:diskConfig': 'MANUAL', 'adminPass': 'simAdminPass1',
            'security_groups': [{'name': 'default'}]}}
    return rest.Response(202, body, {
        'Location': '%s/compute/v2.1/servers/%s' % (cloud.base_url,
                                                    srv['id'])})


def delete_server(cloud, req):
    with cloud.lock:
        srv = cloud.visible_server(req.params['id'], req.ctx, False)
        if srv is None:
            return not_found(req.params['id'])
        if srv['locked'] and not req.ctx['is_admin']:
            return rest.error(409, 'conflictingRequest',
                              'Instance %s is locked' % srv['id'])
        if srv['task_state'] != 'deleting':
            tasks.record_action(cloud, srv, 'delete', req.ctx)
            tasks.delete(cloud, srv)
    return rest.Response(204)


def list_flavors(cloud, req, full=False):
    with cloud.lock:
        flavors = sorted(cloud.flavors.values(), key=lambda f: f['id'])
        marker = req.arg('marker')
        if marker:
            ids = [f['id'] for f in flavors]
            if marker not in ids:
                return rest.error(400, 'badRequest',
                                  'marker [%s] not found' % marker)
            flavors = flavors[ids.index(marker) + 1:]
        if req.arg('limit'):
            flavors = flavors[:int(req.arg('limit'))]
        return rest.Response(200, {'flavors': [
            views.flavor(cloud, f, req.microversion, full)
            for f in flavors]})


def list_flavors_detail(cloud, req):
    return list_flavors(cloud, req, True)


def show_flavor(cloud, req):
    flv = cloud.flavors.get(req.params['id'])
    if flv is None:
        return rest.error(404, 'itemNotFound', 'Flavor %s could not be '
                          'found.' % req.params['id'])
    return rest.Response(200, {'flavor': views.flavor(
        cloud, flv, req.microversion)})


def flavor_extra_specs(cloud, req):
    if req.params['id'] not in cloud.flavors:
        return rest.error(404, 'itemNotFound', 'Flavor %s could not be '
                          'found.' % req.params['id'])
    return rest.Response(200, {'extra_specs': {}})


def _server_sub(key, value):
    def handler(cloud, req):
        with cloud.lock:
            if cloud.visible_server(req.params['id'], req.ctx) is None:
                return not_found(req.params['id'])
        return rest.Response(200, {key: value})
    return handler


def volume_attachments(cloud, req):
    with cloud.lock:
        srv = cloud.visible_server(req.params['id'], req.ctx)
        if srv is None:
            return not_found(req.params['id'])
        return rest.Response(200, {'volumeAttachments': (
            cinder.attachments_view(cloud, srv, req.microversion))})


def keypairs(cloud, req):
    return rest.Response(200, {'keypairs': []})


def limits(cloud, req):
    with cloud.lock:
        used = [s for s in cloud.servers.values()
                if s['project_id'] == req.ctx['project_id']
                and s['vm_state'] != 'deleted']
    return rest.Response(200, {'limits': {'rate': [], 'absolute': {
        'maxTotalInstances': 100, 'maxTotalCores': 200,
        'maxTotalRAMSize': 512000, 'maxServerMeta': 128,
        'maxServerGroups': 10, 'maxServerGroupMembers': 10,
        'maxTotalKeypairs': 100, 'totalInstancesUsed': len(used),
        'totalCoresUsed': len(used), 'totalRAMUsed': 512 * len(used),
        'totalServerGroupsUsed': 0}}})


def seed_flavors(cloud):
    for fid, name, ram, disk, vcpus in (('1', 'm1.tiny', 512, 1, 1),
                                        ('2', 'm1.small', 2048, 20, 1)):
        cloud.flavors[fid] = {'id': fid, 'name': name, 'ram': ram,
                              'disk': disk, 'vcpus': vcpus,
                              'created': time.time()}


def register(router):
    router.add('GET', '/compute', versions, 'compute', public=True)
    router.add('GET', PREFIX, version, 'compute', public=True)
    for template, handler in (
            ('/servers', list_servers),
            ('/servers/detail', list_servers_detail),
            ('/servers/{id}', show_server),
            ('/flavors', list_flavors),
            ('/flavors/detail', list_flavors_detail),
            ('/flavors/{id}', show_flavor),
            ('/flavors/{id}/os-extra-specs', flavor_extra_specs),
            ('/os-keypairs', keypairs),
            ('/limits', limits),
            ('/servers/{id}/os-interface',
             _server_sub('interfaceAttachments', [])),
            ('/servers/{id}/os-volume_attachments', volume_attachments),
            ('/servers/{id}/ips', _server_sub('addresses', {})),
            ('/servers/{id}/os-security-groups',
             _server_sub('security_groups', [])),
            ('/servers/{id}/os-instance-actions', actions.list_actions),
            ('/servers/{id}/os-instance-actions/{req_id}',
             actions.show_action)):
        router.add('GET', PREFIX + template, handler, 'compute')
    router.add('POST', PREFIX + '/servers', create_server, 'compute')
    router.add('PUT', PREFIX + '/servers/{id}', update_server, 'compute')
    router.add('DELETE', PREFIX + '/servers/{id}', delete_server, 'compute')
    router.add('POST', PREFIX + '/servers/{id}/action', actions.action,
               'compute')
