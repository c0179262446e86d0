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

"""``openstack server task-state watch`` against the simulator."""

import datetime
import json
import signal
import subprocess

from osc_snapphase.tests.functional import base

ROW_KEYS = {'Time', 'Server ID', 'Server Name', 'Status', 'VM State',
            'Task State', 'Power State', 'Phase', 'Previous Duration'}
GET_ONE = 'GET /compute/v2.1/servers/{id}'
GET_DETAIL = 'GET /compute/v2.1/servers/detail'
PHASE_ORDER = ['disk-capture', 'packaging', 'upload', 'idle']


def _epoch(stamp):
    return datetime.datetime.strptime(
        stamp, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
            tzinfo=datetime.timezone.utc).timestamp()


class WatchTestCase(base.TestCase):

    # The disk capture outlasts the start of a watch run right after the
    # image create, even on a loaded machine: a watch that starts when the
    # operation is over cannot see it.
    durations = dict(base.DURATIONS, snapshot=2.5)

    def watch(self, *args, expect=0, **kwargs):
        return self.openstack('server', 'task-state', 'watch', *args,
                              expect=expect, **kwargs)

    def start_watch(self, *args, **kwargs):
        return self.start('server', 'task-state', 'watch', *args, **kwargs)

    def polling(self, count=3):
        """Wait until a single-server watch started by ID has polled.

        Resolving the server by ID is one GET of it, the first poll another;
        the second poll is sent only once the first answer was handled.
        """
        self.wait_requests(GET_ONE, count)

    def snapshotting(self, name='vm1'):
        """A server with an image-create in its disk capture."""
        server = self.create_server(name)
        image = self.image_create(server['id'])
        return server, image


class TestWatchSnapshot(WatchTestCase):

    def test_full_snapshot_until_idle(self):
        self.control.configure(durations={
            'pending': 0.3, 'snapshot': 2.5, 'pending_upload': 1.0,
            'uploading': 1.5})
        server, image = self.snapshotting()
        result = self.watch(server['id'], '--until', 'idle', '--interval',
                            '0.3', '-f', 'json')
        rows = result.json()
        for row in rows:
            self.assertEqual(ROW_KEYS, set(row))
            self.assertEqual(server['id'], row['Server ID'])
            self.assertEqual('vm1', row['Server Name'])
        self.assertIsNone(rows[0]['Previous Duration'])
        phases = [row['Phase'] for row in rows]
        self.assertEqual(PHASE_ORDER, sorted(set(phases),
                                             key=PHASE_ORDER.index))
        self.assertEqual(sorted(phases, key=PHASE_ORDER.index), phases)
        self.assertEqual(
            ['image_pending_upload', 'image_uploading', None],
            [row['Task State'] for row in rows[-3:]])
        for row in rows[1:]:
            self.assertGreater(row['Previous Duration'], 0)
        self.assertEqual('active', self.control.image(image['id'])['status'])
        # Against the simulator's own record: every change after the first
        # row that lasted at least two poll intervals is a row, in order.
        first = _epoch(rows[0]['Time'])
        log = self.task_log(server['id'])
        expected = []
        for entry, following in zip(log, log[1:] + [None]):
            lasted = (following['time'] if following else float('inf')) - (
                entry['time'])
            if entry['time'] > first and lasted >= 0.6:
                expected.append(entry['new'])
        seen = [row['Task State'] for row in rows[1:]]
        self.assertEqual(expected, [s for s in seen if s in expected])
        order = [entry['new'] for entry in log if entry['time'] > first]
        self.assertEqual(sorted(seen, key=order.index), seen)

    def test_until_disk_safe_returns_during_the_upload(self):
        self.control.configure(durations={'uploading': 30})
        server, image = self.snapshotting()
        result = self.watch(server['id'], '--until', 'disk-safe', '-f',
                            'json')
        now = self.control.server(server['id'])['OS-EXT-STS:task_state']
        self.assertIn(now, ('image_pending_upload', 'image_uploading'))
        self.assertIn(self.control.image(image['id'])['status'],
                      ('queued', 'saving'))
        rows = result.json()
        self.assertIn(rows[-1]['Phase'], ('packaging', 'upload'))
        self.assertEqual('', result.stderr)

    def test_until_task_state_shorter_than_a_poll(self):
        # The disk capture outlasts the start of the watch even on a loaded
        # machine: a watch that never saw the operation would wait for the
        # next one (hence --timeout).
        self.control.configure(durations={
            'snapshot': 2.5, 'pending_upload': 0.6, 'uploading': 0.05})
        server = self.create_server('vm1')
        # A 0.05 s state is seen by one poll in ten at a 0.5 s interval;
        # try again (a new image) in that case, it proves nothing.
        for attempt in range(4):
            image = self.image_create(server['id'], 'snap%d' % attempt)
            result = self.watch(server['id'], '--until',
                                'task-state=image_uploading', '--interval',
                                '0.5', '--timeout', '30', '-f', 'json')
            states = [row['Task State'] for row in result.json()]
            if 'image_uploading' not in states:
                break
            self.control.wait_task_state(server['id'], None)
        else:
            self.fail('the 0.05 s upload was seen every time')
        self.assertIn('image_pending_upload', states)
        self.assertIsNone(states[-1])
        self.assertEqual('active', self.control.image(image['id'])['status'])


