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

"""``openstack server task-state watch --all`` against the simulator.

Fleets of servers (issue 14): rows only for the servers that change, an
incremental listing (changes-since) that costs one request per poll while
nothing changes, servers created and deleted during the watch, and the
exit status over all servers. Events only: every step the watch must see
is held until the CLI has polled in it; no sleep, no wall-clock assert.
"""

import json
import signal

from osc_snapphase.tests.functional import base
from osc_snapphase.tests.functional.test_watch import _runs

LISTING = 'GET /compute/v2.1/servers/detail'
STEPS = ('pending', 'snapshot', 'pending_upload', 'uploading')
WAIT = 300


class FleetTestCase(base.TestCase):

    durations = {'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
                 'uploading': 0.1}

    def start_watch(self, *args):
        proc = self.start('server', 'task-state', 'watch', '--all',
                          '--stream', '-f', 'json', *args)
        self.listed(proc, 2)
        return proc

    def listed(self, proc, more=2):
        """Wait until the CLI has listed the servers ``more`` more times.

        The simulator logs a request when it arrives: once the CLI's next
        listing has come, the one before it has been answered.
        """
        count = self.request_count(LISTING) + more
        self.wait_cli(proc, lambda: self.request_count(LISTING) >= count,
                      '%d listings by the CLI' % count, WAIT)

    def row(self, proc):
        line = self.read_line(proc, WAIT)
        self.assertTrue(line, 'the watch ended before the row came')
        return json.loads(line)

    def rows_until(self, proc, done):
        """Rows read until done(rows) holds."""
        rows = []
        while not done(rows):
            rows.append(self.row(proc))
        return rows

    def quiet_polls(self, proc, polls):
        """Whether the CLI's next ``polls`` polls were listings only."""
        self.listed(proc, 1)
        mark = self.poll_mark()
        self.listed(proc, polls)
        requests = self.control.requests()['requests'][mark:]
        return {r['key'] for r in requests} == {LISTING}

    def stop_watch(self, proc):
        self.interrupt(proc, signal.SIGINT)
        return self.finish(proc, expect=130)


class TestFleetWatch(FleetTestCase):

    def test_watch_all_200_servers_three_snapshots(self):
        servers = self.control.create_servers(197, prefix='idle')
        busy = [s['id'] for s in self.control.create_servers(
            3, prefix='busy')]
        self.assertEqual(200, len(servers) + len(busy))
        for server_id in busy:
            for step in STEPS:
                self.hold(step, server_id)
        proc = self.start_watch()
        for server_id in busy:
            self.create_image(server_id, 'nightly-%s' % server_id[:8])
        # Each step of the three is held until the CLI has listed twice.
        for step in STEPS:
            for server_id in busy:
                self.control.wait_held(step, server=server_id, timeout=WAIT)
            self.listed(proc, 2)
            for server_id in busy:
                self.control.release(step, server=server_id)

        def finished(rows):
            return all(any(r['Server ID'] == s and r['Task State'] is None
                           for r in rows) for s in busy)
        self.rows_until(proc, finished)
        # Nothing runs any more (once the images are seen active): one
        # request per poll, the listing of what changed since the last.
        self.wait_cli(proc, lambda: self.quiet_polls(proc, 3),
                      '3 polls of one request each', WAIT)
        result = self.stop_watch(proc)
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(set(busy), {r['Server ID'] for r in rows})
        for server_id in busy:
            seen = _runs([r['Task State'] for r in rows
                          if r['Server ID'] == server_id])
            logged = [e['new'] for e in self.task_log(server_id)]
            # The simulator's log starts with the build.
            logged = logged[logged.index('image_snapshot_pending'):]
            self.assertEqual(logged, seen, 'server %s' % server_id)
            self.assertEqual(
                ['image_snapshot_pending', 'image_snapshot',
                 'image_pending_upload', 'image_uploading', None], seen)
        # The rows keep their shape.
        self.assertEqual(
            {'Time', 'Server ID', 'Server Name', 'Status', 'VM State',
             'Task State', 'Power State', 'Phase', 'Capture',
             'Previous Duration', 'Capture Evidence'}, set(rows[0]))

    def test_watch_all_servers_created_and_deleted(self):
        servers = self.control.create_servers(20, prefix='web')
        proc = self.start_watch()
        newcomer = self.control.create_server('newcomer')
        row = self.row(proc)
        self.assertEqual((newcomer['id'], 'newcomer', 'ACTIVE'),
                         (row['Server ID'], row['Server Name'],
                          row['Status']))
        gone = servers[5]['id']
        status, body = self._api('DELETE', '/servers/%s' % gone)
        self.assertEqual(204, status, body)
        rows = self.rows_until(
            proc, lambda rows: rows and rows[-1]['Status'] == 'DELETED')
        self.assertEqual({gone}, {r['Server ID'] for r in rows})
        self.stop_watch(proc)

    def test_watch_all_until_idle(self):
        self.control.create_servers(10, prefix='web')
        server_id = self.control.create_server('db1')['id']
        self.hold('uploading', server_id)
        self.create_image(server_id, 'snap-db1')
        self.control.wait_held('uploading', server=server_id, timeout=WAIT)
        proc = self.start_watch('--until', 'idle')
        row = self.row(proc)
        self.assertEqual((server_id, 'image_uploading'),
                         (row['Server ID'], row['Task State']))
        self.control.release('uploading', server=server_id)
        result = self.finish(proc, expect=0)
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual({server_id}, {r['Server ID'] for r in rows})
        self.assertIsNone(rows[-1]['Task State'])

    def test_watch_all_failed_image_named(self):
        self.control.create_servers(10, prefix='web')
        bad = self.control.create_server('bad')['id']
        good = self.control.create_server('good')['id']
        for server_id in (bad, good):
            self.hold('snapshot', server_id)
        self.control.add_fault('uploading', 'driver_error', server=bad)
        for server_id in (bad, good):
            self.create_image(server_id, 'snap-%s' % server_id[:8])
            self.control.wait_held('snapshot', server=server_id,
                                   timeout=WAIT)
        # Both are busy at the start: the watch does not end at once.
        proc = self.start_watch('--until', 'idle')
        self.control.release('snapshot')
        result = self.finish(proc, expect=3)
        self.assertIn(bad, result.stderr)
        self.assertIn('ended without an active image', result.stderr)
        self.assertNotIn(good, result.stderr.replace(
            'server event list %s' % bad, ''))
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertIsNone([r for r in rows
                           if r['Server ID'] == good][-1]['Task State'])

    def test_watch_all_and_server_is_a_usage_error(self):
        self.create_server('vm1')
        result = self.openstack('server', 'task-state', 'watch', '--all',
                                'vm1', expect=2)
        self.assertIn('--all watches every server', result.stderr)
