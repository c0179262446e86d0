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


"""Fakes for the unit tests: a clock, scripted servers and images."""

import datetime
import json
from unittest import mock
import uuid

from openstack.block_storage.v3 import _proxy as volume_proxy
from openstack.compute.v2 import _proxy as compute_proxy
from openstack.compute.v2 import server as server_v2
from openstack import exceptions as sdk_exceptions
from openstack.image.v2 import _proxy as image_proxy
from openstack.image.v2 import image as image_v2
from osc_lib.test import base
import requests

from osc_snapphase import records

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def new_id():
    return uuid.uuid4().hex


class TestCommand(base.TestCommand):
    """TestCommand with spec'd compute and image proxies on the app."""

    def setUp(self):
        super().setUp()
        self.app.client_manager.compute = mock.Mock(spec=compute_proxy.Proxy)
        self.app.client_manager.image = mock.Mock(spec=image_proxy.Proxy)
        self.app.client_manager.volume = mock.Mock(spec=volume_proxy.Proxy)
        self.compute_client = self.app.client_manager.compute
        self.image_client = self.app.client_manager.image
        self.volume_client = self.app.client_manager.volume
        # The cloud's configuration (clouds.yaml, OS_* and --os-* options).
        self.app.cloud = mock.Mock(config={})
        # osc-lib's FakeStdout lacks flush(), which real streams have.
        self.app.stdout.flush = lambda: None

    def assert_busy(self, code, what_runs, server):
        """Exit status 5 and the busy message of both commands, to the word.

        ``what_runs``: the message between "task state" and "Wait for it".
        """
        self.assertEqual(5, code)
        self.assertEqual(
            'Server %s (%s) is busy: task state %s Wait for it with: '
            'openstack server task-state watch %s --until idle\n'
            % (server.name, server.id, what_runs, server.id),
            self.app.stderr.getvalue())


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called."""

    def __init__(self, start=0.0):
        self.now = start
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def wall(self):
        return EPOCH + datetime.timedelta(seconds=self.now)


def clock_of(cmd):
    """A FakeClock given to a command's clock, sleep and wall seams."""
    clock = FakeClock()
    cmd.clock = clock
    cmd.sleep = clock.sleep
    cmd.wall = clock.wall
    return clock


def _at(timeline, now):
    """The value of a ``[(time, value), ...]`` timeline at ``now``."""
    current = None
    for start, value in timeline:
        if start > now + 1e-9:
            break
        current = value
    return current


def server_state(server_id, task_state=None, vm_state='active',
                 status='ACTIVE', power_state=1, name=None, fault=None):
    return records.ServerState(server_id, name or 'vm-' + server_id[:6],
                               status, vm_state, task_state, power_state,
                               fault)


class ScriptedFetch:
    """``fetch(ids)`` for the engine, driven by a timeline per server.

    :param timelines: ``{server_id: [(time, ServerState or None), ...]}``;
        None (or a time before the first entry) means the server is gone
    :param errors: ``[(start, end, exception), ...]``: every fetch in
        ``[start, end)`` raises the exception
    :param cost: seconds each fetch takes on the clock
    """

    def __init__(self, clock, timelines, errors=(), cost=0.0):
        self.clock = clock
        self.timelines = timelines
        self.errors = list(errors)
        self.cost = cost
        self.calls = []

    def __call__(self, server_ids):
        self.calls.append(list(server_ids))
        now = self.clock()
        self.clock.now += self.cost
        for start, end, exc in self.errors:
            if start <= now < end:
                raise exc
        states = {}
        for server_id in server_ids:
            state = _at(self.timelines.get(server_id, []), now)
            if state is not None:
                states[server_id] = state
        return states


class FakeImages:
    """The engine's image lookup, driven by a timeline per image.

    :param timelines: ``{image_id: [(time, ImageState or None), ...]}``
    :param owners: ``{server_id: image_id}`` for ``latest``
    """

    def __init__(self, clock, timelines, owners=None):
        self.clock = clock
        self.timelines = timelines
        self.owners = owners or {}
        self.gets = []
        self.latests = []

    def get(self, image_id):
        self.gets.append(image_id)
        return _at(self.timelines.get(image_id, []), self.clock())

    def latest(self, server_id):
        self.latests.append(server_id)
        image_id = self.owners.get(server_id)
        return self.get(image_id) if image_id else None


def image_state(image_id, status, volume_backed=False, snapshot_ids=None):
    """An ImageState; volume-backed images name snapshot 'snap-1'."""
    if volume_backed and snapshot_ids is None:
        snapshot_ids = ('snap-1',)
    return records.ImageState(image_id, 'snap-' + image_id[:6], status,
                              snapshot_ids)


class FakeSnapshots:
    """The engine's Cinder snapshot lookup, a timeline per snapshot.

    :param timelines: ``{snapshot_id: [(time, status or None), ...]}``;
        None: the snapshot does not exist (404)
    :param volumes: ``{snapshot_id: volume_id}``
    """

    def __init__(self, clock, timelines, volumes=None):
        self.clock = clock
        self.timelines = timelines
        self.volumes = volumes or {}
        self.gets = []
        self.listings = []

    def get(self, snapshot_id):
        self.gets.append(snapshot_id)
        status = _at(self.timelines.get(snapshot_id, []), self.clock())
        if status is None:
            return None
        return records.SnapshotState(
            snapshot_id, self.volumes.get(snapshot_id, 'vol-1'), status)

    def creating(self, volume_ids):
        self.listings.append(tuple(volume_ids))
        found = [self.get(sid) for sid in self.timelines
                 if self.volumes.get(sid, 'vol-1') in volume_ids]
        return [s for s in found if s is not None and s.status == 'creating']


