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


"""Bad (and boundary) input of the parsers, without a cloud (issue 13).

Each usage error: the parser refuses the input (osc-lib's check_parser
raises ParserException), the exit status is 2 and stderr ends with
exactly one ``<prog>: error: <message>`` line. The functional suite keeps
a few of these end to end (tests/functional/test_reliability_input.py).
"""

import io
from unittest import mock

from openstackclient.compute.v2 import server_backup
from openstackclient.compute.v2 import server_image
from osc_lib.test import base

from osc_snapphase.tests.unit import fakes
from osc_snapphase.v1 import task_state

WATCH_PROG = 'openstack server task-state watch'
UNTIL_FORMS = ('idle, disk-safe, deleted, phase-over=<phase>, '
               'task-state=<value>, vm-state=<value>, status=<value>')

# Every attribute of the watch command's own options, as given by default.
WATCH_DEFAULTS = (
    ('servers', ['vm1']),
    ('images', []),
    ('until', None),
    ('timeout', None),
    ('stall_timeout', None),
    ('interval', None),
    ('stream', False),
    ('long', False),
    ('formatter', 'table'),
    ('columns', []),
)


class ParserTestCase(fakes.TestCommand):

    prog = None

    def setUp(self):
        super().setUp()
        self.stderr = io.StringIO()
        patcher = mock.patch('sys.stderr', self.stderr)
        patcher.start()
        self.addCleanup(patcher.stop)

    def verify(self, arglist, **changes):
        """Parse; check every attribute (the defaults, with changes)."""
        expected = dict(self.defaults)
        expected.update(changes)
        return self.check_parser(self.cmd, arglist, sorted(expected.items()))

    def assert_usage_error(self, arglist, message):
        """The parser refuses arglist: exit 2, one error line."""
        self.assertRaises(base.ParserException, self.check_parser,
                          self.cmd, arglist, [])
        self.stderr.seek(0)
        self.stderr.truncate()
        parser = self.cmd.get_parser(self.prog)
        exc = self.assertRaises(SystemExit, parser.parse_args, arglist)
        self.assertEqual(2, exc.code, arglist)
        lines = self.stderr.getvalue().splitlines()
        errors = [line for line in lines if 'error:' in line]
        self.assertEqual(['%s: error: %s' % (self.prog, message)], errors,
                         arglist)
        self.assertEqual(errors[0], lines[-1])
        self.assertTrue(lines[0].startswith('usage: %s' % self.prog))


