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


"""Tests of watch --all (the server selection) and of the fleet summary."""

import io
import json
from unittest import mock

import testtools

from osc_snapphase import cloud
from osc_snapphase import engine
from osc_snapphase import listing
from osc_snapphase import records
from osc_snapphase import summary
from osc_snapphase.tests.unit import fakes
from osc_snapphase.tests.unit import test_cloud
from osc_snapphase.v1 import common
from osc_snapphase.v1 import task_state


class TestWatchAll(fakes.TestCommand):

    def setUp(self):
        super().setUp()
        self.cmd = task_state.WatchTaskState(self.app, None)
        self.clock = fakes.clock_of(self.cmd)
        self.servers = [fakes.create_one_server({'name': 'web%d' % n})
                        for n in range(5)]
        self.app.stdout = io.StringIO()
        self.app.stderr = io.StringIO()
        # The Image API knows no image of any server.
        self.image_client.get.side_effect = (
            lambda url, params=None, **kwargs: fakes.json_response(
                {'images': []}))

    def script(self, busy):
        """Every server idle but ``busy``: {index: timeline of attrs}."""
        timelines = {s.id: [(0, {})] for s in self.servers}
        for index, timeline in busy.items():
            timelines[self.servers[index].id] = timeline
        fakes.ScriptedCompute(self.clock, self.servers, timelines).install(
            self.compute_client)

    def run_watch(self, arglist):
        parsed_args = self.check_parser(self.cmd, arglist, [])
        return self.cmd.run(parsed_args)

    def test_watch_all_and_servers_is_a_usage_error(self):
        for arglist in (['--all', 'vm1'], ['--all', '--image', 'img']):
            parsed_args = self.check_parser(self.cmd, arglist, [])
            exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                    parsed_args)
            self.assertEqual(2, exc.code)
        self.compute_client.get.assert_not_called()

    def test_watch_all_phase_over_is_a_usage_error(self):
        # Most servers of a project have no image operation: it would
        # never hold.
        parsed_args = self.check_parser(
            self.cmd, ['--all', '--until', 'phase-over=snapshot'], [])
        exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                parsed_args)
        self.assertEqual(2, exc.code)
        self.compute_client.get.assert_not_called()

    def test_watch_filters_need_all(self):
        for arglist in (['vm1', '--name', '^web'],
                        ['--all-projects', 'vm1']):
            parsed_args = self.check_parser(self.cmd, arglist, [])
            exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                    parsed_args)
            self.assertEqual(2, exc.code)

    def test_watch_all_filters_in_the_listing(self):
        self.script({})
        self.assertEqual(0, self.run_watch(
            ['--all', '--all-projects', '--name', '^web', '--until', 'idle',
             '-f', 'value']))
        path, = {c.args[0] for c in self.compute_client.get.call_args_list}
        self.assertEqual('/servers/detail', path)
        self.assertEqual(
            {'all_tenants': True, 'name': '^web', 'limit': 1000},
            self.compute_client.get.call_args.kwargs['params'])
        # Every server idle at the start: no row.
        self.assertEqual('', self.app.stdout.getvalue())

    def test_watch_all_rows_of_the_busy_servers(self):
        self.script({2: [(0, {'OS-EXT-STS:task_state': 'rebooting'}),
                         (3, {})]})
        self.assertEqual(0, self.run_watch(
            ['--all', '--until', 'idle', '--interval', '1', '--stream',
             '-f', 'json']))
        rows = [json.loads(line)
                for line in self.app.stdout.getvalue().splitlines()]
        self.assertEqual([('web2', 'rebooting'), ('web2', None)],
                         [(r['Server Name'], r['Task State']) for r in rows])

    def test_watch_all_failures_named(self):
        # Two image operations end without an image (at 2 s and 4 s): the
        # watch goes on until all are idle, then exits 3 naming both.
        uploading = {'OS-EXT-STS:task_state': 'image_uploading'}
        self.script({1: [(0, uploading), (2, {})],
                     3: [(0, uploading), (4, {})]})
        self.assertEqual(3, self.run_watch(
            ['--all', '--until', 'idle', '--interval', '1', '-f', 'value']))
        err = self.app.stderr.getvalue()
        for index in (1, 3):
            self.assertIn('The image operation of server web%d (%s) ended '
                          'without an active image' % (
                              index, self.servers[index].id), err)
        self.assertIn('Condition idle met after 4.0s for the other servers',
                      err)

    def test_watch_all_summary_and_timelines_on_a_terminal(self):
        self.script({0: [(0, {}), (2, {'OS-EXT-STS:task_state': 'rebooting'}),
                         (4, {})]})
        with mock.patch.object(common, 'is_terminal', lambda stream: True):
            self.run_watch(['--all', '--interval', '1', '--timeout', '6',
                            '-f', 'value'])
        err = self.app.stderr.getvalue()
        self.assertIn('\r5 servers: 5 idle', err)
        self.assertIn('\r5 servers: 1 other, 4 idle', err)
        # The timeline of the one server that changed, of no other.
        self.assertIn('web0 (%s), 6.0s watched:' % self.servers[0].id, err)
        self.assertNotIn('web1', err)


