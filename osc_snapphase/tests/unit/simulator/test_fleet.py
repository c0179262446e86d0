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

"""Fleets in the simulator (issue 14 item 5).

Nova's server listing as a fleet watch reads it (changes-since, pages of
limit/marker, all_tenants, name), multi-create and the bulk creation of
the control endpoint. The handlers are called in-process on a Cloud (no
socket); the answer over HTTP is in tests/functional/simulator/test_fleet.py.
"""

import json
import types
from unittest import mock
import urllib.parse

import testtools

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import control
from osc_snapphase.simulator import nova
from osc_snapphase.simulator import rest
from osc_snapphase.simulator import runner
from osc_snapphase.simulator import views

T0 = 1_800_000_000.0
DETAIL = '/compute/v2.1/servers/detail'


class FleetCase(testtools.TestCase):
    """A Cloud without an HTTP server; requests go to the handlers."""

    def setUp(self):
        super().setUp()
        self.cloud = cloud_mod.Cloud()
        self.addCleanup(self.cloud.timers.stop)
        runner.seed(self.cloud)
        self.demo = self.ctx('demo')
        self.admin = self.ctx('admin')

    def ctx(self, name):
        user = self.cloud.users[name]
        project = self.cloud.projects[user['project']]
        return {'user_id': user['id'], 'user_name': name,
                'project_id': project['id'], 'project_name': project['name'],
                'roles': list(user['roles']),
                'is_admin': 'admin' in user['roles']}

    def request(self, method, path, body=None, ctx=None, mv=(2, 96)):
        req = rest.Request(method, path, {}, json.dumps(body).encode()
                           if body is not None else b'')
        req.ctx = ctx or self.demo
        req.microversion = mv
        return req

    def get(self, query='', ctx=None, mv=(2, 96), path=DETAIL):
        """Status and decoded body of a server listing."""
        req = self.request('GET', path + (query and '?' + query), ctx=ctx,
                           mv=mv)
        handler = (nova.list_servers_detail if path == DETAIL
                   else nova.list_servers)
        resp = handler(self.cloud, req)
        return resp.status, json.loads(resp.payload())

    def names(self, query='', ctx=None):
        status, body = self.get(query, ctx)
        self.assertEqual(200, status, body)
        return sorted(s['name'] for s in body['servers'])

    def bulk(self, count, prefix='w', **fields):
        """Servers created through the control endpoint's handler."""
        fields.update(count=count, prefix=prefix)
        sim = types.SimpleNamespace(cloud=self.cloud)
        req = self.request('POST', '/_sim/servers', fields)
        return control.create_servers(sim, req)['servers']

    def post_servers(self, ctx=None, **server):
        server.setdefault('name', 'n')
        server.setdefault('flavorRef', '1')
        server.setdefault('imageRef', next(iter(self.cloud.images)))
        req = self.request('POST', '/compute/v2.1/servers',
                           {'server': server}, ctx=ctx)
        resp = nova.create_server(self.cloud, req)
        return resp.status, json.loads(resp.payload())

    def at(self, when, server, **changes):
        """update_server at a given time.time()."""
        clock = mock.Mock(time=mock.Mock(return_value=when))
        with mock.patch.object(cloud_mod, 'time', clock):
            self.cloud.update_server(self.cloud.servers[server['id']],
                                     **changes)