class TestWatchEndings(WatchTestCase):

    def test_failed_upload_names_the_image(self):
        self.control.configure(durations={
            'pending_upload': 0.5, 'uploading': 1.0})
        self.control.add_fault('uploading', 'driver_error')
        server, image = self.snapshotting()
        result = self.watch(server['id'], '--until', 'idle', '-f', 'json',
                            expect=3)
        self.assertIn(image['id'], result.stderr)
        self.assertIsNone(result.json()[-1]['Task State'])
        self.assertIsNone(self.control.image(image['id']))

    def test_server_deleted_mid_watch(self):
        self.control.configure(durations={'uploading': 30})
        server, image = self.snapshotting()
        proc = self.start_watch(server['id'], '--until', 'idle', '-f',
                                'json')
        self.polling()
        self.control.delete_server(server['id'])
        result = self.finish(proc, expect=3)
        self.assertIn('deleted', result.stderr)
        self.assertIn(server['id'], result.stderr)
        self.assertTrue(result.json())

    def test_stuck_task_state_stalls(self):
        self.control.configure(durations={'uploading': 0.6})
        self.control.add_fault('uploading', 'stuck_saving')
        server, image = self.snapshotting()
        result = self.watch(server['id'], '--until', 'idle',
                            '--stall-timeout', '2', '-f', 'json',
                            '--timeout', '60', expect=4)
        self.assertIn('image_uploading', result.stderr)
        self.assertIn('stuck', result.stderr)
        self.assertIn('openstack server set --state active', result.stderr)
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])

    def test_timeout_names_the_state(self):
        self.control.configure(durations={
            'pending': 0.1, 'snapshot': 0.3, 'pending_upload': 0.3,
            'uploading': 60})
        server, image = self.snapshotting()
        self.control.wait_task_state(server['id'], 'image_uploading')
        result = self.watch(server['id'], '--until', 'idle', '--timeout',
                            '2', '-f', 'json', expect=124)
        self.assertIn('Timed out', result.stderr)
        self.assertIn('image_uploading', result.stderr)
        self.assertIn(server['id'], result.stderr)
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])

    def _signal(self, signum, code):
        server = self.create_server('vm1')
        proc = self.start_watch(server['id'], '-f', 'json', '--interval',
                                '0.2')
        self.polling()
        self.interrupt(proc, signum)
        result = self.finish(proc, expect=code)
        rows = result.json()
        self.assertEqual(1, len(rows))
        self.assertEqual(server['id'], rows[0]['Server ID'])
        return result

    def test_sigint_gives_130_and_valid_json(self):
        result = self._signal(signal.SIGINT, 130)
        self.assertIn('Interrupted', result.stderr)

    def test_sigterm_gives_143_and_valid_json(self):
        result = self._signal(signal.SIGTERM, 143)
        self.assertIn('Terminated', result.stderr)

    def test_closed_pipe_is_quiet(self):
        server = self.create_server('vm1')
        command = ' '.join([base.OPENSTACK, 'server', 'task-state', 'watch',
                            server['id'], '-f', 'value', '--timeout', '30'])
        proc = subprocess.run(
            ['bash', '-c', command + ' | head -n 1; '
             'echo "rc=${PIPESTATUS[0]}" >&2'],
            env=self.environ(), capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)
        self.assertEqual(0, proc.returncode)
        self.assertEqual(1, len(proc.stdout.splitlines()))
        self.assertIn(server['id'], proc.stdout)
        # Ended by the closed pipe, not by --timeout, and quietly.
        self.assertEqual('rc=0', proc.stderr.strip())


