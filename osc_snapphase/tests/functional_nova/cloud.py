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

"""The real Nova, in-process, behind a minimal Keystone and Glance.

:class:`NovaCloud` is a ``fixtures.Fixture`` that starts, within a few
seconds and in this process:

* Nova's conductor, scheduler and compute services (nova's own functional
  test machinery: sqlite databases for the API, cell0 and cell1, the
  placement fixture, oslo.messaging ``fake://`` RPC with real casts, the
  notification, neutron, cinder and policy fixtures), the compute service
  running :class:`~.driver.SnapshotPhaseDriver`;
* the real Nova API WSGI application (``osapi_compute`` from nova's
  ``api-paste.ini``) on a threading WSGI server on 127.0.0.1; only the
  ``authtoken`` filter of its pipeline is replaced, by one that checks the
  token against the Keystone below and sets the same ``X-*`` headers
  keystonemiddleware sets;
* a minimal Keystone v3 (password auth, tokens with a catalog that points at
  this Nova and Glance; bodies built by ``keystoneauth1.fixture.V3Token``);
* a Glance v2 HTTP view of Nova's Glance fixture (``queued``, ``saving``,
  ``active`` image statuses as in real Glance);
* a Cinder v3 HTTP view of Nova's Cinder fixture (:mod:`.cinder`: volumes
  and snapshots whose ``creating`` state the test holds and releases),
  catalog types ``block-storage`` and ``volumev3``.

The unmodified ``openstack`` executable works against it through the
``clouds.yaml`` the fixture writes (clouds ``nova-admin`` and ``nova-demo``)
and :attr:`NovaCloud.env`.  Run ``python -m
osc_snapphase.tests.functional_nova.cloud`` to get one for manual use.
"""

import argparse
import copy
import datetime
import json
import logging
import os
import socketserver
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import warnings
from wsgiref import simple_server

import fixtures
from keystoneauth1 import fixture as ks_fixture
import requests
from sqlalchemy import exc as sqla_exc

# The package __init__ selects native threads before nova is imported.
from osc_snapphase.tests import functional_nova  # noqa: F401
from osc_snapphase.tests.functional_nova import cinder
from osc_snapphase.tests.functional_nova import driver
from osc_snapphase.tests.functional_nova import http

from nova.api.openstack import wsgi_app  # noqa: E402
from nova.api import wsgi as nova_wsgi  # noqa: E402
from nova.compute import manager as compute_manager  # noqa: E402
import nova.conf  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import exception as nova_exception  # noqa: E402
from nova.tests.fixtures import glance as glance_fixture  # noqa: E402
from nova.tests.functional import integrated_helpers  # noqa: E402

# Every HTTP view of the test doubles answers JSON the same way.
_json_response = http.json_response

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

# nova loads compute_driver as 'nova.virt.' + the option value, so the fake
# driver module is registered under that namespace while the cloud runs.
DRIVER_MODULE = 'nova.virt.snapphase_fake'
DRIVER = 'snapphase_fake.SnapshotPhaseDriver'
PASSWORD = 'secret'
REGION = 'RegionOne'
MICROVERSION = '2.96'


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).strftime(
            '%Y-%m-%dT%H:%M:%SZ')
    return value


