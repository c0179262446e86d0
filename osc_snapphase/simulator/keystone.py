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

"""Keystone v3: version discovery, password tokens and the catalog."""

import base64
import secrets
import time

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import rest

MEDIA_TYPES = [{'base': 'application/json',
                'type': 'application/vnd.openstack.identity-v3+json'}]


def _version(cloud):
    return {
        'id': 'v3.14', 'status': 'stable',
        'updated': '2020-04-07T00:00:00Z', 'media-types': MEDIA_TYPES,
        'links': [{'rel': 'self',
                   'href': cloud.base_url + '/identity/v3/'}],
    }


def versions(cloud, req):
    return rest.Response(300, {'versions': {'values': [_version(cloud)]}})


def version(cloud, req):
    return rest.Response(200, {'version': _version(cloud)})


def _unauthorized(message='The request you have made requires '
                          'authentication.'):
    return rest.Response(401, {'error': {
        'code': 401, 'title': 'Unauthorized', 'message': message}})


def _find_user(cloud, spec):
    for user in cloud.users.values():
        if spec.get('id') == user['id'] or spec.get('name') == user['name']:
            return user
    return None


def _find_project(cloud, spec):
    for project in cloud.projects.values():
        if spec.get('id') == project['id'] or (
                spec.get('name') == project['name']):
            return project
    return None


def new_token(cloud, user, project):
    """Issue and remember a token; return (token, record)."""
    token = 'simtok-' + secrets.token_hex(16)
    now = time.time()
    record = {
        'user': user['name'], 'project': project and project['name'],
        'issued': now, 'expires': now + cloud.config['token_lifetime'],
        'revoked': False,
        'audit_id': base64.urlsafe_b64encode(
            secrets.token_bytes(16)).decode().rstrip('='),
    }
    cloud.tokens[token] = record
    return token, record


def context(cloud, token):
    """Return the caller context of a valid token, or None."""
    record = cloud.tokens.get(token or '')
    if record is None or record['revoked'] or (
            record['expires'] <= time.time()):
        return None
    user = cloud.users[record['user']]
    project = cloud.projects.get(record['project'] or '')
    return {
        'token': token, 'user_id': user['id'], 'user_name': user['name'],
        'project_id': project and project['id'],
        'project_name': project and project['name'],
        'roles': list(user['roles']), 'is_admin': 'admin' in user['roles'],
    }


def catalog(cloud, project_id):
    base = cloud.base_url
    volume = '%s/volume/v3/%s' % (base, project_id)

    def entry(stype, name, url):
        return {'type': stype, 'name': name, 'id': name + '-service',
                'endpoints': [{
                    'id': name + '-public', 'interface': 'public',
                    'region': cloud_mod.REGION,
                    'region_id': cloud_mod.REGION, 'url': url}]}
    return [entry('identity', 'keystone', base + '/identity'),
            entry('compute', 'nova', base + '/compute/v2.1'),
            entry('image', 'glance', base + '/image'),
            entry('block-storage', 'cinder', volume),
            entry('volumev3', 'cinderv3', volume)]


def token_body(cloud, record):
    user = cloud.users[record['user']]
    body = {
        'methods': ['password'],
        'user': {'id': user['id'], 'name': user['name'],
                 'domain': dict(cloud_mod.DOMAIN),
                 'password_expires_at': None},
        'audit_ids': [record['audit_id']],
        'expires_at': cloud_mod.isotime(record['expires'], micro=True),
        'issued_at': cloud_mod.isotime(record['issued'], micro=True),
    }
    project = cloud.projects.get(record['project'] or '')
    if project:
        body['project'] = {'id': project['id'], 'name': project['name'],
                           'domain': dict(cloud_mod.DOMAIN)}
        body['is_domain'] = False
        body['roles'] = [{'id': role + '-role-id', 'name': role}
                         for role in user['roles']]
        body['catalog'] = catalog(cloud, project['id'])
    return {'token': body}


def issue(cloud, req):
    data = req.json() or {}
    try:
        identity = data['auth']['identity']
        methods = identity['methods']
    except (KeyError, TypeError):
        return rest.error(400, 'error', 'Expecting to find auth in request.')
    with cloud.lock:
        if 'password' in methods:
            spec = identity.get('password', {}).get('user', {})
            user = _find_user(cloud, spec)
            if user is None or spec.get('password') != user['password']:
                return _unauthorized()
        elif 'token' in methods:
            old = context(cloud, identity.get('token', {}).get('id'))
            if old is None:
                return _unauthorized()
            user = cloud.users[old['user_name']]
        else:
            return _unauthorized()
        scope = (data['auth'].get('scope') or {}).get('project')
        project = None
        if scope:
            project = _find_project(cloud, scope)
            if project is None or project['name'] != user['project']:
                return _unauthorized(
                    'You are not authorized to perform the requested '
                    'action: identity:get_project.')
        elif data['auth'].get('scope') is None:
            project = None
        token, record = new_token(cloud, user, project)
        body = token_body(cloud, record)
    return rest.Response(201, body, {'X-Subject-Token': token})


def validate(cloud, req):
    with cloud.lock:
        if context(cloud, req.headers.get('X-Auth-Token')) is None:
            return _unauthorized()
        subject = req.headers.get('X-Subject-Token')
        if context(cloud, subject) is None:
            return rest.Response(404, {'error': {
                'code': 404, 'title': 'Not Found',
                'message': 'Could not find token: %s' % subject}})
        body = token_body(cloud, cloud.tokens[subject])
    return rest.Response(200, body, {'X-Subject-Token': subject})


def revoke(cloud, req):
    with cloud.lock:
        if context(cloud, req.headers.get('X-Auth-Token')) is None:
            return _unauthorized()
        record = cloud.tokens.get(req.headers.get('X-Subject-Token', ''))
        if record is None:
            return rest.Response(404, {'error': {
                'code': 404, 'title': 'Not Found',
                'message': 'Could not find token.'}})
        record['revoked'] = True
    return rest.Response(204)


def unauthorized_nova():
    return _unauthorized()


def register(router):
    router.add('GET', '/identity', versions, 'keystone', public=True)
    router.add('GET', '/identity/v3', version, 'keystone', public=True)
    router.add('POST', '/identity/v3/auth/tokens', issue, 'keystone',
               public=True)
    router.add('GET', '/identity/v3/auth/tokens', validate, 'keystone',
               public=True)
    router.add('DELETE', '/identity/v3/auth/tokens', revoke, 'keystone',
               public=True)
