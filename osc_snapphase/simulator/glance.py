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

"""Glance v2: images, their statuses, listing filters and paging."""

import hashlib
import secrets
import time
import urllib.parse

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import rest

BASE_FIELDS = (
    'id', 'name', 'status', 'visibility', 'protected', 'os_hidden',
    'checksum', 'os_hash_algo', 'os_hash_value', 'owner', 'size',
    'virtual_size', 'min_ram', 'min_disk', 'disk_format',
    'container_format', 'tags',
)
PAGING_PARAMS = ('limit', 'marker', 'sort_key', 'sort_dir', 'sort',
                 'member_status')
DEFAULT_LIMIT = 25
MAX_LIMIT = 1000


def new_image(cloud, owner, name, status='queued', visibility='private',
              properties=None, **fields):
    """Create an image record in Glance and return it."""
    now = time.time()
    image = {
        'id': cloud_mod.new_id(), 'name': name, 'status': status,
        'visibility': visibility, 'protected': False, 'os_hidden': False,
        'checksum': None, 'os_hash_algo': None, 'os_hash_value': None,
        'owner': owner, 'size': None, 'virtual_size': None, 'min_ram': 0,
        'min_disk': 0, 'disk_format': 'qcow2', 'container_format': 'bare',
        'tags': [], 'created_at': now, 'updated_at': now,
        'properties': dict(properties or {}),
    }
    image.update(fields)
    cloud.images[image['id']] = image
    cloud.record('image', image['id'], 'status', None, status)
    return image


def finish_upload(cloud, image, size=None):
    """Give the image its data attributes and make it active."""
    data = secrets.token_bytes(64)
    image['size'] = 21430272 if size is None else size
    image['virtual_size'] = None if size == 0 else 117440512
    image['checksum'] = hashlib.md5(data).hexdigest()
    image['os_hash_algo'] = 'sha512'
    image['os_hash_value'] = hashlib.sha512(data).hexdigest()
    cloud.set_image_status(image, 'active')


def render(image):
    body = {field: image[field] for field in BASE_FIELDS}
    body['tags'] = list(image['tags'])
    body['created_at'] = cloud_mod.isotime(image['created_at'])
    body['updated_at'] = cloud_mod.isotime(image['updated_at'])
    body['self'] = '/v2/images/%s' % image['id']
    body['file'] = '/v2/images/%s/file' % image['id']
    body['schema'] = '/v2/schemas/image'
    for key, value in image['properties'].items():
        body.setdefault(key, value)
    return body


def _not_found(image_id):
    return rest.html_error(404, 'Not Found',
                           'No image found with ID %s' % image_id)


def _visible(image, ctx, visibility=None):
    if visibility:
        if image['visibility'] != visibility:
            return False
    elif image['visibility'] == 'community':
        return ctx['is_admin'] or image['owner'] == ctx['project_id']
    return (ctx['is_admin'] or image['visibility'] == 'public'
            or image['owner'] == ctx['project_id'])


def _value(image, key):
    if key in BASE_FIELDS:
        return image[key]
    return image['properties'].get(key)


def _matches(value, wanted):
    """Compare like Glance filters do, including the in: operator."""
    choices = wanted[3:].split(',') if wanted.startswith('in:') else [wanted]
    if isinstance(value, bool):
        value = str(value).lower()
    return any(str(value) == choice for choice in choices)


def _sort_keys(req):
    keys = []
    for item in req.query.get('sort', []):
        for part in item.split(','):
            key, _sep, direction = part.strip().partition(':')
            keys.append((key, direction or 'desc'))
    dirs = req.query.get('sort_dir', [])
    for index, key in enumerate(req.query.get('sort_key', [])):
        direction = dirs[index] if index < len(dirs) else (
            dirs[-1] if dirs else 'desc')
        keys.append((key, direction))
    return keys or [('created_at', 'desc')]


def _sorted(images, keys):
    result = sorted(images, key=lambda i: i['id'], reverse=True)
    for key, direction in reversed(keys):
        result.sort(key=lambda i: (_value(i, key) is None,
                                   str(i.get(key, _value(i, key)))),
                    reverse=(direction == 'desc'))
    return result


def list_images(cloud, req):
    ctx = req.ctx
    try:
        limit = min(int(req.arg('limit', DEFAULT_LIMIT)), MAX_LIMIT)
        if limit < 0:
            raise ValueError
    except ValueError:
        return rest.html_error(400, 'Bad Request', 'limit param must be '
                               'positive')
    filters = {k: v[-1] for k, v in req.query.items()
               if k not in PAGING_PARAMS}
    visibility = filters.pop('visibility', None)
    if visibility == 'all':
        visibility = None
    with cloud.lock:
        images = [i for i in cloud.images.values()
                  if _visible(i, ctx, visibility)]
        for key, wanted in filters.items():
            images = [i for i in images if _matches(_value(i, key), wanted)]
        images = _sorted(images, _sort_keys(req))
        marker = req.arg('marker')
        if marker:
            ids = [i['id'] for i in images]
            if marker not in ids:
                return rest.html_error(
                    400, 'Bad Request',
                    'marker %s could not be found.' % marker)
            images = images[ids.index(marker) + 1:]
        page = images[:limit]
        body = {'images': [render(i) for i in page],
                'first': '/v2/images', 'schema': '/v2/schemas/images'}
    if page and len(page) == limit:
        params = [(k, v) for k, vs in req.query.items() for v in vs
                  if k not in ('marker', 'limit')]
        params += [('marker', page[-1]['id']), ('limit', str(limit))]
        body['next'] = '/v2/images?' + urllib.parse.urlencode(params)
    return rest.Response(200, body)


def show_image(cloud, req):
    image_id = req.params['id']
    with cloud.lock:
        image = cloud.images.get(image_id)
        if image is None or not _visible(image, req.ctx, image[
                'visibility'] if image['visibility'] == 'community' else None):
            return _not_found(image_id)
        return rest.Response(200, render(image))


def delete_image(cloud, req):
    image_id = req.params['id']
    with cloud.lock:
        image = cloud.images.get(image_id)
        if image is None or not _visible(image, req.ctx):
            return _not_found(image_id)
        if image['owner'] != req.ctx['project_id'] and not req.ctx[
                'is_admin']:
            return rest.html_error(403, 'Forbidden',
                                   'You are not permitted to delete this '
                                   'image.')
        if image['protected']:
            return rest.html_error(403, 'Forbidden',
                                   'Image %s is protected and cannot be '
                                   'deleted.' % image_id)
        cloud.delete_image(image_id)
    return rest.Response(204)


def versions(cloud, req):
    href = cloud.base_url + '/image/v2/'
    values = [{'id': 'v2.%d' % minor,
               'status': 'CURRENT' if minor == 16 else 'SUPPORTED',
               'links': [{'rel': 'self', 'href': href}]}
              for minor in range(16, -1, -1)]
    return rest.Response(300, {'versions': values})


def register(router):
    router.add('GET', '/image', versions, 'image', public=True)
    router.add('GET', '/image/v2/images', list_images, 'image')
    router.add('GET', '/image/v2/images/{id}', show_image, 'image')
    router.add('DELETE', '/image/v2/images/{id}', delete_image, 'image')