def _paste_config():
    """Find nova's api-paste.ini (installed under <prefix>/etc/nova)."""
    candidates = [os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini')]
    try:
        from importlib import metadata
        for f in metadata.distribution('nova').files or ():
            if str(f).endswith('etc/nova/api-paste.ini'):
                candidates.append(str(f.locate()))
    except Exception:  # pragma: no cover - best effort
        pass
    for path in candidates:
        if os.path.exists(path):
            return os.path.abspath(path)
    raise RuntimeError('nova api-paste.ini not found in %s' % candidates)


# ---------------------------------------------------------------- HTTP ----

class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        LOG.debug('%s %s', self.server.name, fmt % args)


class HTTPService(object):
    """A WSGI app on a threading HTTP server on 127.0.0.1 (port 0)."""

    def __init__(self, name, app=None, host='127.0.0.1', port=0):
        self.name = name
        self.app = app
        self.server = simple_server.make_server(
            host, port, self._dispatch, server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler)
        self.server.name = name
        self.url = 'http://%s:%d' % (host, self.server.server_port)
        self.thread = None
        #: (monotonic time, method, path, user agent) of every request
        self.requests = []
        #: (start, end, method, path, user agent) of every answered request
        self.spans = []

    def _dispatch(self, environ, start_response):
        entry = (time.monotonic(), environ['REQUEST_METHOD'],
                 environ.get('PATH_INFO', ''),
                 environ.get('HTTP_USER_AGENT', ''))
        self.requests.append(entry)
        try:
            return self.app(environ, start_response)
        finally:
            self.spans.append((entry[0], time.monotonic()) + entry[1:])

    def in_flight_until(self, moment, exclude_agent='python-requests'):
        """When the requests being answered at ``moment`` were answered.

        ``moment`` itself when none was; requests from ``exclude_agent``
        (the test's own) do not count.
        """
        return max([moment] + [
            end for start, end, _m, _p, agent in list(self.spans)
            if start <= moment < end and
            not agent.startswith(exclude_agent)])

    def count(self, method, path, since=0.0, exclude_agent='python-requests'):
        """Requests for ``path`` since a time, not from ``exclude_agent``."""
        return sum(1 for t, m, p, agent in list(self.requests)
                   if t >= since and m == method and p == path and
                   not agent.startswith(exclude_agent))

    def start(self):
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={'poll_interval': 0.05},
            name='http-%s' % self.name, daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(10)
        self.server.server_close()


def _read_json(environ):
    try:
        length = int(environ.get('CONTENT_LENGTH') or 0)
    except ValueError:
        length = 0
    raw = environ['wsgi.input'].read(length) if length else b''
    return json.loads(raw) if raw else {}


# ------------------------------------------------------------ Keystone ----

class Keystone(object):
    """Minimal Keystone v3: password auth and token validation."""

    def __init__(self):
        self.url = None          # set once the HTTP server is bound
        self.catalog = {}        # service type -> URL
        self.tokens = {}         # token id -> (V3Token body, identity)
        self.lock = threading.Lock()
        self.projects = {
            'admin': uuid.uuid4().hex,
            'demo': uuid.uuid4().hex,
        }
        self.users = {
            'admin': {'id': uuid.uuid4().hex, 'project': 'admin',
                      'roles': ['admin', 'member', 'reader']},
            'demo': {'id': uuid.uuid4().hex, 'project': 'demo',
                     'roles': ['member', 'reader']},
        }

    def issue(self, username, project_name=None):
        user = self.users[username]
        project_name = project_name or user['project']
        token = ks_fixture.V3Token(
            user_id=user['id'], user_name=username,
            user_domain_id='default', user_domain_name='Default',
            project_id=self.projects[project_name],
            project_name=project_name, project_domain_id='default',
            project_domain_name='Default', methods=['password'],
            expires=_now() + datetime.timedelta(hours=12))
        for role in user['roles']:
            token.add_role(name=role, id=role)
        for service_type, url in sorted(self.catalog.items()):
            # Real Keystone fills in endpoint templates (Cinder's URL).
            url = url.replace('$(project_id)s', self.projects[project_name])
            service = token.add_service(service_type)
            service.add_standard_endpoints(public=url, internal=url,
                                           admin=url, region=REGION)
        token_id = uuid.uuid4().hex
        identity = {
            'user_id': user['id'], 'user_name': username,
            'project_id': self.projects[project_name],
            'project_name': project_name, 'roles': user['roles'],
        }
        with self.lock:
            self.tokens[token_id] = (dict(token), identity)
        return token_id, dict(token)

    def validate(self, token_id):
        with self.lock:
            found = self.tokens.get(token_id or '')
        return found[1] if found else None

    def _version(self):
        return {'id': 'v3.14', 'status': 'stable',
                'updated': '2020-04-07T00:00:00Z',
                'links': [{'rel': 'self', 'href': self.url + '/v3/'}],
                'media-types': [{
                    'base': 'application/json',
                    'type': 'application/vnd.openstack.identity-v3+json'}]}

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '/').rstrip('/')
        method = environ['REQUEST_METHOD']
        if path == '' and method == 'GET':
            return _json_response(start_response, 300, {
                'versions': {'values': [self._version()]}})
        if path == '/v3' and method == 'GET':
            return _json_response(start_response, 200,
                                  {'version': self._version()})
        if path == '/v3/auth/tokens':
            if method == 'POST':
                return self._authenticate(environ, start_response)
            subject = environ.get('HTTP_X_SUBJECT_TOKEN')
            with self.lock:
                found = self.tokens.get(subject or '')
            if method == 'GET' and found:
                return _json_response(start_response, 200, found[0],
                                      [('X-Subject-Token', subject)])
            if method == 'DELETE' and found:
                with self.lock:
                    self.tokens.pop(subject, None)
                return _json_response(start_response, 204)
            return _json_response(start_response, 404, {'error': {
                'code': 404, 'message': 'Token not found'}})
        return _json_response(start_response, 404, {'error': {
            'code': 404, 'message': 'Not found: %s' % path}})

    def _authenticate(self, environ, start_response):
        unauthorized = {'error': {'code': 401, 'title': 'Unauthorized',
                                  'message': 'The request you have made '
                                             'requires authentication.'}}
        try:
            auth = _read_json(environ)['auth']
            user = auth['identity']['password']['user']
            username, password = user['name'], user['password']
            scope = auth.get('scope', {}).get('project', {})
        except (KeyError, TypeError, ValueError):
            return _json_response(start_response, 401, unauthorized)
        if username not in self.users or password != PASSWORD:
            return _json_response(start_response, 401, unauthorized)
        project = scope.get('name')
        if project is None and scope.get('id'):
            project = {v: k for k, v in self.projects.items()}.get(
                scope['id'])
        if project is None:
            project = self.users[username]['project']
        if project not in self.projects:
            return _json_response(start_response, 401, unauthorized)
        token_id, body = self.issue(username, project)
        return _json_response(start_response, 201, body,
                              [('X-Subject-Token', token_id)])


