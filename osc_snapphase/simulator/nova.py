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

import heapq
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
# Instances a project may have (Nova's quota; its default is 10). The
# bulk creation of the control endpoint does not look at it.
INSTANCES_QUOTA = 10000
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


def version(cloud, req):
    return rest.Response(200, {'version': views.version_doc(cloud)})


def not_found(server_id):
    return rest.error(404, 'itemNotFound',
                      'Instance %s could not be found.' % server_id)


class Forbidden(Exception):
    """A filter that the caller's role does not allow (403)."""


def _true(value):
    """oslo's bool_from_string(value, default=False)."""
    return str(value).strip().lower() in ('1', 't', 'true', 'on', 'y',
                                          'yes')


def _time_filter(req, name):
    value = req.arg(name)
    if value is None:
        return None
    try:
        return cloud_mod.parse_isotime(value)
    except ValueError:
        raise ValueError('Invalid filter field: %s.' % name)


def _filter(cloud, req, servers):
    """The servers the listing request selects, in no particular order.

    As Nova's GET /servers: ``changes-since`` (and ``changes-before``
    from 2.66) select by updated_at, whose database column has a
    resolution of one second, and list deleted servers too (status
    DELETED) unless an admin sets ``deleted``; ``all_tenants`` is for
    admins only (403 otherwise); ``name`` is a regular expression.
    """
    ctx = req.ctx
    all_tenants = req.arg('all_tenants')
    all_tenants = ('all_tenants' in req.query if all_tenants in (None, '')
                   else _true(all_tenants))
    if all_tenants and not ctx['is_admin']:
        raise Forbidden('get_all_tenants')
    project = ctx['is_admin'] and (req.arg('project_id')
                                   or req.arg('tenant_id'))
    since = _time_filter(req, 'changes-since')
    before = None
    if req.microversion >= (2, 66):
        before = _time_filter(req, 'changes-before')
        if None not in (since, before) and before < since:
            raise ValueError('The value of changes-since must be less '
                             'than or equal to changes-before.')
    deleted = req.arg('deleted') if ctx['is_admin'] else None
    if deleted is not None:
        deleted = _true(deleted)
    elif since is None and before is None:
        deleted = False
    name = req.arg('name')
    name_re = re.compile(name) if name else None
    status = req.arg('status')
    status = status and status.upper()
    result = []
    for srv in servers:
        if all_tenants:
            if project and srv['project_id'] != project:
                continue
        elif srv['project_id'] != ctx['project_id']:
            continue
        if deleted is not None and deleted != (
                srv['vm_state'] == 'deleted'):
            continue
        if since is not None or before is not None:
            updated = int(srv['updated'])
            if (since is not None and updated < since) or (
                    before is not None and updated > before):
                continue
        if name_re and not name_re.search(srv['name']):
            continue
        if status and cloud_mod.server_status(srv) != status:
            continue
        result.append(srv)
    return result


def _sort_key(srv):
    return srv['created'], srv['id']


def _list(cloud, req, detail):
    """One page of servers, newest first, as Nova pages them.

    ``limit`` is capped at MAX_LIMIT (Nova's default api.max_limit);
    a full page (of limit, or of MAX_LIMIT without one) has a
    ``servers_links`` next link. The marker is any server, deleted or
    filtered out included: the page starts after its place in the
    order.
    """
    try:
        limit = int(req.arg('limit', MAX_LIMIT))
        if limit < 0:
            raise ValueError
    except ValueError:
        return rest.error(400, 'badRequest', 'limit param must be positive')
    limit = min(limit, MAX_LIMIT)
    marker = req.arg('marker')
    with cloud.lock:
        try:
            servers = _filter(cloud, req, cloud.servers.values())
        except Forbidden as exc:
            return rest.error(
                403, 'forbidden', "Policy doesn't allow os_compute_api:"
                "servers:%s:%s to be performed."
                % ('detail' if detail else 'index', exc))
        except (ValueError, re.error) as exc:
            return rest.error(400, 'badRequest', str(exc))
        if marker:
            srv = cloud.servers.get(marker)
            if srv is None:
                return rest.error(400, 'badRequest',
                                  'marker [%s] not found' % marker)
            after = _sort_key(srv)
            servers = [s for s in servers if _sort_key(s) < after]
        page = heapq.nlargest(limit, servers, key=_sort_key)
        if detail:
            items = [views.server(cloud, s, req.microversion, req.ctx)
                     for s in page]
        else:
            items = [views.server_brief(cloud, s) for s in page]
    body = {'servers': items}
    if limit and len(page) == limit:
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


