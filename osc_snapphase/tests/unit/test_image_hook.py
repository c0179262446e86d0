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


"""Tests of the --wait-phase hook of server image/backup create."""

import argparse
import io
import json
from unittest import mock

from cliff.formatters import value as value_format
from openstackclient.compute.v2 import server_backup
from openstackclient.compute.v2 import server_image
from osc_lib import exceptions

from osc_snapphase.tests.unit import fakes
from osc_snapphase.tests.unit import test_cloud
from osc_snapphase.v1 import image_hook

CORE_COMMANDS = (
    ('server image create', server_image.CreateServerImage),
    ('server backup create', server_backup.CreateServerBackup),
)


def option_strings(parser):
    return {s for action in parser._actions for s in action.option_strings}


class TestWaitPhaseHook(fakes.TestCommand):

    def setUp(self):
        super().setUp()
        self.app.command_manager = mock.Mock(namespace='openstack.cli')
        self.app.stderr = io.StringIO()
        patcher = mock.patch('sys.stderr', io.StringIO())
        patcher.start()
        self.addCleanup(patcher.stop)
        self.clock = fakes.FakeClock()
        self.server = fakes.create_one_server({'name': 'vm1'})
        self.image_id = fakes.new_id()
        self.cmd = server_image.CreateServerImage(
            self.app, None, cmd_name='server image create')
        self.hook = list(self.cmd._hooks)[0].obj
        self.hook.clock = self.clock
        self.hook.sleep = self.clock.sleep
        self.hook.wall = self.clock.wall

    def script(self, servers, images):
        compute = fakes.ScriptedCompute(
            self.clock, [self.server], {self.server.id: servers})
        self.compute_client.find_server.side_effect = compute.find_server
        self.compute_client.get_server.side_effect = compute.get_server
        self.compute_client.get.side_effect = compute.get
        self.compute_client.server_actions.return_value = []
        image = fakes.ScriptedImage(self.clock, {self.image_id: images})
        self.image_client.get_image.side_effect = image.get_image
        self.image_client.get.side_effect = image.get

    def core_output(self):
        info = {'id': self.image_id, 'name': 'snap', 'status': 'queued',
                'properties': 'instance_uuid=%s' % self.server.id}
        return tuple(zip(*sorted(info.items())))

    def parse(self, arglist):
        return self.check_parser(self.cmd, arglist, [])

    # -- parser ------------------------------------------------------------

    def test_wait_phase_hook_parser(self):
        parser = argparse.ArgumentParser(add_help=False)
        self.assertIs(parser, self.hook.get_parser(parser))
        self.assertEqual({'--wait-phase', '--wait-phase-timeout'},
                         option_strings(parser))
        parsed = parser.parse_args(['--wait-phase', 'pending-upload'])
        self.assertEqual('pending-upload', parsed.wait_phase)
        self.assertEqual(3600.0, parsed.wait_phase_timeout)
        for arglist in (['--wait-phase', 'disk'],
                        ['--wait-phase-timeout', '0'],
                        ['--wait-phase-timeout', 'nan']):
            self.assertRaises(SystemExit, parser.parse_args, arglist)
        self.assertIn('--wait-phase', self.hook.get_epilog())

    def test_wait_phase_hook_no_clash_with_core(self):
        hook_options = option_strings(
            self.hook.get_parser(argparse.ArgumentParser(add_help=False)))
        for cmd_name, cls in CORE_COMMANDS:
            core = cls(self.app, None).get_parser('openstack ' + cmd_name)
            self.assertEqual(set(), hook_options & option_strings(core),
                             cmd_name)

    def test_wait_phase_hook_entry_point(self):
        for cmd_name, cls in CORE_COMMANDS:
            cmd = cls(self.app, None, cmd_name=cmd_name)
            self.assertEqual([image_hook.WaitPhaseHook],
                             [type(h.obj) for h in cmd._hooks])
            parser = cmd.get_parser('openstack ' + cmd_name)
            self.assertIn('--wait-phase', option_strings(parser))
            self.assertIn('--wait-phase-timeout', option_strings(parser))
            parsed = parser.parse_args(
                [self.server.name, '--wait-phase', 'snapshot'])
            self.assertEqual('snapshot', parsed.wait_phase)

    # -- before ------------------------------------------------------------

    def test_wait_phase_hook_before_with_wait(self):
        parsed_args = self.parse(
            [self.server.name, '--wait', '--wait-phase', 'upload'])
        exc = self.assertRaises(SystemExit, self.hook.before, parsed_args)
        self.assertEqual(2, exc.code)
        self.compute_client.find_server.assert_not_called()

    def test_wait_phase_hook_before_busy(self):
        self.script([(0, {'OS-EXT-STS:task_state': 'image_uploading'})], [])
        parsed_args = self.parse([self.server.name, '--wait-phase',
                                  'snapshot'])
        exc = self.assertRaises(SystemExit, self.hook.before, parsed_args)
        # Busy, not an error: a script can retry later.
        self.assert_busy(
            exc.code, 'image_uploading (upload: The image is being uploaded '
            '(libvirt with RBD takes its snapshot at the start of this '
            'state)); Nova would refuse a new image (HTTP 409), so none was '
            'created.', self.server)

    def test_wait_phase_hook_before_without_option(self):
        parsed_args = self.parse([self.server.name])
        self.assertIs(parsed_args, self.hook.before(parsed_args))
        self.compute_client.find_server.assert_not_called()
        output = self.core_output()
        self.assertIs(output, self.hook.after(parsed_args, output))

    # -- after -------------------------------------------------------------

    def run_hook(self, arglist):
        parsed_args = self.parse([self.server.name] + arglist)
        self.hook.before(parsed_args)
        return self.hook.after(parsed_args, self.core_output())

    def test_wait_phase_hook_after_snapshot_over(self):
        # libvirt order: the bounce, the copy in the second
        # image_pending_upload, and the image saving at the upload.
        self.script(
            [(0, {'OS-EXT-STS:task_state': 'image_snapshot_pending'}),
             (0.2, {'OS-EXT-STS:task_state': 'image_snapshot'}),
             (1, {'OS-EXT-STS:task_state': 'image_pending_upload'}),
             (1.2, {'OS-EXT-STS:task_state': 'image_uploading'}),
             (1.4, {'OS-EXT-STS:task_state': 'image_pending_upload'}),
             (6, {'OS-EXT-STS:task_state': 'image_uploading'})],
            [(0, {'status': 'queued'}), (6, {'status': 'saving'})])
        # before() saw the server idle, before the image was requested.
        self.compute_client.find_server.side_effect = None
        self.compute_client.find_server.return_value = self.server
        columns, data = self.run_hook(['--wait-phase', 'snapshot'])
        info = dict(zip(columns, data))
        # Every column of the image read at the end (tags, visibility),
        # not only those core printed when it was queued.
        self.assertEqual(
            ['capture', 'capture_evidence', 'capture_model', 'id', 'name',
             'phase_durations', 'properties', 'server_phase', 'status',
             'tags', 'visibility'],
            list(columns))
        self.assertEqual('upload', info['server_phase'])
        self.assertEqual(('complete', 'image-status'),
                         (info['capture'], info['capture_model']))
        self.assertIn('image %s saving' % self.image_id,
                      info['capture_evidence'])
        self.assertAlmostEqual(6.0, self.clock.now, delta=0.5)
        self.assertGreaterEqual(self.clock.now, 6.0)
        durations = info['phase_durations'].machine_readable()
        # The bounce through image_uploading lasted 0.2 s; the upload
        # seen at the last poll had no duration yet.
        self.assertEqual({'snapshot': 1.0, 'pending-upload': 4.831,
                          'upload': 0.2}, dict(durations))
        # JSON in every format: -f value and -f shell print str().
        self.assertEqual(
            '{"snapshot": 1.0, "pending-upload": 4.831, "upload": 0.2}',
            str(durations))
        self.assertEqual(str(durations),
                         info['phase_durations'].human_readable())
        self.assertEqual(self.image_id, info['id'])
        self.assertIn('Image %s of server vm1 (%s) requested; waiting for '
                      'the end of the snapshot phase (timeout 1h00m)'
                      % (self.image_id, self.server.id),
                      self.app.stderr.getvalue())

    def test_wait_phase_hook_xenserver_model(self):
        self.app.cloud.config = {'snapphase_capture_model': 'xenserver'}
        self.script(
            [(0, {'OS-EXT-STS:task_state': 'image_snapshot'}),
             (3, {'OS-EXT-STS:task_state': 'image_pending_upload'})],
            [(0, {'status': 'queued'})])
        self.compute_client.find_server.side_effect = None
        self.compute_client.find_server.return_value = self.server
        columns, data = self.run_hook(['--wait-phase', 'snapshot'])
        info = dict(zip(columns, data))
        self.assertEqual(('complete', 'xenserver'),
                         (info['capture'], info['capture_model']))
        self.assertAlmostEqual(3.0, self.clock.now, delta=0.5)

    def volume_backed(self):
        self.server = fakes.create_one_server({
            'name': 'vm1', 'image': '',
            'os-extended-volumes:volumes_attached': [{'id': 'vol-1'}]})

    def cinder(self, timelines):
        """Cinder's answers: snapshots of vol-1 with status timelines."""
        snapshots = fakes.FakeSnapshots(self.clock, timelines)
        self.volume_client.get.side_effect = fakes.ScriptedVolume(
            lambda: [{'id': s.id, 'volume_id': s.volume_id,
                      'status': s.status,
                      'created_at': '2026-12-02T03:00:00.000000'}
                     for s in map(snapshots.get, sorted(timelines))
                     if s is not None]).get

    def test_wait_phase_hook_volume_backed(self):
        self.volume_backed()
        self.script([(0, {})], [(0, {
            'status': 'active',
            'block_device_mapping': '[{"snapshot_id": "snap-1"}]'})])
        self.cinder({'snap-1': [(0, 'creating'), (4, 'available')],
                     'snap-0': [(0, 'creating')]})
        columns, data = self.run_hook(['--wait-phase', 'snapshot'])
        info = dict(zip(columns, data))
        self.assertEqual('complete', info['capture'])
        self.assertAlmostEqual(4.0, self.clock.now, delta=0.5)
        self.assertGreaterEqual(self.clock.now, 4.0)
        # Another image-create's snapshot is creating: said, not hidden.
        self.assertIn('volume vol-1 of server %s has another snapshot '
                      'still creating (snap-0' % self.server.id,
                      self.app.stderr.getvalue())

    def test_wait_phase_hook_volume_backed_snapshot_error(self):
        self.volume_backed()
        self.script([(0, {})], [(0, {
            'status': 'active',
            'block_device_mapping': '[{"snapshot_id": "snap-1"}]'})])
        self.cinder({'snap-1': [(0, 'creating'), (0.1, 'error')]})
        exc = self.assertRaises(SystemExit, self.run_hook,
                                ['--wait-phase', 'snapshot'])
        self.assertEqual(3, exc.code)
        self.assertIn('volume snapshot snap-1 of volume vol-1 is error; '
                      'image %s cannot be used' % self.image_id,
                      self.app.stderr.getvalue())

    def test_wait_phase_hook_backup_of_volume_backed_refused(self):
        self.volume_backed()
        self.script([(0, {})], [])
        self.cmd = server_backup.CreateServerBackup(
            self.app, None, cmd_name='server backup create')
        self.hook = list(self.cmd._hooks)[0].obj
        parsed_args = self.parse([self.server.name, '--wait-phase',
                                  'snapshot'])
        exc = self.assertRaises(exceptions.CommandError, self.hook.before,
                                parsed_args)
        self.assertIn('is volume-backed: Nova refuses a backup', str(exc))

    def test_wait_phase_hook_after_upload_done(self):
        self.script([(0, {})], [(0, {'status': 'saving'}),
                                (5, {'status': 'active'})])
        columns, data = self.run_hook(['--wait-phase', 'upload'])
        info = dict(zip(columns, data))
        self.assertEqual('active', info['status'])
        self.assertEqual('idle', info['server_phase'])
        self.assertAlmostEqual(5.0, self.clock.now)

    def test_wait_phase_hook_after_upload_columns_of_the_end(self):
        # Core printed the image queued, without a size; after the wait
        # -c size selects the size of the active image, as after --wait.
        self.script([(0, {})], [(0, {'status': 'saving'}),
                                (5, {'status': 'active', 'size': 1024,
                                     'checksum': 'c0ffee'})])
        parsed_args = self.parse([self.server.name, '--wait-phase', 'upload',
                                  '-f', 'value', '-c', 'size', '-c',
                                  'checksum'])
        self.hook.before(parsed_args)
        columns, data = self.hook.after(parsed_args, self.core_output())
        self.assertNotIn('size', self.core_output()[0])
        # As cliff's run(): the formatter of -f, then the output.
        self.cmd.formatter = value_format.ValueFormatter()
        self.cmd.produce_output(parsed_args, columns, data)
        self.assertEqual('c0ffee\n1024\n', self.app.stdout.make_string())

    def test_wait_phase_hook_after_failed(self):
        self.script(
            [(0, {}), (0, {'OS-EXT-STS:task_state': 'image_uploading'}),
             (2, {})],
            [(0, {'status': 'saving'}), (2, {'status': 'killed'})])
        self.compute_client.find_server.side_effect = None
        self.compute_client.find_server.return_value = self.server
        exc = self.assertRaises(SystemExit, self.run_hook,
                                ['--wait-phase', 'upload'])
        self.assertEqual(3, exc.code)
        self.assertIn(
            'The image operation of server vm1 (%s) ended without an active '
            'image after 2.0s: image %s is killed'
            % (self.server.id, self.image_id),
            self.app.stderr.getvalue())

    def test_wait_phase_hook_after_timeout(self):
        self.compute_client.find_server.return_value = self.server
        self.script([(0, {'OS-EXT-STS:task_state': 'image_snapshot'})],
                    [(0, {'status': 'queued'})])
        self.compute_client.find_server.side_effect = None
        exc = self.assertRaises(
            SystemExit, self.run_hook,
            ['--wait-phase', 'snapshot', '--wait-phase-timeout', '5'])
        self.assertEqual(124, exc.code)
        message = self.app.stderr.getvalue()
        self.assertIn('Timed out after 5.0s waiting for the end of the '
                      'snapshot phase of server vm1', message)
        self.assertIn('image %s' % self.image_id, message)
        self.assertIn('waiting for the end of the snapshot phase', message)
        # The follow-up waits for what this command waited for.
        self.assertIn('To keep following it: openstack server task-state '
                      'watch --image %s --until phase-over=snapshot'
                      % self.image_id, message)
        self.assertIn('It may be stuck', message)
        self.assertLessEqual(self.clock.now, 5.0)

    def test_wait_phase_hook_interrupted_hint(self):
        self.compute_client.find_server.return_value = self.server
        self.script([(0, {'OS-EXT-STS:task_state': 'image_pending_upload'})],
                    [(0, {'status': 'queued'})])
        self.compute_client.find_server.side_effect = None

        def interrupt(seconds):
            raise KeyboardInterrupt()
        self.hook.sleep = interrupt
        exc = self.assertRaises(SystemExit, self.run_hook,
                                ['--wait-phase', 'pending-upload'])
        self.assertEqual(130, exc.code)
        self.assertIn('To follow it: openstack server task-state watch '
                      '--image %s --until phase-over=pending-upload'
                      % self.image_id, self.app.stderr.getvalue())

    def test_wait_phase_hook_old_phase_names(self):
        for old, new in (('disk-capture', 'snapshot'),
                         ('packaging', 'pending-upload')):
            with mock.patch('sys.stderr', io.StringIO()) as err:
                parsed = self.parse([self.server.name, '--wait-phase', old])
            self.assertEqual(new, parsed.wait_phase)
            self.assertEqual(
                "openstack: warning: --wait-phase %s: the phase name %r is "
                "deprecated and will be refused in the next release; use %r "
                "(the phases are named after Nova's task states)\n"
                % (old, old, new), err.getvalue())
        with mock.patch('sys.stderr', io.StringIO()) as err:
            self.parse([self.server.name, '--wait-phase', 'snapshot'])
        self.assertEqual('', err.getvalue())