class TestWatchParser(ParserTestCase):

    prog = WATCH_PROG
    defaults = WATCH_DEFAULTS

    def setUp(self):
        super().setUp()
        self.cmd = task_state.WatchTaskState(self.app, None)

    # -- valid input, with every attribute checked -------------------------

    def test_watch_parser_defaults(self):
        self.verify(['vm1'])

    def test_watch_parser_all_options(self):
        parsed = self.verify(
            ['vm1', 'vm2', '--image', 'img-1', '--image', 'img-2',
             '--until', 'disk-safe', '--timeout', '90',
             '--stall-timeout', '30.5', '--interval', '0.5', '--stream',
             '-f', 'json'],
            servers=['vm1', 'vm2'], images=['img-1', 'img-2'],
            until=mock.ANY, timeout=90.0, stall_timeout=30.5,
            interval=0.5, stream=True, formatter='json')
        self.assertEqual(['disk-safe'], [str(c) for c in parsed.until])

    def test_watch_parser_image_only(self):
        self.verify(['--image', 'img-1'], servers=[], images=['img-1'])

    def test_watch_parser_interval_bounds(self):
        # Both ends are allowed: at least 0.2 s, at most an hour.
        for text, value in (('0.2', 0.2), ('3600', 3600.0), ('1e3', 1000.0),
                            ('2', 2.0)):
            self.verify(['vm1', '--interval', text], interval=value)

    def test_watch_parser_timeout_bounds(self):
        # More than 0 seconds, at most 7 days.
        for text, value in (('0.001', 0.001), ('604800', 604800.0),
                            ('1e2', 100.0)):
            self.verify(['vm1', '--timeout', text], timeout=value)
            self.verify(['vm1', '--stall-timeout', text],
                        stall_timeout=value)

    def test_watch_parser_until_forms(self):
        for text in ('idle', 'disk-safe', 'deleted', 'task-state=none',
                     'task-state=image_uploading', 'vm-state=active',
                     'status=SHUTOFF', ' idle '):
            parsed = self.verify(['vm1', '--until', text], until=mock.ANY)
            self.assertEqual([text.strip()], [str(c) for c in parsed.until])

    # -- the server ---------------------------------------------------------

    def test_watch_parser_empty_server(self):
        for name in ('', '   '):
            self.assert_usage_error(
                [name], 'argument <server>: a server name or ID is required')
        self.assert_usage_error(
            ['vm1', ''],
            'argument <server>: a server name or ID is required')

    def test_watch_parser_image_without_value(self):
        self.assert_usage_error(['--image'],
                                'argument --image: expected one argument')

    # -- numbers -----------------------------------------------------------

    def test_watch_parser_interval_zero(self):
        self.assert_usage_error(
            ['vm1', '--interval', '0'],
            'argument --interval: must be at least 0.2 seconds, got 0')

    def test_watch_parser_interval_negative(self):
        self.assert_usage_error(
            ['vm1', '--interval=-1'],
            'argument --interval: must be at least 0.2 seconds, got -1')

    def test_watch_parser_interval_below_minimum(self):
        self.assert_usage_error(
            ['vm1', '--interval', '0.1'],
            'argument --interval: must be at least 0.2 seconds, got 0.1')

    def test_watch_parser_interval_nan(self):
        self.assert_usage_error(
            ['vm1', '--interval', 'nan'],
            "argument --interval: expected a finite number of seconds, got "
            "'nan'")

    def test_watch_parser_interval_inf(self):
        for text in ('inf', '-inf', 'Infinity'):
            self.assert_usage_error(
                ['vm1', '--interval=' + text],
                "argument --interval: expected a finite number of seconds, "
                "got %r" % text)

    def test_watch_parser_interval_abc(self):
        self.assert_usage_error(
            ['vm1', '--interval', 'abc'],
            "argument --interval: expected a number of seconds, got 'abc'")

    def test_watch_parser_interval_1e9(self):
        self.assert_usage_error(
            ['vm1', '--interval', '1e9'],
            'argument --interval: must be at most 3600 seconds (0.0416667 '
            'days), got 1e9')

    def test_watch_parser_timeout_negative(self):
        self.assert_usage_error(
            ['vm1', '--timeout=-5'],
            'argument --timeout: must be more than 0 seconds, got -5')

    def test_watch_parser_timeout_zero(self):
        self.assert_usage_error(
            ['vm1', '--timeout', '0'],
            'argument --timeout: must be more than 0 seconds, got 0')

    def test_watch_parser_timeout_abc(self):
        self.assert_usage_error(
            ['vm1', '--timeout', 'abc'],
            "argument --timeout: expected a number of seconds, got 'abc'")

    def test_watch_parser_timeout_too_long(self):
        self.assert_usage_error(
            ['vm1', '--timeout', '1e9'],
            'argument --timeout: must be at most 604800 seconds (7 days), '
            'got 1e9')

    def test_watch_parser_stall_timeout_zero(self):
        self.assert_usage_error(
            ['vm1', '--stall-timeout', '0'],
            'argument --stall-timeout: must be more than 0 seconds, got 0')

    def test_watch_parser_stall_timeout_nan(self):
        self.assert_usage_error(
            ['vm1', '--stall-timeout', 'nan'],
            "argument --stall-timeout: expected a finite number of seconds, "
            "got 'nan'")

    # -- conditions --------------------------------------------------------

    def test_watch_parser_until_unknown(self):
        self.assert_usage_error(
            ['vm1', '--until', 'finished'],
            "argument --until: unknown condition 'finished'; use one of: %s"
            % UNTIL_FORMS)

    def test_watch_parser_until_foo_bar(self):
        self.assert_usage_error(
            ['vm1', '--until', 'foo=bar'],
            "argument --until: unknown condition 'foo=bar'; use one of: %s"
            % UNTIL_FORMS)

    def test_watch_parser_until_task_state_empty(self):
        self.assert_usage_error(
            ['vm1', '--until', 'task-state='],
            'argument --until: task-state needs a value, for example '
            'task-state=image_uploading (use "idle" for no task)')

    def test_watch_parser_until_task_state_typo(self):
        parser = self.cmd.get_parser(self.prog)
        exc = self.assertRaises(
            SystemExit, parser.parse_args,
            ['vm1', '--until', 'task-state=image_uploadng'])
        self.assertEqual(2, exc.code)
        error = self.stderr.getvalue().splitlines()[-1]
        self.assertTrue(error.startswith(
            "%s: error: argument --until: unknown task state "
            "'image_uploadng' (did you mean image_uploading?); the task "
            "states of Nova are: block_device_mapping, deleting, "
            % self.prog), error)
        self.assertTrue(error.endswith(
            'for a task state of a newer Nova, write task-state=+<state>'))

    def test_watch_parser_until_repeated(self):
        parsed = self.verify(['vm1', '--until', 'disk-safe', '--until',
                              'vm-state=stopped'], until=mock.ANY)
        self.assertEqual(['disk-safe', 'vm-state=stopped'],
                         [str(c) for c in parsed.until])

    def test_watch_parser_until_deprecated_phase(self):
        parsed = self.verify(['vm1', '--until', 'phase-over=packaging'],
                             until=mock.ANY)
        self.assertEqual(['phase-over=pending-upload'],
                         [str(c) for c in parsed.until])
        self.assertEqual(
            "openstack: warning: --until phase-over=packaging: the phase "
            "name 'packaging' is deprecated and will be refused in the next "
            "release; use 'pending-upload' (the phases are named after "
            "Nova's task states)\n", self.stderr.getvalue())

    def test_watch_parser_until_vm_state_empty(self):
        self.assert_usage_error(
            ['vm1', '--until', 'vm-state='],
            'argument --until: vm-state needs a value, for example '
            'vm-state=active')

    def test_watch_parser_until_status_empty(self):
        self.assert_usage_error(
            ['vm1', '--until', 'status='],
            'argument --until: status needs a value, for example '
            'status=ACTIVE')