class TestChangesSince(FleetCase):

    def setUp(self):
        super().setUp()
        self.servers = self.bulk(5)
        for srv in self.servers:
            self.at(T0, srv)

    def test_changed_and_deleted_servers_since(self):
        changed, gone = self.servers[1], self.servers[3]
        self.at(T0 + 10, changed, task_state='image_snapshot')
        self.at(T0 + 12, gone, vm_state='deleted', task_state=None)
        status, body = self.get('changes-since=' + cloud_mod.isotime(
            T0 + 5))
        self.assertEqual(200, status)
        found = {s['id']: s for s in body['servers']}
        self.assertEqual({changed['id'], gone['id']}, set(found))
        self.assertEqual('image_snapshot',
                         found[changed['id']]['OS-EXT-STS:task_state'])
        self.assertEqual('DELETED', found[gone['id']]['status'])
        self.assertEqual('deleted', found[gone['id']]['OS-EXT-STS:vm_state'])
        self.assertEqual(cloud_mod.isotime(T0 + 12),
                         found[gone['id']]['updated'])
        # Without changes-since, a deleted server is not listed.
        self.assertEqual(4, len(self.get()[1]['servers']))
        # The brief listing selects the same servers.
        status, body = self.get('changes-since=' + cloud_mod.isotime(
            T0 + 5), path='/compute/v2.1/servers')
        self.assertEqual({changed['id'], gone['id']},
                         {s['id'] for s in body['servers']})

    def test_nothing_changed_is_an_empty_page(self):
        status, body = self.get('changes-since=' + cloud_mod.isotime(
            T0 + 1))
        self.assertEqual((200, {'servers': []}), (status, body))

    def test_every_state_change_updates_the_record(self):
        srv = self.servers[0]
        query = 'changes-since=' + cloud_mod.isotime(T0 + 1)
        for offset, changes in enumerate((
                {'task_state': 'image_snapshot'},
                {'task_state': None},
                {'power_state': 4},
                {'vm_state': 'stopped'}), start=1):
            self.at(T0 + 100 * offset, srv, **changes)
            body = self.get(query)[1]
            self.assertEqual([srv['id']], [s['id'] for s in body['servers']])
            self.assertEqual(cloud_mod.isotime(T0 + 100 * offset),
                             body['servers'][0]['updated'])
            query = 'changes-since=' + cloud_mod.isotime(
                T0 + 100 * offset + 1)
            self.assertEqual([], self.get(query)[1]['servers'])

    def test_resolution_of_a_second_as_the_database(self):
        srv = self.servers[2]
        self.at(T0 + 20.7, srv, task_state='image_pending_upload')
        # The answer's 'updated' (whole seconds) is a valid changes-since
        # that lists the server again.
        updated = self.get()[1]['servers']
        updated = next(s['updated'] for s in updated if s['id'] == srv['id'])
        self.assertEqual(cloud_mod.isotime(T0 + 20), updated)
        self.assertEqual(['w3'], self.names('changes-since=' + updated))
        self.assertEqual([], self.names('changes-since=' + cloud_mod.isotime(
            T0 + 21)))
        # Offsets and fractions are ISO 8601.
        self.assertEqual(['w3'], self.names(
            'changes-since=' + urllib.parse.quote(cloud_mod.isotime(
                T0 + 20, micro=True, zulu=False) + '+00:00')))

    def test_changes_before_from_2_66(self):
        self.at(T0 + 10, self.servers[0], task_state='image_snapshot')
        self.at(T0 + 20, self.servers[1], task_state='image_snapshot')
        query = 'changes-since=%s&changes-before=%s' % (
            cloud_mod.isotime(T0 + 5), cloud_mod.isotime(T0 + 15))
        self.assertEqual(['w1'], self.names(query))
        status, body = self.get('changes-since=%s&changes-before=%s' % (
            cloud_mod.isotime(T0 + 15), cloud_mod.isotime(T0 + 5)))
        self.assertEqual(400, status)
        # Before 2.66 changes-before is not a filter.
        status, body = self.get(query, mv=(2, 65))
        self.assertEqual(2, len(body['servers']))

    def test_invalid_time(self):
        status, body = self.get('changes-since=yesterday')
        self.assertEqual(400, status)
        self.assertIn('changes-since', body['badRequest']['message'])

    def test_admin_deleted_filter_with_changes_since(self):
        self.at(T0 + 10, self.servers[0], vm_state='deleted')
        self.at(T0 + 10, self.servers[1], task_state='image_snapshot')
        since = 'changes-since=' + cloud_mod.isotime(T0 + 5)
        self.assertEqual(['w2'], self.names(
            since + '&deleted=false&all_tenants=1', ctx=self.admin))
        self.assertEqual(['w1'], self.names('deleted=true&all_tenants=1',
                                            ctx=self.admin))
        # A member's deleted filter is not one of its filters.
        self.assertEqual(['w1', 'w2'], self.names(since + '&deleted=false'))