class TokenAuth(object):
    """Stands in for keystonemiddleware's auth_token in Nova's pipeline.

    It validates ``X-Auth-Token`` against :class:`Keystone` and sets the
    headers keystonemiddleware would set; the rest of the real pipeline
    (``keystonecontext`` builds the RequestContext from them) is unchanged.
    """

    _IDENTITY_HEADERS = (
        'HTTP_X_IDENTITY_STATUS', 'HTTP_X_USER_ID', 'HTTP_X_USER_NAME',
        'HTTP_X_USER_DOMAIN_ID', 'HTTP_X_USER_DOMAIN_NAME',
        'HTTP_X_PROJECT_ID', 'HTTP_X_PROJECT_NAME',
        'HTTP_X_PROJECT_DOMAIN_ID', 'HTTP_X_PROJECT_DOMAIN_NAME',
        'HTTP_X_ROLES', 'HTTP_X_SERVICE_CATALOG', 'HTTP_X_TENANT_ID',
        'HTTP_X_TENANT_NAME', 'HTTP_X_USER', 'HTTP_X_TENANT')

    def __init__(self, app, keystone):
        self.app = app
        self.keystone = keystone

    def __call__(self, environ, start_response):
        for header in self._IDENTITY_HEADERS:
            environ.pop(header, None)
        identity = self.keystone.validate(environ.get('HTTP_X_AUTH_TOKEN'))
        if identity is None:
            return _json_response(
                start_response, 401,
                {'error': {'code': 401, 'title': 'Unauthorized',
                           'message': 'The request you have made requires '
                                      'authentication.'}},
                [('WWW-Authenticate',
                  'Keystone uri="%s"' % self.keystone.url)])
        environ.update({
            'HTTP_X_IDENTITY_STATUS': 'Confirmed',
            'HTTP_X_USER_ID': identity['user_id'],
            'HTTP_X_USER_NAME': identity['user_name'],
            'HTTP_X_USER_DOMAIN_ID': 'default',
            'HTTP_X_USER_DOMAIN_NAME': 'Default',
            'HTTP_X_PROJECT_ID': identity['project_id'],
            'HTTP_X_PROJECT_NAME': identity['project_name'],
            'HTTP_X_PROJECT_DOMAIN_ID': 'default',
            'HTTP_X_PROJECT_DOMAIN_NAME': 'Default',
            'HTTP_X_ROLES': ','.join(identity['roles']),
        })
        return self.app(environ, start_response)


# -------------------------------------------------------------- Glance ----