def create_one_server(attrs=None):
    """A real openstacksdk Server, with the OS-EXT-STS fields."""
    info = {
        'id': 'server-id-' + new_id(),
        'name': 'server-name-' + new_id()[:8],
        'status': 'ACTIVE',
        'OS-EXT-STS:vm_state': 'active',
        'OS-EXT-STS:task_state': None,
        'OS-EXT-STS:power_state': 1,
    }
    info.update(attrs or {})
    return server_v2.Server(**info)


def create_one_image(attrs=None):
    """A real openstacksdk (Glance v2) Image."""
    info = {
        'id': 'image-id-' + new_id(),
        'name': 'image-name-' + new_id()[:8],
        'status': 'queued',
        'visibility': 'private',
    }
    info.update(attrs or {})
    return image_v2.Image(**info)


def json_response(body, status=200, headers=None):
    """A requests Response with a JSON body, as a proxy's get() returns."""
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers['Content-Type'] = 'application/json'
    response.headers.update(headers or {})
    response.url = 'http://compute.example/v2.1'
    return response


def server_body(server):
    """The JSON body of an openstacksdk Server, as Nova shows it."""
    return server.to_dict(body=True, headers=False, computed=False,
                          original_names=True)


def not_found(what='resource'):
    return sdk_exceptions.ResourceNotFound('No %s found' % what)


class ScriptedCompute:
    """``get_server`` / ``servers`` side effects from server timelines.

    :param timelines: ``{server_id: [(time, attrs dict or None), ...]}``;
        each attrs dict is turned into a real Server
    """

    def __init__(self, clock, servers, timelines):
        self.clock = clock
        self.servers = {s.id: s for s in servers}
        self.timelines = timelines

    def _server(self, server_id):
        attrs = _at(self.timelines.get(server_id, []), self.clock())
        if attrs is None:
            return None
        base = self.servers[server_id]
        info = {'id': base.id, 'name': base.name, 'status': 'ACTIVE',
                'OS-EXT-STS:vm_state': 'active',
                'OS-EXT-STS:power_state': 1,
                # What does not change: how the server was booted.
                'image': base.image,
                'os-extended-volumes:volumes_attached': (
                    base.attached_volumes)}
        info.update(attrs)
        return server_v2.Server(**info)

    def get_server(self, server_id):
        server = self._server(server_id)
        if server is None:
            raise not_found('server %s' % server_id)
        return server

    def list_servers(self, details=True, **query):
        return [s for s in map(self._server, self.servers) if s is not None]

    def find_server(self, name_or_id, ignore_missing=True):
        for server in self.servers.values():
            if name_or_id in (server.id, server.name):
                return self.get_server(server.id)
        raise not_found('server %s' % name_or_id)

    def get(self, path, params=None, **kwargs):
        """The proxy's raw GET of the Compute API's server reads (JSON)."""
        if path == '/servers/detail':
            return json_response({'servers': [
                server_body(s) for s in map(self._server, self.servers)
                if s is not None]})
        server = self._server(path.rsplit('/', 1)[-1])
        if server is None:
            return json_response({'itemNotFound': {
                'code': 404, 'message': 'Instance could not be found.'}},
                404)
        return json_response({'server': server_body(server)})

    def install(self, compute_client):
        """Serve the server reads of a mock compute proxy."""
        compute_client.get_server.side_effect = self.get_server
        compute_client.servers.side_effect = self.list_servers
        compute_client.find_server.side_effect = self.find_server
        compute_client.get.side_effect = self.get


class ScriptedImage:
    """``get_image`` side effect from image timelines of attrs dicts."""

    def __init__(self, clock, timelines):
        self.clock = clock
        self.timelines = timelines

    def _body(self, image_id):
        attrs = _at(self.timelines.get(image_id, []), self.clock())
        if attrs is None:
            return None
        info = {'id': image_id, 'name': 'snap', 'visibility': 'private'}
        info.update(attrs)
        return info

    def get_image(self, image_id):
        body = self._body(image_id)
        if body is None:
            raise not_found('image %s' % image_id)
        return image_v2.Image(**body)

    def get(self, path, params=None, **kwargs):
        """The proxy's raw GET of ``/images/{id}`` (Image API JSON)."""
        body = self._body(path.rsplit('/', 1)[-1])
        if body is None:
            return json_response({'message': 'No image found'}, 404)
        return json_response(body)


class ScriptedVolume:
    """The block-storage proxy's raw GETs of Cinder snapshots (JSON).

    :param snapshots: a function returning the current snapshots, each a
        dict as Cinder shows it (id, volume_id, status, created_at)
    """

    def __init__(self, snapshots):
        self.snapshots = snapshots

    def get(self, path, params=None, **kwargs):
        current = self.snapshots()
        if path == '/snapshots/detail':
            volume_id = (params or {}).get('volume_id')
            return json_response({'snapshots': [
                s for s in current
                if volume_id is None or s['volume_id'] == volume_id]})
        for snapshot in current:
            if path == '/snapshots/%s' % snapshot['id']:
                return json_response({'snapshot': snapshot})
        return json_response({'itemNotFound': {'code': 404}}, 404)


def failing(lookup, exc, times=None, when=None):
    """``lookup`` that raises ``exc`` instead of answering.

    :param times: how many calls fail (the first that ``when`` allows);
        None: every one
    :param when: ``when()``: whether a call now fails; None: always
    """
    calls = []
    failures = []

    def call(*args):
        calls.append(args)
        if (when is None or when()) and (times is None
                                         or len(failures) < times):
            failures.append(args)
            raise exc
        return lookup(*args)
    call.calls = calls
    call.failures = failures
    return call