class TestShowParser(ParserTestCase):

    prog = 'openstack server task-state show'
    defaults = (('server', 'vm1'), ('formatter', 'table'), ('columns', []))

    def setUp(self):
        super().setUp()
        self.cmd = task_state.ShowTaskState(self.app, None)

    def test_show_parser(self):
        self.verify(['vm1'])
        self.verify(['vm1', '-f', 'json'], formatter='json')

    def test_show_parser_empty_server(self):
        for name in ('', ' '):
            self.assert_usage_error(
                [name], 'argument <server>: a server name or ID is required')

    def test_show_parser_no_server(self):
        self.assert_usage_error(
            [], 'the following arguments are required: <server>')


class TestWaitPhaseParserImage(ParserTestCase):
    """The core command with the --wait-phase hook (its entry point)."""

    cmd_name = 'server image create'
    core = server_image.CreateServerImage
    defaults = (
        ('server', 'vm1'),
        ('name', None),
        ('properties', None),
        ('wait', False),
        ('wait_phase', None),
        ('wait_phase_timeout', 3600.0),
        ('formatter', 'table'),
        ('columns', []),
    )

    def setUp(self):
        super().setUp()
        self.app.command_manager = mock.Mock(namespace='openstack.cli')
        self.app.stderr = io.StringIO()
        self.prog = 'openstack ' + self.cmd_name
        self.cmd = self.core(self.app, None, cmd_name=self.cmd_name)
        self.hook = list(self.cmd._hooks)[0].obj

    def test_wait_phase_parser_defaults(self):
        self.verify(['vm1'])

    def test_wait_phase_parser_phases(self):
        for phase in ('snapshot', 'pending-upload', 'upload'):
            self.verify(['vm1', '--name', 'snap', '--wait-phase', phase,
                         '--wait-phase-timeout', '90', '-f', 'json'],
                        name='snap', wait_phase=phase,
                        wait_phase_timeout=90.0, formatter='json')

    def test_wait_phase_parser_unknown(self):
        self.assert_usage_error(
            ['vm1', '--wait-phase', 'bogus'],
            "argument --wait-phase: invalid choice: 'bogus' (choose from "
            "'snapshot', 'pending-upload', 'upload')")

    def test_wait_phase_parser_missing_value(self):
        self.assert_usage_error(
            ['vm1', '--wait-phase'],
            'argument --wait-phase: expected one argument')

    def test_wait_phase_parser_timeout_negative(self):
        self.assert_usage_error(
            ['vm1', '--wait-phase', 'upload', '--wait-phase-timeout=-3'],
            'argument --wait-phase-timeout: must be more than 0 seconds, '
            'got -3')

    def test_wait_phase_parser_timeout_zero(self):
        self.assert_usage_error(
            ['vm1', '--wait-phase', 'upload', '--wait-phase-timeout', '0'],
            'argument --wait-phase-timeout: must be more than 0 seconds, '
            'got 0')

    def test_wait_phase_parser_timeout_not_finite(self):
        for text in ('nan', 'inf'):
            self.assert_usage_error(
                ['vm1', '--wait-phase', 'upload', '--wait-phase-timeout',
                 text],
                'argument --wait-phase-timeout: expected a finite number of '
                'seconds, got %r' % text)

    def test_wait_phase_parser_timeout_abc(self):
        self.assert_usage_error(
            ['vm1', '--wait-phase-timeout', 'abc'],
            "argument --wait-phase-timeout: expected a number of seconds, "
            "got 'abc'")

    def test_wait_phase_with_wait(self):
        """Both parse; the hook refuses them before any request."""
        parsed = self.verify(['vm1', '--wait', '--wait-phase', 'upload'],
                             wait=True, wait_phase='upload')
        exc = self.assertRaises(SystemExit, self.hook.before, parsed)
        self.assertEqual(2, exc.code)
        self.assertEqual(
            '%s: error: argument --wait-phase: not allowed with argument '
            '--wait\n' % self.prog, self.stderr.getvalue())
        self.compute_client.find_server.assert_not_called()


class TestWaitPhaseParserBackup(TestWaitPhaseParserImage):

    cmd_name = 'server backup create'
    core = server_backup.CreateServerBackup
    defaults = (
        ('server', 'vm1'),
        ('name', None),
        ('type', None),
        ('rotate', None),
        ('wait', False),
        ('wait_phase', None),
        ('wait_phase_timeout', 3600.0),
        ('formatter', 'table'),
        ('columns', []),
    )
