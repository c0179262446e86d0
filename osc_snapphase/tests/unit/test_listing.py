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


"""Tests of osc_snapphase.listing: the engine's server reads (JSON)."""

import json
from unittest import mock
import urllib.parse

from openstack.compute.v2 import _proxy as compute_proxy
from openstack import exceptions as sdk_exceptions
import testtools

from osc_snapphase import cloud
from osc_snapphase import engine
from osc_snapphase import listing
from osc_snapphase import records
from osc_snapphase.tests.unit import fakes

# 2026-12-02T05:00:00Z
T0 = 1796187600.0


def nova_server(server_id, name='vm', task_state=None, vm_state='active',
                status='ACTIVE', updated=T0, **extra):
    """A server as Nova's GET /servers/detail shows it (microversion 2.1)."""
    body = {
        'id': server_id, 'name': name, 'status': status,
        'tenant_id': 'p1', 'user_id': 'u1', 'metadata': {},
        'hostId': 'abc', 'image': {'id': 'img', 'links': []},
        'flavor': {'id': '1', 'links': []},
        'created': '2026-12-01T00:00:00Z',
        'updated': listing.iso_time(updated),
        'addresses': {}, 'accessIPv4': '', 'accessIPv6': '',
        'links': [], 'OS-DCF:diskConfig': 'MANUAL',
        'OS-EXT-AZ:availability_zone': 'nova', 'config_drive': '',
        'key_name': None, 'OS-SRV-USG:launched_at': None,
        'OS-SRV-USG:terminated_at': None,
        'os-extended-volumes:volumes_attached': [],
        'OS-EXT-STS:task_state': task_state,
        'OS-EXT-STS:vm_state': vm_state,
        'OS-EXT-STS:power_state': 1,
    }
    body.update(extra)
    return body


class FakeNova:
    """GET /servers/detail and /servers/{id} as Nova answers them.

    changes-since lists servers updated at or after the time, deleted ones
    included (status DELETED); pages of ``max_limit`` with a next link;
    ``name`` is a regex; ``now`` is the cloud's clock for updates.
    """

    def __init__(self, max_limit=1000):
        self.servers = {}      # id -> body, in creation order
        self.deleted = {}      # id -> body (status DELETED)
        self.max_limit = max_limit
        self.calls = []

    def put(self, body):
        self.servers[body['id']] = body

    def delete(self, server_id, updated, archived=False):
        body = self.servers.pop(server_id)
        if not archived:
            self.deleted[server_id] = dict(
                body, status='DELETED', updated=listing.iso_time(updated),
                **{'OS-EXT-STS:vm_state': 'deleted',
                   'OS-EXT-STS:task_state': None})

    def get(self, path, params=None, **kwargs):
        params = dict(params or {})
        self.calls.append((path, params))
        if path != '/servers/detail':
            body = self.servers.get(path.rsplit('/', 1)[-1])
            if body is None:
                return fakes.json_response({'itemNotFound': {
                    'code': 404, 'message': 'Instance not found'}}, 404)
            return fakes.json_response({'server': body})
        servers = list(reversed(list(self.servers.values())))
        since = params.get('changes-since')
        if since is not None:
            servers += list(self.deleted.values())
            moment = listing.cloud_time(since)
            # A partial record (a cell that does not answer) has no
            # time: Nova lists it whatever the time asked.
            servers = [s for s in servers if 'updated' not in s
                       or listing.cloud_time(s['updated']) >= moment]
        if params.get('name'):
            servers = [s for s in servers if params['name'] in s['name']]
        marker = params.get('marker')
        if marker is not None:
            ids = [s['id'] for s in servers]
            if marker not in ids:
                return fakes.json_response({'badRequest': {
                    'code': 400, 'message': 'marker [%s] not found'
                    % marker}}, 400)
            servers = servers[ids.index(marker) + 1:]
        limit = min(int(params.get('limit', self.max_limit)), self.max_limit)
        page = servers[:limit]
        body = {'servers': page}
        if len(page) == limit:
            query = dict(params, marker=page[-1]['id'])
            body['servers_links'] = [{
                'rel': 'next',
                'href': 'http://nova/v2.1/servers/detail?'
                        + urllib.parse.urlencode(query)}]
        return fakes.json_response(body)

    def listed(self):
        """The params of each listing request."""
        return [params for path, params in self.calls
                if path == '/servers/detail']


class ListingTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = fakes.FakeClock(100.0)
        self.nova = FakeNova()
        self.compute_client = mock.Mock(spec=compute_proxy.Proxy)
        self.compute_client.get.side_effect = self.nova.get
        self.ids = []
        for n in range(5):
            self.add('s%d' % n, updated=T0 - 3600 + n)

    def add(self, server_id, **kwargs):
        self.nova.put(nova_server(server_id, name='vm-' + server_id,
                                  **kwargs))
        self.ids.append(server_id)

    def listing(self, fleet=True, **kwargs):
        self.reads = listing.ServerListing(
            self.compute_client, fleet=fleet, clock=self.clock, **kwargs)
        return self.reads

    def change(self, server_id, updated, **fields):
        body = self.nova.servers[server_id]
        body.update(fields)
        body['updated'] = listing.iso_time(updated)


class TestServerState(testtools.TestCase):

    def test_server_state_from_json(self):
        body = nova_server('s1', name='db1', task_state='image_uploading',
                           status='ERROR', vm_state='error',
                           fault={'code': 500, 'message': 'Disk full'})
        self.assertEqual(
            records.ServerState('s1', 'db1', 'ERROR', 'error',
                                'image_uploading', 1, 'Disk full'),
            listing.server_state(body))

    def test_server_state_sdk_server_same_mapping(self):
        # show reads an SDK Server: the same mapping, on its body.
        server = fakes.create_one_server({
            'OS-EXT-STS:task_state': 'image_snapshot',
            'fault': {'message': 'x'}})
        self.assertEqual(
            listing.server_state(fakes.server_body(server)),
            cloud.server_state(server))
        self.assertEqual(
            records.ServerState(server.id, server.name, 'ACTIVE', 'active',
                                'image_snapshot', 1, 'x'),
            cloud.server_state(server))

    def test_server_state_no_task_states(self):
        body = nova_server('s1')
        for key in ('OS-EXT-STS:task_state', 'OS-EXT-STS:vm_state',
                    'OS-EXT-STS:power_state'):
            del body[key]
        exc = self.assertRaises(cloud.NoTaskStates, listing.server_state,
                                body)
        self.assertIn('does not show task states for server s1', str(exc))

    def test_server_state_invalid_body_is_malformed(self):
        exc = self.assertRaises(engine.TransientError,
                                listing.server_state, {'id': 's1'})
        self.assertTrue(exc.malformed)
        self.assertIn('not a valid server', str(exc))

    def test_times(self):
        self.assertEqual('2026-12-02T05:00:00Z', listing.iso_time(T0 + 0.9))
        self.assertEqual(T0, listing.cloud_time('2026-12-02T05:00:00Z'))
        self.assertEqual(T0, listing.cloud_time('2026-12-02T05:00:00+00:00'))
        self.assertEqual(T0 + 0.5,
                         listing.cloud_time('2026-12-02T05:00:00.500000'))
        self.assertIsNone(listing.cloud_time('yesterday'))
        self.assertIsNone(listing.cloud_time(None))


class TestReadOne(ListingTestCase):

    def test_one_server_get_by_id(self):
        self.change('s1', T0, **{'OS-EXT-STS:task_state': 'image_snapshot'})
        states = self.listing(fleet=False)(['s1'])
        self.assertEqual({'s1': records.ServerState(
            's1', 'vm-s1', 'ACTIVE', 'active', 'image_snapshot', 1, None)},
            states)
        self.assertEqual([('/servers/s1', {})], self.nova.calls)

    def test_one_server_gone(self):
        self.assertEqual({}, self.listing(fleet=False)(['nope']))

    def test_one_server_time_left_is_the_read_timeout(self):
        reads = self.listing(fleet=False)
        reads.time_left = lambda: 2.5
        reads(['s1'])
        self.assertEqual(
            2.5, self.compute_client.get.call_args.kwargs['timeout'])

    def test_one_server_transient(self):
        self.compute_client.get.side_effect = None
        self.compute_client.get.return_value = fakes.json_response(
            {'computeFault': {'code': 503}}, 503, {'Retry-After': '7'})
        exc = self.assertRaises(engine.TransientError,
                                self.listing(fleet=False), ['s1'])
        self.assertEqual('The Compute service answered HTTP 503', str(exc))
        self.assertEqual(7.0, exc.retry_after)

    def test_one_server_other_error_propagates(self):
        self.compute_client.get.side_effect = None
        self.compute_client.get.return_value = fakes.json_response(
            {'forbidden': {'code': 403}}, 403)
        self.assertRaises(sdk_exceptions.HttpException,
                          self.listing(fleet=False), ['s1'])