class PhaseGlanceFixture(glance_fixture.GlanceFixture):
    """Nova's Glance fixture, closer to real Glance for new images.

    Images created by Nova (snapshots, backups) start ``queued`` instead of
    ``active`` and get real timestamps; ``detail()`` honours the filters and
    the sort order the backup rotation asks for (the base fixture returns
    every image, so a rotation would delete unrelated images).
    """

    _lock = threading.RLock()

    def create(self, context, metadata, data=None):
        with self._lock:
            if (context is not None and data is None and
                    metadata.get('size') == 0):
                # nova's "force_activate": a volume-backed snapshot image
                # (size 0) is uploaded empty and is active at once.
                metadata.setdefault('status', 'active')
                metadata.setdefault('disk_format', 'raw')
                metadata.setdefault('container_format', 'bare')
                metadata.setdefault('created_at', _now())
                metadata.setdefault('updated_at', metadata['created_at'])
            elif context is not None and data is None:
                metadata.setdefault('status', 'queued')
                metadata.setdefault('created_at', _now())
                metadata.setdefault('updated_at', metadata['created_at'])
                metadata.setdefault('size', None)
            return super().create(context, metadata, data=data)

    def update(self, context, image_id, metadata, data=None,
               purge_props=False):
        with self._lock:
            metadata = dict(metadata)
            metadata.setdefault('updated_at', _now())
            return super().update(context, image_id, metadata, data=data,
                                  purge_props=purge_props)

    def delete(self, context, image_id):
        with self._lock:
            return super().delete(context, image_id)

    def show(self, context, image_id, include_locations=False,
             show_deleted=True):
        with self._lock:
            return super().show(context, image_id, include_locations,
                                show_deleted)

    @staticmethod
    def matches(image, filters):
        for key, wanted in (filters or {}).items():
            if key.startswith('property-'):
                have = image.get('properties', {}).get(key[9:])
            elif key in image:
                have = image[key]
            else:
                have = image.get('properties', {}).get(key)
            if have is None or str(have) != str(wanted):
                return False
        return True

    def detail(self, context, **kwargs):
        with self._lock:
            images = [img for img in self.images.values()
                      if self.matches(img, kwargs.get('filters'))]
            key = kwargs.get('sort_key') or 'created_at'
            images.sort(key=lambda i: str(_iso(i.get(key))),
                        reverse=kwargs.get('sort_dir', 'desc') == 'desc')
            return copy.deepcopy(images)

    def snapshot_images(self, server_id):
        """Images whose ``instance_uuid`` property is ``server_id``."""
        return self.detail(None, filters={'instance_uuid': server_id})


def _glance_property(key, value):
    """A property value as Glance stores it from nova (image/glance.py)."""
    if isinstance(value, str):
        return value
    if key in ('block_device_mapping', 'mappings'):
        return json.dumps(value)
    return str(value)


