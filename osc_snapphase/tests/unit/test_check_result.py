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

"""The functional suites' check of every openstack run (check_result).

What the real openstack printed when a plugin module failed to import or
was missing, as the suites would collect it (tests/cli.Result).
"""

import testtools

from osc_snapphase.tests import cli
from osc_snapphase.tests.scenarios import base

USAGE = ('usage: openstack server task-state watch [-h] ...\n'
         'openstack server task-state watch: error: unrecognized '
         'arguments: --bogus\n')
# osc_snapphase.v1.task_state raising ImportError on import (cliff 4):
NOT_LOADED = ("Could not load 'server_task-state_show': broken on purpose\n"
              "Could not load 'server_task-state_watch': broken on "
              "purpose\n")
# The plugin not installed: the command is unknown, said on stdout.
NOT_A_COMMAND = ("openstack: 'server task-state watch vm1' is not an "
                 "openstack command. See 'openstack --help'.\n"
                 "Did you mean one of these?\n  server show\n")


def probe():
    """A CLITestCase to call its helpers on, never run (no setUp)."""
    class Probe(base.CLITestCase):
        def runTest(self):
            pass
    return Probe()


def result(returncode, stdout='', stderr=''):
    return cli.Result(('server', 'task-state', 'watch', 'vm1'), returncode,
                      stdout, stderr, 0.0, 1.0)


class TestCheckResult(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.probe = probe()

    def assert_rejected(self, res, expect):
        exc = self.assertRaises(self.probe.failureException,
                                self.probe.check_result, res, expect)
        self.assertIn('the plugin did not load', str(exc))

    def test_expected_usage_error_passes(self):
        self.probe.check_result(result(2, stderr=USAGE), 2)

    def test_module_that_fails_to_import_fails_an_exit_2_test(self):
        self.assert_rejected(result(2, NOT_A_COMMAND, NOT_LOADED), 2)

    def test_plugin_not_installed_fails_an_exit_2_test(self):
        self.assert_rejected(result(2, stdout=NOT_A_COMMAND), 2)

    def test_unknown_command_of_older_cliff_fails(self):
        self.assert_rejected(result(2, stderr="Unknown command ['server', "
                                              "'task-state', 'watch']\n"),
                             None)

    def test_osc_lib_exception_raised_fails_an_exit_1_test(self):
        self.assert_rejected(result(1, stderr='Exception raised: No module '
                                              'named osc_snapphase.v1\n'), 1)

    def test_expected_exit_status_still_checked(self):
        self.assertRaises(self.probe.failureException,
                          self.probe.check_result, result(1), 0)