class TestNamedServers(ListingTestCase):

    def test_named_one_listing(self):
        answer = self.listing(fleet=False)(['s1', 's3'])
        self.assertEqual(['s3', 's1'], list(answer.states))
        self.assertEqual([], answer.deleted)
        self.assertEqual([{'limit': 1000}], self.nova.listed())
        self.assertEqual(1, len(self.nova.calls))

    def test_named_then_changes_only(self):
        reads = self.listing(fleet=False)
        reads(['s1', 's3'])
        self.change('s1', T0 + 10, **{'OS-EXT-STS:task_state': 'image_backup'})
        self.change('s2', T0 + 10, **{'OS-EXT-STS:task_state': 'rebooting'})
        self.clock.sleep(2)
        answer = reads(['s1', 's3'])
        # s2 changed too, but is not watched; s3 did not change.
        self.assertEqual(['s1'], list(answer.states))
        self.assertEqual('image_backup', answer.states['s1'].task_state)
        self.assertIn('changes-since', self.nova.listed()[-1])

    def test_named_not_in_listing_read_by_id(self):
        # Another project's server given by ID to an administrator: the
        # listing does not show it; it is read by ID at every poll.
        reads = self.listing(fleet=False)
        self.nova.servers['other'] = nova_server('other', name='theirs')
        listed = {k: v for k, v in self.nova.servers.items()
                  if k != 'other'}
        real_get = self.nova.get

        def get(path, params=None, **kwargs):
            if path == '/servers/detail':
                saved = self.nova.servers
                self.nova.servers = listed
                try:
                    return real_get(path, params, **kwargs)
                finally:
                    self.nova.servers = saved
            return real_get(path, params, **kwargs)
        self.compute_client.get.side_effect = get
        answer = reads(['s1', 'other'])
        self.assertEqual({'s1', 'other'}, set(answer.states))
        self.clock.sleep(2)
        reads(['s1', 'other'])
        self.assertEqual(
            ['/servers/detail', '/servers/other'] * 2,
            [path for path, params in self.nova.calls])

    def test_named_missing_is_deleted(self):
        answer = self.listing(fleet=False)(['s1', 'gone'])
        self.assertEqual(['s1'], list(answer.states))
        self.assertEqual(['gone'], answer.deleted)