class GlanceAPI(object):
    """A read/delete Glance v2 HTTP API over :class:`PhaseGlanceFixture`."""

    TOP_LEVEL = ('id', 'name', 'status', 'container_format', 'disk_format',
                 'size', 'min_disk', 'min_ram', 'protected', 'tags',
                 'created_at', 'updated_at', 'checksum', 'virtual_size',
                 'os_hidden', 'owner', 'visibility')

    def __init__(self, store, keystone):
        self.store = store
        self.keystone = keystone
        self.url = None

    def to_v2(self, image):
        props = dict(image.get('properties') or {})
        out = {
            'id': image['id'],
            'name': image.get('name'),
            'status': image.get('status', 'active'),
            'visibility': image.get('visibility') or (
                'public' if image.get('is_public') else 'private'),
            'owner': image.get('owner') or props.pop('owner', None),
            'container_format': image.get('container_format'),
            'disk_format': image.get('disk_format'),
            'size': image.get('size'),
            'virtual_size': None,
            'min_disk': int(image.get('min_disk') or 0),
            'min_ram': int(image.get('min_ram') or 0),
            'protected': bool(image.get('protected')),
            'tags': list(image.get('tags') or []),
            'checksum': None,
            'os_hidden': False,
            'created_at': _iso(image.get('created_at')),
            'updated_at': _iso(image.get('updated_at')),
            'file': '/v2/images/%s/file' % image['id'],
            'self': '/v2/images/%s' % image['id'],
            'schema': '/v2/schemas/image',
        }
        props.pop('owner', None)
        for key, value in props.items():
            if key not in out and value is not None:
                out[key] = _glance_property(key, value)
        return out

    def _versions(self):
        return {'versions': [{
            'id': 'v2.16', 'status': 'CURRENT',
            'links': [{'rel': 'self', 'href': self.url + '/v2/'}]}]}

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '/').rstrip('/')
        method = environ['REQUEST_METHOD']
        if path in ('', '/versions', '/v2') and method == 'GET':
            return _json_response(start_response, 300 if path == '' else 200,
                                  self._versions())
        if self.keystone.validate(environ.get('HTTP_X_AUTH_TOKEN')) is None:
            return _json_response(start_response, 401, {
                'error': {'code': 401, 'message': 'Unauthorized'}})
        parts = path.split('/')
        if parts[:3] == ['', 'v2', 'images']:
            if len(parts) == 3 and method == 'GET':
                return self._list(environ, start_response)
            if len(parts) == 4:
                return self._one(parts[3], method, start_response)
        return _json_response(start_response, 404, {
            'code': 404, 'message': 'Not found: %s %s' % (method, path)})

    def _one(self, image_id, method, start_response):
        try:
            image = self.store.show(None, image_id)
        except nova_exception.ImageNotFound:
            return _json_response(start_response, 404, {
                'code': 404, 'title': 'Not Found',
                'message': 'No image found with ID %s' % image_id})
        if method == 'GET':
            return _json_response(start_response, 200, self.to_v2(image))
        if method == 'DELETE':
            if image.get('protected'):
                return _json_response(start_response, 403, {
                    'code': 403, 'message': 'Image %s is protected'
                                            % image_id})
            try:
                self.store.delete(None, image_id)
            except nova_exception.ImageNotFound:
                return _json_response(start_response, 404)
            return _json_response(start_response, 204)
        return _json_response(start_response, 405)

    def _list(self, environ, start_response):
        query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
        query = {k: v[-1] for k, v in query.items()}
        limit = int(query.pop('limit', 25))
        marker = query.pop('marker', None)
        for ignored in ('sort', 'sort_key', 'sort_dir', 'member_status'):
            query.pop(ignored, None)
        if query.get('visibility') == 'all':
            query.pop('visibility')
        images = [self.to_v2(i) for i in self.store.detail(None)]
        images = [i for i in images
                  if all(str(i.get(k)) == v for k, v in query.items())]
        if marker:
            ids = [i['id'] for i in images]
            images = images[ids.index(marker) + 1:] if marker in ids else []
        body = {'images': images[:limit], 'schema': '/v2/schemas/images',
                'first': '/v2/images'}
        if len(images) > limit:
            nxt = dict(query, limit=limit, marker=images[limit - 1]['id'])
            body['next'] = '/v2/images?' + urllib.parse.urlencode(nxt)
        return _json_response(start_response, 200, body)


# ---------------------------------------------------------------- Nova ----

