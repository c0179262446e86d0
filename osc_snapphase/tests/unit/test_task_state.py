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


"""Tests of ``openstack server task-state show`` and ``... watch``."""

import io
import json
from unittest import mock
import uuid

from cliff import columns as cliff_columns
from osc_lib import exceptions
from osc_lib.test import base


from osc_snapphase import engine
from osc_snapphase.tests.unit import fakes
from osc_snapphase.v1 import common
from osc_snapphase.v1 import task_state


def human(row):
    """A row as a table shows it (FormattableColumns for people)."""
    return tuple(v.human_readable()
                 if isinstance(v, cliff_columns.FormattableColumn) else v
                 for v in row)


def machine(row):
    return tuple(v.machine_readable()
                 if isinstance(v, cliff_columns.FormattableColumn) else v
                 for v in row)


class TestTaskState(fakes.TestCommand):

    def setUp(self):
        super().setUp()
        self.app.stderr = io.StringIO()
        patcher = mock.patch('sys.stderr', io.StringIO())
        patcher.start()
        self.addCleanup(patcher.stop)


class TestTaskStateShow(TestTaskState):

    def setUp(self):
        super().setUp()
        self.cmd = task_state.ShowTaskState(self.app, None)

    def show(self, attrs):
        server = fakes.create_one_server(attrs)
        self.compute_client.find_server.return_value = server
        arglist = [server.name]
        verifylist = [('server', server.name)]
        parsed_args = self.check_parser(self.cmd, arglist, verifylist)
        columns, data = self.cmd.take_action(parsed_args)
        self.compute_client.find_server.assert_called_once_with(
            server.name, ignore_missing=False)
        power = data[columns.index('power_state')]
        self.assertIsInstance(power, common.PowerStateColumn)
        self.assertEqual(server.power_state, power.machine_readable())
        return server, columns, human(data)

    def test_task_state_show_idle(self):
        server, columns, data = self.show({})
        self.assertEqual(task_state.SHOW_COLUMNS, columns)
        self.assertEqual(
            (server.id, server.name, 'ACTIVE', 'active', None, 'Running',
             'idle', 'No task in progress; an image can be created', 'none',
             'no image operation runs', 'image-status', True, True, False),
            data)
        # No image operation: no image lookup.
        self.image_client.get.assert_not_called()

    def latest_image(self, status):
        response = mock.Mock(status_code=200, headers={})
        response.json.return_value = {'images': [
            {'id': 'img-1', 'name': 'snap', 'status': status}]}
        self.image_client.get.return_value = response

    def info(self, data):
        return dict(zip(task_state.SHOW_COLUMNS, data))

    def test_task_state_show_image_snapshot(self):
        self.latest_image('queued')
        server, columns, data = self.show(
            {'OS-EXT-STS:task_state': 'image_snapshot'})
        info = self.info(data)
        self.assertEqual(
            ('image_snapshot', 'snapshot', 'in-progress', False, False),
            (info['task_state'], info['phase'], info['capture'],
             info['disk_writes_safe'], info['image_create_allowed']))

    def test_task_state_show_libvirt_copy_not_safe(self):
        # libvirt copies file-backed disks in image_pending_upload, and
        # image_uploading with a queued image may be its bounce.
        for task in ('image_pending_upload', 'image_uploading'):
            self.compute_client.reset_mock()
            self.latest_image('queued')
            server, columns, data = self.show(
                {'OS-EXT-STS:task_state': task})
            info = self.info(data)
            self.assertEqual(('in-progress', False),
                             (info['capture'], info['disk_writes_safe']),
                             task)
            self.assertIn('image img-1 queued', info['capture_evidence'])

    def test_task_state_show_image_uploading(self):
        self.latest_image('saving')
        server, columns, data = self.show(
            {'OS-EXT-STS:task_state': 'image_uploading',
             'OS-EXT-STS:power_state': 4, 'status': 'SHUTOFF',
             'OS-EXT-STS:vm_state': 'stopped'})
        self.assertEqual(
            (server.id, server.name, 'SHUTOFF', 'stopped', 'image_uploading',
             'Shutdown', 'upload'), data[:7])
        info = self.info(data)
        self.assertEqual(('complete', 'image img-1 saving', True, False),
                         (info['capture'], info['capture_evidence'],
                          info['disk_writes_safe'],
                          info['image_create_allowed']))
        self.image_client.get.assert_called_once_with(
            '/images', params={'instance_uuid': server.id,
                               'sort_key': 'created_at', 'sort_dir': 'desc',
                               'limit': 1},
            timeout=mock.ANY, status_code_retries=0)

    def test_task_state_show_xenserver_model(self):
        self.app.cloud.config = {'snapphase_capture_model': 'xenserver'}
        self.latest_image('queued')
        server, columns, data = self.show(
            {'OS-EXT-STS:task_state': 'image_pending_upload'})
        info = self.info(data)
        self.assertEqual(('complete', 'xenserver', True),
                         (info['capture'], info['capture_model'],
                          info['disk_writes_safe']))

    def test_task_state_show_bad_capture_model(self):
        self.app.cloud.config = {'snapphase_capture_model': 'guess'}
        server = fakes.create_one_server()
        self.compute_client.find_server.return_value = server
        parsed_args = self.check_parser(self.cmd, [server.id], [])
        exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                parsed_args)
        self.assertEqual(2, exc.code)

    def test_task_state_show_volume_backed(self):
        snapshot = {'id': 's1', 'volume_id': 'v1', 'status': 'creating',
                    'created_at': '2026-12-02T03:00:00.000000'}
        self.volume_client.get.side_effect = fakes.ScriptedVolume(
            lambda: [snapshot]).get
        server, columns, data = self.show({
            'image': '',
            'os-extended-volumes:volumes_attached': [{'id': 'v1'}]})
        info = self.info(data)
        self.assertEqual(('in-progress', False, True, True),
                         (info['capture'], info['disk_writes_safe'],
                          info['image_create_allowed'],
                          info['volume_backed']))
        self.assertIn('Volume-backed', info['description'])
        self.assertIn('watch --image', info['description'])
        self.volume_client.get.assert_called_once_with(
            '/snapshots/detail', params={'volume_id': 'v1'},
            timeout=mock.ANY, status_code_retries=0)

        snapshot['status'] = 'available'
        self.compute_client.reset_mock()
        server, columns, data = self.show({
            'image': '',
            'os-extended-volumes:volumes_attached': [{'id': 'v1'}]})
        info = self.info(data)
        self.assertEqual(('none', True), (info['capture'],
                                          info['disk_writes_safe']))

    def test_task_state_show_unknown_state(self):
        server, columns, data = self.show(
            {'OS-EXT-STS:task_state': 'resize_migrating'})
        self.assertEqual(
            ('resize_migrating', 'Running', 'other',
             'Server busy with task resize_migrating (not an image '
             'operation)', 'none'), data[4:9])
        self.assertEqual((True, False), data[11:13])

    def test_task_state_show_error_vm_state(self):
        server, columns, data = self.show(
            {'OS-EXT-STS:vm_state': 'error', 'status': 'ERROR'})
        self.assertEqual(('idle', True, False), data[6:7] + data[11:13])

    def test_task_state_show_json_types(self):
        server = fakes.create_one_server({})
        self.compute_client.find_server.return_value = server
        columns, data = self.cmd.take_action(
            self.check_parser(self.cmd, [server.name], []))
        info = dict(zip(columns, machine(data)))
        # The power state as core's server show: the number for machines.
        self.assertEqual(1, info['power_state'])
        self.assertIs(True, info['disk_writes_safe'])
        self.assertIs(True, info['image_create_allowed'])
        self.assertIsNone(info['task_state'])
        text = json.dumps(info)
        self.assertIn('"disk_writes_safe": true', text)
        self.assertIn('"task_state": null', text)

    def test_task_state_show_no_task_states(self):
        server = fakes.create_one_server({'OS-EXT-STS:vm_state': None,
                                          'OS-EXT-STS:power_state': None})
        self.compute_client.find_server.return_value = server
        parsed_args = self.check_parser(self.cmd, [server.id], [])
        exc = self.assertRaises(exceptions.CommandError,
                                self.cmd.take_action, parsed_args)
        self.assertIn('does not show task states for server %s' % server.id,
                      str(exc))

    def test_task_state_show_parser_empty_server(self):
        for arglist in ([''], ['  '], []):
            self.assertRaises(base.ParserException, self.check_parser,
                              self.cmd, arglist, [])


