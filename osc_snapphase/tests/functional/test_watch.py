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

"""``openstack server task-state watch`` against the simulator.

What both clouds run (a watch through every step, --until disk-safe, the
endings: failure, deleted server, timeout, signals; an HTTP error burst)
is in osc_snapphase/tests/scenarios/watch.py; here what needs the
simulator: its task-state log, its durations, its faults and counters.

The tests wait for events (issue 13): the steps a watch must see are held
by the simulator until the watch has polled the server in them, and the
others are short; nothing sleeps for a fixed time and no test asserts how
long the CLI took.
"""

import datetime
import json

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import base
from osc_snapphase.tests.functional import reliability

ROW_KEYS = {'Time', 'Server ID', 'Server Name', 'Status', 'VM State',
            'Task State', 'Power State', 'Phase', 'Capture',
            'Previous Duration', 'Capture Evidence'}
GET_ONE = 'GET /compute/v2.1/servers/{id}'
GET_DETAIL = 'GET /compute/v2.1/servers/detail'
PHASE_ORDER = ['snapshot', 'pending-upload', 'upload', 'idle']
# Generous waits for events on a loaded machine; the start of the CLI
# alone has taken more than a minute under load.
WAIT = 300


def _epoch(stamp):
    return datetime.datetime.strptime(
        stamp, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
            tzinfo=datetime.timezone.utc).timestamp()


def _runs(values):
    """values without consecutive repeats."""
    result = []
    for value in values:
        if not result or result[-1] != value:
            result.append(value)
    return result


class WatchTestCase(reliability.ReliabilityTestCase):

    # Steps a test must see are held; the others pass quickly.
    durations = {'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
                 'uploading': 0.1}

    def setUp(self):
        super().setUp()

    def watch(self, *args, expect=0, **kwargs):
        kwargs.setdefault('timeout', 300)
        return self.openstack('server', 'task-state', 'watch', *args,
                              expect=expect, **kwargs)

    def start_watch(self, *args, **kwargs):
        counted = self.request_count(GET_ONE)
        proc = self.start('server', 'task-state', 'watch', *args, **kwargs)
        proc.counted = counted
        return proc

    def polled(self, proc, count, key=GET_ONE):
        """Wait until the simulator has had ``count`` requests of key."""
        self.wait_cli(proc, lambda: self.request_count(key) >= count,
                      '%d requests %s' % (count, key))

    def polling(self, proc, count=3):
        """Wait until a single-server watch started by ID has polled.

        Resolving the server by ID is one GET of it, the first poll another;
        the second poll is sent only once the first answer was handled.
        Requests sent before the watch started (an image-create of the
        CLI) do not count.
        """
        self.polled(proc, proc.counted + count)

    def held(self, proc, step):
        """Wait until an operation is held at step."""
        self.wait_cli(proc, lambda: any(
            h['step'] == step for h in self.control.state()['held']),
            'an operation held at %s' % step)

    def polled_since(self, proc, polls=2):
        """Wait for ``polls`` polls of a watch started by ID from now on.

        Its first GET of the server resolves it; then the last but one
        poll has been answered and handled (one request at a time).
        """
        self.polled(proc, max(self.request_count(GET_ONE),
                              proc.counted + 1) + polls)

    def release_polled(self, proc, step, polls=2):
        """Release step once held and the watch has polled since."""
        self.held(proc, step)
        self.polled_since(proc, polls)
        self.control.release(step)

    def snapshotting(self, name='vm1'):
        """A server with an image-create (straight to the API: quick)."""
        server = self.create_server(name)
        image = {'id': self.api_create_image(server['id'])}
        return server, image

    def assert_rows(self, rows, server_id):
        """Each row differs from the one before (a capture-only change)."""
        keys = [(r['Status'], r['VM State'], r['Task State'],
                 r['Power State'], r['Capture'])
                for r in rows if r['Server ID'] == server_id]
        for before, after in zip(keys, keys[1:]):
            self.assertNotEqual(before, after,
                                'a change was reported twice: %r' % (keys,))


