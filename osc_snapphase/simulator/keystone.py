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

"""Keystone v3: version discovery, password tokens and the catalog.

Token and discovery bodies are keystoneauth1's fixtures, the structures
keystoneauth itself is tested with.
"""

import datetime
import secrets
import time

try:
    from keystoneauth1 import fixture
except ImportError as exc:   # pragma: no cover - a missing package
    # keystoneauth1.fixture imports the fixtures package.
    raise ImportError('the simulator needs the fixtures package: pip '
                      'install "osc-snapphase[simulator]" (or fixtures): '
                      '%s' % exc) from exc

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import rest

DOMAIN = cloud_mod.DOMAIN


def _v3(cloud):
    return fixture.V3Discovery(cloud.base_url + '/identity/v3/',
                               id='v3.14', xml=False, status='stable')


def versions(cloud, req):
    body = fixture.DiscoveryList(v2=False, v3=False)
    body.add_version(_v3(cloud))
    return rest.Response(300, body)


def version(cloud, req):
    return rest.Response(200, {'version': _v3(cloud)})


def unauthorized(message='The request you have made requires '
                 'authentication.'):
    return rest.Response(401, {'error': {
        'code': 401, 'title': 'Unauthorized', 'message': message}})


def _find(table, spec):
    for record in table.values():
        if spec.get('id') == record['id'] or spec.get('name') == (
                record['name']):
            return record
    return None


def _utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


def catalog(cloud, project_id):
    """(type, name, URL) of each service in the catalog."""
    base = cloud.base_url
    volume = '%s/volume/v3/%s' % (base, project_id)
    return (('identity', 'keystone', base + '/identity'),
            ('compute', 'nova', base + '/compute/v2.1'),
            ('image', 'glance', base + '/image'),
            ('block-storage', 'cinder', volume),
            ('volumev3', 'cinderv3', volume))


def new_token(cloud, user, project):
    """Issue and remember a token; return (token ID, V3Token).

    The expired tokens are forgotten (they were refused already).
    """
    now = time.time()
    expires = now + cloud.config['token_lifetime']
    body = fixture.V3Token(
        user_id=user['id'], user_name=user['name'],
        user_domain_id=DOMAIN['id'], user_domain_name=DOMAIN['name'],
        methods=['password'], issued=_utc(now), expires=_utc(expires),
        audit_id=secrets.token_urlsafe(16))
    if project:
        body.set_project_scope(id=project['id'], name=project['name'],
                               domain_id=DOMAIN['id'],
                               domain_name=DOMAIN['name'], is_domain=False)
        for role in user['roles']:
            body.add_role(name=role, id=role + '-role-id')
        for stype, name, url in catalog(cloud, project['id']):
            service = body.add_service(stype, name=name, id=name + '-service')
            service.add_endpoint('public', url, region=cloud_mod.REGION,
                                 id=name + '-public')
    token = 'simtok-' + secrets.token_hex(16)
    for old in [t for t, r in cloud.tokens.items() if r['expires'] <= now]:
        del cloud.tokens[old]
    if cloud.serve_secrets:
        cloud.issued_tokens.append(token)
    cloud.tokens[token] = {'user': user['name'],
                           'project': project and project['name'],
                           'expires': expires, 'revoked': False}
    return token, body


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


def issue(cloud, req):
    """POST /v3/auth/tokens with the password method."""
    data = req.json() or {}
    try:
        identity = data['auth']['identity']
        methods = identity['methods']
    except (KeyError, TypeError):
        return rest.error(400, 'error', 'Expecting to find auth in request.')
    if 'password' not in methods:
        return unauthorized()
    with cloud.lock:
        spec = identity.get('password', {}).get('user', {})
        user = _find(cloud.users, spec)
        if user is None or spec.get('password') != user['password']:
            return unauthorized()
        scope = (data['auth'].get('scope') or {}).get('project')
        project = None
        if scope:
            project = _find(cloud.projects, scope)
            if project is None or project['name'] != user['project']:
                return unauthorized(
                    'You are not authorized to perform the requested '
                    'action: identity:get_project.')
        token, body = new_token(cloud, user, project)
    return rest.Response(201, body, {'X-Subject-Token': token})


def register(router):
    router.add('GET', '/identity', versions, 'keystone', public=True)
    router.add('GET', '/identity/v3', version, 'keystone', public=True)
    router.add('POST', '/identity/v3/auth/tokens', issue, 'keystone',
               public=True)