class TestTaskStateWatch(TestTaskState):

    def setUp(self):
        super().setUp()
        self.cmd = task_state.WatchTaskState(self.app, None)
        self.clock = fakes.FakeClock()
        self.cmd.clock = self.clock
        self.cmd.sleep = self.clock.sleep
        self.cmd.wall = self.clock.wall
        self.server = fakes.create_one_server({'name': 'vm1'})
        self.image_id = fakes.new_id()
        self.images = []   # timeline of image bodies for ?instance_uuid=

    def script(self, timelines, servers=None):
        servers = servers or [self.server]
        scripted = fakes.ScriptedCompute(self.clock, servers, timelines)
        scripted.install(self.compute_client)

        def image_get(url, params=None, **kwargs):
            # The Image API's answers: the newest image of the server, or
            # one image by ID.
            body = fakes._at(self.images, self.clock())
            if url == '/images':
                return fakes.json_response({'images': [body] if body else []})
            if body is None or url != '/images/%s' % body['id']:
                return fakes.json_response({'message': 'not found'}, 404)
            return fakes.json_response(body)
        self.image_client.get.side_effect = image_get

    def test_task_state_watch_parser_defaults(self):
        arglist = ['vm1']
        verifylist = [('servers', ['vm1']), ('until', None),
                      ('timeout', None), ('stall_timeout', None),
                      ('interval', None), ('stream', False)]
        self.check_parser(self.cmd, arglist, verifylist)

    def test_task_state_watch_parser_options(self):
        arglist = ['vm1', 'vm2', '--until', 'task-state=image_uploading',
                   '--timeout', '90', '--stall-timeout', '30.5',
                   '--interval', '0.2', '--stream']
        verifylist = [('servers', ['vm1', 'vm2']), ('timeout', 90.0),
                      ('stall_timeout', 30.5), ('interval', 0.2),
                      ('stream', True)]
        parsed_args = self.check_parser(self.cmd, arglist, verifylist)
        self.assertEqual(['task-state=image_uploading'],
                         [str(c) for c in parsed_args.until])

    def test_task_state_watch_parser_until_forms(self):
        for text in ('idle', 'disk-safe', 'deleted', 'task-state=none',
                     'vm-state=active', 'status=SHUTOFF'):
            parsed_args = self.check_parser(
                self.cmd, ['vm1', '--until', text], [])
            self.assertEqual([text], [str(c) for c in parsed_args.until])

    def test_task_state_watch_parser_invalid(self):
        cases = (
            ['vm1', '--interval', '0'],
            ['vm1', '--interval', '-1'],
            ['vm1', '--interval', '0.1'],
            ['vm1', '--interval', 'nan'],
            ['vm1', '--interval', 'inf'],
            ['vm1', '--interval', 'abc'],
            ['vm1', '--interval', '1e9'],
            ['vm1', '--timeout', '-5'],
            ['vm1', '--timeout', 'abc'],
            ['vm1', '--timeout', '0'],
            ['vm1', '--stall-timeout', '0'],
            ['vm1', '--until', 'unknown'],
            ['vm1', '--until', 'task-state='],
            ['vm1', '--until', 'foo=bar'],
            ['vm1', '--until', 'vm-state='],
            ['vm1', '--until', 'task-state=image_uploadng'],
            ['vm1', '--until', 'phase-over=offload'],
            [''],
            ['vm1', ''],
            ['--image'],
        )
        for arglist in cases:
            self.assertRaises(base.ParserException, self.check_parser,
                              self.cmd, arglist, [])

    def test_task_state_watch_until_idle(self):
        self.script({self.server.id: [
            (0, {'OS-EXT-STS:task_state': 'image_snapshot'}),
            (1, {'OS-EXT-STS:task_state': 'image_uploading'}),
            (3, {'OS-EXT-STS:task_state': None}),
        ]})
        self.images = [
            (0, {'id': self.image_id, 'status': 'queued'}),
            (3, {'id': self.image_id, 'status': 'active'}),
        ]
        arglist = ['vm1', '--until', 'idle', '--interval', '1']
        parsed_args = self.check_parser(self.cmd, arglist, [])
        columns, rows = self.cmd.take_action(parsed_args)
        self.assertEqual(task_state.WATCH_COLUMNS, columns)
        rows = list(rows)
        self.assertEqual(
            [(self.server.id, 'vm1', 'ACTIVE', 'active', 'image_snapshot',
              'Running', 'snapshot', None, 'in-progress'),
             # image_snapshot began before the watch: duration unknown.
             (self.server.id, 'vm1', 'ACTIVE', 'active', 'image_uploading',
              'Running', 'upload', None, 'in-progress'),
             (self.server.id, 'vm1', 'ACTIVE', 'active', None, 'Running',
              'idle', 2.0, 'complete')],
            [human(r)[1:-1] for r in rows])
        self.assertEqual(
            'task state image_snapshot, image %s queued since '
            '00:00:00Z: no proof yet that the copy is over' % self.image_id,
            rows[0][-1])
        self.assertEqual(
            'the image-create ended; image %s is active' % self.image_id,
            rows[-1][-1])
        for row in rows:
            self.assertRegex(
                row[0], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
        self.assertEqual(engine.MET, self.cmd.watch.outcome.kind)
        self.assertEqual([1, 1, 1], self.clock.sleeps)

    def test_task_state_watch_needs_server_or_image(self):
        parsed_args = self.check_parser(self.cmd, [], [('servers', []),
                                                       ('images', [])])
        exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                parsed_args)
        self.assertEqual(2, exc.code)

    def test_task_state_watch_image_started_late(self):
        # The operation already ended: --image reports it, exit 0 or 3.
        for status, kind in (('active', engine.MET),
                             ('killed', engine.FAILED)):
            self.clock = self.cmd.clock = fakes.FakeClock()
            self.cmd.sleep = self.clock.sleep
            self.script({self.server.id: [(0, {})]})
            self.images = [(0, {'id': self.image_id, 'status': status,
                                'instance_uuid': self.server.id})]
            self.image_client.find_image.return_value = (
                fakes.create_one_image(self.images[0][1]))
            parsed_args = self.check_parser(
                self.cmd, ['--image', self.image_id],
                [('servers', []), ('images', [self.image_id])])
            columns, rows = self.cmd.take_action(parsed_args)
            list(rows)
            self.assertEqual(kind, self.cmd.watch.outcome.kind, status)
            self.assertEqual([(self.server.id, self.image_id)],
                             [(t.server_id, t.op.image_id)
                              for t in self.cmd.watch.tracks])

    def test_task_state_watch_same_server_twice(self):
        self.script({self.server.id: [(0, {})]})
        parsed_args = self.check_parser(
            self.cmd, ['vm1', self.server.id], [])
        exc = self.assertRaises(exceptions.CommandError,
                                self.cmd.take_action, parsed_args)
        self.assertEqual(
            "Server vm1 (%s) is given more than once (as 'vm1' and %r)"
            % (self.server.id, self.server.id), str(exc))

    def test_task_state_watch_two_servers_one_listing(self):
        other = fakes.create_one_server({'name': 'vm2'})
        self.script({self.server.id: [(0, {})], other.id: [(0, {})]},
                    servers=[self.server, other])
        parsed_args = self.check_parser(
            self.cmd, ['vm1', 'vm2', '--until', 'idle'], [])
        columns, rows = self.cmd.take_action(parsed_args)
        self.assertEqual(['vm1', 'vm2'], [r[2] for r in rows])
        # One listing as JSON, no SDK object per server, no read by ID.
        self.assertEqual(['/servers/detail'], [
            c.args[0] for c in self.compute_client.get.call_args_list])
        self.compute_client.servers.assert_not_called()
        self.compute_client.get_server.assert_not_called()

    def test_task_state_watch_run_met(self):
        self.script({self.server.id: [
            (0, {'OS-EXT-STS:task_state': 'image_pending_upload'}),
            (2, {'OS-EXT-STS:task_state': 'image_uploading'}),
        ]})
        self.images = [(0, {'id': self.image_id, 'status': 'saving'})]
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--until', 'task-state=image_uploading',
                       '-f', 'value'], [])
        self.assertEqual(0, self.cmd.run(parsed_args))
        output = self.app.stdout.make_string()
        self.assertIn('image_pending_upload', output)
        self.assertIn('image_uploading', output)
        self.assertEqual('', self.app.stderr.getvalue())

    def test_task_state_watch_run_timeout(self):
        self.script({self.server.id: [
            (0, {'OS-EXT-STS:task_state': 'rebooting'})]})
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--until', 'idle', '--timeout', '10',
                       '-f', 'csv'], [])
        self.assertEqual(124, self.cmd.run(parsed_args))
        self.assertEqual(
            'Timed out after 10.0s; vm1 (%(id)s): task state rebooting '
            '(other) since the watch began 10.0s ago (already in it then). '
            'To keep following: openstack server '
            'task-state watch vm1 --until idle\n' % {'id': self.server.id},
            self.app.stderr.getvalue())
        self.assertLessEqual(self.clock.now, 10.0)

    def test_task_state_watch_run_failed(self):
        self.script({self.server.id: [
            (0, {'OS-EXT-STS:task_state': 'image_uploading'}),
            (1, None)]})
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--until', 'idle', '--interval', '1',
                       '-f', 'value'], [])
        self.assertEqual(3, self.cmd.run(parsed_args))
        self.assertEqual(
            'Server vm1 (%(id)s) was deleted after 1.0s. See: openstack '
            'server event list %(id)s\n' % {'id': self.server.id},
            self.app.stderr.getvalue())

    def test_task_state_watch_run_stalled(self):
        self.script({self.server.id: [
            (0, {'OS-EXT-STS:task_state': 'image_pending_upload'})]})
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--stall-timeout', '5', '-f', 'value'], [])
        self.assertEqual(4, self.cmd.run(parsed_args))
        self.assertIn('has been in task state image_pending_upload',
                      self.app.stderr.getvalue())

    def test_task_state_watch_run_interrupted(self):
        self.script({self.server.id: [
            (0, {'OS-EXT-STS:task_state': 'image_uploading'})]})

        def interrupt(seconds):
            raise KeyboardInterrupt()
        self.cmd.sleep = interrupt
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '-f', 'value', '--until', 'disk-safe',
                       '--until', 'vm-state=stopped'], [])
        self.assertEqual(130, self.cmd.run(parsed_args))
        # The follow-up waits for what this watch waited for.
        self.assertIn('Interrupted after 0.0s. To keep following: '
                      'openstack server task-state watch vm1 --until '
                      'disk-safe --until vm-state=stopped',
                      self.app.stderr.getvalue())

    def test_task_state_watch_run_interrupted_idle(self):
        self.script({self.server.id: [(0, {})]})

        def interrupt(seconds):
            raise KeyboardInterrupt()
        self.cmd.sleep = interrupt
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '-f', 'value', '--until',
                       'task-state=image_uploading'], [])
        self.assertEqual(130, self.cmd.run(parsed_args))
        self.assertEqual(
            'Interrupted after 0.0s. Nothing runs on vm1 (%s): no task '
            'state and no image operation\n' % self.server.id,
            self.app.stderr.getvalue())

    def test_task_state_watch_interrupted_while_printing(self):
        # The signal lands in the output (cliff's value formatter, the
        # live table), not in the engine: the watch that ran still ends
        # with its elapsed time and the command that goes on.
        for fmt, signal_exc, code, word in (
                ('value', KeyboardInterrupt, 130, 'Interrupted'),
                ('table', common.Terminated, 143, 'Terminated')):
            self.clock = self.cmd.clock = fakes.FakeClock()
            self.cmd.sleep = self.clock.sleep
            self.app.stderr = io.StringIO()
            self.script({self.server.id: [
                (0, {'OS-EXT-STS:task_state': 'image_snapshot'}),
                (1, {'OS-EXT-STS:task_state': 'image_uploading'})]})

            class Interrupted(io.StringIO):
                def write(out, text):
                    if 'image_uploading' in text:
                        raise signal_exc()
                    return super().write(text)
            self.app.stdout = Interrupted()
            parsed_args = self.check_parser(
                self.cmd, ['vm1', '--interval', '1', '--until', 'idle',
                           '-f', fmt], [])
            self.assertEqual(code, self.cmd.run(parsed_args), fmt)
            self.assertEqual(
                '%s after 1.0s. To keep following: openstack server '
                'task-state watch vm1 --until idle\n' % word,
                self.app.stderr.getvalue())
            self.assertIn('image_snapshot', self.app.stdout.getvalue())

    def test_task_state_watch_run_stream_json(self):
        self.app.stdout = io.StringIO()
        self.script({self.server.id: [(0, {})]})
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--until', 'idle', '--stream', '-f', 'json'],
            [])
        self.assertEqual(0, self.cmd.run(parsed_args))
        lines = self.app.stdout.getvalue().splitlines()
        self.assertEqual(1, len(lines))
        row = json.loads(lines[0])
        self.assertEqual(list(task_state.WATCH_COLUMNS), list(row))
        self.assertIsNone(row['Task State'])
        self.assertEqual('idle', row['Phase'])

    def test_task_state_watch_stream_not_yaml(self):
        self.script({self.server.id: [(0, {})]})
        for arglist in (['-f', 'yaml'], ['--sort-column', 'Time']):
            parsed_args = self.check_parser(
                self.cmd, ['vm1', '--stream'] + arglist, [])
            exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                    parsed_args)
            self.assertEqual(2, exc.code)
        self.compute_client.find_server.assert_not_called()

    def test_task_state_watch_no_task_states(self):
        self.script({self.server.id: [
            (0, {'OS-EXT-STS:vm_state': None,
                 'OS-EXT-STS:power_state': None})]})
        parsed_args = self.check_parser(self.cmd, ['vm1'], [])
        columns, rows = self.cmd.take_action(parsed_args)
        self.assertRaises(exceptions.CommandError, list, rows)


