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


"""Tests of osc_snapphase.cloud: the openstacksdk adapters."""

import json
import threading
from unittest import mock

from keystoneauth1 import exceptions as ks_exceptions
from openstack.compute.v2 import _proxy as compute_proxy
from openstack import connection
from openstack import exceptions as sdk_exceptions
from openstack.image.v2 import _proxy as image_proxy
import requests
from requests_mock.contrib import fixture as requests_mock_fixture
import testtools

from osc_snapphase import cloud
from osc_snapphase import conditions
from osc_snapphase import engine
from osc_snapphase import listing
from osc_snapphase import records
from osc_snapphase.tests.unit import fakes
from osc_snapphase.tests.unit import test_listing


def http_error(status, retry_after=None):
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers['Retry-After'] = retry_after
    return sdk_exceptions.HttpException('HTTP %d' % status,
                                        response=response)


GLANCE = 'http://glance.test/v2'
CINDER = 'http://cinder.test/v3'
NOVA = 'http://nova.test/v2.1'
# Longest wait of a test for an event (a request in flight).
EVENT_WAIT = 60.0


def version_document(url, version, min_version=None, max_version=None):
    """The version discovery answer of an endpoint, for keystoneauth."""
    entry = {'id': version, 'status': 'CURRENT',
             'links': [{'rel': 'self', 'href': url + '/'}]}
    if max_version:
        entry.update(min_version=min_version, version=max_version)
    return {'versions': [entry]}


VERSIONS = {GLANCE: ('v2.0',), CINDER: ('v3.0', '3.0', '3.70'),
            NOVA: ('v2.1', '2.1', '2.96')}


def make_connection(api_timeout=None):
    """A real openstacksdk Connection to the endpoints above."""
    options = {}
    if api_timeout is not None:
        options['api_timeout'] = api_timeout
    return connection.Connection(
        auth_type='admin_token',
        auth={'endpoint': 'http://keystone.test/', 'token': 'tok'},
        compute_endpoint_override=NOVA, image_endpoint_override=GLANCE,
        block_storage_endpoint_override=CINDER, **options)


class CloudTestCase(testtools.TestCase):
    """A real openstacksdk Connection on a requests-mock transport."""

    api_timeout = None

    def setUp(self):
        super().setUp()
        self.requests_mock = self.useFixture(requests_mock_fixture.Fixture())
        for url, versions in VERSIONS.items():
            for path in (url, url + '/'):
                self.requests_mock.get(
                    path, json=version_document(url, *versions))
        self.connection = make_connection(self.api_timeout)

    def timeouts(self):
        """The read timeout of each request but version discovery."""
        return [r.timeout for r in self.requests_mock.request_history
                if r.url.rstrip('/') not in (GLANCE, CINDER, NOVA)]