class TestIncremental(ListingTestCase):

    def test_fleet_first_full_listing(self):
        answer = self.listing()(())
        self.assertEqual(['s4', 's3', 's2', 's1', 's0'], list(answer.states))
        self.assertEqual(1, self.reads.full_listings)

    def test_pages_followed(self):
        self.nova.max_limit = 2
        answer = self.listing()(())
        self.assertEqual(5, len(answer.states))
        self.assertEqual(
            [{'limit': 1000}, {'limit': 1000, 'marker': 's3'},
             {'limit': 1000, 'marker': 's1'}], self.nova.listed())

    def test_marker_gone_while_paging_is_transient(self):
        self.nova.max_limit = 2
        real_get = self.nova.get

        def get(path, params=None, **kwargs):
            if params.get('marker') == 's3':
                self.nova.delete('s3', T0, archived=True)
            return real_get(path, params, **kwargs)
        self.compute_client.get.side_effect = get
        exc = self.assertRaises(engine.TransientError, self.listing(), ())
        self.assertIn('changed while it was read', str(exc))

    def test_nothing_changed_one_request_no_server(self):
        reads = self.listing()
        reads(())
        self.clock.sleep(10)
        reads(())   # the newest server is older than the overlap
        for _ in range(3):
            self.clock.sleep(2)
            before = len(self.nova.calls)
            answer = reads(())
            self.assertEqual(1, len(self.nova.calls) - before)
            self.assertEqual(({}, []), (answer.states, answer.deleted))
        self.assertEqual(1, reads.full_listings)

    def test_changes_since_from_the_cloud_clock(self):
        # The newest server was updated at T0 + 50 (the cloud's clock);
        # the local monotonic clock is elsewhere (100 s).
        self.change('s2', T0 + 50)
        reads = self.listing()
        reads(())                          # sent and read at local 100
        self.clock.sleep(3)
        reads(())                          # since: T0 + 50 + 0 - 2
        self.assertEqual(listing.iso_time(T0 + 48),
                         self.nova.listed()[-1]['changes-since'])
        self.clock.sleep(3)
        reads(())                          # the last send was at 103
        self.assertEqual(listing.iso_time(T0 + 51),
                         self.nova.listed()[-1]['changes-since'])

    def test_overlap_repeats_are_not_changes(self):
        reads = self.listing()
        reads(())
        self.change('s1', T0 + 1,
                    **{'OS-EXT-STS:task_state': 'image_snapshot'})
        self.clock.sleep(1)
        answer = reads(())
        self.assertEqual(['s1'], list(answer.states))
        # Within the overlap s1 is listed again, unchanged: not answered.
        self.clock.sleep(0.5)
        answer = reads(())
        self.assertEqual({}, answer.states)
        listed = self.nova.calls[-1]
        self.assertEqual(['s1'], [s['id'] for s in self.nova.get(
            *listed).json()['servers']])
        self.change('s1', T0 + 2, **{'OS-EXT-STS:task_state': None})
        self.clock.sleep(0.5)
        answer = reads(())
        self.assertIsNone(answer.states['s1'].task_state)

    def test_new_server_answered(self):
        reads = self.listing()
        reads(())
        self.add('s9', updated=T0 + 5)
        self.clock.sleep(2)
        self.assertEqual(['s9'], list(reads(()).states))

    def test_deleted_server_recognised(self):
        reads = self.listing()
        reads(())
        self.nova.delete('s2', T0 + 3)
        self.clock.sleep(2)
        answer = reads(())
        state = answer.states['s2']
        self.assertEqual(('DELETED', 'deleted'),
                         (state.status, state.vm_state))
        self.assertTrue(engine.is_gone(state))
        # Listed again within the overlap: said once only.
        self.clock.sleep(0.5)
        self.assertEqual({}, reads(()).states)

    def test_deleted_server_never_seen_ignored(self):
        reads = self.listing()
        reads(())
        self.add('brief', updated=T0 + 3)
        self.nova.delete('brief', T0 + 3)
        self.clock.sleep(2)
        self.assertEqual({}, reads(()).states)

    def test_resync_finds_servers_gone_without_record(self):
        reads = self.listing(resync_interval=60)
        reads(())
        self.nova.delete('s3', T0, archived=True)
        self.clock.sleep(30)
        self.assertEqual([], reads(()).deleted)
        self.clock.sleep(31)
        answer = reads(())
        self.assertEqual(['s3'], answer.deleted)
        self.assertEqual({}, answer.states)
        self.assertEqual(2, reads.full_listings)
        self.assertNotIn('changes-since', self.nova.listed()[-1])

    def test_full_listing_after_transient_fault(self):
        reads = self.listing()
        reads(())
        self.compute_client.get.side_effect = [fakes.json_response(
            {'computeFault': {'code': 502}}, 502)]
        self.clock.sleep(2)
        self.assertRaises(engine.TransientError, reads, ())
        self.compute_client.get.side_effect = self.nova.get
        self.change('s0', T0 + 7, **{'OS-EXT-STS:task_state': 'image_backup'})
        answer = reads(())
        self.assertEqual(['s0'], list(answer.states))
        self.assertEqual(2, reads.full_listings)

    def test_filters_in_every_listing(self):
        reads = self.listing(filters={'all_tenants': True, 'name': 'vm-s1'})
        self.assertEqual(['s1'], list(reads(()).states))
        self.clock.sleep(2)
        reads(())
        first, second = self.nova.listed()
        self.assertEqual({'all_tenants': True, 'name': 'vm-s1',
                          'limit': 1000}, first)
        self.assertEqual('vm-s1', second['name'])
        self.assertTrue(second['all_tenants'])

    def test_not_a_server_list_is_malformed(self):
        self.compute_client.get.side_effect = None
        self.compute_client.get.return_value = fakes.json_response(
            {'error': 'oops'})
        exc = self.assertRaises(engine.TransientError, self.listing(), ())
        self.assertTrue(exc.malformed)

    def test_empty_project_full_listing_until_a_server(self):
        self.nova.servers.clear()
        reads = self.listing()
        self.assertEqual({}, reads(()).states)
        self.clock.sleep(2)
        reads(())
        self.assertEqual(2, reads.full_listings)
        self.add('s1', updated=T0 + 9)
        self.clock.sleep(2)
        self.assertEqual(['s1'], list(reads(()).states))
        self.clock.sleep(2)
        reads(())
        self.assertIn('changes-since', self.nova.listed()[-1])

    def test_fault_mid_poll_loses_no_change(self):
        # The listing shows s1 changed, then the read of a named server
        # that the listing does not show fails: s1's change is answered
        # by the next poll.
        reads = self.listing(fleet=False)
        other = nova_server('other', name='theirs')
        real_get = self.nova.get
        faults = []

        def get(path, params=None, **kwargs):
            if path == '/servers/other':
                if faults:
                    return faults.pop()
                return fakes.json_response({'server': other})
            return real_get(path, params, **kwargs)
        self.compute_client.get.side_effect = get
        reads(['s1', 'other'])
        self.change('s1', T0 + 5, **{'OS-EXT-STS:task_state': 'rebooting'})
        faults.append(fakes.json_response({'computeFault': {
            'code': 503}}, 503))
        self.clock.sleep(2)
        self.assertRaises(engine.TransientError, reads, ['s1', 'other'])
        answer = reads(['s1', 'other'])
        self.assertEqual('rebooting', answer.states['s1'].task_state)
        self.assertEqual(2, reads.full_listings)