class TestPhaseDurationsColumn(fakes.TestCommand):

    def test_phase_durations_formats(self):
        """JSON in every cliff format, never a Python dict."""
        from cliff.formatters import json_format
        from cliff.formatters import shell
        from cliff.formatters import value
        from cliff.formatters import yaml_format
        column = image_hook.PhaseDurationsColumn(
            {'snapshot': 2.306, 'pending-upload': 0.5})
        expected = '{"snapshot": 2.306, "pending-upload": 0.5}'
        args = mock.Mock(noindent=True, variables=[], prefix='')
        for formatter, text in (
                (value.ValueFormatter(), expected + '\n'),
                (shell.ShellFormatter(),
                 'phase_durations="%s"\n' % expected.replace('"', '\\"')),
                (yaml_format.YAMLFormatter(),
                 'phase_durations:\n  pending-upload: 0.5\n'
                 '  snapshot: 2.306\n')):
            out = io.StringIO()
            formatter.emit_one(['phase_durations'], [column], out, args)
            self.assertEqual(text, out.getvalue(), formatter)
        out = io.StringIO()
        json_format.JSONFormatter().emit_one(['phase_durations'], [column],
                                             out, args)
        self.assertEqual({'phase_durations': {'snapshot': 2.306,
                                              'pending-upload': 0.5}},
                         json.loads(out.getvalue()))
        self.assertEqual(expected, column.human_readable())