def _find_flavor(cloud, ref):
    ref = str(ref or '').rstrip('/').rsplit('/', 1)[-1]
    return cloud.flavors.get(ref)


def _count(data, key, default):
    """A positive integer of the create request (Nova's schema)."""
    value = data.get(key, default)
    if isinstance(value, bool) or not re.fullmatch(r'[0-9]+', str(value)) \
            or int(value) < 1:
        raise ValueError("Invalid input for field/attribute %s." % key)
    return int(value)


def _boot(cloud, req, data, flavor, image_ref, bdms, name, index,
          reservation_id):
    """Create one server of a create request and start its build."""
    plan, error = cinder.plan_boot(cloud, req.ctx, bdms, image_ref)
    if error is not None:
        return None, error
    user = cloud.users[req.ctx['user_name']]
    project = cloud.projects[req.ctx['project_name']]
    srv = tasks.new_server(cloud, project, user, name, flavor['id'],
                           image_ref or None, not image_ref)
    srv['launch_index'] = index
    srv['reservation_id'] = reservation_id
    cinder.attach_boot(cloud, srv, req.ctx, plan)
    srv['metadata'] = dict(data.get('metadata') or {})
    srv['key_name'] = data.get('key_name')
    srv['description'] = data.get('description')
    if data.get('networks') not in ('none', None):
        srv['security_groups'] = ['default']
    tasks.record_action(cloud, srv, 'create', req.ctx)
    tasks.build(cloud, srv)
    return srv, None


def _quota(cloud, req, min_count, max_count):
    """How many servers to create, or Nova's 403 when min_count is over.

    As nova 34's check_num_instances_quota: max_count, or less if the
    project has not that many instances left (at least min_count).
    """
    used = sum(1 for s in cloud.servers.values()
               if s['project_id'] == req.ctx['project_id']
               and s['vm_state'] != 'deleted')
    allowed = INSTANCES_QUOTA - used
    if allowed >= max_count:
        return max_count, None
    if allowed >= min_count:
        return allowed, None
    requested = str(min_count) if min_count == max_count else (
        '%d-%d' % (min_count, max_count))
    return 0, rest.error(
        403, 'forbidden', 'Quota exceeded for instances: Requested %s, but '
        'already used %d of %d instances' % (requested, used,
                                             INSTANCES_QUOTA))


def create_server(cloud, req):
    """POST /servers, with Nova's multi-create.

    min_count/max_count create max_count servers, or as many as the
    project's instances quota leaves (at least min_count, else 403),
    named ``<name>-1``, ``<name>-2``... when more than one, sharing one
    reservation_id; ``return_reservation_id`` answers with it instead
    of the first server.
    """
    data = (req.json() or {}).get('server')
    if not isinstance(data, dict) or not data.get('name'):
        return rest.error(400, 'badRequest',
                          "Invalid input for field/attribute server.")
    try:
        min_count = _count(data, 'min_count', 1)
        max_count = _count(data, 'max_count', min_count)
    except ValueError as exc:
        return rest.error(400, 'badRequest', str(exc))
    if min_count > max_count:
        return rest.error(400, 'badRequest',
                          'min_count must be <= max_count')
    bdms = data.get('block_device_mapping_v2') or []
    if max_count > 1 and any(isinstance(b, dict) and b.get(
            'source_type') == 'volume' for b in bdms):
        return rest.error(400, 'badRequest', 'Cannot attach one or more '
                          'volumes to multiple instances')
    reservation_id = 'r-' + cloud_mod.new_id().replace('-', '')[:8]
    with cloud.lock:
        flavor = _find_flavor(cloud, data.get('flavorRef'))
        if flavor is None:
            return rest.error(400, 'badRequest',
                              'Flavor %s could not be found.'
                              % data.get('flavorRef'))
        image_ref = str(data.get('imageRef') or '').rsplit('/', 1)[-1]
        if image_ref:
            image = cloud.images.get(image_ref)
            if image is None or image['status'] != 'active':
                return rest.error(400, 'badRequest',
                                  'Image %s could not be found.' % image_ref)
        count, error = _quota(cloud, req, min_count, max_count)
        if error is not None:
            return error
        first = None
        for index in range(count):
            name = data['name'] if count == 1 else '%s-%d' % (
                data['name'], index + 1)
            srv, error = _boot(cloud, req, data, flavor, image_ref, bdms,
                               name, index, reservation_id)
            if error is not None:
                return error
            first = first or srv
    if data.get('return_reservation_id') in (True, 'True', 'true'):
        return rest.Response(202, {'reservation_id': reservation_id})
    body = {'server': {
        'id': first['id'], 'links': views.links(cloud, 'servers',
                                                first['id']),
        'OS-DCF:diskConfig': 'MANUAL', 'adminPass': 'simAdminPass1',
        'security_groups': [{'name': 'default'}]}}
    return rest.Response(202, body, {
        'Location': '%s/compute/v2.1/servers/%s' % (cloud.base_url,
                                                    first['id'])})