class _NovaHarness(integrated_helpers._IntegratedTestBase):
    """Nova's own functional-test base, driven by :class:`NovaCloud`.

    It is a testtools TestCase only so that every per-test reset of nova's
    global state in ``nova.test.TestCase.setUp`` happens exactly as in nova's
    functional tests; NovaCloud calls ``setUp()`` and runs the cleanups.
    """

    CAST_AS_CALL = False      # casts stay asynchronous, as in production
    STUB_KEYSTONE = False
    ADMIN_API = True

    def __init__(self, cloud):
        super().__init__('runTest')
        self.cloud = cloud

    def runTest(self):  # pragma: no cover - never run
        pass

    def setUp(self):
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.GlanceFixture', PhaseGlanceFixture))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.CinderFixture', cinder.PhaseCinderFixture))
        super().setUp()

    def _setup_services(self):
        # nova's WarningsFixture turns SQLAlchemy warnings raised in nova
        # modules into errors; with SQLAlchemy 2.1 that breaks createBackup
        # (deprecated noload() in the flavor lazy-load), which production
        # Nova does not do.
        warnings.filterwarnings('ignore',
                                category=sqla_exc.SADeprecationWarning)
        warnings.filterwarnings('ignore', category=sqla_exc.SAWarning)
        sys.modules[DRIVER_MODULE] = driver
        self.addCleanup(sys.modules.pop, DRIVER_MODULE, None)
        self.flags(compute_driver=DRIVER)
        for method in ('snapshot_instance', 'backup_instance'):
            self.useFixture(fixtures.MonkeyPatch(
                'nova.compute.manager.ComputeManager.' + method,
                driver.wrap_compute_method(
                    getattr(compute_manager.ComputeManager, method))))
        self.flags(response_validation='warn', group='api')
        self.flags(api_paste_config=_paste_config(), group='wsgi')
        self.conductor = self.start_service('conductor')
        self.addCleanup(self.conductor.stop)
        self.scheduler = self.start_service('scheduler')
        self.addCleanup(self.scheduler.stop)
        self.compute = self._start_compute('compute')
        self.addCleanup(self._stop_computes)

        keystone = self.cloud.keystone

        def filter_factory(global_conf, **local_conf):
            return lambda app: TokenAuth(app, keystone)

        self.useFixture(fixtures.MonkeyPatch(
            'keystonemiddleware.auth_token.filter_factory', filter_factory))
        self.api_app = nova_wsgi.Loader().load_app('osapi_compute')
        wsgi_app._setup_service(CONF.host, 'osapi_compute')

    def run_cleanups(self):
        while self._cleanups:
            function, args, kwargs = self._cleanups.pop()
            try:
                function(*args, **kwargs)
            except Exception:
                LOG.exception('cleanup %r failed', function)


def find_openstack():
    """The ``openstack`` executable of the running interpreter's env."""
    here = os.path.join(os.path.dirname(sys.executable), 'openstack')
    if os.path.exists(here):
        return here
    import shutil
    found = shutil.which('openstack')
    if not found:
        raise RuntimeError('no openstack executable next to %s or on PATH'
                           % sys.executable)
    return found