class TestImageColumns(test_cloud.CloudTestCase):
    """The image columns --wait-phase prints, as core's command does."""

    def image(self):
        # The snapshot of a server as Glance v2 shows it, read as the hook
        # reads it (the image proxy's get_image).
        body = test_cloud.glance_image(
            id='img-1', status='active', size=1024, checksum='c0ffee',
            os_hash_algo='sha512', os_hash_value='beef', tags=['nightly'],
            instance_uuid='srv-1', image_type='snapshot',
            base_image_ref='base-1', owner='p1')
        self.requests_mock.get(test_cloud.GLANCE + '/images/img-1',
                               json=body)
        return self.connection.image.get_image('img-1')

    def test_image_columns(self):
        info = image_hook.image_columns(self.image())
        self.assertEqual(
            ['checksum', 'container_format', 'created_at', 'disk_format',
             'file', 'id', 'min_disk', 'min_ram', 'name', 'owner',
             'properties', 'protected', 'schema', 'size', 'status', 'tags',
             'updated_at', 'visibility'], sorted(info))
        self.assertEqual(('active', 1024, 'p1'),
                         (info['status'], info['size'], info['owner']))
        self.assertEqual(['nightly'], info['tags'].machine_readable())
        self.assertEqual("nightly", info['tags'].human_readable())
        properties = info['properties'].machine_readable()
        self.assertEqual(
            ('srv-1', 'snapshot', 'base-1', 'sha512', False),
            (properties['instance_uuid'], properties['image_type'],
             properties['base_image_ref'], properties['os_hash_algo'],
             properties['os_hidden']))
        self.assertIn("instance_uuid='srv-1'",
                      info['properties'].human_readable())

    def test_image_columns_as_core(self):
        # The same columns and values as `openstack server image create`
        # (core formats with its own module, which we do not import).
        from openstackclient.image.v2 import image as core_image
        image = self.image()
        ours = image_hook.image_columns(image)
        core = core_image._format_image(image)
        self.assertEqual(sorted(core), sorted(ours))
        for column, value in core.items():
            mine = ours[column]
            if hasattr(value, 'machine_readable'):
                self.assertEqual(type(value), type(mine), column)
                self.assertEqual(value.machine_readable(),
                                 mine.machine_readable(), column)
                self.assertEqual(value.human_readable(),
                                 mine.human_readable(), column)
            else:
                self.assertEqual(value, mine, column)
