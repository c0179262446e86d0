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

"""Nova response bodies: servers, flavors, faults and links."""

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import rest

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)


def links(cloud, kind, rid):
    return [
        {'rel': 'self',
         'href': '%s/compute/v2.1/%s/%s' % (cloud.base_url, kind, rid)},
        {'rel': 'bookmark',
         'href': '%s/compute/%s/%s' % (cloud.base_url, kind, rid)},
    ]


def flavor(cloud, flv, mv, full=True):
    body = {'id': flv['id'], 'name': flv['name'],
            'links': links(cloud, 'flavors', flv['id'])}
    if not full:
        if mv >= (2, 55):
            body['description'] = None
        return body
    body.update({
        'ram': flv['ram'], 'disk': flv['disk'], 'vcpus': flv['vcpus'],
        'swap': 0 if mv >= (2, 75) else '',
        'OS-FLV-EXT-DATA:ephemeral': 0, 'OS-FLV-DISABLED:disabled': False,
        'os-flavor-access:is_public': True, 'rxtx_factor': 1.0,
    })
    if mv >= (2, 55):
        body['description'] = None
    if mv >= (2, 61):
        body['extra_specs'] = {}
    return body


def _server_flavor(cloud, server, mv):
    flv = cloud.flavors[server['flavor_id']]
    if mv >= (2, 47):
        return {'vcpus': flv['vcpus'], 'ram': flv['ram'],
                'disk': flv['disk'], 'ephemeral': 0, 'swap': 0,
                'original_name': flv['name'], 'extra_specs': {}}
    return {'id': flv['id'], 'links': links(cloud, 'flavors', flv['id'])[1:]}


def _server_image(cloud, server):
    if server['volume_backed'] or not server['image_id']:
        return ''
    return {'id': server['image_id'],
            'links': links(cloud, 'images', server['image_id'])[1:]}


def _volumes_attached(server, mv):
    delete = {b['volume_id']: b['delete_on_termination']
              for b in server.get('bdms') or []}
    if mv < (2, 3):
        return [{'id': v} for v in server['volumes']]
    return [{'id': v, 'delete_on_termination': delete.get(v, False)}
            for v in server['volumes']]


def _fault(server, ctx):
    fault = server.get('fault')
    if not fault:
        return None
    body = {'code': fault['code'], 'message': fault['message'],
            'created': cloud_mod.isotime(fault['created'])}
    if ctx['is_admin'] or fault['code'] != 500:
        body['details'] = fault.get('details', '')
    return body


def server(cloud, srv, mv, ctx):
    """Return the detailed body of one server for this microversion."""
    status = cloud_mod.server_status(srv)
    body = {
        'id': srv['id'], 'name': srv['name'], 'status': status,
        'tenant_id': srv['project_id'], 'user_id': srv['user_id'],
        'metadata': dict(srv['metadata']),
        'hostId': srv['host_id'] if srv['vm_state'] != 'building' else '',
        'image': _server_image(cloud, srv),
        'flavor': _server_flavor(cloud, srv, mv),
        'created': cloud_mod.isotime(srv['created']),
        'updated': cloud_mod.isotime(srv['updated']),
        'addresses': dict(srv['addresses']), 'accessIPv4': '',
        'accessIPv6': '', 'links': links(cloud, 'servers', srv['id']),
        'OS-DCF:diskConfig': 'MANUAL',
        'OS-EXT-AZ:availability_zone': srv['availability_zone'],
        'config_drive': '', 'key_name': srv['key_name'],
        'OS-SRV-USG:launched_at': srv['launched_at'] and cloud_mod.isotime(
            srv['launched_at'], micro=True, zulu=False),
        'OS-SRV-USG:terminated_at': srv['terminated_at'] and (
            cloud_mod.isotime(srv['terminated_at'], micro=True,
                              zulu=False)),
        'os-extended-volumes:volumes_attached': _volumes_attached(srv, mv),
        'locked': srv['locked'],
    }
    if status in ('ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE',
                  'MIGRATING'):
        body['progress'] = srv['progress']
    if srv['security_groups']:
        body['security_groups'] = [{'name': n}
                                   for n in srv['security_groups']]
    if not cloud.config['hide_ext_sts']:
        body['OS-EXT-STS:task_state'] = srv['task_state']
        body['OS-EXT-STS:vm_state'] = srv['vm_state']
        body['OS-EXT-STS:power_state'] = srv['power_state']
    if ctx['is_admin']:
        body['OS-EXT-SRV-ATTR:host'] = srv['host']
        body['OS-EXT-SRV-ATTR:hypervisor_hostname'] = srv['host']
        body['OS-EXT-SRV-ATTR:instance_name'] = srv['instance_name']
        if mv >= (2, 3):
            body.update({
                'OS-EXT-SRV-ATTR:reservation_id': srv['reservation_id'],
                'OS-EXT-SRV-ATTR:launch_index': srv.get('launch_index', 0),
                'OS-EXT-SRV-ATTR:hostname': srv['hostname'],
                'OS-EXT-SRV-ATTR:kernel_id': '',
                'OS-EXT-SRV-ATTR:ramdisk_id': '',
                'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda',
                'OS-EXT-SRV-ATTR:user_data': None,
            })
        if mv >= (2, 16):
            body['host_status'] = 'UP'
    if srv['vm_state'] in ('error', 'deleted') and srv.get('fault'):
        body['fault'] = _fault(srv, ctx)
    body.update(rest.since(
        mv,
        ((2, 9), 'locked', srv['locked']),
        ((2, 19), 'description', srv['description']),
        ((2, 26), 'tags', list(srv['tags'])),
        ((2, 63), 'trusted_image_certificates', None),
        ((2, 71), 'server_groups', []),
        ((2, 73), 'locked_reason', srv['locked_reason']),
        ((2, 96), 'pinned_availability_zone', None)))
    return body


def server_brief(cloud, srv):
    return {'id': srv['id'], 'name': srv['name'],
            'links': links(cloud, 'servers', srv['id'])}


def version_doc(cloud):
    return rest.version_doc(
        'v2.1', MIN_VERSION, MAX_VERSION, '2013-07-23T11:33:21Z',
        [{'rel': 'self', 'href': cloud.base_url + '/compute/v2.1/'},
         {'rel': 'describedby', 'type': 'text/html',
          'href': 'http://docs.openstack.org/'}],
        'application/vnd.openstack.compute+json;version=2.1')