class TestGetJson(CloudTestCase):

    def test_get_json_body_and_params(self):
        self.requests_mock.get(GLANCE + '/images', json={'images': []})
        self.assertEqual({'images': []}, cloud.get_json(
            self.connection.image, '/images', {'instance_uuid': 'srv'}))
        self.assertEqual({'instance_uuid': ['srv']},
                         self.requests_mock.last_request.qs)

    def test_get_json_timeout_is_per_request(self):
        self.requests_mock.get(GLANCE + '/images/i', json={'id': 'i'})
        image = self.connection.image
        cloud.get_json(image, '/images/i')
        cloud.get_json(image, '/images/i', time_left=lambda: 2.5)
        cloud.get_json(image, '/images/i', time_left=lambda: 0.0)
        cloud.get_json(image, '/images/i', time_left=lambda: None)
        # No --timeout: still bounded, so a hung request is retried.
        self.assertEqual([cloud.MAX_REQUEST_TIMEOUT, 2.5,
                          cloud.MIN_REQUEST_TIMEOUT,
                          cloud.MAX_REQUEST_TIMEOUT], self.timeouts())
        self.assertIsNone(self.connection.session.timeout)

    def test_get_json_503_is_not_retried_by_keystoneauth(self):
        # openstacksdk retries an image 503 five times by default (about
        # 15 s asleep inside one request, past --timeout); the engine
        # retries itself, with the time left.
        self.requests_mock.get(GLANCE + '/images/i', status_code=503,
                               text='busy')
        self.connection.image.status_code_retries = 5
        self.connection.image.status_code_retry_delay = 0.0
        self.assertRaises(engine.TransientError, cloud.get_json,
                          self.connection.image, '/images/i')
        self.assertEqual(1, len([
            r for r in self.requests_mock.request_history
            if r.url.rstrip('/') == GLANCE + '/images/i']))

    def test_get_json_not_found(self):
        self.requests_mock.get(GLANCE + '/images/gone', status_code=404,
                               json={'message': 'not found'})
        self.assertRaises(sdk_exceptions.ResourceNotFound, cloud.get_json,
                          self.connection.image, '/images/gone')

    def test_get_json_transient(self):
        self.requests_mock.get(CINDER + '/snapshots/s', status_code=503,
                               headers={'Retry-After': '7'}, text='busy')
        exc = self.assertRaises(engine.TransientError, cloud.get_json,
                                self.connection.block_storage,
                                '/snapshots/s')
        self.assertEqual(7.0, exc.retry_after)
        self.assertEqual('The Block Storage service answered HTTP 503',
                         str(exc))

    def test_get_json_connection_timeout(self):
        self.requests_mock.get(GLANCE + '/images/i',
                               exc=requests.exceptions.ReadTimeout)
        exc = self.assertRaises(engine.TransientError, cloud.get_json,
                                self.connection.image, '/images/i')
        self.assertFalse(exc.malformed)

    def test_get_json_other_error_propagates(self):
        self.requests_mock.get(GLANCE + '/images/i', status_code=403,
                               json={'message': 'forbidden'})
        self.assertRaises(sdk_exceptions.ForbiddenException, cloud.get_json,
                          self.connection.image, '/images/i')

    def test_get_json_not_json_is_malformed(self):
        self.requests_mock.get(GLANCE + '/images/i', text='<html>proxy')
        exc = self.assertRaises(engine.TransientError, cloud.get_json,
                                self.connection.image, '/images/i')
        self.assertTrue(exc.malformed)


class TestGetJsonSessionTimeout(CloudTestCase):
    """The caller's session keeps its own timeout, when smaller."""

    api_timeout = 7

    def test_get_json_smaller_session_timeout_kept(self):
        self.requests_mock.get(GLANCE + '/images/i', json={'id': 'i'})
        cloud.get_json(self.connection.image, '/images/i')
        cloud.get_json(self.connection.image, '/images/i',
                       time_left=lambda: 3)
        self.assertEqual([7, 3], self.timeouts())
        self.assertEqual(7, self.connection.session.timeout)


class TestTransientFrom(testtools.TestCase):

    def test_transient_from_http(self):
        for code in (429, 500, 502, 503, 504):
            exc = cloud.transient_from(http_error(code))
            self.assertIsInstance(exc, engine.TransientError)
            self.assertIsNone(exc.retry_after)
            self.assertFalse(exc.malformed)

    def test_transient_from_retry_after(self):
        cases = (('7', 7.0), ('0.5', 0.5), ('99999', 3600.0),
                 ('Wed, 21 Oct 2015 07:28:00 GMT', None))
        for header, expected in cases:
            exc = cloud.transient_from(http_error(429, header))
            self.assertEqual(expected, exc.retry_after, header)

    def test_transient_from_connection(self):
        for error in (ks_exceptions.ConnectFailure('refused'),
                      ks_exceptions.ConnectTimeout('slow'),
                      ks_exceptions.UnknownConnectionError('odd', None)):
            exc = cloud.transient_from(error)
            self.assertTrue(str(exc).startswith('Connection problem: '))
            self.assertFalse(exc.malformed)

    def test_transient_from_malformed(self):
        for error in (json.JSONDecodeError('Expecting value', '<html>', 0),
                      requests.exceptions.JSONDecodeError(
                          'Expecting value', '<html>', 0)):
            exc = cloud.transient_from(error, 'image')
            self.assertTrue(exc.malformed)
            self.assertEqual(
                'The Image service sent an answer that is not valid JSON '
                '(an HTML page or a truncated body?): Expecting value: '
                'line 1 column 1 (char 0)', str(exc))

    def test_transient_from_other_value_error(self):
        # Only a body that is not JSON is a malformed answer.
        self.assertIsNone(cloud.transient_from(ValueError('a bug')))

    def test_transient_from_permanent(self):
        for error in (http_error(404), http_error(400), http_error(409),
                      fakes.not_found(), RuntimeError('bug')):
            self.assertIsNone(cloud.transient_from(error))