class TestWatchLive(WatchTestCase):

    def test_stream_json_lines_arrive_live(self):
        self.control.configure(durations={'uploading': 1.0})
        server, image = self.snapshotting()
        proc = self.start_watch(server['id'], '--until', 'idle', '--stream',
                                '-f', 'json')
        first = json.loads(self.read_line(proc))
        self.assertIsNone(proc.poll(), 'the watch ended before its first '
                          'line was read: not live')
        self.assertIsNotNone(
            self.control.server(server['id'])['OS-EXT-STS:task_state'])
        self.assertEqual(ROW_KEYS, set(first))
        result = self.finish(proc)
        lines = result.stdout.splitlines()
        self.assertGreater(len(lines), 2)
        rows = [json.loads(line) for line in lines]
        self.assertEqual(first, rows[0])
        self.assertIsNone(rows[-1]['Task State'])

    def test_value_rows_arrive_live(self):
        self.control.configure(durations={'uploading': 6.0})
        server, image = self.snapshotting()
        proc = self.start_watch(server['id'], '--until', 'idle', '-f',
                                'value')
        first = self.read_line(proc)
        # The row came out while the operation still ran, not at exit.
        self.assertIsNotNone(
            self.control.server(server['id'])['OS-EXT-STS:task_state'])
        self.assertIsNone(proc.poll())
        self.assertIn(server['id'], first)
        result = self.finish(proc)
        self.assertIn('idle', result.stdout.splitlines()[-1])


class TestWatchLoad(WatchTestCase):

    def test_two_servers_cost_one_request_per_poll(self):
        first = self.create_server('vm1')
        second = self.create_server('vm2')
        self.control.reset_requests()
        timeout, interval = 3.0, 0.5
        result = self.watch(first['id'], second['id'], '--timeout',
                            str(timeout), '--interval', str(interval),
                            '-f', 'json', expect=124)
        self.assertEqual(2, len(result.json()))
        requests = self.control.requests()['requests']
        counts = self.control.request_counts()
        polls = [r for r in requests if r['key'] == GET_DETAIL]
        expected = timeout / interval
        self.assertGreaterEqual(len(polls), expected * 0.5)
        self.assertLessEqual(len(polls), expected + 2)
        after_resolution = [r for r in requests
                            if r['key'] == GET_ONE
                            and r['time'] >= polls[0]['time']]
        self.assertEqual([], after_resolution)
        self.assertEqual(1, counts['POST /identity/v3/auth/tokens'])

    def _survive(self, **fault):
        self.control.configure(durations={'pending_upload': 0.5,
                                          'uploading': 2.0})
        server, image = self.snapshotting()
        proc = self.start_watch(server['id'], '--until', 'idle', '-f',
                                'json')
        self.polling()
        self.control.add_http_fault('status', path='/compute/v2.1/servers',
                                    **fault)
        result = self.finish(proc)
        fired = [r for r in self.control.requests()['requests']
                 if r['fault']]
        self.assertEqual(fault['count'], len(fired))
        self.assertIsNone(result.json()[-1]['Task State'])
        retrying = [line for line in result.stderr.splitlines()
                    if 'retrying' in line.lower()]
        self.assertEqual(1, len(retrying), result.stderr)
        return result

    def test_503_burst_is_survived(self):
        result = self._survive(code=503, count=3)
        self.assertIn('503', result.stderr)

    def test_429_with_retry_after_is_survived(self):
        result = self._survive(code=429, count=1, retry_after=1)
        self.assertIn('429', result.stderr)


class TestWatchBadInput(WatchTestCase):

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')

    def test_usage_errors(self):
        cases = [
            ('--interval', '0'), ('--interval', '-1'),
            ('--interval', 'nan'), ('--interval', 'inf'),
            ('--interval', 'abc'), ('--interval', '1e9'),
            ('--timeout', '-5'), ('--timeout', 'abc'),
            ('--stall-timeout', '0'),
            ('--until', 'unknown'), ('--until', 'task-state='),
            ('--until', 'foo=bar'),
        ]
        for option, value in cases:
            result = self.watch('vm1', option, value, expect=2)
            last = result.stderr.strip().splitlines()[-1]
            self.assertIn('error:', last, (option, value))
            self.assertIn(option, last, (option, value))
            self.assertEqual('', result.stdout)

    def test_same_server_twice(self):
        result = self.watch('vm1', self.server['id'], '--timeout', '5',
                            expect=1)
        self.assertIn('more than once', result.stderr)
        self.assertEqual('', result.stdout)