class TestPages(FleetCase):

    def follow(self, query=''):
        """Every page of a listing: the servers and the pages' lengths."""
        servers, sizes = [], []
        while True:
            status, body = self.get(query)
            self.assertEqual(200, status, body)
            servers += body['servers']
            sizes.append(len(body['servers']))
            links = body.get('servers_links')
            if not links:
                return servers, sizes
            self.assertEqual('next', links[0]['rel'])
            href = urllib.parse.urlsplit(links[0]['href'])
            self.assertEqual(DETAIL, href.path)
            query = href.query

    def test_pages_of_max_limit_without_limit(self):
        created = self.bulk(2500)
        servers, sizes = self.follow()
        self.assertEqual([1000, 1000, 500], sizes)
        self.assertEqual(len(created), len({s['id'] for s in servers}))
        # Newest first, as Nova sorts (created_at, id) descending.
        order = [(self.cloud.servers[s['id']]['created'], s['id'])
                 for s in servers]
        self.assertEqual(sorted(order, reverse=True), order)

    def test_limit_pages_keep_the_filters(self):
        self.bulk(7, prefix='a')
        self.bulk(3, prefix='b')
        servers, sizes = self.follow('limit=3&name=^a')
        self.assertEqual([3, 3, 1], sizes)
        self.assertEqual({'a%d' % i for i in range(1, 8)},
                         {s['name'] for s in servers})
        # A last page that is full still has a link, to an empty page.
        servers, sizes = self.follow('limit=3&name=^b')
        self.assertEqual([3, 0], sizes)

    def test_limit_bounds(self):
        self.bulk(3)
        status, body = self.get('limit=0')
        self.assertEqual((200, []), (status, body['servers']))
        self.assertNotIn('servers_links', body)
        self.assertEqual(400, self.get('limit=-1')[0])
        self.assertEqual(400, self.get('limit=many')[0])
        self.bulk(1200)
        self.assertEqual(nova.MAX_LIMIT, len(self.get('limit=5000')[1][
            'servers']))

    def test_marker(self):
        created = self.bulk(6)
        ordered = self.get()[1]['servers']
        status, body = self.get('marker=' + ordered[1]['id'])
        self.assertEqual([s['id'] for s in ordered[2:]],
                         [s['id'] for s in body['servers']])
        status, body = self.get('marker=not-a-server')
        self.assertEqual(400, status)
        self.assertIn('marker [not-a-server] not found',
                      body['badRequest']['message'])
        # A marker that the filters leave out (here: deleted) still
        # places the page, as Nova reads the marker's own record.
        self.at(T0, created[0], vm_state='deleted')
        deleted_marker = created[0]['id']
        status, body = self.get('marker=' + deleted_marker)
        self.assertEqual(200, status)
        index = [s['id'] for s in ordered].index(deleted_marker)
        self.assertEqual([s['id'] for s in ordered[index + 1:]],
                         [s['id'] for s in body['servers']])

    def test_only_the_page_is_rendered(self):
        self.bulk(1500)
        with mock.patch.object(views, 'server', wraps=views.server) as view:
            self.get('limit=10')
            self.assertEqual(10, view.call_count)
            self.get('changes-since=' + cloud_mod.isotime(T0 * 2))
            self.assertEqual(10, view.call_count)


class TestFlavorPages(FleetCase):

    def flavors(self, query):
        req = self.request('GET', '/compute/v2.1/flavors?' + query)
        resp = nova.list_flavors(self.cloud, req)
        return resp.status, json.loads(resp.payload())

    def test_limit(self):
        status, body = self.flavors('limit=1')
        self.assertEqual((200, ['1']), (status, [f['id'] for f in
                                                 body['flavors']]))
        for value in ('x', '-1', '1.5'):
            status, body = self.flavors('limit=' + value)
            self.assertEqual((400, "Invalid input for query parameters "
                              "limit. Value: %s. '%s' does not match "
                              "'^[0-9]*$'" % (value, value)),
                             (status, body['badRequest']['message']))


class TestProjectsAndNames(FleetCase):

    def setUp(self):
        super().setUp()
        self.bulk(2, prefix='mine')
        self.bulk(2, prefix='theirs', project='admin')

    def test_all_tenants_is_for_admins(self):
        self.assertEqual(['mine1', 'mine2'], self.names())
        status, body = self.get('all_tenants=1')
        self.assertEqual(403, status)
        self.assertIn('detail:get_all_tenants',
                      body['forbidden']['message'])
        self.assertEqual(['theirs1', 'theirs2'], self.names(ctx=self.admin))
        for value in ('1', 'True', ''):
            self.assertEqual(4, len(self.names('all_tenants=' + value,
                                               ctx=self.admin)))
        self.assertEqual(2, len(self.names('all_tenants=0',
                                           ctx=self.admin)))
        demo = self.cloud.projects['demo']['id']
        self.assertEqual(['mine1', 'mine2'], self.names(
            'all_tenants=1&project_id=' + demo, ctx=self.admin))

    def test_name_is_a_regular_expression(self):
        self.assertEqual(['mine2'], self.names('name=e2$'))
        self.assertEqual(['mine1', 'mine2'], self.names('name=in'))
        status, body = self.get('name=(')
        self.assertEqual(400, status)