class TestWatchSnapshot(WatchTestCase):

    def test_full_snapshot_until_idle(self):
        steps = ('snapshot', 'pending_upload', 'uploading')
        for step in steps:
            self.hold(step)
        server, image = self.snapshotting()
        proc = self.start_watch(server['id'], '--until', 'idle',
                                '--interval', '0.3', '-f', 'json')
        for step in steps:
            self.release_polled(proc, step)
        result = self.finish(proc)
        rows = result.json()
        for row in rows:
            self.assertEqual(ROW_KEYS, set(row))
            self.assertEqual(server['id'], row['Server ID'])
            self.assertEqual('vm1', row['Server Name'])
        self.assert_rows(rows, server['id'])
        self.assertIsNone(rows[0]['Previous Duration'])
        phases = [row['Phase'] for row in rows]
        self.assertEqual(PHASE_ORDER, sorted(set(phases),
                                             key=PHASE_ORDER.index))
        self.assertEqual(sorted(phases, key=PHASE_ORDER.index), phases)
        states = _runs(row['Task State'] for row in rows)
        # (image_snapshot_pending, 0.05 s, is normally over when the watch
        # starts.)
        self.assertEqual(
            ['image_snapshot', 'image_pending_upload', 'image_uploading',
             None], [s for s in states if s != 'image_snapshot_pending'])
        # The state found at the start began at an unknown time: the
        # first change has no duration; those begun under the watch do.
        self.assertIsNone(rows[1]['Previous Duration'])
        for row in rows[2:]:
            self.assertGreater(row['Previous Duration'], 0)
        # The capture (image-status model, xenserver order): proven when
        # the image goes saving, with image_uploading; never before the
        # copy's step is over; a row also when only the capture changed.
        for row in rows:
            if row['Task State'] == 'image_snapshot':
                self.assertIn(row['Capture'], ('not-started',
                                               'in-progress'), row)
            if row['Task State'] == 'image_uploading':
                self.assertEqual('complete', row['Capture'], row)
                self.assertIn('saving', row['Capture Evidence'], row)
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
        seen = states[1:]
        self.assertEqual(expected, [s for s in seen if s in expected])
        order = [entry['new'] for entry in log if entry['time'] > first]
        self.assertEqual(sorted(seen, key=order.index), seen)

    def test_until_task_state_shorter_than_a_poll(self):
        # image_uploading lasts 0.05 s and starts right after a poll (the
        # watch's interval is 0.5 s): a watch that waited to see it would
        # wait for the next operation.
        self.control.configure(durations={'pending_upload': 0.05,
                                          'uploading': 0.05})
        server = self.create_server('vm1')
        # A 0.05 s state is seen by one poll in ten at a 0.5 s interval;
        # try again (a new image) in that case, it proves nothing.
        for attempt in range(4):
            self.hold('pending_upload')
            image = {'id': self.api_create_image(server['id'],
                                                 'snap%d' % attempt)}
            proc = self.start_watch(server['id'], '--until',
                                    'task-state=image_uploading',
                                    '--interval', '0.5', '--timeout', '120',
                                    '-f', 'json')
            self.release_polled(proc, 'pending_upload')
            result = self.finish(proc)
            states = [row['Task State'] for row in result.json()]
            if 'image_uploading' not in states:
                break
            self.control.wait_task_state(server['id'], None, timeout=WAIT)
        else:
            self.fail('the 0.05 s upload was seen every time')
        self.assertIn('image_pending_upload', states)
        self.assertIsNone(states[-1])
        self.assertEqual('active', self.control.image(image['id'])['status'])


class TestWatchEndings(WatchTestCase):

    def test_stuck_task_state_stalls(self):
        # The server stays in image_uploading for good.
        self.control.configure(durations={'uploading': 0.6})
        self.control.add_fault('uploading', 'stuck_saving')
        server, image = self.snapshotting()
        result = self.watch(server['id'], '--until', 'idle',
                            '--stall-timeout', '2', '-f', 'json',
                            '--timeout', '120', expect=4)
        self.assertIn('image_uploading', result.stderr)
        self.assertIn('stuck', result.stderr)
        self.assertIn('openstack server set --state active', result.stderr)
        self.assertEqual('image_uploading', result.json()[-1]['Task State'])

    def test_closed_pipe_is_quiet(self):
        server = self.create_server('vm1')
        command = ' '.join([base.OPENSTACK, 'server', 'task-state', 'watch',
                            server['id'], '-f', 'value', '--timeout', '120'])
        proc = cli.run_shell(
            command + ' | head -n 1; echo "rc=${PIPESTATUS[0]}" >&2',
            self.environ(), timeout=base.WAIT)
        self.assertEqual(0, proc.returncode)
        self.assertEqual(1, len(proc.stdout.splitlines()))
        self.assertIn(server['id'], proc.stdout)
        # Ended by the closed pipe, not by --timeout, and quietly.
        self.assertEqual('rc=0', proc.stderr.strip())


class TestWatchLive(WatchTestCase):

    def test_stream_json_lines_arrive_live(self):
        self.hold('snapshot')
        self.hold('uploading')
        server, image = self.snapshotting()
        proc = self.start_watch(server['id'], '--until', 'idle', '--stream',
                                '-f', 'json')
        first = json.loads(self.read_line(proc, timeout=WAIT))
        # The operation is held: the line cannot come from the watch's end.
        self.assertIsNone(proc.poll(), 'the watch ended before its first '
                          'line was read: not live')
        self.assertEqual('image_snapshot', self.control.server(
            server['id'])['OS-EXT-STS:task_state'])
        self.assertEqual(ROW_KEYS, set(first))
        self.assertEqual('image_snapshot', first['Task State'])
        self.control.release('snapshot')
        self.release_polled(proc, 'uploading')
        result = self.finish(proc)
        lines = result.stdout.splitlines()
        self.assertGreater(len(lines), 2)
        rows = [json.loads(line) for line in lines]
        self.assertEqual(first, rows[0])
        self.assertIn('image_uploading', [r['Task State'] for r in rows])
        self.assertIsNone(rows[-1]['Task State'])

    def test_value_rows_arrive_live(self):
        self.hold('snapshot')
        server, image = self.snapshotting()
        proc = self.start_watch(server['id'], '--until', 'idle', '-f',
                                'value')
        first = self.read_line(proc, timeout=WAIT)
        # The row came out while the operation still ran, not at exit.
        self.assertEqual('image_snapshot', self.control.server(
            server['id'])['OS-EXT-STS:task_state'])
        self.assertIsNone(proc.poll())
        self.assertIn(server['id'], first)
        self.assertIn('image_snapshot', first)
        self.control.release('snapshot')
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
        # At most one listing per interval of the watch's own clock (a
        # loaded machine only makes fewer); at least the first poll.
        self.assertGreaterEqual(len(polls), 1)
        self.assertLessEqual(len(polls), timeout / interval + 2)
        after_resolution = [r for r in requests
                            if r['key'] == GET_ONE
                            and r['time'] >= polls[0]['time']]
        self.assertEqual([], after_resolution)
        self.assertEqual(1, counts['POST /identity/v3/auth/tokens'])


class TestWatchBadInput(WatchTestCase):
    """The usage errors of the parser: tests/unit/test_parsers.py."""

    def test_same_server_twice(self):
        server = self.create_server('vm1')
        result = self.watch('vm1', server['id'], '--timeout', '5', expect=1)
        self.assertIn('more than once', result.stderr)
        self.assertEqual('', result.stdout)
