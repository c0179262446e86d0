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

"""The incremental server listing against the real Nova (issue 14).

``watch --all`` run as the real ``openstack`` shows every task state Nova
went through for the server that changes, and nothing for the others.

The engine's server reads (:class:`osc_snapphase.listing.ServerListing`)
run in-process, twice over the same Nova: incrementally (one full listing,
then ``changes-since``, timed by Nova's own ``updated`` times) and as a
full listing at every poll. Through an image-create held by the fake
driver in each of its phases, and a deletion, both must see the same
changes. Events only: each phase is held while both read it.
"""

import json

import fixtures
import openstack
import requests

from osc_snapphase import engine
from osc_snapphase import listing
from osc_snapphase.tests.functional_nova import base
from osc_snapphase.tests.functional_nova import driver


class TestIncrementalListing(base.NovaTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_CLIENT_CONFIG_FILE', self.cloud.clouds_yaml))
        compute = openstack.connect(cloud='nova-admin').compute
        self.incremental = listing.ServerListing(compute, fleet=True)
        self.full = listing.ServerListing(compute, fleet=True,
                                          resync_interval=0)
        self.seen = {'incremental': {}, 'full': {}}

    def poll(self):
        """Both listings read once; what each saw, per server, in order."""
        for name, reads in (('incremental', self.incremental),
                            ('full', self.full)):
            answer = reads(())
            seen = self.seen[name]
            for server_id, state in answer.states.items():
                value = ('DELETED' if engine.is_gone(state)
                         else state.task_state)
                seen.setdefault(server_id, []).append(value)
            for server_id in answer.deleted:
                seen.setdefault(server_id, []).append('DELETED')

    def test_incremental_listing_sees_what_full_listings_see(self):
        ids = [self.boot('fleet%d' % n) for n in range(3)]
        busy, idle, doomed = ids
        self.poll()
        self.plan(busy, hold=driver.PHASES)
        self.create_image(busy, 'nightly')
        for step in driver.PHASES:
            self.wait_held(step, busy)
            self.poll()
            self.poll()
            self.release(step, busy)
        self.operation_ended(busy)
        self.wait_for(lambda: self.task_state(busy) is None,
                      what='the end of the image-create')
        self.poll()
        resp = self.cloud.nova_get('/servers/%s' % doomed)
        self.assertEqual(200, resp.status_code)
        deleted = requests.delete(
            self.cloud.nova_url + '/servers/%s' % doomed, timeout=30,
            headers={'X-Auth-Token': self.cloud.admin_token})
        self.assertEqual(204, deleted.status_code, deleted.text)
        self.wait_for(lambda: self.server_gone(doomed),
                      what='the deletion of %s' % doomed)
        self.poll()
        self.poll()
        incremental, full = self.seen['incremental'], self.seen['full']
        self.assertEqual(full, incremental)
        self.assertEqual([None], incremental[idle])
        self.assertEqual([None, 'DELETED'], incremental[doomed])
        self.assertEqual(
            [None, 'image_snapshot_pending', 'image_snapshot',
             'image_pending_upload', 'image_uploading', None],
            incremental[busy])
        # One full listing; every later poll asked for the changes only.
        self.assertEqual(1, self.incremental.full_listings)
        # And one GET by ID of the server deleted (gone from a full listing).
        self.assertEqual(self.full.requests, self.full.full_listings + 1)
        self.assertEqual(self.full.full_listings, self.incremental.requests)


class TestWatchAll(base.NovaTestCase):

    def listed(self, proc, more=2):
        """Wait until the CLI has listed the servers ``more`` more times."""
        def count():
            return self.cloud.nova_http.count('GET', '/v2.1/servers/detail')
        wanted = count() + more
        self.wait_cli(proc, lambda: count() >= wanted,
                      '%d listings by the CLI' % wanted)

    def test_watch_all_rows_are_nova_task_states(self):
        self.require('server', 'task-state', 'watch', option='--all')
        busy = self.boot('busy')
        self.boot('quiet')
        self.plan(busy, hold=driver.PHASES)
        self.create_image(busy, 'nightly')
        self.wait_held('pending', busy)
        proc = self.start('server', 'task-state', 'watch', '--all',
                          '--until', 'idle', '--stream', '-f', 'json',
                          cloud='nova-admin')
        for step in driver.PHASES:
            self.wait_held(step, busy)
            self.listed(proc, 2)
            self.release(step, busy)
        result = self.finish(proc, expect=0)
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual({busy}, {r['Server ID'] for r in rows})
        states = []
        for row in rows:
            if not states or states[-1] != row['Task State']:
                states.append(row['Task State'])
        self.assertEqual(
            ['image_snapshot_pending', 'image_snapshot',
             'image_pending_upload', 'image_uploading', None], states)