def down_cell_server(server_id):
    """A server of a cell that does not answer (Nova's partial record).

    As GET /servers/detail shows it with microversion 2.69 or later.
    """
    return json.loads('''{
        "id": "%s", "status": "UNKNOWN", "tenant_id": "p1",
        "created": "2026-12-01T00:00:00Z",
        "links": [
            {"href": "http://nova/v2.1/servers/%s", "rel": "self"},
            {"href": "http://nova/servers/%s", "rel": "bookmark"}]
    }''' % ((server_id,) * 3))


class TestTimeBase(ListingTestCase):
    """One cloud host's clock 10 s fast; local 100 is the cloud's T0."""

    def setUp(self):
        super().setUp()
        self.said = []
        self.reads = self.listing(resync_interval=60)
        self.reads.notify = self.said.append
        self.reads(())

    def at(self, seconds):
        """Move the local clock to `seconds`; the cloud's time then."""
        self.clock.sleep(seconds - self.clock())
        return T0 + seconds - 100

    def poll_until(self, seconds, step=2):
        answers = []
        while self.clock() + step <= seconds:
            self.clock.sleep(step)
            answers.append(self.reads(()))
        return answers

    def fast_host_update(self, seconds, server_id, task_state):
        """The fast host writes: its `updated` is 10 s ahead."""
        now = self.at(seconds)
        self.change(server_id, now + 10,
                    **{'OS-EXT-STS:task_state': task_state})
        return self.reads(())

    def test_full_listing_sets_the_base_afresh(self):
        self.fast_host_update(102, 's1', 'rebooting')
        self.poll_until(160)    # the full listing at 160: no change missed
        self.assertEqual(2, self.reads.full_listings)
        now = self.at(161)
        self.change('s3', now, **{'OS-EXT-STS:task_state': 'image_backup'})
        answer = self.reads(())
        # Before, the base stayed 10 s ahead until the end of the watch:
        # s3's change (stamped by a host on time) was missed until 220.
        self.assertEqual(['s3'], list(answer.states))
        self.assertEqual([], self.said)
        self.assertEqual(0.0, self.reads.skew)

    def test_missed_changes_ask_further_back(self):
        self.fast_host_update(102, 's1', 'rebooting')
        now = self.at(104)
        self.change('s2', now, **{'OS-EXT-STS:task_state': 'image_backup'})
        answers = self.poll_until(158)
        self.assertEqual([{}] * len(answers), [a.states for a in answers])
        answer = self.poll_until(160)[-1]   # the full listing finds it
        self.assertEqual(2, self.reads.full_listings)
        self.assertEqual(['s2'], list(answer.states))
        message, = self.said
        self.assertIn('found 1 server change(s) that the changes-since '
                      'listings missed (vm-s2 (s2), task state '
                      'image_backup, updated 2026-12-02T05:00:04Z', message)
        self.assertIn('check the clocks of the Compute hosts', message)
        self.assertGreater(self.reads.skew, 10)
        # The fast host writes again: its change raises the base again,
        # but the listings now ask far enough back for the others.
        self.fast_host_update(166, 's1', None)
        now = self.at(168)
        self.change('s4', now, **{'OS-EXT-STS:task_state': 'rebooting'})
        self.clock.sleep(2)
        self.assertEqual(['s4'], list(self.reads(()).states))
        # Said once: a later miss (a host 100 s behind) widens silently.
        self.change('s0', self.at(175) - 100,
                    **{'OS-EXT-STS:task_state': 'rebooting'})
        self.poll_until(222)
        self.assertEqual(1, len(self.said))


