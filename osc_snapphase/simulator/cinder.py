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

"""Cinder v3 (volumes, snapshots) and Nova's side of volume-backed servers.

The Nova side follows nova 34: boot from volume through
block_device_mapping_v2, and compute/api.py snapshot_volume_backed for a
createImage (one snapshot per attached volume, ``creating`` for the
``volume_snapshot`` duration, a zero-size image that is active at once).
"""

import json
import re
import time
import urllib.parse

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import glance
from osc_snapphase.simulator import rest

PREFIX = '/volume/v3'
MIN_VERSION = (3, 0)
MAX_VERSION = (3, 71)
MAX_LIMIT = 1000
FAULT_KINDS = ('volume_snapshot_error', 'volume_snapshot_deleted')
VOLUME_TYPE = '__DEFAULT__'
VOLUME_TYPE_ID = 'c2b51d7a-7bb5-4a6b-9f8b-0d6e1b2f4a10'
HOST = 'sim-volume-1@lvmdriver-1#lvmdriver-1'


# -- the tables (kept on the Cloud object, created on first use) ----------

def volumes(cloud):
    return vars(cloud).setdefault('volumes', {})


def snapshots(cloud):
    return vars(cloud).setdefault('volume_snapshots', {})


def _set_status(cloud, kind, record, status):
    old = record['status']
    if old != status:
        record['status'] = status
        record['updated_at'] = time.time()
        cloud.record(kind, record['id'], 'status', old, status)


def new_volume(cloud, ctx, size, name=None, description=None,
               image=None, snapshot=None, status='creating', vid=None):
    """Create a volume record; it becomes available after volume_create."""
    now = time.time()
    volume = {
        'id': vid or cloud_mod.new_id(), 'name': name,
        'description': description, 'size': int(size), 'status': status,
        'project_id': ctx['project_id'], 'user_id': ctx['user_id'],
        'created_at': now, 'updated_at': now, 'attachments': [],
        'bootable': image is not None, 'metadata': {},
        'snapshot_id': snapshot and snapshot['id'],
        'image_metadata': None,
    }
    if image is not None:
        meta = {k: str(v) for k, v in image['properties'].items()}
        meta.update({'image_id': image['id'], 'image_name': image['name'],
                     'checksum': image['checksum'] or '',
                     'container_format': image['container_format'],
                     'disk_format': image['disk_format'],
                     'min_disk': str(image['min_disk']),
                     'min_ram': str(image['min_ram']),
                     'size': str(image['size'])})
        volume['image_metadata'] = meta
    if snapshot is not None:
        source = volumes(cloud).get(snapshot['volume_id']) or {}
        volume['bootable'] = source.get('bootable', False)
        volume['image_metadata'] = source.get('image_metadata')
    volumes(cloud)[volume['id']] = volume
    cloud.record('volume', volume['id'], 'status', None, status)
    if status == 'creating':
        def created():
            if volume['status'] == 'creating':
                _set_status(cloud, 'volume', volume, 'available')
        cloud.later('volume_create', created)
    return volume


def new_snapshot(cloud, volume, ctx, name=None, description=None,
                 metadata=None):
    now = time.time()
    snap = {
        'id': cloud_mod.new_id(), 'name': name, 'description': description,
        'volume_id': volume['id'], 'size': volume['size'],
        'status': 'creating', 'metadata': dict(metadata or {}),
        'project_id': ctx['project_id'], 'user_id': ctx['user_id'],
        'created_at': now, 'updated_at': now,
    }
    snapshots(cloud)[snap['id']] = snap
    cloud.record('volume_snapshot', snap['id'], 'status', None, 'creating')
    return snap


def _take_fault(cloud, server):
    def matches(rule):
        return (rule['phase'] == 'volume_snapshot'
                and rule.get('operation', 'any') in ('any', 'createImage')
                and rule.get('server') in (None, server['id'],
                                           server['name']))
    return cloud_mod.take_rule(cloud.op_faults, matches)