class TestMultiCreate(FleetCase):

    def test_min_and_max_count(self):
        status, body = self.post_servers(name='web', min_count=2,
                                         max_count=3)
        self.assertEqual(202, status)
        servers = list(self.cloud.servers.values())
        self.assertEqual(['web-1', 'web-2', 'web-3'],
                         sorted(s['name'] for s in servers))
        self.assertEqual(1, len({s['reservation_id'] for s in servers}))
        first = next(s for s in servers if s['name'] == 'web-1')
        self.assertEqual(first['id'], body['server']['id'])
        listed = self.get(ctx=self.admin, query='all_tenants=1')[1]
        self.assertEqual({0, 1, 2}, {s['OS-EXT-SRV-ATTR:launch_index']
                                     for s in listed['servers']})
        self.assertEqual('web-2', next(
            s['OS-EXT-SRV-ATTR:hostname'] for s in listed['servers']
            if s['name'] == 'web-2'))
        # Each one builds: BUILD now, as a single create.
        self.assertEqual({'BUILD'}, {s['status'] for s in listed['servers']})

    def test_one_server_keeps_its_name(self):
        self.assertEqual(202, self.post_servers(name='solo', max_count=1)[0])
        self.assertEqual(['solo'], [s['name']
                                    for s in self.cloud.servers.values()])

    def test_return_reservation_id(self):
        status, body = self.post_servers(min_count=2,
                                         return_reservation_id=True)
        self.assertEqual(202, status)
        self.assertEqual({body['reservation_id']}, {
            s['reservation_id'] for s in self.cloud.servers.values()})
        self.assertEqual(2, len(self.cloud.servers))

    def test_invalid_counts(self):
        for fields in ({'min_count': 3, 'max_count': 2},
                       {'min_count': 0}, {'max_count': 'x'},
                       {'min_count': True}):
            status, body = self.post_servers(**fields)
            self.assertEqual(400, status, fields)
        self.assertEqual({}, self.cloud.servers)

    def test_quota_reduces_max_count(self):
        self.bulk(6, project='admin')       # another project's
        self.bulk(3)
        with mock.patch.object(nova, 'INSTANCES_QUOTA', 5):
            status, body = self.post_servers(name='web', min_count=1,
                                             max_count=100000)
        self.assertEqual(202, status, body)
        self.assertEqual(['web-1', 'web-2'], sorted(
            s['name'] for s in self.cloud.servers.values()
            if s['name'].startswith('web')))

    def test_quota_exceeded(self):
        self.bulk(3)
        self.bulk(2, project='admin')
        deleted = self.bulk(1)[0]
        self.cloud.update_server(self.cloud.servers[deleted['id']],
                                 vm_state='deleted')
        before = len(self.cloud.servers)
        for fields, requested in (({'min_count': 3}, '3'),
                                  ({'min_count': 3, 'max_count': 9}, '3-9')):
            with mock.patch.object(nova, 'INSTANCES_QUOTA', 5):
                status, body = self.post_servers(**fields)
            self.assertEqual((403, {'forbidden': {
                'code': 403, 'message': 'Quota exceeded for instances: '
                'Requested %s, but already used 3 of 5 instances'
                % requested}}), (status, body))
        self.assertEqual(before, len(self.cloud.servers))

    def test_no_volume_for_several_servers(self):
        status, body = self.post_servers(
            max_count=2, imageRef='', block_device_mapping_v2=[{
                'boot_index': 0, 'uuid': 'v', 'source_type': 'volume',
                'destination_type': 'volume'}])
        self.assertEqual(400, status)
        self.assertIn('multiple instances', body['badRequest']['message'])


class TestBulk(FleetCase):

    def test_thousands_active_at_once_without_timers(self):
        servers = self.bulk(5000, prefix='fleet-')
        self.assertEqual(5000, len(servers))
        self.assertEqual('fleet-5000', servers[-1]['name'])
        self.assertEqual({'ACTIVE'}, {s['status'] for s in servers})
        self.assertEqual(0, self.cloud.timers.pending())
        status, body = self.get('changes-since=' + cloud_mod.isotime(
            T0 * 2))
        self.assertEqual((200, []), (status, body['servers']))

    def test_fields_of_each_server(self):
        servers = self.bulk(3, task_state='image_snapshot', power_state=1,
                            project='admin')
        self.assertEqual({'image_snapshot'}, {
            s['OS-EXT-STS:task_state'] for s in servers})
        admin = self.cloud.projects['admin']['id']
        self.assertEqual({admin}, {s['tenant_id'] for s in servers})