class NovaCloud(fixtures.Fixture):
    """Real Nova in-process plus minimal Keystone and Glance on 127.0.0.1.

    Attributes once set up: ``keystone``, ``glance`` (the image store),
    ``nova_url``, ``glance_url``, ``auth_url``, ``clouds_yaml``, ``env``
    (environment for an ``openstack`` subprocess, ``OS_CLOUD=nova-admin``)
    and ``harness`` (nova's test case: ``harness.compute`` etc.).
    """

    def __init__(self, workdir=None):
        super().__init__()
        self.workdir = workdir

    def _setUp(self):
        started = time.monotonic()
        driver.reset()
        self.addCleanup(driver.abort_all)
        self.keystone = Keystone()
        self.keystone_http = HTTPService('keystone', self.keystone)
        self.keystone.url = self.keystone_http.url
        self.auth_url = self.keystone.url + '/v3'

        # Swallow what nova logs while it shuts down, after its own
        # StandardLogging fixture is gone.
        self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        self.harness = _NovaHarness(self)
        self.addCleanup(self.harness.run_cleanups)
        self.harness.setUp()
        self.glance = self.harness.glance

        self.glance_api = GlanceAPI(self.glance, self.keystone)
        self.glance_http = HTTPService('glance', self.glance_api)
        self.glance_url = self.glance_api.url = self.glance_http.url
        self.nova_http = HTTPService('nova', self.harness.api_app)
        self.nova_url = self.nova_http.url + '/v2.1'
        self.keystone.catalog = {'compute': self.nova_url,
                                 'image': self.glance_url,
                                 'identity': self.auth_url}
        for service in (self.keystone_http, self.glance_http,
                        self.nova_http):
            service.start()
            self.addCleanup(service.stop)
        # Stop HTTP before the harness tears down the databases; release
        # any driver still held in a phase first.
        self.addCleanup(driver.abort_all)

        # Cinder v3: an HTTP view of nova's Cinder fixture (cinder.py); the
        # catalog URL holds the project as real Keystone's template does.
        self.cinder = self.harness.cinder
        self.cinder_api = cinder.CinderAPI(self.cinder, self.keystone)
        self.cinder_http = HTTPService('cinder', self.cinder_api)
        self.cinder_url = self.cinder_api.url = self.cinder_http.url
        volume_url = self.cinder_url + '/v3/$(project_id)s'
        self.keystone.catalog.update({'block-storage': volume_url,
                                      'volumev3': volume_url})
        self.cinder_http.start()
        self.addCleanup(self.cinder_http.stop)
        # Let nova's compute stop polling held snapshots first.
        self.addCleanup(self.cinder.release_all)

        if self.workdir is None:
            self.workdir = self.useFixture(fixtures.TempDir()).path
        self.clouds_yaml = os.path.join(self.workdir, 'clouds.yaml')
        with open(self.clouds_yaml, 'w') as f:
            f.write(self.clouds_yaml_text())
        self.env = self.make_env()
        self.admin_token = self.keystone.issue('admin')[0]
        self.start_seconds = time.monotonic() - started
        LOG.info('nova cloud up in %.2fs: %s', self.start_seconds,
                 self.nova_url)

    def clouds_yaml_text(self):
        lines = ['clouds:']
        for user in ('admin', 'demo'):
            lines += [
                '  nova-%s:' % user,
                '    auth:',
                '      auth_url: %s' % self.auth_url,
                '      username: %s' % user,
                '      password: %s' % PASSWORD,
                '      project_name: %s' % self.keystone.users[user][
                    'project'],
                '      user_domain_id: default',
                '      project_domain_id: default',
                '    identity_api_version: 3',
                '    region_name: %s' % REGION,
                '    interface: public',
            ]
        return '\n'.join(lines) + '\n'

    def make_env(self, cloud='nova-admin'):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env.update({'OS_CLIENT_CONFIG_FILE': self.clouds_yaml,
                    'OS_CLOUD': cloud, 'PYTHONWARNINGS': 'ignore'})
        return env

    # -- direct API access for fast sampling (no subprocess) --

    def nova_get(self, path, microversion=MICROVERSION):
        return requests.get(
            self.nova_url + path, timeout=30,
            headers={'X-Auth-Token': self.admin_token,
                     'OpenStack-API-Version': 'compute %s' % microversion})

    def server(self, server_id):
        """The server body as admin, or None on 404."""
        resp = self.nova_get('/servers/%s' % server_id)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()['server']

    def task_state(self, server_id):
        server = self.server(server_id)
        return server and server['OS-EXT-STS:task_state']

    def wait_task_state(self, server_id, wanted, timeout=60.0):
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.task_state(server_id)
            if seen == wanted:
                return seen
            time.sleep(0.05)
        raise AssertionError('task state of %s is %r, not %r after %ss'
                             % (server_id, seen, wanted, timeout))

    def instance_actions(self, server_id):
        resp = self.nova_get('/servers/%s/os-instance-actions' % server_id)
        resp.raise_for_status()
        return resp.json()['instanceActions']

    def admin_context(self):
        return nova_context.get_admin_context()

    def log_output(self):
        return self.harness.stdlog.logger.output


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Run real Nova in-process with a minimal Keystone and '
                    'Glance on 127.0.0.1 until interrupted.')
    parser.add_argument('--workdir', help='where to write clouds.yaml '
                        '(default: a temporary directory)')
    parser.add_argument('--snapshot-seconds', type=float, default=0.0,
                        help='default seconds the fake driver spends in '
                             'each snapshot phase')
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix='nova-cloud-')
    os.makedirs(workdir, exist_ok=True)
    with NovaCloud(workdir=workdir) as cloud:
        if args.snapshot_seconds:
            driver.set_plan(driver.SnapshotPlan(sleeps=dict.fromkeys(
                driver.PHASES, args.snapshot_seconds)))
        print('# nova cloud up in %.2fs' % cloud.start_seconds)
        print('export OS_CLIENT_CONFIG_FILE=%s' % cloud.clouds_yaml)
        print('export OS_CLOUD=nova-admin   # or nova-demo')
        print('# nova %s  glance %s  keystone %s' % (
            cloud.nova_url, cloud.glance_url, cloud.auth_url))
        print('# cinder %s/v3/<project>; boot from volume: openstack '
              'server create --flavor m1.tiny --volume %s --nic none bfv1'
              % (cloud.cinder_url, cloud.cinder.IMAGE_BACKED_VOL))
        print('# try: openstack server create --flavor m1.tiny --image %s '
              '--nic none vm1 --wait' % glance_fixture.GlanceFixture.image1[
                  'id'])
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