def run_snapshot(cloud, snap, server, image_id):
    """Leave 'creating' after the volume_snapshot duration (or a fault).

    The snapshot is one Nova made for an image of ``server``: a fault
    rule of phase volume_snapshot may end it in 'error' or delete it, and
    a capture is recorded when it leaves 'creating'. Its point in time is
    now, when the backend takes the snapshot (after any hold).
    """
    snap['taken'] = time.time()
    delay = cloud.duration('volume_snapshot')
    rule = _take_fault(cloud, server)
    if rule is None:
        cloud.later(delay, _leave_creating, cloud, snap, 'available',
                    server, image_id)
        return
    status = 'deleted' if rule['kind'] == 'volume_snapshot_deleted' else (
        'error')
    cloud.later(delay * float(rule.get('at', 0.5)), _leave_creating, cloud,
                snap, status, server, image_id)


def _leave_creating(cloud, snap, status, server, image_id):
    if snap['status'] != 'creating':
        return
    if status == 'deleted':
        snapshots(cloud).pop(snap['id'], None)
        cloud.record('volume_snapshot', snap['id'], 'status', 'creating',
                     'deleted')
        snap['status'] = 'deleted'
    else:
        _set_status(cloud, 'volume_snapshot', snap, status)
    # started: Nova asked Cinder; ended: the snapshot left 'creating'
    # (Nova thaws the guest then). An error or a deleted snapshot fixed
    # no content.
    cloud.record_capture(
        server['id'], image_id, 'cinder', snap['created_at'],
        point_in_time=snap['taken'] if status == 'available' else None,
        ended=time.time(), task_state=None, snapshot_id=snap['id'],
        volume_id=snap['volume_id'], status=status)


# -- Nova: boot from volume and snapshot_volume_backed --------------------

def _bad(message):
    return rest.error(400, 'badRequest', message)


def _boot_index(bdm):
    try:
        return int(bdm.get('boot_index'))
    except (TypeError, ValueError):
        return None


def _visible(record, ctx):
    return ctx['is_admin'] or record['project_id'] == ctx['project_id']


def plan_boot(cloud, ctx, bdms, image_ref):
    """Check a server's block_device_mapping_v2 as the Nova API does.

    Return (plan, error): plan lists the volumes to attach, each a dict
    with volume (an existing one) or source (image/snapshot/blank) and
    the mapping; error is a Response.
    """
    if not isinstance(bdms, list) or not all(
            isinstance(b, dict) for b in bdms):
        return None, _bad('Invalid input for field/attribute '
                          'block_device_mapping_v2.')
    roots = [b for b in bdms if _boot_index(b) == 0]
    if not image_ref and not roots:
        return None, _bad('Block Device Mapping is Invalid: Boot sequence '
                          'for the instance and image/block device mapping '
                          'combination is not valid.')
    plan = []
    for bdm in bdms:
        source = bdm.get('source_type') or 'blank'
        dest = bdm.get('destination_type') or (
            'local' if source == 'blank' else 'volume')
        if dest != 'volume':
            continue
        item = {'bdm': bdm, 'source': source, 'boot_index': _boot_index(bdm),
                'delete_on_termination': bool(
                    bdm.get('delete_on_termination', False))}
        uuid = bdm.get('uuid')
        size = bdm.get('volume_size')
        if source == 'volume':
            volume = volumes(cloud).get(uuid or '')
            if volume is None or not _visible(volume, ctx):
                return None, _bad('Block Device Mapping is Invalid: failed '
                                  'to get volume %s.' % uuid)
            if volume['status'] != 'available' or any(
                    p.get('volume') is volume for p in plan):
                return None, _bad(
                    "Invalid volume: volume '%s' status must be 'available'."
                    " Currently in '%s'" % (uuid, volume['status']))
            item['volume'] = volume
        elif source == 'snapshot':
            snap = snapshots(cloud).get(uuid or '')
            if snap is None or not _visible(snap, ctx):
                return None, _bad('Block Device Mapping is Invalid: failed '
                                  'to get snapshot %s.' % uuid)
            if snap['status'] != 'available':
                return None, _bad('Invalid snapshot: snapshot %s status '
                                  'must be available' % uuid)
            item.update(snapshot=snap, size=size or snap['size'])
        else:
            if source == 'image':
                image = cloud.images.get(uuid or '')
                if image is None or image['status'] != 'active':
                    return None, _bad('Image %s could not be found.' % uuid)
                item['image'] = image
            try:
                item['size'] = int(size)
                if item['size'] <= 0:
                    raise ValueError
            except (TypeError, ValueError):
                return None, _bad(
                    "Images with destination_type 'volume' need to have a "
                    "non-zero size specified" if source == 'image' else
                    "Blank volumes (source: 'blank', dest: 'volume') need "
                    "to have non-zero size")
        plan.append(item)
    return plan, None