def delete_server(cloud, req):
    with cloud.lock:
        srv = cloud.visible_server(req.params['id'], req.ctx, False)
        if srv is None:
            return not_found(req.params['id'])
        if srv['task_state'] != 'deleting':
            tasks.record_action(cloud, srv, 'delete', req.ctx)
            tasks.delete(cloud, srv)
    return rest.Response(204)


def list_flavors(cloud, req, full=False):
    limit = req.arg('limit')
    if limit is not None and not re.fullmatch('[0-9]+', limit):
        # Nova's query schema (parameter_types.non_negative_integer).
        return rest.error(400, 'badRequest', "Invalid input for query "
                          "parameters limit. Value: %s. '%s' does not "
                          "match '^[0-9]*$'" % (limit, limit))
    with cloud.lock:
        flavors = sorted(cloud.flavors.values(), key=lambda f: f['id'])
        marker = req.arg('marker')
        if marker:
            ids = [f['id'] for f in flavors]
            if marker not in ids:
                return rest.error(400, 'badRequest',
                                  'marker [%s] not found' % marker)
            flavors = flavors[ids.index(marker) + 1:]
        if limit is not None:
            flavors = flavors[:min(int(limit), MAX_LIMIT)]
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


def volume_attachments(cloud, req):
    with cloud.lock:
        srv = cloud.visible_server(req.params['id'], req.ctx)
        if srv is None:
            return not_found(req.params['id'])
        return rest.Response(200, {'volumeAttachments': (
            cinder.attachments_view(cloud, srv, req.microversion))})


def seed_flavors(cloud):
    for fid, name, ram, disk, vcpus in (('1', 'm1.tiny', 512, 1, 1),
                                        ('2', 'm1.small', 2048, 20, 1)):
        cloud.flavors[fid] = {'id': fid, 'name': name, 'ram': ram,
                              'disk': disk, 'vcpus': vcpus,
                              'created': time.time()}


def register(router):
    router.add('GET', PREFIX, version, 'compute', public=True)
    for template, handler in (
            ('/servers', list_servers),
            ('/servers/detail', list_servers_detail),
            ('/servers/{id}', show_server),
            ('/flavors', list_flavors),
            ('/flavors/detail', list_flavors_detail),
            ('/flavors/{id}', show_flavor),
            ('/servers/{id}/os-volume_attachments', volume_attachments),
            ('/servers/{id}/os-instance-actions', actions.list_actions),
            ('/servers/{id}/os-instance-actions/{req_id}',
             actions.show_action)):
        router.add('GET', PREFIX + template, handler, 'compute')
    router.add('POST', PREFIX + '/servers', create_server, 'compute')
    router.add('DELETE', PREFIX + '/servers/{id}', delete_server, 'compute')
    router.add('POST', PREFIX + '/servers/{id}/action', actions.action,
               'compute')