class TestSummary(testtools.TestCase):

    def watch(self, states, problems=()):
        """A fleet watch after one poll that read these states."""
        watch = engine.Watch(
            lambda ids: {s.id: s for s in states}, (),
            new_track=lambda state: records.Track(state.id, state.name),
            clock=fakes.FakeClock(), sleep=lambda seconds: None,
            on_poll=lambda w: w.stop(engine.INTERRUPTED, 'one poll'))
        list(watch)
        for track in watch.tracks:
            if track.server_id in problems:
                watch._fail(engine.FAILED, 'x', track)
        return watch

    def test_line(self):
        states = [fakes.server_state('s%d' % n, task) for n, task in
                  enumerate(['image_snapshot'] * 3 + ['image_uploading']
                            + [None] * 196)]
        watch = self.watch(states, problems=['s199'])
        self.assertEqual('200 servers: 3 snapshot, 1 upload, 195 idle, '
                         '1 failed', summary.line(watch))

    def test_line_failed_server_deleted(self):
        # A failed server that is then deleted leaves the count: the line
        # counts the servers watched now.
        states = [fakes.server_state('s%d' % n) for n in range(6)]
        watch = self.watch(states, problems=['s5'])
        self.assertEqual('6 servers: 5 idle, 1 failed', summary.line(watch))
        watch._see(watch.tracks[5], None)
        self.assertEqual('5 servers: 5 idle', summary.line(watch))

    def test_line_one_server(self):
        watch = self.watch([fakes.server_state('s1')])
        self.assertEqual('1 server: 1 idle', summary.line(watch))

    def test_timelines_only_changed(self):
        watch = self.watch([fakes.server_state('s%d' % n) for n in range(3)])
        self.assertEqual(['No server changed during the watch (3 watched)'],
                         summary.timelines(watch))
        track = watch.tracks[1]
        watch._see(track, fakes.server_state('s1', 'rebooting'))
        watch._close_segments()
        lines = summary.timelines(watch)
        self.assertTrue(lines[0].startswith(track.label))
        self.assertEqual(3, len(lines))

    def test_timelines_named_servers_each(self):
        tracks = [records.Track('a'), records.Track('b')]
        watch = engine.Watch(lambda ids: {}, tracks)
        self.assertEqual(['a: no state observed', 'b: no state observed'],
                         summary.timelines(watch))


class TestWatchApiFleet(test_cloud.CloudTestCase):
    """cloud.watch(fleet=...) on a real openstacksdk Connection."""

    def server(self, server_id, task_state=None, updated='05:00:00'):
        body = {'id': server_id, 'name': 'vm-' + server_id,
                'status': 'ACTIVE', 'OS-EXT-STS:vm_state': 'active',
                'OS-EXT-STS:task_state': task_state,
                'OS-EXT-STS:power_state': 1,
                'updated': '2026-12-02T%sZ' % updated}
        return body

    def test_cloud_watch_fleet(self):
        listings = self.requests_mock.get(
            test_cloud.NOVA + '/servers/detail', [
                {'json': {'servers': [self.server('a'), self.server(
                    'b', 'rebooting', '05:00:01')]}},
                {'json': {'servers': [self.server('b', None, '05:00:02')]}},
            ])
        clock = fakes.FakeClock()
        watch = cloud.watch(self.connection, fleet={'name': '^vm-'},
                            until='idle', timeout=60, interval=0.2,
                            clock=clock, sleep=clock.sleep)
        rows = list(watch)
        self.assertEqual([('b', 'rebooting'), ('b', None)],
                         [(c.server_id, c.task_state) for c in rows])
        self.assertEqual(engine.MET, watch.outcome.kind)
        self.assertEqual([], watch.problems)
        first, second = listings.request_history
        self.assertEqual({'name': ['^vm-'], 'limit': ['1000']}, first.qs)
        # The newest update seen (05:00:01), less the time the first
        # listing took, less the 2 s overlap; floored to the second.
        since, = second.qs['changes-since']
        newest = listing.cloud_time('2026-12-02T05:00:01Z')
        self.assertLessEqual(listing.cloud_time(since.upper()),
                             newest - listing.OVERLAP)
        self.assertGreater(listing.cloud_time(since.upper()), newest - 60)