class TestLeftTheFilters(ListingTestCase):

    def setUp(self):
        super().setUp()
        self.said = []
        self.left = []
        self.reads = self.listing(filters={'name': 'vm-'},
                                  resync_interval=60)
        self.reads.notify = self.said.append
        self.reads.elapsed = lambda: 61.0
        self.reads.leave = self.left.append
        self.reads(())

    def test_renamed_server_leaves_without_deleted_row(self):
        self.change('s2', T0 + 1, name='db-s2',
                    **{'OS-EXT-STS:task_state': 'image_uploading'})
        self.clock.sleep(2)
        self.assertEqual({}, self.reads(()).states)   # filtered out
        self.clock.sleep(60)
        answer = self.reads(())
        self.assertEqual(({}, []), (answer.states, answer.deleted))
        self.assertEqual(['s2'], [state.id for state in self.left])
        self.assertEqual(('db-s2', 'image_uploading'),
                         (self.left[0].name, self.left[0].task_state))
        # One GET by ID, for the server the listing no longer shows.
        self.assertEqual(['/servers/s2'],
                         [path for path, params in self.nova.calls
                          if path != '/servers/detail'])
        self.assertEqual([
            'No longer matching the filters of the watch after 1m01s '
            '(renamed?), not deleted, these servers leave it: db-s2 (s2), '
            'task state image_uploading. Watch one by ID with "openstack '
            'server task-state watch s2"'], self.said)
        # Forgotten: the next full listing does not read it again.
        self.clock.sleep(61)
        self.assertEqual(({}, []), (self.reads(()).states,
                                    self.reads(()).deleted))
        self.assertEqual(1, len(self.left))
        self.assertEqual(1, len(self.said))

    def test_archived_server_is_deleted(self):
        self.nova.delete('s2', T0, archived=True)
        self.clock.sleep(61)
        self.assertEqual(['s2'], self.reads(()).deleted)
        self.assertEqual(([], []), (self.left, self.said))