class TestTaskStateWatchOutput(TestTaskStateWatch):
    """Rows as they happen, the columns, and the fit to a terminal."""

    UPLOAD = [(0, {'OS-EXT-STS:task_state': 'image_snapshot_pending'}),
              (1, {'OS-EXT-STS:task_state': 'image_uploading'}),
              (2, {})]

    def run_watch(self, arglist, timeline=None, terminal=False, env=None):
        self.app.stdout = io.StringIO()
        self.script({self.server.id: timeline or self.UPLOAD})
        self.images = [(0, {'id': self.image_id, 'status': 'queued'}),
                       (1, {'id': self.image_id, 'status': 'saving'}),
                       (2, {'id': self.image_id, 'status': 'active'})]
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--interval', '1'] + arglist, [])
        with mock.patch.object(common, 'is_terminal',
                               lambda stream: terminal), \
                mock.patch.dict('os.environ', env or {}):
            code = self.cmd.run(parsed_args)
        return code, self.app.stdout.getvalue()

    def test_watch_table_rows_live_in_a_pipe(self):
        """Not on a terminal, the table still prints each row at once."""
        seen = []
        real = self.cmd._rows

        def rows():
            for row in real():
                # What the reader had when the next row was made.
                seen.append(self.app.stdout.getvalue())
                yield row
        self.cmd._rows = rows
        code, out = self.run_watch(['--until', 'idle'])
        self.assertEqual(0, code)
        lines = out.splitlines()
        self.assertIn('| Time ', lines[1])
        self.assertEqual(3 + 3 + 1, len(lines))
        # Nothing before the first row (the header comes with it); each
        # row was out before the next one was made.
        self.assertEqual('', seen[0])
        self.assertEqual(4, len(seen[1].splitlines()))
        self.assertIn('image_snapshot_pending', seen[1])
        self.assertIn('image_uploading', seen[2])

    def test_watch_stream_without_format_is_json_lines(self):
        code, out = self.run_watch(['--until', 'idle', '--stream'])
        self.assertEqual(0, code)
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(['image_snapshot_pending', 'image_uploading', None],
                         [r['Task State'] for r in rows])
        self.assertEqual(list(task_state.WATCH_COLUMNS), list(rows[0]))
        # Machine-readable: the power state as Nova gives it.
        self.assertEqual(1, rows[0]['Power State'])
        self.assertIsNone(rows[0]['Previous Duration'])
        # Each line as cliff's JSON formatter prints one object with
        # --noindent (json.dump, no indent).
        self.assertEqual([json.dumps(r) for r in rows], out.splitlines())

    def test_watch_stream_one_write_per_line(self):
        # A signal lands between two writes: a line written in pieces
        # would leave half of it in the buffer, flushed at exit.
        writes = []

        class Recording(io.StringIO):
            def write(out, text):
                writes.append(text)
                return super().write(text)
        self.script({self.server.id: self.UPLOAD})
        self.images = [(0, {'id': self.image_id, 'status': 'saving'}),
                       (2, {'id': self.image_id, 'status': 'active'})]
        self.app.stdout = Recording()
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--interval', '1', '--until', 'idle',
                       '--stream'], [])
        self.assertEqual(0, self.cmd.run(parsed_args))
        self.assertEqual(3, len(writes), writes)
        for text in writes:
            self.assertEqual('\n', text[-1])
            json.loads(text)

    def test_watch_stream_csv_stays_csv(self):
        code, out = self.run_watch(['--until', 'idle', '--stream', '-f',
                                    'csv', '-c', 'Task State'])
        self.assertEqual(['"Task State"', '"image_snapshot_pending"',
                          '"image_uploading"', '""'], out.splitlines())

    def test_watch_stream_with_columns(self):
        code, out = self.run_watch(['--until', 'idle', '--stream', '-c',
                                    'Task State', '-c', 'phase'])
        self.assertEqual([{'Task State': 'image_snapshot_pending',
                           'Phase': 'snapshot'},
                          {'Task State': 'image_uploading',
                           'Phase': 'upload'},
                          {'Task State': None, 'Phase': 'idle'}],
                         [json.loads(line) for line in out.splitlines()])

    def test_watch_unknown_column(self):
        self.script({self.server.id: self.UPLOAD})
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '-c', 'Bogus'], [])
        exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                parsed_args)
        self.assertEqual(2, exc.code)

    def test_watch_narrow_terminal_compact(self):
        code, out = self.run_watch(['--until', 'idle'], terminal=True,
                                   env={'COLUMNS': '80'})
        self.assertEqual(0, code)
        lines = out.splitlines()
        self.assertEqual(
            ['Time', 'Server Name', 'Task State', 'Phase', 'Capture'],
            [c.strip() for c in lines[1].strip('|').split('|')])
        for line in lines:
            self.assertLessEqual(len(line), 80, line)
        # Time of day; a long task state wrapped within its column.
        self.assertIn('| 00:00:00 | vm1 ', out)
        self.assertIn('image_snapshot_', out)
        self.assertIn('| pending ', out)

    def test_watch_wide_terminal_full(self):
        code, out = self.run_watch(['--until', 'idle'], terminal=True,
                                   env={'COLUMNS': '400'})
        header = out.splitlines()[1]
        self.assertEqual(list(task_state.WATCH_COLUMNS),
                         [c.strip() for c in header.strip('|').split('|')])

    def test_watch_narrow_terminal_long_and_columns(self):
        code, out = self.run_watch(['--until', 'idle', '--long'],
                                   terminal=True, env={'COLUMNS': '80'})
        header = out.splitlines()[1]
        self.assertEqual(list(task_state.WATCH_COLUMNS),
                         [c.strip() for c in header.strip('|').split('|')])
        # A server ID as Nova makes them: 36 characters.
        self.server = fakes.create_one_server(
            {'name': 'vm1', 'id': str(uuid.UUID(fakes.new_id()))})
        code, out = self.run_watch(
            ['--until', 'idle', '-c', 'Time', '-c', 'Server ID', '-c',
             'Capture Evidence'], terminal=True, env={'COLUMNS': '80'})
        lines = out.splitlines()
        # The evidence column is what gives way: its header wraps too.
        self.assertEqual(['Time', 'Server ID', 'Capture'],
                         [c.strip() for c in lines[1].strip('|').split('|')])
        self.assertEqual(['', '', 'Evidence'],
                         [c.strip() for c in lines[2].strip('|').split('|')])
        for line in lines:
            self.assertLessEqual(len(line), 80, line)
        # The full time stamp and ID: only the compact set shortens the
        # time, and neither is wrapped.
        self.assertRegex(out, r'\| 2026-01-01T00:00:0\d\.000Z \| %s \|'
                         % self.server.id)

    def test_watch_max_width_in_a_pipe(self):
        code, out = self.run_watch(['--until', 'idle', '--max-width', '70'])
        for line in out.splitlines():
            self.assertLessEqual(len(line), 70, line)
        self.assertIn('| Capture ', out.splitlines()[1])

    def test_watch_cliff_max_term_width(self):
        # cliff's CLIFF_MAX_TERM_WIDTH is the default of --max-width: the
        # table fits it, in a pipe too; --max-width 0 turns it off.
        env = {'CLIFF_MAX_TERM_WIDTH': '70'}
        with mock.patch.dict('os.environ', env):
            code, out = self.run_watch(['--until', 'idle'])
        self.assertEqual(0, code)
        for line in out.splitlines():
            self.assertLessEqual(len(line), 70, line)
        self.assertIn('| Capture ', out.splitlines()[1])
        with mock.patch.dict('os.environ', env):
            code, out = self.run_watch(['--until', 'idle', '--max-width',
                                        '0'])
        self.assertGreater(len(out.splitlines()[0]), 70)

    def test_watch_print_empty(self):
        # No row: a fleet whose servers are all idle. Nothing is printed,
        # as by cliff's table; with --print-empty, the header and rules.
        for extra, lines in (([], 0), (['--print-empty'], 4)):
            self.app.stdout = io.StringIO()
            self.script({self.server.id: [(0, {})]})
            parsed_args = self.check_parser(
                self.cmd, ['--all', '--until', 'idle'] + extra, [])
            self.assertEqual(0, self.cmd.run(parsed_args))
            out = self.app.stdout.getvalue().splitlines()
            self.assertEqual(lines, len(out), extra)
        self.assertEqual(list(task_state.WATCH_COLUMNS),
                         [c.strip() for c in out[1].strip('|').split('|')])
        self.assertEqual([out[0]] * 3, [out[0], out[2], out[3]])

    def test_watch_busy_phase_over(self):
        code, out = self.run_watch(
            ['--until', 'phase-over=snapshot', '-f', 'value'],
            timeline=[(0, {'OS-EXT-STS:task_state': 'rebooting'})])
        self.assert_busy(
            code, 'rebooting (other) is no image operation, so no '
            'phase-over=snapshot can end while it runs, and Nova refuses an '
            'image-create (HTTP 409) until it is over (found at once).',
            self.server)
        self.assertEqual(1, len(out.splitlines()))

    def test_watch_busy_later_names_the_elapsed_time(self):
        # Idle at first (the phase waits for an image-create), then a
        # reboot begins: the message says when it was found.
        code, out = self.run_watch(
            ['--until', 'phase-over=snapshot', '-f', 'value'],
            timeline=[(0, {}),
                      (2, {'OS-EXT-STS:task_state': 'rebooting'})])
        self.assert_busy(
            code, 'rebooting (other) is no image operation, so no '
            'phase-over=snapshot can end while it runs, and Nova refuses an '
            'image-create (HTTP 409) until it is over (found after 2.0s).',
            self.server)
        self.assertEqual(2, len(out.splitlines()))

    def test_watch_phase_over_met(self):
        code, out = self.run_watch(
            ['--until', 'phase-over=snapshot', '-f', 'value', '-c',
             'Task State'])
        self.assertEqual(0, code)
        # The image is saving when image_uploading is seen.
        self.assertEqual(['image_snapshot_pending', 'image_uploading'],
                         out.splitlines())

    def test_watch_until_repeated_all_must_hold(self):
        timeline = [(0, {'OS-EXT-STS:task_state': 'image_uploading'}),
                    (1, {}),
                    (3, {'status': 'SHUTOFF', 'OS-EXT-STS:vm_state':
                         'stopped', 'OS-EXT-STS:power_state': 4})]
        code, out = self.run_watch(
            ['--until', 'idle', '--until', 'vm-state=stopped', '-f', 'csv',
             '-c', 'VM State'], timeline=timeline)
        self.assertEqual(0, code)
        self.assertEqual(3.0, self.clock.now)
        parsed_args = self.check_parser(
            self.cmd, ['vm1', '--until', 'idle', '--until', 'deleted'], [])
        exc = self.assertRaises(SystemExit, self.cmd.take_action,
                                parsed_args)
        self.assertEqual(2, exc.code)

    def test_watch_value_power_state_and_duration(self):
        code, out = self.run_watch(['--until', 'idle', '-f', 'value', '-c',
                                    'Power State', '-c',
                                    'Previous Duration'])
        # The first state's duration is unknown; the number of the power
        # state in a machine format.
        self.assertEqual(['1 None', '1 None', '1 1.0'], out.splitlines())