def attach_boot(cloud, server, ctx, plan):
    """Create (when needed) and attach the planned volumes to server."""
    server['volumes'] = []
    server['bdms'] = []
    letters = iter('abcdefghijklmnopqrstuvwxyz')
    plan = sorted(plan, key=lambda p: (
        p['boot_index'] is None or p['boot_index'] < 0,
        p['boot_index'] or 0))
    for item in plan:
        volume = item.get('volume')
        if volume is None:
            image = item.get('image')
            if image is not None and item['boot_index'] == 0:
                server['image_base'] = image['id']
            volume = new_volume(
                cloud, ctx, item['size'],
                name='' if item['source'] != 'blank' else (
                    '%s-blank-vol' % server['id']),
                description='', image=image, snapshot=item.get('snapshot'),
                status='available')
        device = item['bdm'].get('device_name') or '/dev/vd' + next(letters)
        attach(cloud, server, volume, device, item['boot_index'],
               item['delete_on_termination'])


def attach(cloud, server, volume, device, boot_index=None,
           delete_on_termination=False):
    now = time.time()
    volume['attachments'].append({
        'id': volume['id'], 'attachment_id': cloud_mod.new_id(),
        'volume_id': volume['id'], 'server_id': server['id'],
        'host_name': server['host'], 'device': device, 'attached_at': now})
    volume['attach_status'] = 'attached'
    _set_status(cloud, 'volume', volume, 'in-use')
    server.setdefault('volumes', [])
    server.setdefault('bdms', [])
    if volume['id'] not in server['volumes']:
        server['volumes'].append(volume['id'])
    server['bdms'].append({
        'volume_id': volume['id'], 'device_name': device,
        'boot_index': boot_index, 'volume_size': volume['size'],
        'delete_on_termination': bool(delete_on_termination)})


def boot_volume(cloud, server, image, size):
    """Give a control-made volume-backed server its root volume."""
    ctx = {'project_id': server['project_id'], 'user_id': server['user_id']}
    old = server.get('volumes') or []
    server['volumes'] = []
    server['bdms'] = []
    volume = new_volume(cloud, ctx, size or 1, name='',
                        description='', image=image, status='available',
                        vid=old[0] if old else None)
    attach(cloud, server, volume, '/dev/vda', 0, True)
    return volume


def server_bdms(cloud, server):
    """The volume mappings of a server, made real if still missing."""
    if not server.get('bdms'):
        image = cloud.images.get(server.get('image_base') or '')
        flavor = cloud.flavors.get(server['flavor_id']) or {}
        boot_volume(cloud, server, image, flavor.get('disk'))
    return server['bdms']


def snapshot_server(cloud, server, ctx, name, props):
    """createImage of a volume-backed server; return the image.

    As nova 34 snapshot_volume_backed: no task state; a snapshot per
    volume (with the caller's project), still 'creating' when the API
    answers; a zero-size image, active at once, with the mappings in
    block_device_mapping and no instance_uuid or image_type.
    """
    mappings = []
    made = []
    for bdm in server_bdms(cloud, server):
        volume = volumes(cloud).get(bdm['volume_id'])
        if volume is None:
            continue
        snap = new_snapshot(cloud, volume, ctx, 'snapshot for %s' % name,
                            volume['description'])
        made.append(snap)
        mappings.append({
            'source_type': 'snapshot', 'destination_type': 'volume',
            'boot_index': bdm['boot_index'], 'snapshot_id': snap['id'],
            'device_name': bdm['device_name'],
            'volume_size': volume['size'],
            'delete_on_termination': bdm['delete_on_termination'],
            'disk_bus': 'virtio', 'device_type': 'disk',
            'guest_format': None, 'no_device': None, 'image_id': None,
            'volume_id': None, 'tag': None, 'volume_type': None,
            'encrypted': None, 'encryption_secret_uuid': None,
            'encryption_format': None, 'encryption_options': None})
    props = {k: v for k, v in props.items()
             if k not in ('instance_uuid', 'image_type')}
    props.update({'block_device_mapping': json.dumps(mappings),
                  'bdm_v2': 'True', 'root_device_name': '/dev/vda'})
    flavor = cloud.flavors[server['flavor_id']]
    image = glance.new_image(cloud, server['project_id'], name,
                             properties=props, min_disk=flavor['disk'],
                             disk_format='raw', container_format='bare')
    # size 0: Nova uploads empty data at once ("force_activate").
    glance.finish_upload(cloud, image, size=0)

    def proceed():
        for snap in made:
            run_snapshot(cloud, snap, server, image['id'])
    cloud.checkpoint(server, 'volume_snapshot', proceed, key=image['id'])
    return image