class Transport(requests.adapters.BaseAdapter):
    """A requests transport that answers JSON in the requesting thread.

    ``handler(request, timeout)`` returns (status, body). Unlike
    requests-mock, which lets one request through at a time, requests of
    several threads are in flight together.
    """

    def __init__(self, handler):
        super().__init__()
        self.handler = handler

    def send(self, request, timeout=None, **kwargs):
        status, body = self.handler(request, timeout)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers['Content-Type'] = 'application/json'
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


class TestSessionUntouched(testtools.TestCase):
    """The Python API never changes the caller's session, even in flight.

    Every proxy of a Connection, and every thread using it, shares one
    keystoneauth Session: a read timeout set on it would be seen by the
    other watches' requests and the caller's own.
    """

    def test_two_watches_in_two_threads(self):
        conn = make_connection(api_timeout=45)   # the caller's own timeout
        session = conn.session
        servers = {}
        for name in ('db1', 'db2'):
            server_id = fakes.new_id()
            servers[server_id] = {
                'id': server_id, 'name': name, 'status': 'ACTIVE',
                'OS-EXT-STS:vm_state': 'active',
                'OS-EXT-STS:task_state': None, 'OS-EXT-STS:power_state': 1}
        ids = {body['name']: server_id for server_id, body in servers.items()}
        in_flight = {}   # server ID: (session timeout, request timeout)
        reads = []
        both = threading.Barrier(2, timeout=EVENT_WAIT)

        def answer(request, timeout):
            url = request.url.rstrip('/')
            if url in VERSIONS:
                return 200, version_document(url, *VERSIONS[url])
            server_id = url.rsplit('/', 1)[-1]
            reads.append(server_id)
            if reads.count(server_id) == 2:   # the poll after find_server
                in_flight[server_id] = (session.timeout, timeout)
                # Hold each watch's poll until the other's is in flight.
                both.wait()
            return 200, {'server': servers[server_id]}
        session.session.mount('http://', Transport(answer))
        outcomes = {}

        def run(name, timeout):
            try:
                watch = cloud.watch(conn, [ids[name]], until='idle',
                                    timeout=timeout)
                list(watch)
                outcomes[name] = watch.outcome.kind
            except Exception as exc:
                outcomes[name] = exc
        threads = [threading.Thread(target=run, args=('db1', 30)),
                   threading.Thread(target=run, args=('db2', None))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(EVENT_WAIT)
        self.assertEqual({'db1': engine.MET, 'db2': engine.MET}, outcomes)
        self.assertFalse(both.broken)
        db1, db2 = in_flight[ids['db1']], in_flight[ids['db2']]
        # The session kept the caller's timeout all along...
        self.assertEqual((45, 45, 45),
                         (db1[0], db2[0], session.timeout))
        # ...and each request had its own: db1 its time left (under 30 s),
        # db2 (no --timeout) the session's, smaller than the 60 s bound.
        self.assertLessEqual(db1[1], 30)
        self.assertGreaterEqual(db1[1], cloud.MIN_REQUEST_TIMEOUT)
        self.assertEqual(45, db2[1])


def glance_image(**attrs):
    """An image as the Glance v2 API shows it (JSON object)."""
    body = {'id': fakes.new_id(), 'name': 'snap', 'status': 'queued',
            'visibility': 'private', 'container_format': 'bare',
            'disk_format': 'qcow2', 'min_disk': 1, 'min_ram': 0,
            'protected': False, 'os_hidden': False, 'tags': [],
            'owner': 'p1', 'created_at': '2026-12-02T03:00:00Z',
            'updated_at': '2026-12-02T03:00:00Z', 'self': '/v2/images/x',
            'file': '/v2/images/x/file', 'schema': '/v2/schemas/image'}
    body.update(attrs)
    return body


def cinder_snapshot(**attrs):
    """A snapshot as the Cinder v3 API shows it (JSON object)."""
    body = {'id': fakes.new_id(), 'volume_id': 'vol-1', 'name': None,
            'status': 'creating', 'size': 1, 'metadata': {},
            'created_at': '2026-12-02T03:00:00.000000', 'description': None,
            'updated_at': None}
    body.update(attrs)
    return body


class TestImageLookup(CloudTestCase):

    def setUp(self):
        super().setUp()
        self.images = cloud.ImageLookup(self.connection.image)

    def image(self, **attrs):
        body = glance_image(**attrs)
        self.requests_mock.get(GLANCE + '/images/' + body['id'], json=body)
        return body

    def test_image_get(self):
        image = self.image(status='saving')
        self.assertEqual(
            records.ImageState(image['id'], 'snap', 'saving', None),
            self.images.get(image['id']))

    def test_image_get_instance_uuid(self):
        image = self.image(instance_uuid='srv-1', image_type='snapshot')
        self.assertEqual('srv-1', self.images.get(image['id']).instance_uuid)

    def test_image_get_volume_backed(self):
        # As Nova stores it in Glance: a JSON string property.
        image = self.image(status='active', block_device_mapping=json.dumps([
            {'source_type': 'snapshot', 'snapshot_id': 'snap-1',
             'boot_index': 0},
            {'source_type': 'blank', 'snapshot_id': None},
            {'source_type': 'snapshot', 'snapshot_id': 'snap-2'}]))
        state = self.images.get(image['id'])
        self.assertTrue(state.volume_backed)
        self.assertEqual(('snap-1', 'snap-2'), state.snapshot_ids)

    def test_snapshot_ids(self):
        self.assertIsNone(cloud.snapshot_ids({}))
        self.assertIsNone(cloud.snapshot_ids(None))
        self.assertEqual((), cloud.snapshot_ids(
            {'block_device_mapping': 'not json'}))
        self.assertEqual(('s',), cloud.snapshot_ids(
            {'block_device_mapping': [{'snapshot_id': 's'}]}))

    def test_image_get_not_found(self):
        self.requests_mock.get(GLANCE + '/images/gone', status_code=404,
                               text='Not found')
        self.assertIsNone(self.images.get('gone'))

    def test_image_get_transient(self):
        self.requests_mock.get(GLANCE + '/images/x', status_code=502,
                               text='Bad gateway')
        exc = self.assertRaises(engine.TransientError, self.images.get, 'x')
        self.assertEqual('The Image service answered HTTP 502', str(exc))

    def test_image_get_not_an_object_is_malformed(self):
        for body in (None, [], 'image'):
            self.requests_mock.get(GLANCE + '/images/x', json=body)
            exc = self.assertRaises(engine.TransientError, self.images.get,
                                    'x')
            self.assertTrue(exc.malformed)

    def test_image_get_bounded_by_time_left(self):
        image = self.image()
        self.images.get(image['id'])
        self.images.time_left = lambda: 2.5
        self.images.get(image['id'])
        self.assertEqual([cloud.MAX_REQUEST_TIMEOUT, 2.5], self.timeouts())

    def test_image_latest(self):
        image = glance_image(block_device_mapping='[]')
        self.requests_mock.get(GLANCE + '/images', json={'images': [image]})
        self.assertEqual(
            records.ImageState(image['id'], 'snap', 'queued', ()),
            self.images.latest('srv'))
        self.assertEqual({'instance_uuid': ['srv'],
                          'sort_key': ['created_at'], 'sort_dir': ['desc'],
                          'limit': ['1']},
                         self.requests_mock.last_request.qs)

    def test_image_latest_none(self):
        self.requests_mock.get(GLANCE + '/images', json={'images': []})
        self.assertIsNone(self.images.latest('srv'))

    def test_image_latest_malformed(self):
        self.requests_mock.get(GLANCE + '/images', text='<html>')
        exc = self.assertRaises(engine.TransientError, self.images.latest,
                                'srv')
        self.assertTrue(exc.malformed)


class TestSnapshotLookup(CloudTestCase):

    def setUp(self):
        super().setUp()
        self.snapshots = cloud.SnapshotLookup(self.connection.block_storage)

    def test_snapshot_get(self):
        snap = cinder_snapshot()
        self.requests_mock.get(CINDER + '/snapshots/' + snap['id'],
                               json={'snapshot': snap})
        self.assertEqual(
            records.SnapshotState(snap['id'], 'vol-1', 'creating',
                                  '2026-12-02T03:00:00.000000'),
            self.snapshots.get(snap['id']))

    def test_snapshot_get_not_found(self):
        self.requests_mock.get(CINDER + '/snapshots/gone', status_code=404,
                               json={'itemNotFound': {'code': 404}})
        self.assertIsNone(self.snapshots.get('gone'))

    def test_snapshot_get_transient(self):
        self.requests_mock.get(CINDER + '/snapshots/x', status_code=503,
                               text='busy')
        self.assertRaises(engine.TransientError, self.snapshots.get, 'x')

    def test_snapshot_get_without_snapshot_is_malformed(self):
        self.requests_mock.get(CINDER + '/snapshots/x', json={'volume': {}})
        exc = self.assertRaises(engine.TransientError, self.snapshots.get,
                                'x')
        self.assertTrue(exc.malformed)

    def test_snapshot_creating_of_volumes(self):
        old = cinder_snapshot(status='available',
                              created_at='2026-12-01T00:00:00.000000')
        new = cinder_snapshot()
        other = cinder_snapshot(volume_id='vol-2')
        self.requests_mock.get(CINDER + '/snapshots/detail?volume_id=vol-1',
                               json={'snapshots': [new, old]})
        self.requests_mock.get(CINDER + '/snapshots/detail?volume_id=vol-2',
                               json={'snapshots': [other]})
        self.assertEqual([new['id'], other['id']], sorted(
            [s.id for s in self.snapshots.creating(['vol-1', 'vol-2'])],
            key=[new['id'], other['id']].index))
        self.assertEqual(
            [old['id']], [s.id for s in self.snapshots.of_volumes(['vol-1'])
                          if s.status == 'available'])

    def test_snapshot_lookup_makes_its_proxy_when_needed(self):
        made = []

        def make():
            made.append(1)
            return self.connection.block_storage
        lookup = cloud.SnapshotLookup(make)
        self.assertEqual([], made)
        self.requests_mock.get(CINDER + '/snapshots/x',
                               json={'snapshot': cinder_snapshot(id='x')})
        lookup.get('x')
        lookup.get('x')
        self.assertEqual([1], made)

    def test_volume_ids(self):
        image_backed = fakes.create_one_server({'image': {'id': 'img'}})
        self.assertEqual((), cloud.volume_ids(image_backed))
        volume_backed = fakes.create_one_server({
            'image': '',
            'os-extended-volumes:volumes_attached': [{'id': 'v1'},
                                                     {'id': 'v2'}]})
        self.assertEqual(('v1', 'v2'), cloud.volume_ids(volume_backed))


class TestFindServer(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.compute_client = mock.Mock(spec=compute_proxy.Proxy)
        self.server = fakes.create_one_server({'name': 'vm1'})
        self.sleeps = []
        self.notes = []

    def find(self):
        return cloud.find_server(self.compute_client, 'vm1',
                                 notify=self.notes.append,
                                 sleep=self.sleeps.append)

    def test_find_server_retries_transient(self):
        self.compute_client.find_server.side_effect = [
            http_error(503), ks_exceptions.ConnectFailure('refused'),
            self.server]
        self.assertIs(self.server, self.find())
        self.assertEqual([engine.backoff(1), engine.backoff(2)], self.sleeps)
        self.assertEqual([0.5, 1.0], self.sleeps)
        self.assertEqual(3, self.compute_client.find_server.call_count)
        self.compute_client.find_server.assert_called_with(
            'vm1', ignore_missing=False)
        # Said once, not at every retry.
        self.assertEqual(['The Compute service answered HTTP 503 while '
                          'looking up server vm1; retrying'], self.notes)

    def test_find_server_retry_after(self):
        self.compute_client.find_server.side_effect = [
            http_error(429, '7'), self.server]
        self.assertIs(self.server, self.find())
        self.assertEqual([7.0], self.sleeps)

    def test_find_server_not_transient_not_retried(self):
        for error in (fakes.not_found('server vm1'), http_error(403)):
            self.compute_client.find_server.reset_mock()
            self.compute_client.find_server.side_effect = [error,
                                                           self.server]
            self.assertRaises(type(error), self.find)
            self.assertEqual(1, self.compute_client.find_server.call_count)
        self.assertEqual([], self.sleeps)

    def test_find_server_gives_up(self):
        self.compute_client.find_server.side_effect = http_error(503)
        self.assertRaises(sdk_exceptions.HttpException, self.find)
        self.assertEqual(cloud.RESOLVE_ATTEMPTS,
                         self.compute_client.find_server.call_count)
        self.assertEqual([engine.backoff(n) for n in
                          range(1, cloud.RESOLVE_ATTEMPTS)], self.sleeps)


class TestWatchApi(testtools.TestCase):

    def test_cloud_watch_builds_engine(self):
        connection = mock.Mock()
        connection.config.config = {}
        server = fakes.create_one_server()
        connection.compute.find_server.return_value = server
        watch = cloud.watch(connection, [server.name], until='disk-safe',
                            timeout=60)
        connection.compute.find_server.assert_called_once_with(
            server.name, ignore_missing=False)
        self.assertEqual([server.id], [t.server_id for t in watch.tracks])
        self.assertEqual('disk-safe', str(watch.condition))
        self.assertEqual(60, watch.timeout)
        self.assertEqual('image-status', watch.tracks[0].capture_model)

    def test_cloud_watch_capture_model(self):
        connection = mock.Mock()
        connection.config.config = {'snapphase_capture_model': 'xenserver'}
        connection.compute.find_server.return_value = (
            fakes.create_one_server())
        watch = cloud.watch(connection, ['vm1'])
        self.assertEqual('xenserver', watch.tracks[0].capture_model)
        watch = cloud.watch(connection, ['vm1'],
                            capture_model='image-status')
        self.assertEqual('image-status', watch.tracks[0].capture_model)
        self.assertRaises(ValueError, cloud.watch, connection, ['vm1'],
                          capture_model='guess')


class TestMakeWatchFleet(testtools.TestCase):
    """make_watch(fleet=...) over Nova's JSON, on a fake clock."""

    def setUp(self):
        super().setUp()
        self.nova = test_listing.FakeNova()
        for n in range(4):
            self.nova.put(test_listing.nova_server(
                's%d' % n, name='vm-s%d' % n,
                updated=test_listing.T0 - 3600 + n))
        self.compute = mock.Mock(spec=compute_proxy.Proxy)
        self.compute.get.side_effect = self.nova.get
        self.image = mock.Mock(spec=image_proxy.Proxy)
        self.image.get.return_value = fakes.json_response({'images': []})
        self.clock = fakes.FakeClock()
        self.said = []

    def watch(self, on_poll=None, **options):
        return cloud.make_watch(
            self.compute, self.image, [], fleet={'name': 'vm-'},
            clock=self.clock, sleep=self.clock.sleep, wall=self.clock.wall,
            notify=self.said.append, on_poll=on_poll, **options)

    def test_listing_runs_on_the_watch_clock(self):
        watch = self.watch(timeout=listing.RESYNC_INTERVAL + 60,
                           interval=10)
        list(watch)
        self.assertEqual(engine.TIMED_OUT, watch.outcome.kind)
        # The full listing again after RESYNC_INTERVAL of the watch's
        # clock (never, on the local monotonic clock: the test takes ms).
        self.assertEqual(2, sum('changes-since' not in params
                                for params in self.nova.listed()))

    def test_server_leaving_the_filters_is_no_deletion(self):
        # s2 snapshots; renamed during it, it no longer matches --name.
        self.nova.servers['s2'].update(
            updated=listing.iso_time(test_listing.T0),
            **{'OS-EXT-STS:task_state': 'image_snapshot'})

        def on_poll(watch):
            if watch.polls == 3:
                self.nova.servers['s2'].update(
                    name='db-s2', updated=listing.iso_time(
                        test_listing.T0 + 30))
        watch = self.watch(on_poll, interval=10,
                           condition=conditions.parse_until('idle'),
                           timeout=2 * listing.RESYNC_INTERVAL)
        rows = list(watch)
        self.assertEqual([('s2', 'ACTIVE', 'image_snapshot')],
                         [(c.server_id, c.status, c.task_state)
                          for c in rows])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual([], watch.problems)
        self.assertEqual(['s0', 's1', 's3'],
                         sorted(t.server_id for t in watch.tracks))
        self.assertEqual(['s2'], [t.server_id for t in watch.departed])
        self.assertEqual(1, len(self.said))
        self.assertIn('db-s2 (s2), task state image_snapshot', self.said[0])
        self.assertIn('not deleted', self.said[0])


class TestImageTrack(CloudTestCase):

    def setUp(self):
        super().setUp()
        self.server = {'id': fakes.new_id(), 'name': 'vm1',
                       'status': 'ACTIVE', 'OS-EXT-STS:vm_state': 'active',
                       'OS-EXT-STS:task_state': None,
                       'OS-EXT-STS:power_state': 1}
        self.requests_mock.get(NOVA + '/servers/' + self.server['id'],
                               json={'server': self.server})

    def image(self, **attrs):
        body = glance_image(id='img-1', **attrs)
        self.requests_mock.get(GLANCE + '/images/img-1', json=body)

    def test_cloud_watch_images(self):
        self.image(instance_uuid=self.server['id'])
        watch = cloud.watch(self.connection, images=['img-1'])
        self.assertEqual([(self.server['id'], 'img-1')],
                         [(t.server_id, t.op.image_id) for t in watch.tracks])
        self.assertEqual('vm1', watch.tracks[0].name)
        self.assertEqual('phase-over=upload', str(watch.condition))

    def test_image_track_volume_backed(self):
        self.image(status='active', block_device_mapping=json.dumps(
            [{'snapshot_id': 's1'}]))
        self.requests_mock.get(CINDER + '/snapshots/s1', json={
            'snapshot': cinder_snapshot(id='s1', volume_id='v1')})
        self.requests_mock.get(CINDER + '/volumes/v1', json={'volume': {
            'id': 'v1', 'status': 'in-use',
            'attachments': [{'server_id': self.server['id']}]}})
        track = cloud.image_track(
            self.connection.compute, self.connection.image,
            lambda: self.connection.block_storage, 'img-1')
        self.assertEqual((self.server['id'], 'img-1'),
                         (track.server_id, track.op.image_id))

    def test_image_track_not_of_a_server(self):
        self.image(status='active')
        self.assertRaises(cloud.ImageNotFollowable, cloud.image_track,
                          self.connection.compute, self.connection.image,
                          None, 'img-1')