class TestDownCell(ListingTestCase):
    """Microversion 2.69+: the servers of a cell that does not answer."""

    def setUp(self):
        super().setUp()
        self.said = []

    def down(self, server_id):
        self.nova.servers[server_id] = down_cell_server(server_id)

    def reads_of(self, **kwargs):
        reads = self.listing(**kwargs)
        reads.notify = self.said.append
        return reads

    def test_down_cell_server_keeps_its_state(self):
        self.change('s3', T0, **{'OS-EXT-STS:task_state': 'image_uploading'})
        reads = self.reads_of(resync_interval=60)
        reads(())
        self.down('s3')
        for _ in range(39):
            # s0 changes now and then (the cloud's clock: T0 at local 100)
            # while s3's cell does not answer; every listing shows s3 as
            # UNKNOWN, the full ones (each minute) and changes-since ones.
            self.clock.sleep(3)
            if int(self.clock()) % 10 == 0:
                self.change('s0', T0 + self.clock() - 100)
            answer = reads(())
            self.assertNotIn('s3', answer.states)
            self.assertNotIn('s3', answer.deleted)
        self.assertEqual(2, reads.full_listings)
        self.assertEqual([
            'The cell of these servers does not answer (status UNKNOWN, no '
            'task state shown): vm-s3 (s3), task state image_uploading. '
            'Their last known state is kept until the cell answers again; '
            'an administrator can check the cells with "nova-manage '
            'cell_v2 list_cells"'], self.said)     # said once
        # The cell answers again, with a change made while it did not:
        # news, not a change that the listings missed.
        self.add('s3', updated=T0 + 30)
        while reads.full_listings < 3:
            self.clock.sleep(3)
            answer = reads(())
        self.assertIsNone(answer.states['s3'].task_state)
        self.assertEqual(0.0, reads.skew)
        self.assertEqual(1, len(self.said))

    def test_missing_server_unreadable_is_kept(self):
        # Before 2.69 Nova leaves a down cell's servers out of its lists,
        # and answers HTTP 500 to a read of one by ID.
        reads = self.reads_of(resync_interval=60)
        reads(())
        hidden = self.nova.servers.pop('s1')
        real_get = self.nova.get

        def get(path, params=None, **kwargs):
            if path == '/servers/s1':
                return fakes.json_response({'computeFault': {
                    'code': 500, 'message': 'Unexpected API Error'}}, 500)
            return real_get(path, params, **kwargs)
        self.compute_client.get.side_effect = get
        for _ in range(2):
            self.clock.sleep(61)
            answer = reads(())       # a full listing, and the GET of s1
            self.assertEqual(({}, []), (answer.states, answer.deleted))
        self.assertEqual(3, reads.full_listings)
        self.assertEqual(2, [call.args[0] for call in
                             self.compute_client.get.call_args_list
                             ].count('/servers/s1'))
        message, = self.said
        self.assertIn('Server vm-s1 (s1), task state none is missing from '
                      'the server list and reading it by ID failed (The '
                      'Compute service answered HTTP 500)', message)
        self.nova.put(dict(hidden, updated=listing.iso_time(T0 - 60),
                           **{'OS-EXT-STS:task_state': 'rebooting'}))
        self.clock.sleep(61)
        self.assertEqual(['s1'], list(reads(()).states))
        self.assertEqual(0.0, reads.skew)

    def test_first_listing_with_a_down_cell_is_no_error(self):
        self.down('s1')
        answer = self.reads_of()(())
        self.assertEqual(['s4', 's3', 's2', 's0'], list(answer.states))
        self.assertIn('s1, no state known yet', self.said[0])

    def test_down_cell_read_by_id(self):
        # GET /servers/{id} shows a little more, the power state too.
        body = dict(down_cell_server('s1'), image='', user_id='u1',
                    flavor={'vcpus': 1}, **{
                        'OS-EXT-AZ:availability_zone': 'nova',
                        'OS-EXT-STS:power_state': 1})
        self.nova.servers['s1'] = body
        answer = self.reads_of(fleet=False)(['s1'])
        self.assertEqual(({}, ()), (answer.states, answer.deleted))
        self.assertEqual(1, len(self.said))

    def test_task_states_hidden_still_ends_the_watch(self):
        self.down('s1')
        for key in ('OS-EXT-STS:task_state', 'OS-EXT-STS:vm_state',
                    'OS-EXT-STS:power_state'):
            del self.nova.servers['s2'][key]
        self.assertRaises(cloud.NoTaskStates, self.reads_of(), ())


class TestMalformedListing(ListingTestCase):

    def answer(self, body):
        self.compute_client.get.side_effect = None
        self.compute_client.get.return_value = fakes.json_response(body)

    def assert_malformed(self, text):
        exc = self.assertRaises(engine.TransientError, self.listing(), ())
        self.assertTrue(exc.malformed)
        self.assertIn(text, str(exc))

    def test_item_not_a_server_object(self):
        for item in ('oops', None, dict(nova_server('s2'), id=['s2'])):
            self.answer({'servers': [nova_server('s1'), item]})
            self.assert_malformed('not a server list')

    def test_updated_not_a_time(self):
        for updated in (12, 'yesterday', ['x']):
            self.answer({'servers': [nova_server('s1'),
                                     dict(nova_server('s2'),
                                          updated=updated)]})
            self.assert_malformed('updated time that is not a time')

    def test_next_link_to_a_page_already_read(self):
        link = {'rel': 'next',
                'href': 'http://nova/v2.1/servers/detail?marker=s1'}
        self.answer({'servers': [nova_server('s1')],
                     'servers_links': [link]})
        self.assert_malformed('already read (marker s1)')
        self.assertEqual(2, self.compute_client.get.call_count)