def detach_gone(cloud):
    """Detach the volumes of deleted servers, as their termination does."""
    for volume in list(volumes(cloud).values()):
        for att in list(volume['attachments']):
            server = cloud.servers.get(att['server_id'])
            if server is not None and server['vm_state'] != 'deleted':
                continue
            volume['attachments'].remove(att)
            bdm = next((b for b in (server or {}).get('bdms', [])
                        if b['volume_id'] == volume['id']), None)
            if not volume['attachments']:
                volume['attach_status'] = 'detached'
                _set_status(cloud, 'volume', volume, 'available')
            if bdm and bdm['delete_on_termination'] and not any(
                    s['volume_id'] == volume['id']
                    for s in snapshots(cloud).values()):
                _set_status(cloud, 'volume', volume, 'deleting')
                volumes(cloud).pop(volume['id'], None)
                cloud.record('volume', volume['id'], 'status', 'deleting',
                             'deleted')


def attachments_view(cloud, server, mv):
    """Nova's GET /servers/{id}/os-volume_attachments entries."""
    result = []
    for bdm in server.get('bdms', []):
        body = {'id': bdm['volume_id'], 'serverId': server['id'],
                'volumeId': bdm['volume_id'], 'device': bdm['device_name']}
        if mv >= (2, 70):
            body['tag'] = None
        if mv >= (2, 79):
            body['delete_on_termination'] = bdm['delete_on_termination']
        if mv >= (2, 89):
            volume = volumes(cloud).get(bdm['volume_id']) or {}
            body.pop('id')
            body['attachment_id'] = next(
                (a['attachment_id'] for a in volume.get('attachments', [])
                 if a['server_id'] == server['id']), None)
            body['bdm_uuid'] = cloud_mod.new_id()
        result.append(body)
    return result


# -- the Cinder API -------------------------------------------------------

def negotiate(req):
    """Set req.microversion from OpenStack-API-Version: volume X.Y."""
    value = None
    for item in (req.headers.get('OpenStack-API-Version') or '').split(','):
        service, _sep, version = item.strip().partition(' ')
        if service.lower() == 'volume':
            value = version.strip()
    if not value:
        req.microversion = MIN_VERSION
        return None
    if value.lower() == 'latest':
        req.microversion = MAX_VERSION
        return None
    found = re.match(r'^([1-9]\d*)\.([1-9]\d*|0)$', value)
    if not found:
        return _bad('API Version String %s is of invalid format. Must be '
                    'of format MajorNum.MinorNum.' % value)
    version = (int(found.group(1)), int(found.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        return rest.error(
            406, 'computeFault',
            'Version %d.%d is not supported by the API. Minimum is %d.%d '
            'and maximum is %d.%d.' % (version + MIN_VERSION + MAX_VERSION))
    req.microversion = version
    return None


def decorate(req, resp):
    if req.microversion is None:
        return
    resp.headers['OpenStack-API-Version'] = 'volume %d.%d' % (
        req.microversion)
    resp.headers['Vary'] = 'OpenStack-API-Version'


def _time(value):
    return cloud_mod.isotime(value, micro=True, zulu=False)


def _version(cloud):
    return rest.version_doc(
        'v3.0', MIN_VERSION, MAX_VERSION, '2023-08-31T00:00:00Z',
        [{'rel': 'describedby', 'type': 'text/html',
          'href': 'https://docs.openstack.org/'},
         {'rel': 'self', 'href': cloud.base_url + PREFIX + '/'}],
        'application/vnd.openstack.volume+json;version=3')


def version(cloud, req):
    return rest.Response(200, {'versions': [_version(cloud)]})


def _links(cloud, kind, project_id, rid):
    path = '%s/%s/%s' % (project_id, kind, rid)
    return [{'rel': 'self',
             'href': '%s%s/%s' % (cloud.base_url, PREFIX, path)},
            {'rel': 'bookmark',
             'href': '%s/volume/%s' % (cloud.base_url, path)}]


def volume_view(cloud, vol, mv, ctx):
    attachments = []
    for att in vol['attachments']:
        entry = {k: att[k] for k in ('id', 'attachment_id', 'volume_id',
                                     'server_id', 'device')}
        entry['host_name'] = att['host_name'] if ctx['is_admin'] else None
        entry['attached_at'] = _time(att['attached_at'])
        attachments.append(entry)
    body = {
        'id': vol['id'], 'name': vol['name'], 'status': vol['status'],
        'size': vol['size'], 'availability_zone': 'nova',
        'created_at': _time(vol['created_at']),
        'updated_at': _time(vol['updated_at']),
        'attachments': attachments, 'description': vol['description'],
        'volume_type': VOLUME_TYPE, 'snapshot_id': vol['snapshot_id'],
        'source_volid': None, 'metadata': dict(vol['metadata']),
        'links': _links(cloud, 'volumes', vol['project_id'], vol['id']),
        'user_id': vol['user_id'],
        'bootable': 'true' if vol['bootable'] else 'false',
        'encrypted': False, 'replication_status': None,
        'consistencygroup_id': None, 'multiattach': False,
        'migration_status': None,
        'os-vol-tenant-attr:tenant_id': vol['project_id'],
    }
    if vol['image_metadata']:
        body['volume_image_metadata'] = dict(vol['image_metadata'])
    if ctx['is_admin']:
        body.update({'os-vol-host-attr:host': HOST,
                     'os-vol-mig-status-attr:migstat': None,
                     'os-vol-mig-status-attr:name_id': None})
    if mv >= (3, 13):
        body['group_id'] = None
    if mv >= (3, 21):
        body['provider_id'] = None
    if mv >= (3, 48):
        body['shared_targets'] = False
        body['service_uuid'] = '5a5b5c5d-0000-4000-8000-00000000c1d3'
    if mv >= (3, 61) and ctx['is_admin']:
        body['cluster_name'] = None
    if mv >= (3, 63):
        body['volume_type_id'] = VOLUME_TYPE_ID
    if mv >= (3, 65):
        body['consumes_quota'] = True
    return body


def snapshot_view(cloud, snap, mv):
    body = {
        'id': snap['id'], 'name': snap['name'],
        'description': snap['description'], 'volume_id': snap['volume_id'],
        'status': snap['status'], 'size': snap['size'],
        'metadata': dict(snap['metadata']),
        'created_at': _time(snap['created_at']),
        'updated_at': _time(snap['updated_at']),
        'os-extended-snapshot-attributes:progress':
            '100%' if snap['status'] == 'available' else '0%',
        'os-extended-snapshot-attributes:project_id': snap['project_id'],
    }
    body.update(rest.since(
        mv,
        ((3, 14), 'group_snapshot_id', None),
        ((3, 41), 'user_id', snap['user_id']),
        ((3, 65), 'consumes_quota', True)))
    return body


def _not_found(kind, rid):
    return rest.error(404, 'itemNotFound',
                      '%s %s could not be found.' % (kind, rid))


def _check_project(req):
    if req.params['project_id'] != req.ctx['project_id'] and not (
            req.ctx['is_admin']):
        return _bad('Malformed request url')
    return None


def _filtered(req, records, fields):
    ctx = req.ctx
    all_projects = ctx['is_admin'] and req.arg(
        'all_tenants', req.arg('all_projects', '0')).lower() in (
        '1', 'true', 'yes')
    wanted = {f: req.arg(f) for f in fields if req.arg(f) is not None}
    project = req.arg('project_id') if all_projects else None
    result = []
    for record in records:
        if all_projects:
            if project and record['project_id'] != project:
                continue
        elif record['project_id'] != ctx['project_id']:
            continue
        if any(str(record.get(f)) != v for f, v in wanted.items()):
            continue
        result.append(record)
    return result


def _list(cloud, req, table, key, view, fields):
    error = _check_project(req)
    if error:
        return error
    try:
        limit = min(int(req.arg('limit', MAX_LIMIT)), MAX_LIMIT)
        if limit < 0:
            raise ValueError
    except ValueError:
        return _bad('Invalid input received: limit must be an integer >= 0')
    with cloud.lock:
        detach_gone(cloud)
        records = _filtered(req, table(cloud).values(), fields)
        records.sort(key=lambda r: (r['created_at'], r['id']), reverse=True)
        marker = req.arg('marker')
        if marker:
            ids = [r['id'] for r in records]
            if marker not in ids:
                return _not_found('Marker', marker)
            records = records[ids.index(marker) + 1:]
        page = records[:limit]
        items = [view(r) for r in page]
    body = {key: items}
    # As Cinder's _get_collection_links: a next link on every full page,
    # of the limit asked for or of osapi_max_limit.
    if page and len(page) == limit:
        params = [(k, v) for k, vs in req.query.items() for v in vs
                  if k != 'marker']
        params.append(('marker', page[-1]['id']))
        body[key + '_links'] = [{'rel': 'next', 'href': '%s%s?%s' % (
            cloud.base_url, req.path, urllib.parse.urlencode(params))}]
    return rest.Response(200, body)


def list_volumes_detail(cloud, req):
    return _list(cloud, req, volumes, 'volumes',
                 lambda v: volume_view(cloud, v, req.microversion, req.ctx),
                 ('name', 'status'))


def list_snapshots(cloud, req):
    return _list(cloud, req, snapshots, 'snapshots',
                 lambda s: snapshot_view(cloud, s, req.microversion),
                 ('name', 'status', 'volume_id'))


def _get(cloud, req, table, kind):
    with cloud.lock:
        detach_gone(cloud)
        record = table(cloud).get(req.params['id'])
    if record is None or not _visible(record, req.ctx):
        return None, _not_found(kind, req.params['id'])
    return record, _check_project(req)


def show_volume(cloud, req):
    with cloud.lock:
        vol, error = _get(cloud, req, volumes, 'Volume')
        if error:
            return error
        return rest.Response(200, {'volume': volume_view(
            cloud, vol, req.microversion, req.ctx)})


def show_snapshot(cloud, req):
    with cloud.lock:
        snap, error = _get(cloud, req, snapshots, 'Snapshot')
        if error:
            return error
        return rest.Response(200, {'snapshot': snapshot_view(
            cloud, snap, req.microversion)})


def create_volume(cloud, req):
    error = _check_project(req)
    if error:
        return error
    data = (req.json() or {}).get('volume')
    if not isinstance(data, dict):
        return _bad("Invalid input for field/attribute volume. Value: "
                    "None. None is not of type 'object'")
    with cloud.lock:
        image = snap = None
        if data.get('imageRef'):
            image = cloud.images.get(data['imageRef'])
            if image is None or image['status'] != 'active':
                return _bad('Invalid image identifier or unable to access '
                            'requested image.')
        if data.get('snapshot_id'):
            snap = snapshots(cloud).get(data['snapshot_id'])
            if snap is None or not _visible(snap, req.ctx):
                return _not_found('Snapshot', data['snapshot_id'])
            if snap['status'] != 'available':
                return _bad('Invalid snapshot: Originating snapshot status '
                            'must be one of available values')
        size = data.get('size') or (snap and snap['size'])
        try:
            size = int(size)
            if size <= 0:
                raise ValueError
        except (TypeError, ValueError):
            return _bad("Invalid input for field/attribute size. Value: "
                        "%s. %s is not valid" % (data.get('size'),
                                                 data.get('size')))
        volume = new_volume(cloud, req.ctx, size, data.get('name'),
                            data.get('description'), image, snap)
        volume['metadata'] = {k: str(v) for k, v in (
            data.get('metadata') or {}).items()}
        return rest.Response(202, {'volume': volume_view(
            cloud, volume, req.microversion, req.ctx)})


def register(router):
    router.add('GET', PREFIX, version, 'volume', public=True)
    base = PREFIX + '/{project_id}'
    for template, handler in (
            ('/volumes/detail', list_volumes_detail),
            ('/volumes/{id}', show_volume),
            ('/snapshots/detail', list_snapshots),
            ('/snapshots/{id}', show_snapshot)):
        router.add('GET', base + template, handler, 'volume')
    router.add('POST', base + '/volumes', create_volume, 'volume')
